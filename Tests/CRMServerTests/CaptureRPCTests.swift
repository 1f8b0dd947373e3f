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

@Suite("Server: lead capture and capture keys")
struct CaptureRPCTests {
  static func form(_ fields: [String: String], id: String = "") -> Crm_V1_CaptureLeadRequest {
    .with {
      $0.messageID = id
      $0.webForm = .with {
        $0.fields = fields
        $0.formName = "Contact us"
      }
    }
  }

  static func email(from: String, subject: String, messageID: String, body: String) -> Crm_V1_CaptureLeadRequest {
    let raw = """
      From: \(from)\r
      To: sales@ours.example\r
      Subject: \(subject)\r
      Message-ID: <\(messageID)>\r
      Content-Type: text/plain; charset=utf-8\r
      \r
      \(body)\r
      """
    return .with { $0.email = .with { $0.raw = Data(raw.utf8) } }
  }

  static func timelineInteractions(
    _ client: GRPCClient<some ClientTransport>, _ type: Crm_V1_RecordType, _ id: String, auth: Metadata
  ) async throws -> [Crm_V1_Interaction] {
    try await Crm_V1_InteractionService.Client(wrapping: client).listInteractions(
      .with {
        $0.record = .with {
          $0.recordType = type
          $0.recordID = id
        }
        $0.pageSize = 100
      }, metadata: auth
    ).interactions
  }

  @Test("a web form creates a lead; the same form again changes nothing; a new message from the sender is logged on the lead")
  func webForm() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let fields = [
        "name": "Ada Lovelace", "email": "Ada@Engines.example", "company": "Analytical Engines",
        "message": "Need a quote'); DROP TABLE leads;--", "budget": "50k", "utm_source": "newsletter",
      ]
      let first = try await capture.captureLead(Self.form(fields), metadata: auth)
      #expect(first.outcome == .createdLead && !first.replayed && first.messageID.hasPrefix("sha256:"))
      let lead = try await leads.getLead(.with { $0.id = first.record.recordID }, metadata: auth)
      #expect(lead.firstName == "Ada" && lead.lastName == "Lovelace" && lead.company == "Analytical Engines")
      #expect(lead.emails.map(\.address) == ["ada@engines.example"] && lead.source == .webForm)
      #expect(lead.sourceDetail == "Contact us" && lead.utm.source == "newsletter")
      #expect(lead.description_p == "Need a quote'); DROP TABLE leads;--")
      #expect(lead.hasLastActivityTime)

      let again = try await capture.captureLead(Self.form(fields), metadata: auth)
      #expect(again.replayed && again.interactionID == first.interactionID && again.record == first.record)
      #expect(again.outcome == .createdLead)

      var followUp = fields
      followUp["message"] = "Any news?"
      let second = try await capture.captureLead(Self.form(followUp, id: "form-42"), metadata: auth)
      #expect(second.outcome == .loggedOnLead && second.record == first.record && second.messageID == "form-42")

