import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
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

  @Test("the standard rule warns: the create succeeds and its answer lists the matches")
  func standardRuleWarns() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let first = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Lovelace"; $0.emails = [.with { $0.address = "ada@engines.example" }]
          }
        },
        metadata: auth)
      #expect(!first.hasDuplicateFindings)
      let second = try await contacts.createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Byron"; $0.emails = [.with { $0.address = "ADA@engines.example" }]
          }
        },
        metadata: auth)
      #expect(second.duplicateFindings.action == .warn)
      #expect(second.duplicateFindings.matches.map(\.recordID) == [first.id])
      #expect(second.duplicateFindings.matches.first?.reasons.map(\.key) == ["email"])
      // The findings belong to the create's answer, not to the record.
      let read = try await contacts.getContact(.with { $0.id = second.id }, metadata: auth)
      #expect(!read.hasDuplicateFindings)
      // A caller that has decided skips the lookup.
      let decided = try await leads.createLead(
        .with {
          $0.lead = .with { $0.emails = [.with { $0.address = "ada@engines.example" }] }; $0.duplicateAction = .allow
        }, metadata: auth)
      #expect(!decided.hasDuplicateFindings)
    }
  }

  @Test("a blocking rule refuses the duplicate with ALREADY_EXISTS and the matches in the details")
  func blockingRule() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
      let blockLeads = Crm_V1_SetDuplicateRuleRequest.with {
        $0.rule = .with {
          $0.recordType = .lead; $0.action = .block; $0.matchKeys = ["email", "phone"]; $0.minScore = 0.8
        }
      }
      #expect(
        await code { try await duplicates.setDuplicateRule(blockLeads, metadata: TestServer.auth(repSecret)) }
          == .permissionDenied)
      let stored = try await duplicates.setDuplicateRule(blockLeads, metadata: auth)
      #expect(stored.matchKeys == ["email", "phone"])
      #expect(stored.matchRecordTypes == [.lead, .contact, .account])
      let rules = try await duplicates.listDuplicateRules(.init(), metadata: TestServer.auth(repSecret)).rules
      #expect(rules.map(\.recordType) == [.account, .contact, .lead])
      #expect(rules.first { $0.recordType == .lead }?.action == .block)
      #expect(rules.first { $0.recordType == .account }?.action == .warn)

      let original = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.company = "Initech"; $0.phones = [.with { $0.number = "+1 415 555 0100" }]
          }
        },
        metadata: auth)
      let again = Crm_V1_CreateLeadRequest.with {
        $0.lead = .with {
          $0.company = "Initech LLC"; $0.phones = [.with { $0.number = "+14155550100" }]
        }
      }
      do {
        _ = try await leads.createLead(again, metadata: TestServer.auth(repSecret))
        Issue.record("expected ALREADY_EXISTS")
      } catch let error as RPCError {
        #expect(error.code == .alreadyExists)
        let status = try #require(try error.unpackGoogleRPCStatus())
        #expect(status.details.compactMap(\.errorInfo).first?.reason == "DUPLICATE")
        let any = try #require(status.details.compactMap(\.any).first)
        let findings = try Crm_V1_DuplicateFindings(unpackingAny: any)
        #expect(findings.action == .block)
        #expect(findings.matches.map(\.recordID) == [original.id])
        #expect(findings.matches.first?.reasons.map(\.key) == ["phone"])
      }
      // Only phone and email count: a company-name twin is not blocked.
      _ = try await leads.createLead(.with { $0.lead = .with { $0.company = "Initech" } }, metadata: auth)
      // The override writes it; nothing was lost by the refusals.
      var decided = again
      decided.duplicateAction = .allow
      _ = try await leads.createLead(decided, metadata: TestServer.auth(repSecret))
      let all = try await leads.listLeads(.with { $0.phone = "+14155550100" }, metadata: auth)
      #expect(all.leads.count == 2)
      // A bad rule names its fields.
      #expect(
        await code {
          try await duplicates.setDuplicateRule(
            .with {
              $0.rule = .with {
                $0.recordType = .lead; $0.matchKeys = ["shoe_size"]; $0.minScore = -1
              }
            },
            metadata: auth)
        } == .invalidArgument)
    }
  }

  @Test("a block counts matches the caller may not see, without naming them")
  func hiddenMatches() async throws {
    let tenant = try await TestTenant.make()
    let (_, aliceSecret) = try await tenant.makeUser(.salesRep)
    let (_, bobSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead; $0.mode = .private
          }
        }, metadata: auth)
      _ = try await Crm_V1_DuplicateService.Client(wrapping: client).setDuplicateRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead; $0.action = .block
          }
        }, metadata: auth)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let request = Crm_V1_CreateLeadRequest.with { $0.lead = .with { $0.emails = [.with { $0.address = "x@y.example" }] } }
      _ = try await leads.createLead(request, metadata: TestServer.auth(aliceSecret))
      do {
        _ = try await leads.createLead(request, metadata: TestServer.auth(bobSecret))
        Issue.record("expected ALREADY_EXISTS")
      } catch let error as RPCError {
        #expect(error.code == .alreadyExists)
        let any = try #require(try error.unpackGoogleRPCStatus()?.details.compactMap(\.any).first)
        let findings = try Crm_V1_DuplicateFindings(unpackingAny: any)
        #expect(findings.matches.isEmpty)
        #expect(findings.hiddenMatchCount == 1)
        #expect(!error.message.contains("lead 0"))
      }
    }
  }

  @Test("concurrent creates of one email under a blocking rule make exactly one record")
  func concurrentBlock() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_DuplicateService.Client(wrapping: client).setDuplicateRule(
        .with {
          $0.rule = .with {
            $0.recordType = .contact; $0.action = .block
          }
        }, metadata: auth)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let codes = await withTaskGroup(of: RPCError.Code?.self) { group in
        for index in 0..<24 {
          group.addTask {
            await code {
              try await contacts.createContact(
                .with {
                  $0.contact = .with {
                    $0.firstName = "Twin \(index)"
                    // Plus tags and case differ; the lock is on the normalized key.
                    $0.emails = [.with { $0.address = index.isMultiple(of: 2) ? "same@twins.example" : "Same@Twins.example" }]
                  }
                }, metadata: auth)
            }
          }
        }
        return await group.reduce(into: [RPCError.Code?]()) { $0.append($1) }
      }
      #expect(codes.filter { $0 == nil }.count == 1)
      #expect(codes.filter { $0 == .alreadyExists }.count == 23)
      let stored = try await contacts.listContacts(.with { $0.email = "same@twins.example" }, metadata: auth)
      #expect(stored.contacts.count == 1)
    }
  }

  @Test("registration ids are normalized, found exactly, and warn on create under the standard rule")
  func registrationIDs() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "厦门示例科技有限公司"
            $0.registrationID = "91350211-m000 100y43"
          }
        }, metadata: auth)
      #expect(account.registrationID == "91350211M000100Y43")
      let found = try await Crm_V1_DuplicateService.Client(wrapping: client).findDuplicates(
        .with { $0.candidate = .with { $0.registrationID = "91350211M000100Y43" } }, metadata: auth)
      #expect(found.matches.map(\.recordID) == [account.id])
      #expect(found.matches.first?.reasons.map(\.key) == ["registration_id"])
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.company = "Xiamen Example Tech"; $0.registrationID = "91350211 M000100Y43"
          }
        },
        metadata: auth)
      #expect(lead.duplicateFindings.matches.map(\.recordID) == [account.id])
      let invalid = await code {
        try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.company = "X"; $0.registrationID = "--/--"
            }
          }, metadata: auth)
      }
      #expect(invalid == .invalidArgument)
    }
  }

  @Test("similar names are found through a typo, an initial, a middle name, the family name first or a dropped word")
  func similarNames() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
      func lead(_ first: String, _ last: String, company: String = "") async throws -> String {
        try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.firstName = first; $0.lastName = last; $0.company = company
            }
          }, metadata: auth
        ).id
      }
      let person = try await lead("Johnathan", "Whitfield")
      let company = try await lead("", "", company: "Harbor Freight Logistics Ltd.")
      // People sharing one of the names only.
      _ = try await lead("Wei", "Whitfield")
      _ = try await lead("Johnathan", "Okafor")
      let navy = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "NAVY" } }, metadata: auth
      ).id

      func matches(_ candidate: Crm_V1_DuplicateCandidate, in type: Crm_V1_RecordType = .lead) async throws
        -> [Crm_V1_DuplicateMatch]
      {
        try await duplicates.findDuplicates(
          .with {
            $0.candidate = candidate; $0.recordTypes = [type]; $0.minScore = 0.2
          }, metadata: auth
        ).matches
      }
      for (first, last, kind) in [
        ("Jonathan", "Whitfield", Crm_V1_MatchKind.similar), ("J.", "Whitfield", .similar),
        ("Johnathan F.", "Whitfield", .similar), ("WHITFIELD", "Johnathan", .normalized),
      ] {
        let found = try await matches(.with { $0.firstName = first; $0.lastName = last })
        // "J. Whitfield" is as much "Wei Whitfield" (0.67) as "Johnathan Whitfield" (0.52); the others are not.
        #expect(first == "J." || found.map(\.recordID) == [person], "\(first) \(last)")
        let reason = try #require(found.first { $0.recordID == person }?.reasons.first, "\(first) \(last)")
        #expect(reason.key == "person_name" && reason.kind == kind && reason.value == "johnathan whitfield")
        #expect(reason.similarity >= 0.5 && (kind == .similar) == (reason.similarity < 1), "\(first) \(last)")
      }
      let freight = try await matches(.with { $0.company = "Harbor Freight" })
      #expect(freight.map(\.recordID) == [company])
      #expect(freight.first?.reasons.map(\.key) == ["company_name"])
      #expect(try await matches(.with { $0.company = "Navy Labs GmbH" }, in: .account).map(\.recordID) == [navy])
    }
  }

  @Test("a name in a crowd of similar ones: the exact record and the closest typo are never cut")
  func crowdedNameBlock() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      func lead(_ last: String) async throws -> String {
        try await leads.createLead(.with { $0.lead = .with { $0.firstName = "Alexandra"; $0.lastName = last } }, metadata: auth).id
      }
      // 60 names in the block "alexandra p", each 0.70 similar to "alexandra petrovich" (the typo: 0.74),
      // written first and sorting first: a lookup keeping the first 50 similar rows it meets in the
      // block, in either order, stops among them.
      for first in "abdefg" { for second in "klmnopqrst" { _ = try await lead("Petrov\(first)\(second)") } }
      // And 36 in its other block, "a petrovich", sorting first there too (0.48 similar: never matches).
      for first in "abcdef" {
        for second in "abcdef" {
          _ = try await leads.createLead(
            .with { $0.lead = .with { $0.firstName = "A\(first)\(second)"; $0.lastName = "Petrovich" } }, metadata: auth)
        }
      }
      let exact = try await lead("Petrovich")
      let typo = try await lead("Petrovihc")

      let found = try await Crm_V1_DuplicateService.Client(wrapping: client).findDuplicates(
        .with {
          $0.candidate = .with { $0.firstName = "Alexandra"; $0.lastName = "Petrovich" }
          $0.recordTypes = [.lead]; $0.minScore = 0.2; $0.maxMatches = 100
        }, metadata: auth
      ).matches
      #expect(found.first?.recordID == exact)
      #expect(found.first?.reasons.first?.kind == .normalized)
      #expect(found.dropFirst().first?.recordID == typo)
      // Similar names are compared with the name's neighbours, not the whole block.
      #expect(found.count < 62)
      // Family name first: the swapped form is looked up from its own place in the crowded block.
      let swapped = try await Crm_V1_DuplicateService.Client(wrapping: client).findDuplicates(
        .with {
          $0.candidate = .with { $0.firstName = "Petrovich"; $0.lastName = "Alexandra" }
          $0.recordTypes = [.lead]; $0.minScore = 0.5
        }, metadata: auth
      ).matches
      #expect(swapped.map(\.recordID) == [exact])
    }
  }
}
