import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import Logging
import SwiftProtobuf
import Testing

@Suite("Server: webhooks")
struct WebhookTests {
  /// A server with the change feed running, a real HTTP receiver on loopback, and a dispatcher on a
  /// manual delivery clock that the test drives pass by pass.
  struct Harness: Sendable {
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let tenant: TestTenant
    let admin: Metadata
    let webhooks: Crm_V1_WebhookService.Client<HTTP2ClientTransport.Posix>
    let leads: Crm_V1_LeadService.Client<HTTP2ClientTransport.Posix>
    let changes: Crm_V1_ChangeService.Client<HTTP2ClientTransport.Posix>
    let receiver: WebhookReceiver
    let dispatcher: WebhookDispatcher
    let clock: ManualWallClock

    struct UnexpectedFailure: Error, CustomStringConvertible {
      var description: String
    }

    /// Runs dispatcher passes until the receiver holds `count` requests. Unless the test makes
    /// attempts fail on purpose, a failed attempt ends the wait at once with its error (the manual
    /// clock would otherwise never make its retry due, and the wait would only time out).
    func deliver(until count: Int, failuresExpected: Bool = false) async throws {
      try await waitUntil("the receiver to hold \(count) webhook requests") {
        await dispatcher.runOnce()
        if !failuresExpected {
          let tenantID = tenant.tenantID
          // On a thread of its own: libpq blocks, and the cooperative pool has only two threads.
          let failure = try await runBlocking { () -> String? in
            let connection = try TestDatabase.ownerConnection()
            defer { connection.close() }
            guard
              let failed = try connection.query(
                """
                SELECT event_type, coalesce(error, '') AS error FROM webhook_deliveries
                WHERE tenant_id = \(tenantID) AND status <> 'succeeded' LIMIT 1
                """
              ).first
            else { return nil }
            return "a \(try failed.decode("event_type", as: String.self)) delivery failed: "
              + (try failed.decode("error", as: String.self))
          }
          if let failure { throw UnexpectedFailure(description: failure) }
        }
        return receiver.requests.count >= count
      }
    }

    /// Waits until the feed carries `count` events after the subscription's start, so a pass is sure
    /// to see them.
    func feedHolds(_ count: Int) async throws {
      _ = try await ChangeFeedTests.events(changes, metadata: admin) { $0.count >= count }
    }

    func createLead(_ name: String, metadata: Metadata? = nil) async throws -> Crm_V1_Lead {
      try await leads.createLead(.with { $0.lead = .with { $0.lastName = name } }, metadata: metadata ?? admin)
    }

    func subscribe(
      _ types: [String] = ["lead.*"], metadata: Metadata? = nil, configure: (inout Crm_V1_Webhook) -> Void = { _ in }
    )
      async throws -> Crm_V1_CreateWebhookResponse
    {
      try await webhooks.createWebhook(
        .with {
          $0.webhook = .with {
            $0.url = receiver.url
            $0.eventTypes = types
            $0.active = true
            configure(&$0)
          }
        }, metadata: metadata ?? admin)
    }

    func deliveries(_ id: String, _ statuses: [Crm_V1_WebhookDeliveryStatus] = []) async throws -> [Crm_V1_WebhookDelivery] {
      try await webhooks.listWebhookDeliveries(
        .with {
          $0.webhookID = id
          $0.statuses = statuses
        }, metadata: admin
      ).deliveries
    }
  }

  static let start = Timestamp(seconds: 1_800_000_000, nanos: 0)

  /// The attempt timeout for tests that do not test timeouts: a loopback request on a saturated CI
  /// machine once took longer than crmd's 15 s default (the test then failed on "timed out"), and no
  /// test may assume a speed. Still under ``waitUntil``'s bound, so a real hang fails loudly.
  static let patientTimeout: Duration = .seconds(80)

