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

@Suite("Server: merging duplicates")
struct MergeRPCTests {
  static func ref(_ type: Crm_V1_RecordType, _ id: String) -> Crm_V1_RecordRef {
    .with {
      $0.recordType = type
      $0.recordID = id
    }
  }

  static func history(_ client: GRPCClient<some ClientTransport>, _ type: Crm_V1_RecordType, _ id: String, auth: Metadata)
    async throws -> [Crm_V1_ChangeEntry]
  {
    try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
      .with {
        $0.recordType = type
        $0.recordID = id
      }, metadata: auth
    ).entries
  }

  @Test("merging leads: field choice, union of emails and tags, interactions and captures re-linked, losers archived")
  func mergeLeads() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      let survivor = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.firstName = "Ada"
            $0.company = "Engines"
            $0.emails = [.with { $0.address = "ada@engines.example" }]
            $0.tags = ["vip"]
          }
        }, metadata: auth)
      let older = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Lovelace"
            $0.title = "Engineer"
            $0.company = "Analytical Engines Ltd"
          }
          $0.duplicateAction = .allow
        }, metadata: auth)
      let newer = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.title = "CTO"
            $0.emails = [.with { $0.address = "ada@home.example" }]
            $0.phones = [.with { $0.number = "+14155550101" }]
            $0.tags = ["hot", "vip"]
            $0.externalID = "crm-old-17"
          }
          $0.duplicateAction = .allow
        }, metadata: auth)
      let shared = try await interactions.logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .call
            $0.links = [Self.ref(.lead, survivor.id), Self.ref(.lead, newer.id)]
          }
        }, metadata: auth)
      let own = try await interactions.logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .note
            $0.links = [Self.ref(.lead, newer.id)]
          }
        }, metadata: auth)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let captured = try await capture.captureLead(
        .with {
          $0.messageID = "phone-1"
          $0.phoneCall = .with { $0.callerNumber = "+14155550101" }
        }, metadata: auth)
      #expect(captured.outcome == .loggedOnLead && captured.record.recordID == newer.id)

      // A stale etag changes nothing.
      let stale = await code {
        try await leads.mergeLeads(
          .with {
            $0.survivorID = survivor.id
            $0.merged = [
              .with {
                $0.id = newer.id; $0.etag = "99"
              }
            ]
          }, metadata: auth)
      }
      #expect(stale == .aborted)
      #expect(try await leads.getLead(.with { $0.id = newer.id }, metadata: auth).archiveTime.seconds == 0)

      let merged = try await leads.mergeLeads(
        .with {
          $0.survivorID = survivor.id
          $0.survivorEtag = survivor.etag
          $0.merged = [.with { $0.id = older.id }, .with { $0.id = newer.id }]
          $0.fieldSources = ["company": older.id]
          $0.requestID = "merge-1"
        }, metadata: auth)
      #expect(merged.id == survivor.id && merged.etag != survivor.etag)
      #expect(merged.firstName == "Ada" && merged.lastName == "Lovelace")
      #expect(merged.title == "CTO")  // the newest merged record's, the survivor had none
      #expect(merged.company == "Analytical Engines Ltd")  // chosen
      #expect(merged.emails.map(\.address) == ["ada@engines.example", "ada@home.example"])
      #expect(merged.emails.filter(\.primary).count == 1 && merged.phones.map(\.number) == ["+14155550101"])
      #expect(merged.tags == ["vip", "hot"])
      #expect(merged.externalID == "crm-old-17")

      for loser in [older.id, newer.id] {
        let archived = try await leads.getLead(.with { $0.id = loser }, metadata: auth)
        #expect(archived.archiveTime.seconds > 0 && archived.mergedIntoID == survivor.id)
      }
      #expect(try await leads.getLead(.with { $0.id = newer.id }, metadata: auth).externalID.isEmpty)

      // Interactions follow, once each, with links rewritten and no repeats.
      let listed = try await interactions.listInteractions(
        .with {
          $0.record = Self.ref(.lead, survivor.id)
          $0.pageSize = 10
        }, metadata: auth)
      #expect(Set(listed.interactions.map(\.id)) == [shared.id, own.id, captured.interactionID])
      let sharedAfter = try await interactions.getInteraction(.with { $0.id = shared.id }, metadata: auth)
      #expect(sharedAfter.links.map(\.recordID) == [survivor.id])
      let loserListed = try await interactions.listInteractions(
        .with { $0.record = Self.ref(.lead, newer.id) }, metadata: auth)
      #expect(loserListed.interactions.isEmpty)
      // A replayed capture names the survivor now.
      let replayed = try await capture.captureLead(
        .with {
          $0.messageID = "phone-1"
          $0.phoneCall = .with { $0.callerNumber = "+14155550101" }
        }, metadata: auth)
      #expect(replayed.replayed && replayed.record.recordID == survivor.id)

      // Both histories tell the story.
      let survivorHistory = try await Self.history(client, .lead, survivor.id, auth: auth)
      let mergeEntry = try #require(survivorHistory.first { $0.operation == .merge })
      #expect(mergeEntry.changes.first?.field == "merged_from")
      #expect(survivorHistory.contains { $0.operation == .update && $0.changes.contains { $0.field == "title" } })
      let loserHistory = try await Self.history(client, .lead, newer.id, auth: auth)
      #expect(loserHistory.first?.operation == .archive)
      #expect(loserHistory.first?.changes.contains { $0.field == "merged_into" } == true)
      let timeline = try await interactions.getTimeline(
        .with {
          $0.record = Self.ref(.lead, survivor.id)
          $0.pageSize = 50
        }, metadata: auth)
      #expect(timeline.entries.contains { $0.type == .merged })

      // The same request id answers the first result; a merged record cannot be merged again.
      let again = try await leads.mergeLeads(
        .with {
          $0.survivorID = survivor.id
          $0.merged = [.with { $0.id = older.id }]
          $0.requestID = "merge-1"
        }, metadata: auth)
      #expect(again.etag == merged.etag)
      let twice = await code {
        try await leads.mergeLeads(
          .with {
            $0.survivorID = survivor.id
            $0.merged = [.with { $0.id = older.id }]
          }, metadata: auth)
      }
      #expect(twice == .failedPrecondition)
    }
  }

  @Test("merging accounts moves their contacts and child accounts, with history on each")
  func mergeAccounts() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let survivor = try await accounts.createAccount(.with { $0.account = .with { $0.name = "Acme" } }, metadata: auth)
      let loser = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = "ACME Corp."
            $0.website = "acme.example"
            $0.parentID = survivor.id
          }
        }, metadata: auth)
      let child = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = "Acme Europe"
            $0.parentID = loser.id
          }
        }, metadata: auth)
      var people: [Crm_V1_Contact] = []
      for name in ["Road", "Runner"] {
        people.append(
          try await contacts.createContact(
            .with {
              $0.contact = .with {
                $0.lastName = name
                $0.accountID = loser.id
              }
            }, metadata: auth))
      }
      let merged = try await accounts.mergeAccounts(
        .with {
          $0.survivorID = survivor.id
          $0.merged = [
            .with {
              $0.id = loser.id; $0.etag = loser.etag
            }
          ]
        }, metadata: auth)
      #expect(merged.name == "Acme" && merged.domain == "acme.example" && merged.parentID.isEmpty)
      let moved = try await accounts.listAccountContacts(.with { $0.accountID = survivor.id }, metadata: auth)
      #expect(Set(moved.contacts.map(\.id)) == Set(people.map(\.id)))
      #expect(moved.contacts.allSatisfy { contact in people.first { $0.id == contact.id }?.etag != contact.etag })
      #expect(try await accounts.getAccount(.with { $0.id = child.id }, metadata: auth).parentID == survivor.id)
      let contactHistory = try await Self.history(client, .contact, people[0].id, auth: auth)
      #expect(contactHistory.first?.changes.first?.field == "account_id")
      #expect(contactHistory.first?.changes.first?.newValue.stringValue == survivor.id)
    }
  }

  @Test("bad merges are refused with the right status and write nothing")
  func refusals() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let a = try await contacts.createContact(.with { $0.contact = .with { $0.lastName = "A" } }, metadata: auth)
      let b = try await contacts.createContact(.with { $0.contact = .with { $0.lastName = "B" } }, metadata: auth)
      let cases: [(Crm_V1_MergeRecordsRequest, String)] = [
        (.with { $0.survivorID = a.id }, "merged"),
        (
          .with {
            $0.survivorID = a.id; $0.merged = [.with { $0.id = a.id }]
          }, "merged[0].id"
        ),
        (
          .with {
            $0.survivorID = a.id; $0.merged = [.with { $0.id = b.id }, .with { $0.id = b.id }]
          }, "merged[1].id"
        ),
        (
          .with {
            $0.survivorID = a.id; $0.merged = [.with { $0.id = b.id }]; $0.fieldSources = ["shoe_size": b.id]
          },
          "field_sources[\"shoe_size\"]"
        ),
        (
          .with {
            $0.survivorID = a.id; $0.merged = [.with { $0.id = b.id }]; $0.fieldSources = ["title": UUID.v7().lowercasedString]
          },
          "field_sources[\"title\"]"
        ),
      ]
      for (request, field) in cases {
        do {
          _ = try await contacts.mergeContacts(request, metadata: auth)
          Issue.record("\(field): accepted")
        } catch let error as RPCError {
          #expect(error.code == .invalidArgument)
          let status = try #require(try error.unpackGoogleRPCStatus())
          #expect(status.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field).contains(field), "\(field)")
        }
      }
      let request = Crm_V1_MergeRecordsRequest.with {
        $0.survivorID = a.id
        $0.merged = [.with { $0.id = b.id }]
      }
      #expect(await code { try await contacts.mergeContacts(request, metadata: TestServer.auth(repSecret)) } == .permissionDenied)
      let other = try await TestTenant.make()
      #expect(await code { try await contacts.mergeContacts(request, metadata: TestServer.auth(other.adminSecret)) } == .notFound)
      #expect(try await contacts.getContact(.with { $0.id = b.id }, metadata: auth).etag == b.etag)
    }
  }
}
