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

@Suite("Server: interactions and timelines")
struct InteractionRPCTests {
  static func ref(_ type: Crm_V1_RecordType, _ id: String) -> Crm_V1_RecordRef {
    .with {
      $0.recordType = type
      $0.recordID = id
    }
  }

  @Test("logging a call links it to several records and moves their last activity forward")
  func logAndActivity() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.company = "Globex" } }, metadata: auth)
      let contact = try await contacts.createContact(.with { $0.contact = .with { $0.lastName = "Scorpio" } }, metadata: auth)
      let yesterday = Google_Protobuf_Timestamp(seconds: Int64(Date().timeIntervalSince1970) - 86_400, nanos: 0)
      let call = try await interactions.logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .call
            $0.direction = .outbound
            $0.subject = "Intro call"
            $0.body = "Talked budgets.\nFollow up Friday."
            $0.startTime = yesterday
            $0.duration = .init(seconds: 900, nanos: 0)
            $0.outcome = "demo booked"
            $0.participants = [
              .with {
                $0.name = "Hank"; $0.record = Self.ref(.contact, contact.id)
              }
            ]
            $0.links = [Self.ref(.lead, lead.id), Self.ref(.contact, contact.id)]
          }
          $0.requestID = "call-1"
        }, metadata: auth)
      #expect(call.kind == .call && call.duration.seconds == 900 && call.links.count == 2)
      #expect(call.body == "Talked budgets.\nFollow up Friday.")
      #expect(call.participants.first?.record.recordID == contact.id)
      // Idempotent.
      let again = try await interactions.logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .note; $0.links = [Self.ref(.lead, lead.id)]
          }; $0.requestID = "call-1"
        }, metadata: auth)
      #expect(again.id == call.id)

      let leadAfter = try await leads.getLead(.with { $0.id = lead.id }, metadata: auth)
      let contactAfter = try await contacts.getContact(.with { $0.id = contact.id }, metadata: auth)
      #expect(leadAfter.lastActivityTime.seconds == yesterday.seconds)
      #expect(contactAfter.lastActivityTime.seconds == yesterday.seconds)
      // Activity is bookkeeping: the etags callers hold stay valid.
      #expect(leadAfter.etag == lead.etag)
      // An older interaction never moves it back.
      _ = try await interactions.logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .note; $0.links = [Self.ref(.lead, lead.id)]
            $0.startTime = .init(seconds: yesterday.seconds - 86_400, nanos: 0)
          }
        }, metadata: auth)
      #expect(try await leads.getLead(.with { $0.id = lead.id }, metadata: auth).lastActivityTime.seconds == yesterday.seconds)

      let listed = try await interactions.listInteractions(
        .with {
          $0.record = Self.ref(.lead, lead.id); $0.kinds = [.call]
        }, metadata: auth)
      #expect(listed.interactions.map(\.id) == [call.id])
      #expect(try await interactions.getInteraction(.with { $0.id = call.id }, metadata: auth).subject == "Intro call")

      // Update with a mask and the etag; a stale etag is ABORTED.
      let updated = try await interactions.updateInteraction(
        .with {
          $0.interaction = .with {
            $0.id = call.id; $0.etag = call.etag; $0.outcome = "no show"
          }
          $0.updateMask = .with { $0.paths = ["outcome"] }
        }, metadata: auth)
      #expect(updated.outcome == "no show" && updated.subject == "Intro call")
      #expect(
        await code {
          try await interactions.updateInteraction(
            .with {
              $0.interaction = .with {
                $0.id = call.id; $0.etag = call.etag; $0.outcome = "x"
              }
              $0.updateMask = .with { $0.paths = ["outcome"] }
            }, metadata: auth)
        } == .aborted)
    }
  }

  @Test("bad interactions name their fields; records out of reach are NOT_FOUND")
  func validation() async throws {
    let a = try await TestTenant.make("A")
    let b = try await TestTenant.make("B")
    try await TestServer.withClient { (client) async throws -> Void in
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      let leadOfA = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with { $0.lead = .with { $0.company = "Secret" } }, metadata: TestServer.auth(a.adminSecret))
      do {
        _ = try await interactions.logInteraction(
          .with {
            $0.interaction = .with {
              $0.kind = .call
              $0.visit = .with { $0.latitude = 100 }
              $0.subject = String(repeating: "s", count: 501)
              $0.participants = [.with { $0.email = "not an email" }]
            }
          }, metadata: TestServer.auth(a.adminSecret))
        Issue.record("expected INVALID_ARGUMENT")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        let fields = try #require(try error.unpackGoogleRPCStatus()).details.compactMap(\.badRequest).flatMap(\.violations)
          .map(\.field)
        #expect(Set(fields).isSuperset(of: ["interaction.subject", "interaction.participants[0].email"]))
      }
      #expect(
        await code {
          try await interactions.logInteraction(
            .with {
              $0.interaction = .with {
                $0.kind = .call; $0.visit = .with { $0.latitude = 10 }; $0.links = [Self.ref(.lead, leadOfA.id)]
              }
            },
            metadata: TestServer.auth(a.adminSecret))
        } == .invalidArgument)
      #expect(
        await code {
          try await interactions.logInteraction(
            .with { $0.interaction = .with { $0.kind = .note } }, metadata: TestServer.auth(a.adminSecret))
        } == .invalidArgument)
      // Tenant B cannot log on, list, or read A's lead.
      #expect(
        await code {
          try await interactions.logInteraction(
            .with {
              $0.interaction = .with {
                $0.kind = .note; $0.links = [Self.ref(.lead, leadOfA.id)]
              }
            },
            metadata: TestServer.auth(b.adminSecret))
        } == .notFound)
      #expect(
        await code {
          try await interactions.getTimeline(
            .with { $0.record = Self.ref(.lead, leadOfA.id) }, metadata: TestServer.auth(b.adminSecret))
        } == .notFound)
    }
  }

  @Test("an account's timeline merges its changes, its interactions and its contacts', newest first, page by page")
  func accountTimeline() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
        .with {
          $0.rule = .with {
            $0.recordType = .contact; $0.mode = .private
          }
        }, metadata: auth)
      let account = try await accounts.createAccount(.with { $0.account = .with { $0.name = "Umbrella" } }, metadata: auth)
      _ = try await accounts.updateAccount(
        .with {
          $0.account = .with {
            $0.id = account.id; $0.etag = account.etag; $0.industry = "Pharma"
          }
          $0.updateMask = .with { $0.paths = ["industry"] }
        }, metadata: auth)
      let publicContact = try await contacts.createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Visible"; $0.accountID = account.id
          }
        }, metadata: auth)
      let privateContact = try await contacts.createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Hidden"; $0.accountID = account.id; $0.ownerID = rep.userID.lowercasedString
          }
        },
        metadata: auth)
      // The admin owns publicContact, so under private sharing the peer sees neither contact.
      let now = Int64(Date().timeIntervalSince1970)
      var logged: [String] = []
      for (offset, link) in [
        (-300, Self.ref(.account, account.id)), (-200, Self.ref(.contact, publicContact.id)),
        (-100, Self.ref(.contact, privateContact.id)),
      ] {
        let interaction = try await interactions.logInteraction(
          .with {
            $0.interaction = .with {
              $0.kind = .email; $0.subject = "t\(offset)"; $0.links = [link]
              $0.startTime = .init(seconds: now + Int64(offset), nanos: 0)
            }
          }, metadata: auth)
        logged.append(interaction.id)
      }
      #expect(
        try await accounts.getAccount(.with { $0.id = account.id }, metadata: auth).lastActivityTime.seconds == now - 300)

      // The admin sees everything, two entries per page, nothing twice, newest first.
      var entries: [Crm_V1_TimelineEntry] = []
      var token = ""
      repeat {
        let page = try await interactions.getTimeline(
          .with {
            $0.record = Self.ref(.account, account.id); $0.pageSize = 2; $0.pageToken = token
          }, metadata: auth)
        #expect(page.entries.count <= 2)
        entries += page.entries
        token = page.nextPageToken
      } while !token.isEmpty
      let times = entries.map { $0.time.seconds * 1_000_000 + Int64($0.time.nanos / 1000) }
      #expect(times == times.sorted(by: >))
      #expect(entries.filter { $0.type == .interaction }.map(\.interaction.id).sorted() == logged.sorted())
      #expect(entries.filter { $0.type == .created }.count == 1)
      #expect(entries.filter { $0.type == .fieldChange }.first?.change.changes.map(\.field) == ["industry"])
      let fromContact = try #require(entries.first { $0.interaction.id == logged[1] })
      #expect(fromContact.record.recordID == publicContact.id)

      // The peer rep sees the account and its own interaction, but no private contact's.
      let peerView = try await interactions.getTimeline(
        .with { $0.record = Self.ref(.account, account.id) }, metadata: TestServer.auth(peerSecret))
      #expect(peerView.entries.filter { $0.type == .interaction }.map(\.interaction.id) == [logged[0]])
      // The contact's owner sees the interaction on their contact.
      let repView = try await interactions.getTimeline(
        .with { $0.record = Self.ref(.account, account.id) }, metadata: TestServer.auth(repSecret))
      #expect(repView.entries.filter { $0.type == .interaction }.map(\.interaction.id) == [logged[2], logged[0]])
    }
  }

  @Test("a lead's status change is typed in its timeline")
  func statusEntries() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.company = "Initrode" } }, metadata: auth)
      _ = try await leads.setLeadStatus(
        .with {
          $0.id = lead.id; $0.status = .working; $0.etag = lead.etag
        }, metadata: auth)
      let timeline = try await Crm_V1_InteractionService.Client(wrapping: client).getTimeline(
        .with { $0.record = Self.ref(.lead, lead.id) }, metadata: auth)
      #expect(timeline.entries.map(\.type) == [.statusChange, .created])
    }
  }
}
