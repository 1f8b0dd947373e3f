import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing

@Suite("Server: duplicate detection")
struct DuplicateRPCTests {
  @Test("matches across leads, contacts and accounts come back scored, with reasons, best first")
  func findsAcrossTypes() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
      let lead = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.firstName = "Grace"; $0.lastName = "Hopper"; $0.company = "Navy Labs Inc.";
            $0.emails = [.with { $0.address = "grace+web@navy.example" }]
          }
        },
        metadata: auth)
      let contact = try await contacts.createContact(
        .with {
          $0.contact = .with {
            $0.firstName = "Grace"; $0.lastName = "Hopper"; $0.phones = [.with { $0.number = "+1 202 555 0147" }]
          }
        },
        metadata: auth)
      let account = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = "NAVY LABS"; $0.website = "navy.example"
          }
        }, metadata: auth)
      _ = try await leads.createLead(.with { $0.lead = .with { $0.company = "Unrelated Widgets" } }, metadata: auth)

      let answer = try await duplicates.findDuplicates(
        .with {
          $0.candidate = .with {
            $0.firstName = "grace"
            $0.lastName = "hopper"
            $0.company = "Navy Labs, LLC"
            $0.emails = ["Grace@Navy.example"]
            $0.phones = ["(202) 555-0147"]
            $0.regionCode = "US"
            $0.website = "https://www.navy.example"
          }
          $0.ignorePlusTags = true
          $0.minScore = 0.3
        }, metadata: auth)
      let ids = answer.matches.map(\.recordID)
      #expect(Set(ids) == [lead.id, contact.id, account.id])
      #expect(answer.matches == answer.matches.sorted { $0.score > $1.score })
      let leadMatch = try #require(answer.matches.first { $0.recordID == lead.id })
      #expect(leadMatch.reasons.contains { $0.key == "email" && $0.value == "grace@navy.example" })
      #expect(leadMatch.reasons.contains { $0.key == "company_name" && $0.similarity == 1 })
      #expect(leadMatch.score > 0.95)
      let accountMatch = try #require(answer.matches.first { $0.recordID == account.id })
      #expect(Set(accountMatch.reasons.map(\.key)) == ["domain", "company_name"])

      // Without plus-tag folding, grace@navy.example is not grace+web@navy.example.
      let strict = try await duplicates.findDuplicates(
        .with {
          $0.candidate = .with { $0.emails = ["grace@navy.example"] }; $0.recordTypes = [.lead]
        }, metadata: auth)
      #expect(strict.matches.isEmpty)

      // From an existing record: its own keys, itself left out.
      let fromContact = try await duplicates.findDuplicates(
        .with {
          $0.record = .with {
            $0.recordType = .contact; $0.recordID = contact.id
          }; $0.minScore = 0.2
        }, metadata: auth)
      #expect(!fromContact.matches.map(\.recordID).contains(contact.id))
      #expect(fromContact.matches.map(\.recordID).contains(lead.id))
    }
  }

  @Test("bad requests name their fields, and other tenants' records never match")
  func validationAndIsolation() async throws {
    let a = try await TestTenant.make("A")
    let b = try await TestTenant.make("B")
    try await TestServer.withClient { (client) async throws -> Void in
      let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
      _ = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with { $0.lead = .with { $0.emails = [.with { $0.address = "secret@a.example" }] } },
        metadata: TestServer.auth(a.adminSecret))
      let fromB = try await duplicates.findDuplicates(
        .with { $0.candidate = .with { $0.emails = ["secret@a.example"] } }, metadata: TestServer.auth(b.adminSecret))
      #expect(fromB.matches.isEmpty)
      #expect(
        await code { try await duplicates.findDuplicates(.init(), metadata: TestServer.auth(b.adminSecret)) } == .invalidArgument)
      #expect(
        await code {
          try await duplicates.findDuplicates(
            .with {
              $0.candidate = .with { $0.emails = ["nope"] }; $0.minScore = 2
            }, metadata: TestServer.auth(b.adminSecret))
        } == .invalidArgument)
      #expect(
        await code {
          try await duplicates.findDuplicates(
            .with {
              $0.record = .with {
                $0.recordType = .lead; $0.recordID = UUID().uuidString
              }
            }, metadata: TestServer.auth(b.adminSecret))
        } == .notFound)
    }
  }
}
