import CRMCore
import CRMStore
import CRMTestSupport
import Foundation
import LibPQ
import Testing

@Suite("Store: migrations and row-level security")
struct MigrationAndSecurityTests {
  @Test("every file in sql/migrations is compiled into the binary, byte for byte")
  func bundledMigrationsMatchFiles() throws {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../sql/migrations")
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
    #expect(files == Migrator.bundled.map(\.name))
    for (name, sql) in Migrator.bundled {
      #expect(try Data(contentsOf: directory.appendingPathComponent(name)) == Data(sql))
    }
  }

  @Test("migrating again applies nothing")
  func idempotentMigrations() async throws {
    _ = try await TestDatabase.database()
    #expect(try Migrator().migrate(connectionString: TestDatabase.connectionString()).isEmpty)
  }

  @Test("a query that forgets the tenant filter still sees only the current tenant's rows")
  func rowLevelSecurityBackstop() async throws {
    let a = try await TestTenant.make("A")
    let b = try await TestTenant.make("B")
    let accounts = AccountStore(database: a.database)
    _ = try await accounts.create(AccountFields(name: "Alpha"), ownerID: nil, context: a.context(a.admin)).record
    _ = try await accounts.create(AccountFields(name: "Beta"), ownerID: nil, context: b.context(b.admin)).record
    let names = try await a.database.withTenant(a.tenantID) { connection in
      try connection.query("SELECT name FROM accounts").rows.map { try $0.decode("name", as: String.self) }
    }
    #expect(names == ["Alpha"])
    let none = try await a.database.pool.withConnection { connection in
      try connection.query("SELECT count(*) AS n FROM accounts")[0].decode("n", as: Int.self)
    }
    #expect(none == 0, "without a tenant set, crm_app sees nothing")
    await #expect(throws: PostgresError.self) {
      try await a.database.withTenant(a.tenantID) { connection in
        try connection.query("INSERT INTO teams (tenant_id, id, name) VALUES (\(b.tenantID), \(UUID()), 'smuggled')").count
      }
    }
  }
}

@Suite("Store: query plans")
struct QueryPlanTests {
  /// The planner's row estimate for a set-returning function: it decides whether the duplicate check
  /// probes `leads_pkey` per candidate or hash-joins over a sequential scan of the tenant's leads
  /// (at the default 1,000, CreateLead fell to 68–149/s in tenants of 12k–28k leads with a shared phone).
  @Test("the duplicate candidates function tells the planner it returns a handful of rows")
  func matchCandidatesEstimate() async throws {
    _ = try await TestDatabase.database()
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    let plan: String = try owner.query(
      """
      EXPLAIN (FORMAT JSON) SELECT id FROM crm_match_candidates('leads', 'email_keys', ARRAY['a@b.example'], ARRAY['+14155550100'],
        NULL, NULL, NULL, NULL) AS id
      """
    )[0].decode("QUERY PLAN")
    #expect(plan.contains("\"Plan Rows\": 10,"), "\(plan)")
  }

  /// A table that outgrew its statistics keeps every backend's plans made while it was small (the
  /// per-row foreign-key checks among them) until it is analyzed: imports refresh them as they grow.
  @Test("an import's tables are analyzed once they outgrow their statistics, through a function crm_app may call")
  func statisticsRefresh() async throws {
    let tenant = try await TestTenant.make()
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    func stale() throws -> (live: Double, estimated: Double) {
      let row = try owner.query(
        """
        SELECT s.n_live_tup::float8 AS live, greatest(c.reltuples, 0)::float8 AS estimated
        FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'public.import_rows'::regclass
        """)[0]
      return (try row.decode("live"), try row.decode("estimated"))
    }
    // Grow the ledger well past twice what its statistics say, and let the counters see it.
    let before = try stale()
    let rows = Int(max(1_000, 2 * before.estimated, before.live)) + 500
    try owner.query(
      """
      INSERT INTO import_rows (tenant_id, import_id, row_index, outcome)
      SELECT \(tenant.tenantID), 'stats-probe', n, 'created' FROM generate_series(1, \(rows)) AS n
      """)
    try owner.query("SELECT pg_stat_force_next_flush()")
    try await waitUntil("the statistics counters show the new rows") { try stale().live >= before.live + Double(rows) }
    let store = ImportStore(database: tenant.database)
    _ = try await store.refreshStatistics(for: .invoice, principal: tenant.admin)
    let after = try stale()
    #expect(after.estimated * 2 >= after.live, "import_rows is analyzed (estimated \(after.estimated), live \(after.live))")
    // Names outside the allow-list are ignored, never analyzed.
    let ignored: [String] = try owner.query("SELECT crm_analyze_if_stale(ARRAY['tenants', 'pg_class']) AS a")[0].decode("a")
    #expect(ignored.isEmpty)
  }
}

