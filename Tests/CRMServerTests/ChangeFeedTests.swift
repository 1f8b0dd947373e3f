import CRMCore
import CRMProto
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: the change feed")
struct ChangeFeedTests {
  /// Every event after `cursor`, page by page, until `done` holds for what has arrived.
  static func events(
    _ changes: Crm_V1_ChangeService.Client<some ClientTransport>, after cursor: String = "", types: [Crm_V1_RecordType] = [],
    metadata: Metadata, until done: @escaping ([Crm_V1_ChangeEvent]) -> Bool
  ) async throws -> (events: [Crm_V1_ChangeEvent], cursor: String) {
    var collected: [Crm_V1_ChangeEvent] = []
    var next = cursor
    try await waitUntil("the feed to carry the expected changes") {
      let page = try await changes.listChanges(
        .with {
          $0.cursor = next
          $0.recordTypes = types
          $0.pageSize = 2
        }, metadata: metadata)
      collected += page.events
      next = page.nextCursor
      return done(collected)
    }
    return (collected, next)
  }

  @Test("a transaction that commits late comes after the ones that committed meanwhile: each change once, in commit order")
  func commitOrder() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      // A transaction writes a lead and its change-log row first, and stays open.
      let early = UUID.v7()
      let long = try TestDatabase.ownerConnection()
      defer { long.close() }
      try long.execute(unsafeSQL: "BEGIN")
      _ = try long.query(
        """
        INSERT INTO leads (tenant_id, id, owner_id, last_name, created_by, updated_by)
        VALUES (\(tenant.tenantID), \(early), \(tenant.admin.userID), 'Early', \(tenant.admin.userID), \(tenant.admin.userID))
        """)
      _ = try long.query(
        """
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, changes)
        VALUES (\(tenant.tenantID), 'lead', \(early), 'create', \(tenant.admin.userID), '[]')
        """)
      // Three later transactions commit while it is open.
      var later: [String] = []
      for name in ["First", "Second", "Third"] {
        later.append(try await leads.createLead(.with { $0.lead = .with { $0.lastName = name } }, metadata: admin).id)
      }
      let before = try await Self.events(changes, metadata: admin) { $0.count >= 3 }
      #expect(before.events.map(\.change.recordID) == later, "the open transaction's change is not in the feed yet")
      try long.execute(unsafeSQL: "COMMIT")
      let after = try await Self.events(changes, after: before.cursor, metadata: admin) { !$0.isEmpty }
      #expect(after.events.map(\.change.recordID) == [early.lowercasedString])
      // Its change-log sequence is lower than theirs (it was written first): the feed goes by commit.
      #expect(after.events[0].change.sequence < before.events[0].change.sequence)
      // Read again from the start: the same four, once each, in the same order, with their transactions.
      let all = try await Self.events(changes, metadata: admin) { $0.count >= 4 }
      #expect(all.events.map(\.change.recordID) == later + [early.lowercasedString])
      #expect(Set(all.events.map(\.transactionID)).count == 4)
      #expect(all.events.allSatisfy { $0.sequenceInTransaction == 1 && $0.change.operation == .create })
      #expect(zip(all.events, all.events.dropFirst()).allSatisfy { $0.commitTime.seconds <= $1.commitTime.seconds })
      // Resuming after the second event's cursor gives the rest.
      let rest = try await Self.events(changes, after: all.events[1].cursor, metadata: admin) { $0.count >= 2 }
      #expect(rest.events.map(\.change.recordID) == [later[2], early.lowercasedString])
      // Nothing new: an empty page that keeps the cursor where it was.
      let idle = try await changes.listChanges(.with { $0.cursor = all.cursor }, metadata: admin)
      #expect(idle.events.isEmpty && idle.nextCursor == all.cursor)
    }
  }

  @Test("events carry the fields changed, the actor, the request id and the client origin; filters and sight apply")
  func contentsAndSight() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      // Leads private: a rep sees their own.
      _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead; $0.mode = .private
          }
        }, metadata: admin)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      var origin = admin
      origin.addString("sync-42", forKey: "x-client-origin")
      origin.addString("req-feed-1", forKey: "x-request-id")
      let lead = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Okafor"; $0.company = "Okafor Textiles"
          }
          $0.requestID = "req-feed-1"
        }, metadata: origin)
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = lead.id; $0.company = "Okafor Mills"
          }
          $0.updateMask = .with { $0.paths = ["company"] }
        }, metadata: admin)
      let repLead = try await leads.createLead(
        .with { $0.lead = .with { $0.lastName = "Mine" } }, metadata: TestServer.auth(repSecret))
      let all = try await Self.events(changes, metadata: admin) { $0.count >= 3 }
      #expect(all.events.map(\.change.recordID) == [lead.id, lead.id, repLead.id])
      let created = all.events[0].change
      #expect(
        created.origin == "sync-42" && created.requestID == "req-feed-1"
          && created.actorID == tenant.admin.userID.lowercasedString)
      let updated = all.events[1].change
      #expect(updated.operation == .update && updated.origin.isEmpty)
      let company = updated.changes.first { $0.field == "company" }
      #expect(company?.oldValue.stringValue == "Okafor Textiles" && company?.newValue.stringValue == "Okafor Mills")
      // A rep sees the changes to what they may see (their own lead), as GetLead would show them.
      let mine = try await Self.events(changes, metadata: TestServer.auth(repSecret)) { !$0.isEmpty }
      #expect(mine.events.map(\.change.recordID) == [repLead.id])
      #expect(rep.role == .salesRep)
      let hidden = try await #require(throws: RPCError.self) {
        try await leads.getLead(.with { $0.id = lead.id }, metadata: TestServer.auth(repSecret))
      }
      #expect(hidden.code == .notFound, "GetLead agrees: the admin's lead is out of the rep's sight")
      // Filters by record type; another tenant sees nothing of this one.
      let contacts = try await changes.listChanges(.with { $0.recordTypes = [.contact] }, metadata: admin)
      #expect(contacts.events.isEmpty)
      let foreign = try await changes.listChanges(.with { $0.pageSize = 1000 }, metadata: TestServer.auth(other.adminSecret))
      #expect(foreign.events.isEmpty)
      // Bad input names its field.
      for bad in ["nonsense", "c1.!!", "c1.-5"] {
        let error = try await #require(throws: RPCError.self) {
          try await changes.listChanges(.with { $0.cursor = bad }, metadata: admin)
        }
        #expect(error.code == .invalidArgument && error.message.contains("cursor"), "\(bad)")
      }
      var badOrigin = admin
      badOrigin.addString(String(repeating: "o", count: 201), forKey: "x-client-origin")
      let error = try await #require(throws: RPCError.self) {
        try await leads.createLead(.with { $0.lead = .with { $0.lastName = "X" } }, metadata: badOrigin)
      }
      #expect(error.code == .invalidArgument && error.message.contains("x-client-origin"))
    }
  }

  @Test("changes past the tenant's retention are pruned; a cursor before them is OUT_OF_RANGE and names the oldest")
  func retention() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      var ids: [String] = []
      for name in ["Old", "Older", "Recent"] {
        ids.append(try await leads.createLead(.with { $0.lead = .with { $0.lastName = name } }, metadata: admin).id)
      }
      let all = try await Self.events(changes, metadata: admin) { $0.count >= 3 }
      // The first two committed 40 days ago (moved back in time); retention is 30 days.
      let owner = try TestDatabase.ownerConnection()
      defer { owner.close() }
      _ = try owner.query(
        """
        UPDATE change_feed SET commit_time = now() - interval '40 days'
        WHERE tenant_id = \(tenant.tenantID) AND position <= \(Int64(all.events[1].cursor.dropFirst(3), radix: 36)!)
        """)
      let sequencer = ChangeFeedSequencer(connectionString: try TestDatabase.connectionString())
      #expect(try await sequencer.prune() >= 2)
      await sequencer.close()
      // From the start: what is kept. From before the pruned ones: OUT_OF_RANGE with the cursor to use.
      let kept = try await changes.listChanges(.with { _ in }, metadata: admin)
      #expect(kept.events.map(\.change.recordID) == [ids[2]])
      let expired = try await #require(throws: RPCError.self) {
        try await changes.listChanges(.with { $0.cursor = all.events[0].cursor }, metadata: admin)
      }
      #expect(expired.code == .outOfRange && expired.message.contains(all.events[1].cursor), "\(expired.message)")
      let resumed = try await changes.listChanges(.with { $0.cursor = all.events[1].cursor }, metadata: admin)
      #expect(resumed.events.map(\.change.recordID) == [ids[2]])
      // The setting: admins only, 30 to 3650 days.
      #expect(try await changes.setChangeFeedRetention(.with { $0.days = 90 }, metadata: admin).days == 90)
      let short = try await #require(throws: RPCError.self) {
        try await changes.setChangeFeedRetention(.with { $0.days = 7 }, metadata: admin)
      }
      #expect(short.code == .invalidArgument && short.message.contains("days"))
      let rep = try await #require(throws: RPCError.self) {
        try await changes.setChangeFeedRetention(.with { $0.days = 60 }, metadata: TestServer.auth(repSecret))
      }
      #expect(rep.code == .permissionDenied)
    }
  }

  @Test("an idle feed confirms past WAL that other tables write, so its slot holds none of it back")
  func idleFeedReleasesWAL() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(feed: true) { client in
      // A change the feed carries, then WAL it does not: a tenant's name written straight in SQL.
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      _ = try await leads.createLead(
        .with { $0.lead = .with { $0.lastName = "Before" } }, metadata: TestServer.auth(tenant.adminSecret))
      let owner = try TestDatabase.ownerConnection()
      defer { owner.close() }
      _ = try owner.query("UPDATE tenants SET name = 'renamed' WHERE id = \(tenant.tenantID)")
      let written = try owner.query("SELECT pg_current_wal_lsn()::text AS lsn")[0].decode("lsn", as: String.self)
      try await waitUntil("the feed's slot to confirm past \(written)") {
        try owner.query(
          """
          SELECT count(*) AS n FROM pg_replication_slots s JOIN change_feed_state f ON f.slot_name = s.slot_name
          WHERE s.confirmed_flush_lsn >= \(written)::pg_lsn
          """)[0].decode("n", as: Int.self) == 1
      }
    }
  }

  @Test("a stream delivers the backlog, then each change as it commits")
  func stream() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      let first = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Backlog" } }, metadata: admin)
      let received = try await changes.streamChanges(.with { _ in }, metadata: admin) { response in
        var ids: [String] = []
        var second: String?
        for try await event in response.messages {
          ids.append(event.change.recordID)
          if ids.count == 1 {
            // Written only once the backlog has arrived: the stream must follow the live feed.
            second = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Live" } }, metadata: admin).id
          }
          if ids.count == 2 { break }
        }
        return (ids, second)
      }
      #expect(received.0 == [first.id, received.1])
    }
  }
  @Test("a page with a type filter reads a bounded window and resumes after it; pages are planned for each call")
  func filteredWindowAndPlans() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      for index in 1...7 {
        _ = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Lead \(index)" } }, metadata: admin)
      }
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with { $0.contact = .with { $0.lastName = "Contact" } }, metadata: admin)
      // A pool of one connection, so the statement's plan statistics below are the ones these calls made.
      let database = Database(
        configuration: .init(
          connectionString: try TestDatabase.connectionString(), maxConnections: 1, acquireTimeout: .seconds(120)))
      let feed = ChangeFeedStore(database: database, filteredWindow: 3)
      try await waitUntil("the feed to carry the eight changes") {
        try await feed.changes(after: 0, types: [], pageSize: 100, principal: tenant.admin).events.count == 8
      }
      let all = try await feed.changes(after: 0, types: [], pageSize: 100, principal: tenant.admin).events.map(\.position)
      // Contacts only, two a page, three changes read a page: two pages of leads end at their
      // windows' ends with nothing to show, the third finds the contact and reaches the end.
      var pages: [([UUID], Int64)] = []
      var position: Int64 = 0
      for _ in 1...3 {
        let page = try await feed.changes(after: position, types: [.contact], pageSize: 2, principal: tenant.admin)
        pages.append((page.events.map(\.entry.recordID), page.resumeAfter))
        position = page.resumeAfter
      }
      #expect(pages.map(\.1) == [all[2], all[5], all[7]])
      #expect(pages.map(\.0) == [[], [], [UUID(uuidString: contact.id)!]])
      // Caught up: the same position again.
      #expect(
        try await feed.changes(after: position, types: [.contact], pageSize: 2, principal: tenant.admin).resumeAfter == position)
      // More calls than PostgreSQL makes custom plans for before it tries a cached generic one: none
      // was generic (a generic plan made on small tables is what read a whole tenant's changes a page).
      for _ in 1...8 { _ = try await feed.changes(after: 0, types: [], pageSize: 2, principal: tenant.admin) }
      let plans = try await database.withTenant(tenant.tenantID) { connection in
        try connection.query(
          """
          SELECT generic_plans, custom_plans FROM pg_prepared_statements
          WHERE statement LIKE '%FROM change_feed f%' AND statement NOT LIKE '%pg_prepared_statements%'
          """
        ).rows.map { (try $0.decode("generic_plans", as: Int64.self), try $0.decode("custom_plans", as: Int64.self)) }
      }
      await database.close()
      // Two statements (with and without the filter), every plan custom.
      #expect(plans.count == 2 && plans.allSatisfy { $0.0 == 0 } && plans.map(\.1).reduce(0, +) >= 12, "\(plans)")
    }
  }
}
