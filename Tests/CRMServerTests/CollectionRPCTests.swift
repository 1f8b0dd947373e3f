import CRMCore
import CRMProto
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: collections")
struct CollectionRPCTests {
  typealias Collections = Crm_V1_CollectionService.Client<HTTP2ClientTransport.Posix>

  static func utc(_ text: String) -> Timestamp {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return Timestamp(microsecondsSinceEpoch: Int64(formatter.date(from: text)!.timeIntervalSince1970) * 1_000_000)
  }

  static func level(
    _ name: String, days: Int32, task: Crm_V1_DunningTaskFor, tag: String = "", hold: Bool = false,
    escalate: Crm_V1_CollectionStatus = .unspecified
  ) -> Crm_V1_DunningLevel {
    var level = Crm_V1_DunningLevel()
    level.name = name
    level.daysAfterDue = days
    level.taskFor = task
    level.addTag = tag
    level.creditHold = hold
    level.escalateTo = escalate
    return level
  }

  static func assign(_ collections: Collections, account: String, collector: String, auth: Metadata) async throws
    -> Crm_V1_AccountCollection
  {
    var request = Crm_V1_UpdateCollectionRequest()
    request.collection.accountID = account
    request.collection.collectorID = collector
    request.updateMask.paths = ["collector_id"]
    return try await collections.updateCollection(request, metadata: auth)
  }

  /// The tenant's tasks of one alert kind: (owner, subject), by subject.
  static func tasks(_ tenant: TestTenant, kind: String) throws -> [(owner: UUID, subject: String)] {
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    return try connection.query(
      "SELECT owner_id, subject FROM tasks WHERE tenant_id = \(tenant.tenantID) AND alert_kind = \(kind) ORDER BY subject"
    ).rows.map { (try $0.decode("owner_id"), try $0.decode("subject")) }
  }

  static func firings(_ tenant: TestTenant) throws -> [String] {
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    return try connection.query(
      """
      SELECT i.number || ':' || f.level_name AS firing FROM dunning_firings f
      JOIN invoices i ON i.tenant_id = f.tenant_id AND i.id = f.invoice_id
      WHERE f.tenant_id = \(tenant.tenantID) ORDER BY (i.number || ':' || f.level_name) COLLATE "C"
      """
    ).rows.map { try $0.decode("firing") }
  }