      let logged = try await Self.timelineInteractions(client, .lead, first.record.recordID, auth: auth)
      #expect(logged.count == 2)
      #expect(logged.contains { $0.body.contains("budget: 50k") && $0.body.contains("DROP TABLE") })
      let all = try await leads.listLeads(.with { $0.email = "ada@engines.example" }, metadata: auth)
      #expect(all.leads.count == 1)
    }
  }

  @Test("an email from a contact is logged on the contact; the same Message-ID again is a replay")
  func emailToContact() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Hopper"
            $0.emails = [.with { $0.address = "grace@navy.example" }]
          }
        }, metadata: auth)
      let message = Self.email(
        from: "=?UTF-8?Q?Grace_Hopper?= <Grace@Navy.example>", subject: "=?UTF-8?B?UmVuZXdhbCDinJM=?=",
        messageID: "m1@navy.example", body: "Renewing for 3 years.")
      let result = try await capture.captureLead(message, metadata: auth)
      #expect(result.outcome == .loggedOnContact && result.record.recordID == contact.id)
      #expect(result.messageID == "m1@navy.example")
      let replay = try await capture.captureLead(message, metadata: auth)
      #expect(replay.replayed && replay.interactionID == result.interactionID)

      let logged = try await Self.timelineInteractions(client, .contact, contact.id, auth: auth)
      #expect(logged.count == 1)
      #expect(logged.first?.kind == .email && logged.first?.direction == .inbound)
      #expect(logged.first?.subject == "Renewal ✓" && logged.first?.body == "Renewing for 3 years.")
      #expect(logged.first?.participants.first?.name == "Grace Hopper")
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).listLeads(.with { _ in }, metadata: auth)
      #expect(leads.leads.isEmpty)
    }
  }

  @Test("capture keys: one method, one channel, a rate limit with RetryInfo, revocable, admins only")
  func captureKeys() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      #expect(
        await code {
          try await capture.createCaptureKey(.with { $0.channel = .webForm }, metadata: TestServer.auth(repSecret))
        } == .permissionDenied)
      #expect(
        await code { try await capture.createCaptureKey(.with { $0.channel = .import }, metadata: auth) }
          == .invalidArgument)
      let created = try await capture.createCaptureKey(
        .with {
          $0.channel = .webForm
          $0.name = "pricing page"
          $0.rateLimitPerMinute = 3
        }, metadata: auth)
      #expect(created.key.channel == .webForm && created.key.rateLimitPerMinute == 3 && created.secret.hasPrefix("crm_"))
      let key = TestServer.auth(created.secret)

      // Nothing but CaptureLead, and only for its channel.
      #expect(
        await code { try await Crm_V1_LeadService.Client(wrapping: client).listLeads(.with { _ in }, metadata: key) }
          == .permissionDenied)
      #expect(await code { try await capture.listCaptureKeys(.with { _ in }, metadata: key) } == .permissionDenied)

      let accepted = try await capture.captureLead(Self.form(["email": "visitor1@example.org"]), metadata: key)
      // A key learns nothing about the tenant's records.
      #expect(accepted.outcome == .accepted && !accepted.hasRecord && !accepted.interactionID.isEmpty)
      let emailChannel = await code {
        try await capture.captureLead(Self.email(from: "a@b.example", subject: "x", messageID: "k1", body: "x"), metadata: key)
      }
      #expect(emailChannel == .permissionDenied)
      _ = try await capture.captureLead(Self.form(["email": "visitor1@example.org", "n": "2"]), metadata: key)
      // The email-channel attempt spent a call too: the bucket of 3 is empty now.
      do {
        _ = try await capture.captureLead(Self.form(["email": "visitor3@example.org"]), metadata: key)
        Issue.record("the fourth call within a minute went through")
      } catch let error as RPCError {
        #expect(error.code == .resourceExhausted)
        let status = try #require(try error.unpackGoogleRPCStatus())
        let delays = status.details.compactMap(\.retryInfo).map(\.delay)
        #expect(delays.count == 1 && delays[0] > .zero && delays[0] <= .seconds(20))
      }

      // The lead belongs to the key's owner (the issuing admin); its outcome is visible to full tokens.
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).listLeads(
        .with { $0.email = "visitor1@example.org" }, metadata: auth)
      #expect(leads.leads.count == 1 && leads.leads[0].ownerID == tenant.admin.userID.lowercasedString)

      let listed = try await capture.listCaptureKeys(.with { _ in }, metadata: auth)
      #expect(listed.keys.map(\.id) == [created.key.id] && listed.keys[0].hasLastUseTime)
      let tokens = try await Crm_V1_AdminService.Client(wrapping: client).listTokens(.with { _ in }, metadata: auth)
      #expect(!tokens.tokens.contains { $0.id == created.key.id })

      let revoked = try await capture.revokeCaptureKey(.with { $0.id = created.key.id }, metadata: auth)
      #expect(revoked.hasRevokeTime)
      #expect(
        await code { try await capture.captureLead(Self.form(["email": "late@example.org"]), metadata: key) }
          == .unauthenticated)
    }
  }

  @Test("100 concurrent captures of one email (different messages) make one lead with 100 interactions")
  func concurrentCaptures() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let key = try await capture.createCaptureKey(
        .with {
          $0.channel = .webForm
          $0.rateLimitPerMinute = 10_000
        }, metadata: auth)
      let outcomes = try await withThrowingTaskGroup(of: Crm_V1_CaptureLeadResponse.self) { group in
        for index in 0..<100 {
          group.addTask {
            try await capture.captureLead(
              Self.form([
                "email": index.isMultiple(of: 2) ? "Same.Person@Example.com" : "same.person@example.com", "n": "\(index)",
              ]),
              metadata: TestServer.auth(key.secret))
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      #expect(outcomes.count == 100 && Set(outcomes.map(\.interactionID)).count == 100)
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).listLeads(
        .with { $0.email = "same.person@example.com" }, metadata: auth)
      #expect(leads.leads.count == 1)
      let logged = try await Self.timelineInteractions(client, .lead, leads.leads[0].id, auth: auth)
      #expect(logged.count == 100)
    }
  }

  @Test("bad input is INVALID_ARGUMENT naming the field")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let cases: [(Crm_V1_CaptureLeadRequest, String)] = [
        (.with { $0.messageID = "x" }, "signal"),
        (Self.form(["email": "not-an-email"]), "web_form.fields[\"email\"]"),
        (Self.form([:]), "web_form.fields"),
        (.with { $0.email = .with { $0.raw = Data("Subject: hi\r\n\r\nno sender".utf8) } }, "email.raw"),
        (.with { $0.phoneCall = .with { $0.callerName = "Anon" } }, "phone_call.caller_number"),
        (.with { $0.badgeScan = .with { $0.person = .with { $0.firstName = "Bo" } } }, "badge_scan.event_name"),
        (
          .with {
            $0.partnerReferral = .with {
              $0.partnerName = "Acme Resellers"
              $0.person = .with { $0.emails = [.with { $0.address = "bad" }] }
            }
          }, "partner_referral.person.emails[0].address"
        ),
        (Self.form(["email": "ok@example.org"], id: String(repeating: "m", count: 999)), "message_id"),
      ]
      for (request, field) in cases {
        do {
          _ = try await capture.captureLead(request, metadata: auth)
          Issue.record("\(field): accepted")
        } catch let error as RPCError {
          #expect(error.code == .invalidArgument, "\(field)")
          let status = try #require(try error.unpackGoogleRPCStatus())
          let fields = status.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field)
          #expect(fields.contains(field), "\(field) not in \(fields)")
        }
      }
      // A phone call from a new number creates a lead in E.164 with the call logged.
      let call = try await capture.captureLead(
        .with {
          $0.regionCode = "US"
          $0.phoneCall = .with {
            $0.callerNumber = "(415) 555-0132"
            $0.callerName = "Sam Caller"
            $0.durationSeconds = 95
            $0.summary = "Asked about pricing"
          }
        }, metadata: auth)
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).getLead(
        .with { $0.id = call.record.recordID }, metadata: auth)
      #expect(lead.phones.map(\.number) == ["+14155550132"] && lead.source == .phone)
    }
  }
}
