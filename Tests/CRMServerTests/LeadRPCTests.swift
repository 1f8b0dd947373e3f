import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: leads over real gRPC")
struct LeadRPCTests {
  @Test("a lead is created NEW, moves along its lifecycle, refuses illegal moves, and keeps its history")
  func lifecycle() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let auth = TestServer.auth(tenant.adminSecret)
      let created = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.firstName = "Grace"
            $0.company = "Navy Labs, Inc."
            $0.emails = [.with { $0.address = "Grace+Web@Navy.example" }]
            $0.phones = [.with { $0.number = "(202) 555-0147" }]
            $0.regionCode = "us"
            $0.source = .webForm
            $0.utm = .with {
              $0.source = "newsletter"; $0.campaign = "fall"
            }
          }
        }, metadata: auth)
      #expect(created.status == .new)
      #expect(created.emails.map(\.address) == ["grace+web@navy.example"])
      #expect(created.phones.map(\.number) == ["+12025550147"])
      #expect(created.regionCode == "US")

      let working = try await leads.setLeadStatus(
        .with {
          $0.id = created.id; $0.status = .working; $0.etag = created.etag
        }, metadata: auth)
      #expect(working.status == .working)
      #expect(
        await code {
          try await leads.setLeadStatus(
            .with {
              $0.id = created.id; $0.status = .converted
            }, metadata: auth)
        } == .failedPrecondition)
      #expect(
        await code {
          try await leads.setLeadStatus(
            .with {
              $0.id = created.id; $0.status = .disqualified
            }, metadata: auth)
        } == .invalidArgument)
      let disqualified = try await leads.setLeadStatus(
        .with {
          $0.id = created.id; $0.status = .disqualified; $0.reason = "no budget"
        }, metadata: auth)
      #expect(disqualified.disqualifiedReason == "no budget")
      #expect(
        await code {
          try await leads.setLeadStatus(
            .with {
              $0.id = created.id; $0.status = .qualified
            }, metadata: auth)
        } == .failedPrecondition)
      let reopened = try await leads.setLeadStatus(
        .with {
          $0.id = created.id; $0.status = .working
        }, metadata: auth)
      #expect(reopened.disqualifiedReason.isEmpty)
      #expect(
        await code {
          try await leads.updateLead(
            .with {
              $0.lead = .with {
                $0.id = created.id; $0.status = .qualified
              }
              $0.updateMask = .with { $0.paths = ["status"] }
            }, metadata: auth)
        } == .invalidArgument)

      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead; $0.recordID = created.id
        }, metadata: auth)
      #expect(history.entries.count == 4)
      #expect(history.entries[0].changes.first { $0.field == "status" }?.newValue.stringValue == "working")
    }
  }

  @Test("leads filter by status, source, email, phone and company, and an empty lead is refused")
  func listing() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let auth = TestServer.auth(tenant.adminSecret)
      #expect(
        await code { try await leads.createLead(.with { $0.lead = .with { $0.title = "CTO" } }, metadata: auth) }
          == .invalidArgument)
      let first = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.company = "Acme GmbH"; $0.source = .event; $0.emails = [.with { $0.address = "ops@acme.example" }]
          }
        },
        metadata: auth)
      _ = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.company = "Initech"; $0.source = .partner; $0.phones = [.with { $0.number = "+44 20 7946 0958" }]
          }
        },
        metadata: auth)
      _ = try await leads.setLeadStatus(
        .with {
          $0.id = first.id; $0.status = .qualified
        }, metadata: auth)
      #expect(try await leads.listLeads(.with { $0.statuses = [.qualified] }, metadata: auth).leads.map(\.id) == [first.id])
      #expect(try await leads.listLeads(.with { $0.source = .partner }, metadata: auth).leads.map(\.company) == ["Initech"])
      #expect(try await leads.listLeads(.with { $0.email = "OPS@acme.example" }, metadata: auth).leads.map(\.id) == [first.id])
      #expect(
        try await leads.listLeads(
          .with {
            $0.phone = "020 7946 0958"; $0.regionCode = "GB"
          }, metadata: auth
        ).leads.count == 1)
      #expect(
        try await leads.listLeads(
          .with {
            $0.companyPrefix = "acm"; $0.includeTotalSize = true
          }, metadata: auth
        ).totalSize == 1)
      let keys = try TestDatabase.ownerConnection().query(
        "SELECT company_key, email_keys FROM leads WHERE tenant_id = \(tenant.tenantID) AND id = \(UUID(canonical: first.id)!)")[
          0]
      #expect(try keys.decode("company_key", as: String.self) == "acme")
      #expect(try keys.decode("email_keys", as: [String].self) == ["ops@acme.example"])
    }
  }
}