  @Test(
    "dunning applies the highest level an invoice reached, each once, even with two nodes running it; tasks, tag, hold, escalation"
  )
  func dunning() async throws {
    let tenant = try await TestTenant.make()
    let (rep, _) = try await tenant.makeUser(.salesRep)
    let (collector, _) = try await tenant.makeUser(.collector)
    let clock = ManualWallClock(Self.utc("2027-03-01T09:00:00Z"))
    let account = try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let collections = Collections(wrapping: client)
      let account = try await BillingRPCTests.account(client, "Slow Payer", owner: rep.userID.lowercasedString, auth: admin)
      for (external, due) in [
        ("late45", BillingRPCTests.day(2027, 1, 15)), ("late4", BillingRPCTests.day(2027, 2, 25)),
        ("soon", BillingRPCTests.day(2027, 3, 5)),
      ] {
        _ = try await billing.upsertInvoice(
          BillingRPCTests.invoice(external, account: account, issue: BillingRPCTests.day(2027, 1, 2), due: due), metadata: admin)
      }
      // Bad levels name their fields; a rep may not set them.
      var bad = Crm_V1_SetDunningLevelsRequest()
      bad.levels = [Self.level("Reminder", days: 7, task: .owner), Self.level("again", days: 7, task: .owner)]
      #expect(await BillingRPCTests.code { _ = try await collections.setDunningLevels(bad, metadata: admin) } == .invalidArgument)
      var set = Crm_V1_SetDunningLevelsRequest()
      set.levels = [
        Self.level("final", days: 30, task: .collector, tag: "Dunning", hold: true, escalate: .inCollections),
        Self.level("reminder", days: -7, task: .owner),
        Self.level("first", days: 7, task: .owner, escalate: .needsAction),
      ]
      let levels = try await collections.setDunningLevels(set, metadata: admin)
      #expect(levels.levels.map(\.name) == ["reminder", "first", "final"] && levels.levels[2].addTag == "dunning")
      _ = try await Self.assign(collections, account: account, collector: collector.userID.lowercasedString, auth: admin)
      // A sales rep cannot be a collector.
      var wrong = Crm_V1_UpdateCollectionRequest()
      wrong.collection.accountID = account
      wrong.collection.collectorID = rep.userID.lowercasedString
      wrong.updateMask.paths = ["collector_id"]
      #expect(
        await BillingRPCTests.code { _ = try await collections.updateCollection(wrong, metadata: admin) } == .invalidArgument)
      let fresh = try await collections.getCollection(.with { $0.accountID = account }, metadata: admin)
      #expect(fresh.status == .needsAction && fresh.etag == "1")
      // A first write with the etag of a collection never written ("0") goes through.
      let other = try await BillingRPCTests.account(client, "Never Collected", auth: admin)
      let untouched = try await collections.getCollection(.with { $0.accountID = other }, metadata: admin)
      #expect(untouched.etag == "0")
      var hold = Crm_V1_UpdateCollectionRequest()
      hold.collection.accountID = other
      hold.collection.creditHold = true
      hold.collection.etag = untouched.etag
      hold.updateMask.paths = ["credit_hold"]
      let held = try await collections.updateCollection(hold, metadata: admin)
      #expect(held.creditHold && held.etag == "1")
      #expect(await BillingRPCTests.code { _ = try await collections.updateCollection(hold, metadata: admin) } == .aborted)
      return account
    }
    // Two nodes, three passes each, at once: every (invoice, level) once.
    let nodes = [
      BillingStore(database: tenant.database, now: clock.now), BillingStore(database: tenant.database, now: clock.now),
    ]
    let reports = try await withThrowingTaskGroup(of: CollectionJobReport.self) { group in
      for node in nodes {
        for _ in 0..<3 { group.addTask { try await node.runCollections(tenant: tenant.tenantID, batchSize: 3) } }
      }
      return try await group.reduce(into: [CollectionJobReport]()) { $0.append($1) }
    }
    #expect(reports.map(\.applied).reduce(0, +) == 3)
    // 45 days late: straight to final (not first, not the reminder); 4 days late and 4 days before
    // due: the reminder, both in one task for the owner.
    #expect(try Self.firings(tenant) == ["INV-late45:final", "INV-late4:reminder", "INV-soon:reminder"])
    let raised = try Self.tasks(tenant, kind: "dunning")
    #expect(raised.count == 2)
    #expect(raised.contains { $0.owner == collector.userID && $0.subject.hasPrefix("Final: Slow Payer owes USD 100") })
    #expect(raised.contains { $0.owner == rep.userID && $0.subject.hasPrefix("Reminder: Slow Payer owes USD 200") })
    // The same day again: nothing.
    #expect(try await nodes[1].runCollections(tenant: tenant.tenantID) == CollectionJobReport())
    try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let collections = Collections(wrapping: client)
      let collection = try await collections.getCollection(.with { $0.accountID = account }, metadata: admin)
      #expect(collection.status == .inCollections && collection.creditHold && collection.lastDunningLevel == "final")
      #expect(collection.collectorID == collector.userID.lowercasedString)
      let tagged = try await Crm_V1_AccountService.Client(wrapping: client).getAccount(
        .with { $0.id = account }, metadata: admin)
      #expect(tagged.tags == ["dunning"])
      var panelRequest = Crm_V1_GetAccountFinancialsRequest()
      panelRequest.accountID = account
      let panel = try await Crm_V1_BillingService.Client(wrapping: client).getAccountFinancials(panelRequest, metadata: admin)
      #expect(panel.creditHold && panel.creditHoldReasons.contains { $0.contains("held by collections") })
      #expect(panel.collectionStatus == .inCollections)
      // An overdue invoice pushed later the same day is gone through the same day.
      _ = try await Crm_V1_BillingService.Client(wrapping: client).upsertInvoice(
        BillingRPCTests.invoice(
          "late10", account: account, issue: BillingRPCTests.day(2027, 1, 2), due: BillingRPCTests.day(2027, 2, 19)),
        metadata: admin)
    }
    #expect(try await nodes[1].runCollections(tenant: tenant.tenantID).applied == 1)
    #expect(try await nodes[0].runCollections(tenant: tenant.tenantID) == CollectionJobReport())
    // Five days on: the invoice 4 days late is 9 days late now — first; nothing else new.
    clock.advance(minutes: 5 * 24 * 60)
    let report = try await nodes[0].runCollections(tenant: tenant.tenantID)
    #expect(report.applied == 1 && report.tasks == 1)
    #expect(
      try Self.firings(tenant) == [
        "INV-late10:first", "INV-late45:final", "INV-late4:first", "INV-late4:reminder", "INV-soon:reminder",
      ])
  }

  @Test("a promise pauses dunning; kept when paid in time; broken raises a task, returns the status and dunning resumes")
  func promises() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (collector, collectorSecret) = try await tenant.makeUser(.collector)
    let clock = ManualWallClock(Self.utc("2027-03-01T09:00:00Z"))
    let (kept, broken) = try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let collections = Collections(wrapping: client)
      var set = Crm_V1_SetDunningLevelsRequest()
      set.levels = [Self.level("first", days: 7, task: .collector, escalate: .needsAction)]
      _ = try await collections.setDunningLevels(set, metadata: admin)
      var accounts: [String] = []
      for name in ["Keeps Word", "Breaks Word"] {
        let account = try await BillingRPCTests.account(client, name, owner: rep.userID.lowercasedString, auth: admin)
        _ = try await billing.upsertInvoice(
          BillingRPCTests.invoice(
            "\(name.prefix(5))-1", account: account, issue: BillingRPCTests.day(2027, 1, 2), due: BillingRPCTests.day(2027, 2, 1)),
          metadata: admin)
        _ = try await Self.assign(collections, account: account, collector: collector.userID.lowercasedString, auth: admin)
        accounts.append(account)
      }
      var promise = Crm_V1_PromiseToPayRequest()
      promise.accountID = accounts[0]
      promise.amount = BillingRPCTests.usd(100)
      promise.payByDate = BillingRPCTests.day(2027, 2, 20)
      // A day past, another currency, a stranger: refused.
      #expect(await BillingRPCTests.code { _ = try await collections.promiseToPay(promise, metadata: admin) } == .invalidArgument)
      promise.payByDate = BillingRPCTests.day(2027, 3, 10)
      promise.amount = BillingRPCTests.usd(100, 0, "EUR")
      #expect(await BillingRPCTests.code { _ = try await collections.promiseToPay(promise, metadata: admin) } == .invalidArgument)
      promise.amount = BillingRPCTests.usd(100)
      let (_, otherSecret) = try await tenant.makeUser(.salesRep)
      #expect(
        await BillingRPCTests.code { _ = try await collections.promiseToPay(promise, metadata: TestServer.auth(otherSecret)) }
          == .notFound)
      // The collector records one, the owner the other.
      promise.note = "Treasurer on the phone"
      let first = try await collections.promiseToPay(promise, metadata: TestServer.auth(collectorSecret))
      #expect(
        first.status == .promiseToPay && first.promise.state == .open && first.promise.madeBy == collector.userID.lowercasedString
      )
      promise.accountID = accounts[1]
      let second = try await collections.promiseToPay(promise, metadata: TestServer.auth(repSecret))
      #expect(second.status == .promiseToPay)
      return (accounts[0], accounts[1])
    }
    // While the promises are pending: no dunning.
    let node = BillingStore(database: tenant.database, now: clock.now)
    #expect(try await node.runCollections(tenant: tenant.tenantID).applied == 0)
    #expect(try Self.firings(tenant).isEmpty)
    // One pays in time; the day after the promise both are settled.
    try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_BillingService.Client(wrapping: client).upsertPayment(
        BillingRPCTests.payment(
          "pay-kept", account: kept, amount: BillingRPCTests.usd(100), received: BillingRPCTests.day(2027, 3, 8),
          allocations: [("Keeps-1", BillingRPCTests.usd(100))]),
        metadata: admin)
      _ = try await Crm_V1_BillingService.Client(wrapping: client).upsertPayment(
        BillingRPCTests.payment(
          "pay-part", account: broken, amount: BillingRPCTests.usd(30), received: BillingRPCTests.day(2027, 3, 9),
          allocations: [("Break-1", BillingRPCTests.usd(30))]),
        metadata: admin)
    }
    clock.advance(minutes: 10 * 24 * 60)
    let report = try await node.runCollections(tenant: tenant.tenantID)
    #expect(report.promisesKept == 1 && report.promisesBroken == 1)
    // Dunning resumed on the broken one only (the kept one owes nothing).
    #expect(report.applied == 1)
    #expect(try Self.firings(tenant) == ["INV-Break-1:first"])
    let brokenTasks = try Self.tasks(tenant, kind: "broken_promise")
    #expect(brokenTasks.count == 1 && brokenTasks[0].owner == collector.userID)
    #expect(brokenTasks[0].subject.contains("Breaks Word promised USD 100"))
    try await TestServer.withClient(slaClock: clock.now) { client in
      let collections = Collections(wrapping: client)
      let auth = TestServer.auth(collectorSecret)
      let settled = try await collections.getCollection(.with { $0.accountID = kept }, metadata: auth)
      #expect(settled.status == .current && settled.promise.state == .kept && settled.promise.paid == BillingRPCTests.usd(100))
      let failed = try await collections.getCollection(.with { $0.accountID = broken }, metadata: auth)
      #expect(failed.status == .needsAction && failed.promise.state == .broken && failed.promise.paid == BillingRPCTests.usd(30))
      #expect(failed.overdue == [BillingRPCTests.usd(70)])
      // The collection's history: assigned, promised, broken, escalated.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .collection; $0.recordID = broken
        }, metadata: auth)
      #expect(history.entries.count == 4)
    }
  }

  @Test("a collector sees billing data only for the accounts they collect; write-offs are theirs and admins'")
  func collectorsAndWriteOffs() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (collector, collectorSecret) = try await tenant.makeUser(.collector)
    let (_, otherCollectorSecret) = try await tenant.makeUser(.collector)
    let clock = ManualWallClock(Self.utc("2027-03-01T09:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let mine = TestServer.auth(collectorSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let collections = Collections(wrapping: client)
      let collected = try await BillingRPCTests.account(client, "Collected", owner: rep.userID.lowercasedString, auth: admin)
      let other = try await BillingRPCTests.account(client, "Not Mine", owner: rep.userID.lowercasedString, auth: admin)
      let lines: [Crm_V1_InvoiceLine] = [
        .with {
          $0.description_p = "Seats"; $0.amount = BillingRPCTests.usd(70)
        },
        .with {
          $0.description_p = "Support"; $0.amount = BillingRPCTests.usd(30)
        },
      ]
      let invoice = try await billing.upsertInvoice(
        BillingRPCTests.invoice("c-1", account: collected, due: BillingRPCTests.day(2027, 2, 1), lines: lines), metadata: admin
      ).invoice
      let hidden = try await billing.upsertInvoice(
        BillingRPCTests.invoice("o-1", account: other, due: BillingRPCTests.day(2027, 2, 1)), metadata: admin
      ).invoice
      // Before the assignment the collector sees nothing.
      #expect(
        await BillingRPCTests.code { _ = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: mine) } == .notFound
      )
      _ = try await Self.assign(collections, account: collected, collector: collector.userID.lowercasedString, auth: admin)
      #expect(try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: mine).id == invoice.id)
      #expect(
        await BillingRPCTests.code { _ = try await billing.getInvoice(.with { $0.id = hidden.id }, metadata: mine) } == .notFound)
      #expect(try await billing.listInvoices(.init(), metadata: mine).invoices.map(\.id) == [invoice.id])
      let worklist = try await billing.listReceivables(.with { $0.overdueOnly = true }, metadata: mine).receivables
      #expect(worklist.map(\.accountID) == [collected] && worklist[0].collectionStatus == .needsAction)
      #expect(worklist[0].collectorID == collector.userID.lowercasedString)
      var byCollector = Crm_V1_ListReceivablesRequest()
      byCollector.collectorID = collector.userID.lowercasedString
      #expect(try await billing.listReceivables(byCollector, metadata: admin).receivables.map(\.accountID) == [collected])
      // A collector may not assign collectors.
      #expect(
        await BillingRPCTests.code {
          _ = try await Self.assign(collections, account: collected, collector: collector.userID.lowercasedString, auth: mine)
        } == .permissionDenied)
      // A dispute holds part of it; the owner may not write off, nor another collector; the assigned
      // collector writes off what is not disputed.
      var open = Crm_V1_OpenDisputeRequest()
      open.invoiceID = invoice.id
      open.lineNumbers = [2]
      open.reason = "service_not_provided"
      let dispute = try await billing.openDispute(open, metadata: admin).dispute
      var writeOff = Crm_V1_WriteOffRequest()
      writeOff.accountID = collected
      writeOff.note = "Customer insolvent"
      #expect(
        await BillingRPCTests.code { _ = try await collections.writeOff(writeOff, metadata: TestServer.auth(repSecret)) }
          == .permissionDenied)
      #expect(
        await BillingRPCTests.code {
          _ = try await collections.writeOff(writeOff, metadata: TestServer.auth(otherCollectorSecret))
        }
          == .notFound)
      writeOff.invoiceIds = [hidden.id]
      #expect(await BillingRPCTests.code { _ = try await collections.writeOff(writeOff, metadata: mine) } == .invalidArgument)
      writeOff.invoiceIds = []
      let written = try await collections.writeOff(writeOff, metadata: mine)
      #expect(written.creditNotes.count == 1 && written.creditNotes[0].amount == BillingRPCTests.usd(70))
      #expect(written.creditNotes[0].reason == "write_off" && written.creditNotes[0].kind == .adjustment)
      // What is left is disputed: held for the dispute, and nothing more to write off.
      #expect(written.collection.status == .heldForDispute)
      #expect(await BillingRPCTests.code { _ = try await collections.writeOff(writeOff, metadata: mine) } == .failedPrecondition)
      // The dispute is lost: its credit note settles the rest; written off, owing nothing.
      var move = Crm_V1_MoveDisputeRequest()
      move.id = dispute.id
      move.state = .lost
      _ = try await billing.moveDispute(move, metadata: admin)
      let after = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: mine)
      #expect(after.balance == BillingRPCTests.usd(0) && after.amountCredited == BillingRPCTests.usd(100))
      #expect(try await collections.getCollection(.with { $0.accountID = collected }, metadata: mine).status == .writtenOff)
      // The account's timeline shows the write-off to the collector.
      let timeline = try await Crm_V1_InteractionService.Client(wrapping: client).getTimeline(
        .with {
          $0.record = .with {
            $0.recordType = .account; $0.recordID = collected
          }
        }, metadata: mine)
      #expect(timeline.entries.contains { $0.change.recordType == .collection })
    }
  }

  @Test(
    "a dispute blocks dunning of what it contests; its evidence falling due warns the ticket once on any number of nodes; lost, it credits"
  )
  func evidenceWarning() async throws {
    let tenant = try await TestTenant.make()
    let (rep, _) = try await tenant.makeUser(.salesRep)
    let clock = ManualWallClock(Self.utc("2027-03-01T09:00:00Z"))
    let (ticket, dispute, account) = try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await BillingRPCTests.account(client, "Contests", owner: rep.userID.lowercasedString, auth: admin)
      let invoice = try await billing.upsertInvoice(
        BillingRPCTests.invoice("ev-1", account: account, due: BillingRPCTests.day(2027, 2, 1)), metadata: admin
      ).invoice
      var settings = Crm_V1_SetBillingSettingsRequest()
      settings.settings.disputeEvidenceWarningDays = 61
      #expect(
        await BillingRPCTests.code { _ = try await billing.setBillingSettings(settings, metadata: admin) } == .invalidArgument)
      settings.settings.disputeEvidenceWarningDays = 2
      #expect(try await billing.setBillingSettings(settings, metadata: admin).disputeEvidenceWarningDays == 2)
      var levels = Crm_V1_SetDunningLevelsRequest()
      levels.levels = [Self.level("first", days: 7, task: .owner)]
      _ = try await Collections(wrapping: client).setDunningLevels(levels, metadata: admin)
      // The whole invoice contested: nothing left to dun, the account held for the dispute.
      var open = Crm_V1_OpenDisputeRequest()
      open.invoiceID = invoice.id
      open.amount = BillingRPCTests.usd(100)
      open.reason = "product_not_received"
      open.evidenceDueDate = BillingRPCTests.day(2027, 3, 10)
      let opened = try await billing.openDispute(open, metadata: admin)
      let held = try await Collections(wrapping: client).getCollection(.with { $0.accountID = account }, metadata: admin)
      #expect(held.status == .heldForDispute && held.overdue.isEmpty)
      return (opened.ticketID, opened.dispute.id, account)
    }
    let nodes = [
      BillingStore(database: tenant.database, now: clock.now), BillingStore(database: tenant.database, now: clock.now),
    ]
    // Nine days before: no warning, and no dunning of the disputed invoice (28 days past due).
    let first = try await nodes[0].runCollections(tenant: tenant.tenantID)
    #expect(first.evidenceWarnings == 0 && first.applied == 0)
    #expect(try Self.firings(tenant).isEmpty)
    // Two days before: one note and one task, from whichever node.
    clock.advance(minutes: 7 * 24 * 60)
    let reports = try await withThrowingTaskGroup(of: CollectionJobReport.self) { group in
      for node in nodes {
        for _ in 0..<2 { group.addTask { try await node.runCollections(tenant: tenant.tenantID) } }
      }
      return try await group.reduce(into: [CollectionJobReport]()) { $0.append($1) }
    }
    #expect(reports.map(\.evidenceWarnings).reduce(0, +) == 1)
    let tasks = try Self.tasks(tenant, kind: "dispute_evidence")
    #expect(tasks.count == 1 && tasks[0].owner == rep.userID && tasks[0].subject.contains("due 2027-03-10"))
    try await TestServer.withClient(slaClock: clock.now) { client in
      let comments = try await Crm_V1_TicketService.Client(wrapping: client).listComments(
        .with { $0.ticketID = ticket }, metadata: TestServer.auth(tenant.adminSecret)
      ).comments
      let notes = comments.filter { !$0.public && $0.body.contains("is due 2027-03-10 (in 2 days)") }
      #expect(notes.count == 1)
      // Lost: the credit note settles the invoice; nothing to dun, the account current.
      var move = Crm_V1_MoveDisputeRequest()
      move.id = dispute
      move.state = .lost
      let lost = try await Crm_V1_BillingService.Client(wrapping: client).moveDispute(
        move, metadata: TestServer.auth(tenant.adminSecret))
      let note = try await Crm_V1_BillingService.Client(wrapping: client).getCreditNote(
        .with { $0.id = lost.creditNoteID }, metadata: TestServer.auth(tenant.adminSecret))
      #expect(note.amount == BillingRPCTests.usd(100) && note.reason == "dispute_lost")
      let settled = try await Collections(wrapping: client).getCollection(
        .with { $0.accountID = account }, metadata: TestServer.auth(tenant.adminSecret))
      #expect(settled.status == .current)
    }
    let last = try await nodes[1].runCollections(tenant: tenant.tenantID)
    #expect(last.evidenceWarnings == 0 && last.applied == 0)
    #expect(try Self.firings(tenant).isEmpty)
  }
}