  static func withHarness(
    timeout: Duration = Self.patientTimeout, allowPrivate: Bool = true, _ body: @Sendable (Harness) async throws -> Void
  ) async throws {
    let tenant = try await TestTenant.make()
    let receiver = try await WebhookReceiver.start()
    let clock = ManualWallClock(start)
    let sender = WebhookSender(timeout: timeout, allowPrivateAddresses: allowPrivate, clock: clock.now)
    let dispatcher = WebhookDispatcher(
      database: tenant.database, sender: sender, logger: Logger(label: "test-webhooks"), tenant: tenant.tenantID, jitter: { 0 },
      clock: clock.now)
    let outcome: Result<Void, any Error>
    do {
      try await TestServer.withClient(feed: true, webhooks: dispatcher) { client in
        try await body(
          Harness(
            client: client, tenant: tenant, admin: TestServer.auth(tenant.adminSecret),
            webhooks: Crm_V1_WebhookService.Client(wrapping: client),
            leads: Crm_V1_LeadService.Client(wrapping: client), changes: Crm_V1_ChangeService.Client(wrapping: client),
            receiver: receiver, dispatcher: dispatcher, clock: clock))
      }
      outcome = .success(())
    } catch {
      outcome = .failure(error)
    }
    await sender.shutdown()
    await receiver.stop()
    try outcome.get()
  }