@Suite("Store: accounts")
struct AccountStoreTests {
  @Test("a create writes the record and its change-log row in one transaction")
  func createWritesChangeLog() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    var fields = AccountFields(name: "Acme")
    fields.externalID = "ext-1"
    let account = try await store.create(fields, ownerID: nil, context: tenant.context(tenant.admin, requestID: "r-1")).record
    let history = try await HistoryStore(database: tenant.database).history(
      of: .account, id: account.id, principal: tenant.admin, pageSize: 10, pageToken: "")
    #expect(history.items.count == 1)
    #expect(history.items[0].operation == .create)
    #expect(history.items[0].requestID == "r-1")
    #expect(history.items[0].changesJSON.contains("\"Acme\""))

    // A create that fails (duplicate external id) leaves neither a record nor a change-log row nor a key.
    await #expect(throws: CRMError.alreadyExists(field: "account.external_id", message: "another account has this external_id")) {
      try await store.create(fields, ownerID: nil, context: tenant.context(tenant.admin, requestID: "r-2")).record
    }
    let counts = try TestDatabase.ownerConnection().query(
      """
      SELECT (SELECT count(*) FROM accounts WHERE tenant_id = \(tenant.tenantID)) AS accounts,
             (SELECT count(*) FROM change_log WHERE tenant_id = \(tenant.tenantID)) AS changes,
             (SELECT count(*) FROM idempotency_keys WHERE tenant_id = \(tenant.tenantID)) AS keys
      """)[0]
    #expect(try counts.decode("accounts", as: Int.self) == 1)
    #expect(try counts.decode("changes", as: Int.self) == 1)
    #expect(try counts.decode("keys", as: Int.self) == 1)
  }

  @Test("repeating a request id returns the first result and writes nothing, even concurrently")
  func idempotentCreate() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
      for index in 0..<20 {
        group.addTask {
          try await store.create(
            AccountFields(name: "Same \(index)"), ownerID: nil, context: tenant.context(tenant.admin, requestID: "once")
          ).record.id
        }
      }
      return try await group.reduce(into: Set<UUID>()) { $0.insert($1) }
    }
    #expect(ids.count == 1)
    let page = try await store.list(AccountFilter(), pageSize: 100, pageToken: "", includeTotal: true, principal: tenant.admin)
    #expect(page.totalSize == 1)
  }

  @Test("concurrent updates with etags lose nothing: every writer retries on ABORTED until it lands")
  func concurrentUpdatesLoseNothing() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    let account = try await store.create(AccountFields(name: "Contended"), ownerID: nil, context: tenant.context(tenant.admin))
      .record
    let writers = 12
    let staleAnswers = try await withThrowingTaskGroup(of: Int.self) { group in
      for writer in 0..<writers {
        group.addTask {
          var stale = 0
          while true {
            let current = try await store.get(account.id, principal: tenant.admin)
            var patch = current.fields
            patch.tags = current.fields.tags + ["w\(writer)"]
            do {
              _ = try await store.update(
                account.id, patch: patch, mask: [.tags], newOwnerID: nil, expectedVersion: current.version,
                context: tenant.context(tenant.admin))
              return stale
            } catch CRMError.staleEtag {
              stale += 1
            }
          }
        }
      }
      return try await group.reduce(0, +)
    }
    let final = try await store.get(account.id, principal: tenant.admin)
    #expect(Set(final.fields.tags) == Set((0..<writers).map { "w\($0)" }))
    #expect(final.version == Int64(writers + 1))
    #expect(staleAnswers > 0, "the writers really did collide")
    let history = try await HistoryStore(database: tenant.database).history(
      of: .account, id: account.id, principal: tenant.admin, pageSize: 100, pageToken: "")
    #expect(history.items.count == writers + 1)
  }

  @Test("a stale etag is rejected with the current one")
  func staleEtag() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    let account = try await store.create(AccountFields(name: "A"), ownerID: nil, context: tenant.context(tenant.admin)).record
    var patch = account.fields
    patch.name = "B"
    _ = try await store.update(
      account.id, patch: patch, mask: [.name], newOwnerID: nil, expectedVersion: 1, context: tenant.context(tenant.admin))
    await #expect(throws: CRMError.staleEtag(current: "2")) {
      try await store.update(
        account.id, patch: patch, mask: [.name], newOwnerID: nil, expectedVersion: 1, context: tenant.context(tenant.admin))
    }
  }

  @Test("a parent that would close a cycle is refused; archive and restore are recorded")
  func hierarchy() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    let context = tenant.context(tenant.admin)
    let root = try await store.create(AccountFields(name: "Root"), ownerID: nil, context: context).record
    var childFields = AccountFields(name: "Child")
    childFields.parentID = root.id
    let child = try await store.create(childFields, ownerID: nil, context: context).record
    var grandchildFields = AccountFields(name: "Grandchild")
    grandchildFields.parentID = child.id
    let grandchild = try await store.create(grandchildFields, ownerID: nil, context: context).record

    var cyclic = root.fields
    cyclic.parentID = grandchild.id
    await #expect(throws: CRMError.self) {
      try await store.update(root.id, patch: cyclic, mask: [.parentID], newOwnerID: nil, expectedVersion: nil, context: context)
    }
    let tree = try await store.hierarchy(of: grandchild.id, maxDepth: 0, principal: tenant.admin)
    #expect(tree.root == root.id)
    #expect(tree.nodes.map { $0.0.fields.name } == ["Root", "Child", "Grandchild"])
    #expect(tree.nodes.map(\.1) == [0, 1, 2])

    let archived = try await store.archive(child.id, expectedVersion: nil, context: context)
    #expect(archived.archivedAt != nil)
    let restored = try await store.restore(child.id, expectedVersion: archived.version, context: context)
    #expect(restored.archivedAt == nil)
    let history = try await HistoryStore(database: tenant.database).history(
      of: .account, id: child.id, principal: tenant.admin, pageSize: 10, pageToken: "")
    #expect(history.items.map(\.operation) == [.restore, .archive, .create])
  }

  @Test("lists page by keyset with no row lost or repeated, in both orders")
  func keysetPaging() async throws {
    let tenant = try await TestTenant.make()
    let store = AccountStore(database: tenant.database)
    let names = (0..<25).map { "Company \(String(format: "%02d", $0))" }.shuffled() + ["company 99", "Ünïcode", "_under%score"]
    for name in names {
      _ = try await store.create(AccountFields(name: name), ownerID: nil, context: tenant.context(tenant.admin)).record
    }
    for order in [ListOrder.name, .updateTimeDescending] {
      var filter = AccountFilter()
      filter.order = order
      var seen: [String] = []
      var token = ""
      repeat {
        let page = try await store.list(filter, pageSize: 7, pageToken: token, includeTotal: false, principal: tenant.admin)
        seen += page.items.map(\.fields.name)
        token = page.nextPageToken ?? ""
      } while !token.isEmpty
      #expect(Set(seen) == Set(names))
      #expect(seen.count == names.count)
      if order == .name {
        #expect(seen == seen.sorted { $0.lowercased().unicodeScalars.lexicographicallyPrecedes($1.lowercased().unicodeScalars) })
      }
    }
    var prefix = AccountFilter()
    prefix.namePrefix = "company 0"
    let filtered = try await store.list(prefix, pageSize: 100, pageToken: "", includeTotal: true, principal: tenant.admin)
    #expect(filtered.totalSize == 10)
    prefix.namePrefix = "_under%"
    #expect(
      try await store.list(prefix, pageSize: 100, pageToken: "", includeTotal: true, principal: tenant.admin).totalSize == 1)
  }
}

@Suite("Store: visibility inside a tenant")
struct VisibilityTests {
  @Test("private records are visible to owner, managers above and admins only; writes need ownership")
  func privateSharing() async throws {
    let tenant = try await TestTenant.make()
    _ = try await AccessStore(database: tenant.database).setSharing(.private, for: .account, principal: tenant.admin)
    let (manager, managerSecret) = try await tenant.makeUser(.manager)
    let region = try await tenant.makeTeam("Region", manager: manager.userID)
    let team = try await tenant.makeTeam("Team", parent: region)
    let (rep, _) = try await tenant.makeUser(.salesRep, team: team)
    let (peer, _) = try await tenant.makeUser(.salesRep, team: team)
    let managerNow = try await tenant.principal(for: managerSecret)
    #expect(managerNow.ownersInHierarchy.contains(rep.userID))

    let store = AccountStore(database: tenant.database)
    let mine = try await store.create(AccountFields(name: "Rep's deal"), ownerID: nil, context: tenant.context(rep)).record
    await #expect(throws: CRMError.notFound("account \(mine.id.lowercasedString) not found")) {
      try await store.get(mine.id, principal: peer)
    }
    #expect(try await store.get(mine.id, principal: managerNow).id == mine.id)
    #expect(try await store.get(mine.id, principal: tenant.admin).id == mine.id)
    #expect(
      try await store.list(AccountFilter(), pageSize: 10, pageToken: "", includeTotal: true, principal: peer).totalSize == 0)
    await #expect(throws: CRMError.self) {
      try await HistoryStore(database: tenant.database).history(
        of: .account, id: mine.id, principal: peer, pageSize: 10, pageToken: "")
    }

    _ = try await AccessStore(database: tenant.database).setSharing(.publicRead, for: .account, principal: tenant.admin)
    let peerNow = try await AccessStore(database: tenant.database).authenticate(
      secret: try await tenant.makeUser(.salesRep, team: team).1)!
    #expect(try await store.get(mine.id, principal: peerNow).id == mine.id)
    var patch = mine.fields
    patch.name = "Stolen"
    await #expect(throws: CRMError.permissionDenied("only the owner, their managers or an admin may change this account")) {
      try await store.update(
        mine.id, patch: patch, mask: [.name], newOwnerID: nil, expectedVersion: nil, context: tenant.context(peerNow))
    }
  }
}