  /// The Standard Webhooks signature of a request, computed here from the spec (not crmd's code).
  static func signature(secret: String, id: String, timestamp: String, body: [UInt8]) -> String {
    let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!)
    let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).".utf8) + Data(body), using: key)
    return "v1," + Data(mac).base64EncodedString()
  }

  @Test("changes arrive in feed order, signed per Standard Webhooks, with the event as ListChanges shows it")
  func delivery() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe(["lead.created", "lead.updated"])
      #expect(created.secret.hasPrefix("whsec_"))
      #expect(created.webhook.active && created.webhook.ownerID == h.tenant.admin.userID.lowercasedString)
      // The secret is shown once: reads do not carry it (the message has no field for it).
      let first = try await h.createLead("First")
      let second = try await h.createLead("Second")
      _ = try await h.leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = first.id
            $0.company = "Acme"
          }
          $0.updateMask = .with { $0.paths = ["company"] }
        }, metadata: h.admin)
      try await h.deliver(until: 3)
      let requests = h.receiver.requests
      #expect(requests.count == 3)
      let types = requests.compactMap { $0.json?["type"] as? String }
      #expect(types == ["lead.created", "lead.created", "lead.updated"])
      let ids = requests.compactMap {
        (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String
      }
      #expect(ids == [first.id, second.id, first.id])
      for request in requests {
        let id = try #require(request.header("webhook-id"))
        let timestamp = try #require(request.header("webhook-timestamp"))
        #expect(timestamp == String(Self.start.seconds))
        #expect(
          request.header("webhook-signature")
            == Self.signature(secret: created.secret, id: id, timestamp: timestamp, body: request.body))
        #expect(request.header("content-type") == "application/json")
        // The webhook-id is the event's feed cursor: ListChanges resumes from it.
        #expect((request.json?["data"] as? [String: Any])?["cursor"] as? String == id)
      }
      // The subscription's cursor moved to the last event; the deliveries say how each went.
      let webhook = try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
      #expect(webhook.cursor == requests[2].header("webhook-id"))
      let deliveries = try await h.deliveries(created.webhook.id)
      #expect(deliveries.count == 3)
      #expect(
        deliveries.allSatisfy {
          $0.status == .succeeded && $0.responseStatus == 200 && $0.attempts == 1 && $0.responseBody == "ok"
        })
      #expect(deliveries.map(\.eventCursor) == requests.reversed().compactMap { $0.header("webhook-id") }, "newest first")
      // Nothing more to send: another pass sends nothing.
      await h.dispatcher.runOnce()
      #expect(h.receiver.requests.count == 3)
    }
  }

  @Test("a subscription for what commits from now on skips a change that committed before it, even one the feed copies later")
  func fromNow() async throws {
    try await Self.withHarness { h in
      // Pause the feed's sequencer (whichever node's): while a lead commits and the subscription is
      // made, hold a lock that its copy into change_feed waits for, so the lead reaches the feed only
      // after the subscription exists.
      let pause = try TestDatabase.ownerConnection()
      defer { pause.close() }
      _ = try pause.query("BEGIN")
      _ = try pause.query("LOCK TABLE change_feed IN SHARE MODE")
      let before: Crm_V1_Lead
      do {
        before = try await h.createLead("Before")
        _ = try await h.subscribe()
      } catch {
        _ = try? pause.query("ROLLBACK")
        throw error
      }
      _ = try pause.query("ROLLBACK")
      let after = try await h.createLead("After")
      try await h.deliver(until: 1)
      await h.dispatcher.runOnce()
      let records = h.receiver.requests.compactMap {
        (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String
      }
      #expect(records == [after.id], "not \(before.id), which committed before the subscription was made")
      // Replaying from an explicit cursor does include it.
      let feed = try await ChangeFeedTests.events(h.changes, metadata: h.admin) { $0.count >= 2 }.events
      #expect(feed.map(\.change.recordID) == [before.id, after.id])
    }
  }

  @Test("a failing endpoint gets the same event again on the schedule, and nothing after it until it succeeds")
  func retriesInOrder() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      h.receiver.reply { index in index < 2 ? .status(500, body: "boom") : .status(204) }
      let first = try await h.createLead("First")
      _ = try await h.createLead("Second")
      try await h.feedHolds(2)
      try await h.deliver(until: 1, failuresExpected: true)
      var pending = try await h.deliveries(created.webhook.id)
      #expect(pending.count == 1)
      #expect(pending[0].status == .pending && pending[0].attempts == 1 && pending[0].responseStatus == 500)
      #expect(pending[0].error == "the endpoint answered 500" && pending[0].responseBody == "boom")
      #expect(
        pending[0].nextAttemptTime.seconds == Self.start.seconds + 5, "the second attempt comes 5 s later (no jitter drawn)")
      // Not due yet: a pass sends nothing, and the second lead waits behind the first.
      await h.dispatcher.runOnce()
      #expect(h.receiver.requests.count == 1)
      h.clock.advance(minutes: 1)
      try await h.deliver(until: 2, failuresExpected: true)
      pending = try await h.deliveries(created.webhook.id)
      #expect(pending.count == 1 && pending[0].attempts == 2)
      #expect(pending[0].nextAttemptTime.seconds == Self.start.seconds + 60 + 300, "then 5 min")
      h.clock.advance(minutes: 5)
      try await h.deliver(until: 4, failuresExpected: true)
      let requests = h.receiver.requests
      #expect(requests.count == 4)
      // The same webhook-id on every attempt (the consumer's idempotency key), then the next event.
      #expect(Set(requests[0..<3].compactMap { $0.header("webhook-id") }).count == 1)
      #expect(requests[3].header("webhook-id") != requests[0].header("webhook-id"))
      let firstID =
        (requests[0].json?["data"] as? [String: Any]).flatMap { $0["change"] as? [String: Any] }?["recordId"] as? String
      #expect(firstID == first.id)
      let done = try await h.deliveries(created.webhook.id)
      #expect(done.map(\.status) == [.succeeded, .succeeded])
      #expect(done[1].attempts == 3 && done[1].responseStatus == 204)
      let webhook = try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
      #expect(!webhook.hasNextAttemptTime && webhook.cursor == requests[3].header("webhook-id"))
    }
  }

  @Test("Retry-After is honoured: the next attempt waits at least as long as the endpoint asked")
  func retryAfter() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      h.receiver.reply { index in index == 0 ? .status(429, headers: [("Retry-After", "120")]) : .status(200) }
      _ = try await h.createLead("Throttled")
      try await h.deliver(until: 1, failuresExpected: true)
      let pending = try await h.deliveries(created.webhook.id)
      #expect(pending[0].nextAttemptTime.seconds == Self.start.seconds + 120)
      h.clock.advance(minutes: 1)
      await h.dispatcher.runOnce()
      #expect(h.receiver.requests.count == 1, "a minute is not yet the two it asked for")
      h.clock.advance(minutes: 1)
      try await h.deliver(until: 2, failuresExpected: true)
    }
  }

  @Test("410 Gone turns the endpoint off; turned back on, it resumes with the event it stopped at")
  func goneDisables() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      h.receiver.reply { index in index == 0 ? .status(410) : .status(200) }
      _ = try await h.createLead("Gone")
      try await h.deliver(until: 1, failuresExpected: true)
      var webhook = try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
      #expect(!webhook.active && webhook.disabledReason.contains("410"))
      _ = try await h.createLead("While off")
      try await h.feedHolds(2)
      await h.dispatcher.runOnce()
      #expect(h.receiver.requests.count == 1, "an endpoint that is off gets nothing")
      webhook = try await h.webhooks.updateWebhook(
        .with {
          $0.webhook = .with {
            $0.id = webhook.id
            $0.etag = webhook.etag
            $0.active = true
          }
          $0.updateMask = .with { $0.paths = ["active"] }
        }, metadata: h.admin)
      #expect(webhook.active && webhook.disabledReason.isEmpty)
      try await h.deliver(until: 3, failuresExpected: true)
      let ids = h.receiver.requests.compactMap { $0.header("webhook-id") }
      #expect(ids[0] == ids[1] && ids[2] != ids[0], "the stopped event again, then the next")
      let deliveries = try await h.deliveries(created.webhook.id)
      #expect(deliveries.map(\.status) == [.succeeded, .succeeded])
      #expect(deliveries[1].attempts == 2)
    }
  }

  @Test("a receiver that does not answer times the attempt out, and it is retried")
  func timeout() async throws {
    try await Self.withHarness(timeout: .seconds(2)) { h in
      let created = try await h.subscribe()
      h.receiver.reply { index in index == 0 ? .hang : .status(200) }
      _ = try await h.createLead("Slow")
      try await h.deliver(until: 1, failuresExpected: true)
      try await waitUntil("the timed-out attempt to be recorded") {
        await h.dispatcher.runOnce()
        return try await h.deliveries(created.webhook.id).first?.status == .pending
      }
      let pending = try await h.deliveries(created.webhook.id)
      #expect(pending[0].error == "timed out" && pending[0].responseStatus == 0)
      // Retried until it goes through (on a loaded machine a retry could time out too: the clock
      // moves on so that the next one is due).
      try await waitUntil("the retry to succeed") {
        h.clock.advance(minutes: 10)
        await h.dispatcher.runOnce()
        return try await h.deliveries(created.webhook.id).first?.status == .succeeded
      }
      #expect(h.receiver.requests.count >= 2)
    }
  }

  @Test("after the tenth failure over three days the event is a dead letter, the endpoint is off, and it can be redelivered")
  func deadLetter() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      h.receiver.reply { _ in .status(503) }
      _ = try await h.createLead("Doomed")
      try await h.deliver(until: 1, failuresExpected: true)
      var elapsed = 0
      for attempt in 2...10 {
        let wait = WebhookRetrySchedule.waits[attempt - 2].components.seconds
        h.clock.advance(minutes: Int(wait / 60) + 1)
        elapsed += Int(wait / 60) + 1
        try await h.deliver(until: attempt, failuresExpected: true)
      }
      #expect(elapsed / 60 >= 72, "the schedule spans about three days")
      let dead = try await h.deliveries(created.webhook.id, [.dead])
      #expect(dead.count == 1 && dead[0].attempts == 10 && dead[0].responseStatus == 503)
      let webhook = try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
      #expect(!webhook.active && webhook.disabledReason.contains("dead letters"))
      #expect(webhook.cursor == dead[0].eventCursor, "the subscription moved past it")
      // The endpoint recovers: redeliver the dead letter by hand.
      h.receiver.reply { _ in .status(200) }
      let again = try await h.webhooks.redeliverWebhook(
        .with {
          $0.webhookID = created.webhook.id
          $0.deliveryID = dead[0].id
        }, metadata: h.admin)
      #expect(again.redelivery && again.status == .succeeded && again.eventCursor == dead[0].eventCursor)
      #expect(h.receiver.requests.last?.header("webhook-id") == dead[0].eventCursor)
      #expect(try await h.deliveries(created.webhook.id).count == 2)
    }
  }

  @Test("without the allow flag, loopback endpoints are refused on every attempt")
  func privateAddressesRefused() async throws {
    try await Self.withHarness(allowPrivate: false) { h in
      let created = try await h.subscribe()
      _ = try await h.createLead("Internal")
      try await waitUntil("the refused attempt to be recorded") {
        await h.dispatcher.runOnce()
        return try await h.deliveries(created.webhook.id).first != nil
      }
      let delivery = try #require(try await h.deliveries(created.webhook.id).first)
      #expect(delivery.status == .pending && delivery.error.contains("private, loopback or link-local"))
      #expect(h.receiver.requests.isEmpty)
    }
  }

  @Test("deliveries carry only what the owner may see; filters skip other types, own origins and untouched fields")
  func sightAndFilters() async throws {
    try await Self.withHarness { h in
      _ = try await AccessStore(database: h.tenant.database).setSharing(.private, for: .lead, principal: h.tenant.admin)
      let (_, integrationSecret) = try await h.tenant.makeUser(.integration)
      let integration = TestServer.auth(integrationSecret)
      let (_, repSecret) = try await h.tenant.makeUser(.salesRep)
      let rep = TestServer.auth(repSecret)
      // The integration user's webhook sees what the integration user sees: its own leads only.
      let theirs = try await h.subscribe(metadata: integration)
      // The admin's skips writes marked with its own origin and updates that do not touch `company`.
      let mine = try await h.subscribe(["lead.*"]) {
        $0.skipOrigins = ["sync-bot"]
        $0.changedFields = ["company"]
      }
      let hidden = try await h.createLead("Rep's", metadata: rep)
      var own = integration
      own.addString("sync-bot", forKey: "x-client-origin")
      let visible = try await h.createLead("Integration's", metadata: own)
      _ = try await h.leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = hidden.id
            $0.firstName = "Untouched company"
          }
          $0.updateMask = .with { $0.paths = ["first_name"] }
        }, metadata: h.admin)
      let company = try await h.leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = hidden.id
            $0.company = "Acme"
          }
          $0.updateMask = .with { $0.paths = ["company"] }
        }, metadata: h.admin)
      try await h.feedHolds(4)
      try await h.deliver(until: 3)
      await h.dispatcher.runOnce()
      func records(_ signedWith: String) -> [String] {
        h.receiver.requests.filter {
          $0.header("webhook-signature")
            == Self.signature(
              secret: signedWith, id: $0.header("webhook-id")!, timestamp: $0.header("webhook-timestamp")!, body: $0.body)
        }.compactMap { (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String }
      }
      #expect(records(theirs.secret) == [visible.id], "the rep's lead is out of the integration user's sight")
      #expect(records(mine.secret) == [hidden.id, company.id], "created, then only the update that touched company")
      #expect(h.receiver.requests.count == 3)
      // Both cursors reached the end of the feed, past what they skipped.
      let last = try await ChangeFeedTests.events(h.changes, metadata: h.admin) { $0.count >= 4 }.events.last!.cursor
      for id in [theirs.webhook.id, mine.webhook.id] {
        let metadata = id == theirs.webhook.id ? integration : h.admin
        #expect(try await h.webhooks.getWebhook(.with { $0.id = id }, metadata: metadata).cursor == last)
      }
    }
  }

  @Test("a payload carries only the fields its owner's role may see")
  func payloadFieldSecurity() async throws {
    try await Self.withHarness { h in
      let (_, integrationSecret) = try await h.tenant.makeUser(.integration)
      _ = try await Crm_V1_AdminService.Client(wrapping: h.client).setFieldSecurity(
        FieldSecurityTests.rule(.integration, .lead, "description", .hidden), metadata: h.admin)
      let theirs = try await h.subscribe(["lead.*"], metadata: TestServer.auth(integrationSecret))
      let lead = try await h.createLead("Private")
      _ = try await h.leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = lead.id
            $0.description_p = "only for admins"
            $0.title = "CFO"
          }
          $0.updateMask = .with { $0.paths = ["description", "title"] }
        }, metadata: h.admin)
      try await h.deliver(until: 2)
      let requests = h.receiver.requests
      #expect(requests.count == 2)
      for request in requests {
        let id = request.header("webhook-id")!, timestamp = request.header("webhook-timestamp")!
        #expect(
          request.header("webhook-signature")
            == Self.signature(secret: theirs.secret, id: id, timestamp: timestamp, body: request.body))
        #expect(!String(decoding: request.body, as: UTF8.self).contains("only for admins"))
      }
      let changes =
        (requests[1].json?["data"] as? [String: Any]).flatMap { $0["change"] as? [String: Any] }?["changes"] as? [[String: Any]]
      #expect(changes?.compactMap { $0["field"] as? String } == ["title"], "the update arrives, without its hidden change")
    }
  }

  @Test("a rotated secret signs beside the new one for its grace period, then stops")
  func rotation() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      let rotated = try await h.webhooks.rotateWebhookSecret(
        .with {
          $0.id = created.webhook.id
          $0.gracePeriodSeconds = 3600
        }, metadata: h.admin)
      #expect(rotated.secret != created.secret && rotated.webhook.previousSecretExpireTime.seconds == Self.start.seconds + 3600)
      _ = try await h.createLead("During")
      try await h.deliver(until: 1)
      let during = h.receiver.requests[0]
      let (id, timestamp) = (during.header("webhook-id")!, during.header("webhook-timestamp")!)
      #expect(
        during.header("webhook-signature")
          == Self.signature(secret: rotated.secret, id: id, timestamp: timestamp, body: during.body) + " "
          + Self.signature(secret: created.secret, id: id, timestamp: timestamp, body: during.body))
      h.clock.advance(minutes: 61)
      _ = try await h.createLead("After")
      try await h.deliver(until: 2)
      let after = h.receiver.requests[1]
      #expect(
        after.header("webhook-signature")
          == Self.signature(
            secret: rotated.secret, id: after.header("webhook-id")!, timestamp: after.header("webhook-timestamp")!,
            body: after.body))
    }
  }

  @Test("two nodes delivering the same subscriptions send each event once, in order")
  func twoNodes() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      let otherSender = WebhookSender(timeout: Self.patientTimeout, allowPrivateAddresses: true, clock: h.clock.now)
      let other = WebhookDispatcher(
        database: h.tenant.database, sender: otherSender, logger: Logger(label: "node-2"), tenant: h.tenant.tenantID,
        jitter: { 0 },
        clock: h.clock.now)
      let outcome: Result<Void, any Error>
      do {
        var names: [String] = []
        for index in 0..<20 { names.append(try await h.createLead("Lead \(index)").id) }
        try await waitUntil("both nodes to deliver all 20") {
          async let one: Void = h.dispatcher.runOnce()
          async let two: Void = other.runOnce()
          _ = await (one, two)
          return h.receiver.requests.count >= 20
        }
        let requests = h.receiver.requests
        #expect(requests.count == 20)
        let ids = requests.compactMap { $0.header("webhook-id") }
        #expect(Set(ids).count == 20, "no event twice")
        let records = requests.compactMap {
          (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String
        }
        #expect(records == names, "in feed order")
        #expect(try await h.deliveries(created.webhook.id).count == 20)
        outcome = .success(())
      } catch {
        outcome = .failure(error)
      }
      await otherSender.shutdown()
      try outcome.get()
    }
  }

  @Test("a running dispatcher keeps a caught-up subscription and follows the feed; an edit reaches it at its next write")
  func followsAndSeesEdits() async throws {
    try await Self.withHarness { h in
      let created = try await h.subscribe()
      let second = try await WebhookReceiver.start()
      // As crmd runs it, rung by the feed's sequencer, but keeping what it caught up on for ten
      // minutes: every event below is sent by the worker that holds the lease, not by a new claim.
      let sender = WebhookSender(timeout: Self.patientTimeout, allowPrivateAddresses: true, clock: h.clock.now)
      let dispatcher = WebhookDispatcher(
        database: h.tenant.database, sender: sender, logger: Logger(label: "live"), tenant: h.tenant.tenantID,
        linger: .seconds(600), wakeup: h.dispatcher.wakeup, jitter: { 0 }, clock: h.clock.now)
      let live = Task { try await dispatcher.run() }
      let tenantID = h.tenant.tenantID
      let subscriptionID = try #require(UUID(uuidString: created.webhook.id))
      let leaseOwner = { @Sendable () async throws -> String? in
        try await runBlocking {
          let connection = try TestDatabase.ownerConnection()
          defer { connection.close() }
          return try connection.query(
            "SELECT lease_owner FROM webhook_subscriptions WHERE tenant_id = \(tenantID) AND id = \(subscriptionID)"
          )[0].decode("lease_owner", as: String?.self)
        }
      }
      let outcome: Result<Void, any Error>
      do {
        var names = [try await h.createLead("Before").id]
        try await waitUntil("the first event to arrive") { h.receiver.requests.count == 1 }
        let owner = try await leaseOwner()
        #expect(owner != nil, "caught up, the worker keeps the lease")
        var webhook = try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
        webhook = try await h.webhooks.updateWebhook(
          .with {
            $0.webhook = .with {
              $0.id = webhook.id
              $0.etag = webhook.etag
              $0.url = second.url
            }
            $0.updateMask = .with { $0.paths = ["url"] }
          }, metadata: h.admin)
        // Events after the edit may still reach the old URL until the worker next writes down its
        // deliveries (at most half a second after the first one); then they go to the new one.
        try await waitUntil("an event sent after the edit to reach the new URL", pollingEvery: .milliseconds(100)) {
          if second.requests.isEmpty { names.append(try await h.createLead("After \(names.count)").id) }
          return !second.requests.isEmpty
        }
        names.append(try await h.createLead("Last").id)
        try await waitUntil("every event to arrive once") {
          h.receiver.requests.count + second.requests.count >= names.count
        }
        let records = (h.receiver.requests + second.requests).compactMap {
          (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String
        }
        #expect(records == names, "each event once, in feed order, the old URL's before the new one's")
        #expect(
          second.requests.last.flatMap {
            (($0.json?["data"] as? [String: Any])?["change"] as? [String: Any])?["recordId"] as? String
          } == names.last)
        try await waitUntil("the deliveries to be written down") {
          try await h.deliveries(created.webhook.id).count == names.count
        }
        #expect(try await leaseOwner() == owner, "the edit ended one worker; the next claim took it up again")
        outcome = .success(())
      } catch {
        outcome = .failure(error)
      }
      live.cancel()
      _ = await live.result
      await sender.shutdown()
      await second.stop()
      try outcome.get()
    }
  }

  @Test("bad input names its field; roles and ownership bound who manages what; stale etags abort")
  func validationAndAccess() async throws {
    try await Self.withHarness { h in
      let bad = await HardeningRPCTests.violations {
        _ = try await h.webhooks.createWebhook(
          .with {
            $0.webhook = .with {
              $0.url = "ftp://example.com/x"
              $0.eventTypes = ["lead.created", "lead.exploded", "*"]
            }
            $0.startCursor = "nope"
          }, metadata: h.admin)
      }
      #expect(bad?.sorted() == ["start_cursor", "webhook.event_types[1]", "webhook.url"])
      let noTypes = await HardeningRPCTests.violations {
        _ = try await h.webhooks.createWebhook(
          .with { $0.webhook = .with { $0.url = "https://user:pw@example.com/" } }, metadata: h.admin)
      }
      #expect(noTypes?.sorted() == ["webhook.event_types", "webhook.url"])
      let (_, repSecret) = try await h.tenant.makeUser(.salesRep)
      #expect(await code { try await h.subscribe(metadata: TestServer.auth(repSecret)) } == .permissionDenied)
      let created = try await h.subscribe()
      let (_, integrationSecret) = try await h.tenant.makeUser(.integration)
      let integration = TestServer.auth(integrationSecret)
      #expect(
        await code { try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: integration) } == .notFound)
      #expect(try await h.webhooks.listWebhooks(.init(), metadata: integration).webhooks.isEmpty)
      #expect(try await h.webhooks.listWebhooks(.init(), metadata: h.admin).webhooks.map(\.id) == [created.webhook.id])
      let renamed = try await h.webhooks.updateWebhook(
        .with {
          $0.webhook = .with {
            $0.id = created.webhook.id
            $0.etag = created.webhook.etag
            $0.description_p = "CRM → warehouse"
          }
          $0.updateMask = .with { $0.paths = ["description"] }
        }, metadata: h.admin)
      #expect(
        renamed.description_p == "CRM → warehouse" && renamed.eventTypes == ["lead.*"] && renamed.url == created.webhook.url)
      #expect(
        await code {
          try await h.webhooks.updateWebhook(
            .with {
              $0.webhook = .with {
                $0.id = created.webhook.id
                $0.etag = created.webhook.etag
                $0.active = false
              }
              $0.updateMask = .with { $0.paths = ["active"] }
            }, metadata: h.admin)
        } == .aborted)
      #expect(
        await code {
          try await h.webhooks.rotateWebhookSecret(
            .with {
              $0.id = created.webhook.id
              $0.gracePeriodSeconds = 8 * 86_400
            }, metadata: h.admin)
        } == .invalidArgument)
      _ = try await h.webhooks.deleteWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin)
      #expect(
        await code { try await h.webhooks.getWebhook(.with { $0.id = created.webhook.id }, metadata: h.admin) } == .notFound)
    }
  }
}