@Suite("Store: contacts")
struct ContactStoreTests {
  @Test("contacts link to accounts, filter by email, and record their history")
  func contacts() async throws {
    let tenant = try await TestTenant.make()
    let account = try await AccountStore(database: tenant.database).create(
      AccountFields(name: "Acme"), ownerID: nil, context: tenant.context(tenant.admin)
    ).record
    let store = ContactStore(database: tenant.database)
    var fields = ContactFields()
    fields.firstName = "Ada"
    fields.lastName = "Lovelace"
    fields.accountID = account.id
    fields.emails = [ContactEmail(address: "ada@example.com", isPrimary: true), ContactEmail(address: "ada@home.example")]
    let contact = try await store.create(fields, ownerID: nil, context: tenant.context(tenant.admin)).record
    #expect(contact.fields.primaryEmail == "ada@example.com")
    var byEmail = ContactFilter()
    byEmail.email = "ada@home.example"
    #expect(
      try await store.list(byEmail, pageSize: 10, pageToken: "", includeTotal: false, principal: tenant.admin).items.map(\.id)
        == [contact.id])
    var byAccount = ContactFilter()
    byAccount.accountID = account.id
    #expect(
      try await store.list(byAccount, pageSize: 10, pageToken: "", includeTotal: false, principal: tenant.admin).items.count == 1)

    var patch = ContactFields()
    patch.title = "Countess"
    let updated = try await store.update(
      contact.id, patch: patch, mask: [.title], newOwnerID: nil, expectedVersion: contact.version,
      context: tenant.context(tenant.admin))
    #expect(updated.fields.title == "Countess")
    #expect(updated.fields.lastName == "Lovelace")
    let history = try await HistoryStore(database: tenant.database).history(
      of: .contact, id: contact.id, principal: tenant.admin, pageSize: 10, pageToken: "")
    let changes = try JSONSerialization.jsonObject(with: Data(history.items[0].changesJSON.utf8)) as? [[String: Any]]
    #expect(changes?.count == 1)
    #expect(changes?.first?["field"] as? String == "title")
    #expect(changes?.first?["new"] as? String == "Countess")
    #expect(changes?.first?["old"] is NSNull)
  }
}

@Suite("Store: match keys written with every record")
struct MatchKeyStoreTests {
  @Test("accounts, contacts and leads carry the keys duplicate detection reads, refreshed on update")
  func keys() async throws {
    let tenant = try await TestTenant.make()
    let account = try await AccountStore(database: tenant.database).create(
      AccountFields(name: "Acme, Inc."), ownerID: nil, context: tenant.context(tenant.admin)
    ).record
    var contactFields = ContactFields()
    contactFields.firstName = "Jo"
    contactFields.lastName = "O'Neil"
    contactFields.emails = [ContactEmail(address: "Jo+News@Example.com")]
    let contacts = ContactStore(database: tenant.database)
    let contact = try await contacts.create(contactFields, ownerID: nil, context: tenant.context(tenant.admin)).record
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    #expect(
      try owner.query("SELECT company_key FROM accounts WHERE tenant_id = \(tenant.tenantID) AND id = \(account.id)")[0]
        .decode("company_key", as: String?.self) == "acme")
    let row = try owner.query(
      "SELECT email_keys, person_key FROM contacts WHERE tenant_id = \(tenant.tenantID) AND id = \(contact.id)")[0]
    #expect(try row.decode("email_keys", as: [String].self) == ["jo+news@example.com", "jo@example.com"])
    #expect(try row.decode("person_key", as: String?.self) == "jo o neil")

    var patch = ContactFields()
    patch.emails = [ContactEmail(address: "jo@other.example")]
    _ = try await contacts.update(
      contact.id, patch: patch, mask: [.emails], newOwnerID: nil, expectedVersion: nil, context: tenant.context(tenant.admin))
    #expect(
      try owner.query("SELECT email_keys FROM contacts WHERE tenant_id = \(tenant.tenantID) AND id = \(contact.id)")[0]
        .decode("email_keys", as: [String].self) == ["jo@other.example"])
  }
}
