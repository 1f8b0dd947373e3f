public import CRMCore
public import Foundation
import LibPQ

/// A lead or an account: the records shared pools hold.
public enum PooledRecord: Sendable {
  case lead(Lead)
  case account(Account)
}

/// A record type that can sit in a pool.
protocol PoolableRecord: StoredRecord {
  var ownerID: UUID? { get set }
  var poolID: UUID? { get set }
  var claimedFromPoolID: UUID? { get set }
  var claimedAt: Timestamp? { get set }
  var pooled: PooledRecord { get }
  /// What assignment rules look at.
  var assignmentSubject: AssignmentSubject { get }
  /// SQL true for a closed record of the table (alias `r`): hold limits may leave these out.
  static var closedCondition: String { get }
  /// SQL naming the record (alias `r`), for lists.
  static var displayName: String { get }
}

extension Lead: PoolableRecord {
  var pooled: PooledRecord { .lead(self) }
  var assignmentSubject: AssignmentSubject { AssignmentSubject(fields) }
  static let closedCondition = "r.status IN ('converted', 'disqualified')"
  static let displayName =
    "trim(concat_ws(' ', r.first_name, r.last_name, CASE WHEN r.company IS NOT NULL THEN '(' || r.company || ')' END))"
}

extension Account: PoolableRecord {
  var pooled: PooledRecord { .account(self) }
  var assignmentSubject: AssignmentSubject { AssignmentSubject(fields) }
  static let closedCondition =
    "EXISTS (SELECT 1 FROM opportunities o WHERE o.tenant_id = r.tenant_id AND o.account_id = r.id AND o.state = 'won')"
  static let displayName = "r.name"
}

/// SQL for shared pools (公海): their settings and members, claiming, releasing, assigning and moving
/// records, the holdings about to return, and the recycling job.
///
/// Claims are atomic: the record's row lock decides between concurrent claims (one wins, the others
/// find it held: FAILED_PRECONDITION); a per-user advisory lock makes the hold-limit count and the
/// claim one step, so concurrent claims by one user cannot pass the limit together.
public struct PoolStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  // MARK: - Pools and members

  /// Creates a pool (admins).
  public func create(_ settings: PoolSettings, context: ChangeLog.Context) async throws -> Pool {
    try context.principal.requireAdmin()
    let id = UUID.v7()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Lead>.claimRequestID(connection, method: "CreatePool", context: context, recordID: id) {
        return try Self.load(connection, id: first, tenant: tenant)
      }
      try Self.translatingConstraints {
        try connection.query(
          """
          INSERT INTO pools (tenant_id, id, record_type, created_by, updated_by, \(unsafeSQL: Self.settingColumns))
          VALUES (\(tenant), \(id), \(settings.recordType.rawValue), \(context.principal.userID), \(context.principal.userID),
                  \(Self.settingValues(settings)))
          """)
      }
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// One pool.
  public func get(_ id: UUID, principal: Principal) async throws -> Pool {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.load(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// The tenant's pools, by name; only one record type's when given.
  public func list(recordType: RecordType?, includeArchived: Bool, principal: Principal) async throws -> [Pool] {
    try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = "SELECT \(unsafeSQL: Self.columns) FROM pools WHERE tenant_id = \(principal.tenantID)"
      if let recordType { query.append(" AND record_type = \(recordType.rawValue)") }
      if !includeArchived { query.append(unsafeSQL: " AND archived_at IS NULL") }
      query.append(unsafeSQL: " ORDER BY lower(name), id")
      return try connection.query(query).rows.map(Self.pool)
    }
  }

  /// Replaces a pool's settings (its record type stays); admins and the pool's admins.
  public func update(_ id: UUID, _ settings: PoolSettings, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> Pool
  {
    let principal = context.principal
    guard principal.isInPool(id, asAdmin: true) else {
      throw CRMError.permissionDenied("only admins and the pool's admins change a pool")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      let current = try Self.lock(connection, id: id, tenant: principal.tenantID, expectedVersion: expectedVersion)
      if settings.recordType != current.settings.recordType {
        throw CRMError.invalid("pool.record_type", "a pool's record type cannot change", reason: "INVALID")
      }
      try Self.translatingConstraints {
        try connection.query(
          """
          UPDATE pools SET (\(unsafeSQL: Self.settingColumns)) = (\(Self.settingValues(settings))),
            version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(principal.tenantID) AND id = \(id)
          """)
      }
      return try Self.load(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Archives an empty pool (admins).
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Pool {
    let principal = context.principal
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      let current = try Self.lock(connection, id: id, tenant: principal.tenantID, expectedVersion: expectedVersion)
      if current.archivedAt != nil { return current }
      let table = current.settings.recordType == .lead ? "leads" : "accounts"
      let held: Int64 = try connection.query(
        "SELECT count(*) AS n FROM \(unsafeSQL: table) WHERE tenant_id = \(principal.tenantID) AND pool_id = \(id)")[0].decode(
          "n")
      if held > 0 { throw CRMError.failedPrecondition("the pool holds \(held) records; assign or move them first") }
      try connection.query(
        """
        UPDATE pools SET archived_at = now(), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
        WHERE tenant_id = \(principal.tenantID) AND id = \(id)
        """)
      return try Self.load(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Replaces the pool's members (admins and the pool's admins); returns them.
  public func setMembers(_ pool: UUID, _ members: [(userID: UUID, isAdmin: Bool)], context: ChangeLog.Context) async throws
    -> [(userID: UUID, isAdmin: Bool)]
  {
    let principal = context.principal
    guard principal.isInPool(pool, asAdmin: true) else {
      throw CRMError.permissionDenied("only admins and the pool's admins change its members")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      _ = try Self.lock(connection, id: pool, tenant: principal.tenantID, expectedVersion: nil)
      let ids = members.map(\.userID)
      let known = try connection.query(
        "SELECT id FROM users WHERE tenant_id = \(principal.tenantID) AND id = ANY(\(ids)::uuid[]) AND is_active")
      let active = Set(try known.rows.map { try $0.decode("id", as: UUID.self) })
      if let (index, missing) = ids.enumerated().first(where: { !active.contains($0.element) }) {
        throw CRMError.invalid("members[\(index)].user_id", "no active user \(missing.lowercasedString)", reason: "NOT_FOUND")
      }
      try connection.query(
        "DELETE FROM pool_members WHERE tenant_id = \(principal.tenantID) AND pool_id = \(pool) AND user_id <> ALL(\(ids)::uuid[])"
      )
      try connection.query(
        """
        INSERT INTO pool_members (tenant_id, pool_id, user_id, is_admin)
        SELECT \(principal.tenantID), \(pool), u, a FROM unnest(\(ids)::uuid[], \(members.map(\.isAdmin))::boolean[]) AS m(u, a)
        ON CONFLICT (tenant_id, pool_id, user_id) DO UPDATE SET is_admin = excluded.is_admin
        """)
      return try Self.members(connection, pool: pool, tenant: principal.tenantID)
    }
  }

  /// The pool's members, by when they joined.
  public func members(of pool: UUID, principal: Principal) async throws -> [(userID: UUID, isAdmin: Bool)] {
    try await database.withTenant(principal.tenantID) { connection in
      _ = try Self.load(connection, id: pool, tenant: principal.tenantID)
      return try Self.members(connection, pool: pool, tenant: principal.tenantID)
    }
  }

  /// Sets the tenant-wide hold limits per user (admins); `nil` removes one.
  public func setTenantHoldLimits(lead: Int?, account: Int?, principal: Principal) async throws {
    try principal.requireAdmin()
    try await database.withTenant(principal.tenantID) { connection in
      _ = try connection.query("SELECT crm_set_hold_limits(\(principal.tenantID), \(lead), \(account))")
    }
  }

  /// The tenant-wide hold limits per user.
  public func tenantHoldLimits(principal: Principal) async throws -> (lead: Int?, account: Int?) {
    try await database.withTenant(principal.tenantID) { connection in
      let row = try connection.query(
        "SELECT lead_hold_limit, account_hold_limit FROM crm_hold_limits(\(principal.tenantID))")[0]
      return (try row.decode("lead_hold_limit"), try row.decode("account_hold_limit"))
    }
  }

  // MARK: - Records

  /// One page of the records sitting in a pool, most recently returned first (members and admins).
  public func records(in pool: UUID, pageSize: Int, pageToken: String, principal: Principal) async throws -> Page<PooledRecord> {
    guard principal.isInPool(pool) else { throw CRMError.notFound("pool \(pool.lowercasedString) not found") }
    let fingerprint = "pool|\(pool.lowercasedString)"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      let settings = try Self.load(connection, id: pool, tenant: principal.tenantID).settings
      return settings.recordType == .lead
        ? try Self.page(
          Lead.self, connection, pool: pool, token: token, tokens: tokens, fingerprint: fingerprint, pageSize: pageSize,
          principal: principal)
        : try Self.page(
          Account.self, connection, pool: pool, token: token, tokens: tokens, fingerprint: fingerprint, pageSize: pageSize,
          principal: principal)
    }
  }

  /// What a pool verb names: a lead or an account.
  public struct Target: Sendable {
    public var record: RecordLink
    public var expectedVersion: Int64?

    /// A target.
    public init(record: RecordLink, expectedVersion: Int64?) {
      self.record = record
      self.expectedVersion = expectedVersion
    }
  }

  /// Claims a pooled record for the caller: exactly one of any number of concurrent claims wins.
  ///
  /// - Throws: ``CRMError`` — `failedPrecondition` (not in a pool: someone holds it; the caller's
  ///   hold limit; the re-claim cooldown), `permissionDenied` (not a member of the pool), `notFound`.
  public func claim(_ target: Target, context: ChangeLog.Context) async throws -> PooledRecord {
    try await withRecord(target, context: context, method: "Claim") { record, connection in
      try Self.take(record, for: context.principal.userID, connection, context: context, assigning: false)
    }
  }

  /// Hands a pooled record to a member of its pool (admins and the pool's admins); the member's hold
  /// limits apply, the cooldown does not. With no user named, the tenant's assignment rules choose
  /// (a rule that gives the record to a user: a named user or a team's next turn), and the rule that
  /// fired is in the change log.
  public func assign(_ target: Target, to user: UUID?, context: ChangeLog.Context) async throws -> PooledRecord {
    try await withRecord(target, context: context, method: "AssignFromPool") { record, connection in
      guard let user else { return try Self.assignByRules(record, connection, context: context) }
      return try Self.take(record, for: user, connection, context: context, assigning: true)
    }
  }

  private static func assignByRules(_ any: any PoolableRecord, _ connection: PostgresConnection, context: ChangeLog.Context)
    throws -> PooledRecord
  {
    func open<Record: PoolableRecord>(_ record: Record) throws -> PooledRecord {
      guard let poolID = record.poolID else {
        throw CRMError.failedPrecondition("the \(Record.noun) is not in a pool: someone holds it")
      }
      guard context.principal.isInPool(poolID, asAdmin: true) else {
        throw CRMError.permissionDenied("only admins and the pool's admins assign from it")
      }
      let tenant = context.principal.tenantID
      let decision = try AssignmentStore.route(
        connection, record.assignmentSubject, type: Record.recordType, tenant: tenant, dryRun: false)
      guard case .user(let user) = decision.outcome, let rule = decision.rule else {
        throw CRMError.failedPrecondition("no assignment rule gives this \(Record.noun) to a user; name the user")
      }
      let member = try connection.query(
        "SELECT 1 FROM pool_members WHERE tenant_id = \(tenant) AND pool_id = \(poolID) AND user_id = \(user)")
      guard member.count == 1 else {
        throw CRMError.failedPrecondition(
          "assignment rule \"\(rule.name)\" picks \(user.lowercasedString), who is not a member of the pool; name the user")
      }
      return try take(record, for: user, connection, context: context, assigning: true, notes: AssignmentStore.note(decision))
    }
    return try open(any)
  }

  /// Returns a held record to the pool it came from (or `pool`), with a reason code and note.
  public func release(
    _ target: Target, to pool: UUID?, reasonCode: String, note: String?, context: ChangeLog.Context
  ) async throws -> PooledRecord {
    try await withRecord(target, context: context, method: "Release") { record, connection in
      guard let holder = record.ownerID else {
        throw CRMError.failedPrecondition("the \(type(of: record).noun) is already in a pool")
      }
      guard context.principal.canWrite(ownedBy: holder) else {
        throw CRMError.permissionDenied("only its holder, their managers or an admin may release a record")
      }
      guard let destination = pool ?? record.claimedFromPoolID else {
        throw CRMError.invalid(
          "pool_id", "the record was not claimed from a pool: name the pool to release it to", reason: "REQUIRED")
      }
      return try Self.putInPool(
        record, pool: destination, kind: .release, reasonCode: reasonCode, note: note, connection, context: context)
    }
  }

  /// Puts a record into a pool (its owner's managers, admins, or the pool's admins).
  public func move(
    _ target: Target, to pool: UUID, reasonCode: String, note: String?, context: ChangeLog.Context
  ) async throws -> PooledRecord {
    try await withRecord(target, context: context, method: "MoveToPool") { record, connection in
      let principal = context.principal
      let managesOwner =
        record.ownerID.map { principal.canWrite(ownedBy: $0) && ($0 != principal.userID || principal.role == .manager) } ?? false
      guard principal.isInPool(pool, asAdmin: true) || managesOwner || principal.isAdmin else {
        throw CRMError.permissionDenied("moving records into a pool needs the owner's manager, an admin or the pool's admin")
      }
      if record.poolID == pool { return record.pooled }
      return try Self.putInPool(record, pool: pool, kind: .move, reasonCode: reasonCode, note: note, connection, context: context)
    }
  }

  // MARK: - Holdings and recycling

  /// What `user` holds from pools, with when each will return; only those returning within their
  /// pool's warning days unless `all`. The user themself, their managers and admins may ask.
  public func holdings(of user: UUID, all: Bool, principal: Principal) async throws -> [Holding] {
    guard principal.canWrite(ownedBy: user) else {
      throw CRMError.permissionDenied("only the user, their managers or an admin may see their holdings")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      var holdings: [Holding] = []
      for pool in try Self.pools(connection, tenant: principal.tenantID) {
        let found =
          pool.settings.recordType == .lead
          ? try Self.holdings(Lead.self, connection, pool: pool, holder: user, dueBy: nil, tenant: principal.tenantID)
          : try Self.holdings(Account.self, connection, pool: pool, holder: user, dueBy: nil, tenant: principal.tenantID)
        let horizon = Timestamp(
          microsecondsSinceEpoch: Timestamp.now.microsecondsSinceEpoch + Int64(pool.settings.warningDays) * 86_400_000_000)
        holdings += found.filter { all || ($0.returnsAt.map { $0 <= horizon } ?? false) }
      }
      return holdings.sorted {
        ($0.returnsAt ?? .init(microsecondsSinceEpoch: .max)) < ($1.returnsAt ?? .init(microsecondsSinceEpoch: .max))
      }
    }
  }

  /// What one recycling pass returned.
  public struct RecycleReport: Sendable {
    /// Pools looked at (others were being recycled by another node).
    public var pools: Int
    /// Records returned.
    public var returned: Int
  }

  /// Returns every held record whose pool's rules say it is due, in every tenant (or one), with the
  /// reason in the change log and `pool_returns`. Safe on several nodes: each pool is recycled under
  /// a transaction-level advisory lock that other nodes skip, and rows are taken `SKIP LOCKED`.
  public func recycle(tenant only: UUID? = nil, now: Timestamp? = nil, batchSize: Int = 1000) async throws -> RecycleReport {
    let pools = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id, pool_id FROM crm_recycling_pools()").rows.map {
        (tenant: try $0.decode("tenant_id", as: UUID.self), pool: try $0.decode("pool_id", as: UUID.self))
      }
    }
    var report = RecycleReport(pools: 0, returned: 0)
    for (tenant, poolID) in pools where only == nil || only == tenant {
      while true {
        let (locked, returned) = try await database.withTenant(tenant) { connection -> (Bool, Int) in
          let lock = try connection.query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('pool-recycle:' || \(poolID), 0)) AS ok")
          guard try lock[0].decode("ok", as: Bool.self) else { return (false, 0) }
          let pool = try Self.load(connection, id: poolID, tenant: tenant)
          let dueBy: Timestamp = try now ?? connection.query("SELECT now() AS now")[0].decode("now")
          return (
            true,
            pool.settings.recordType == .lead
              ? try Self.recycle(Lead.self, connection, pool: pool, dueBy: dueBy, limit: batchSize, tenant: tenant)
              : try Self.recycle(Account.self, connection, pool: pool, dueBy: dueBy, limit: batchSize, tenant: tenant)
          )
        }
        if !locked { break }
        report.returned += returned
        if returned < batchSize { break }
      }
      report.pools += 1
    }
    return report
  }

  // MARK: - Mechanics

  /// The actor the change log names for what background jobs do (no user did it).
  public static let systemActor = UUID(uuidString: "00000000-0000-0000-0000-000000000000")!

  /// Locks the target record and runs `body` on it inside one tenant transaction (with the request id).
  private func withRecord(
    _ target: Target, context: ChangeLog.Context, method: String,
    _ body: @escaping @Sendable (any PoolableRecord, PostgresConnection) throws -> PooledRecord
  ) async throws -> PooledRecord {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      switch target.record.type {
      case .lead:
        return try Self.locked(Lead.self, target, connection, context: context, method: method, body)
      case .account:
        return try Self.locked(Account.self, target, connection, context: context, method: method, body)
      default:
        throw CRMError.invalid("record.record_type", "pools hold leads and accounts", reason: "INVALID")
      }
    }
  }

  private static func locked<Record: PoolableRecord>(
    _ type: Record.Type, _ target: Target, _ connection: PostgresConnection, context: ChangeLog.Context, method: String,
    _ body: (any PoolableRecord, PostgresConnection) throws -> PooledRecord
  ) throws -> PooledRecord {
    let principal = context.principal
    let id = target.record.id
    if let first = try RecordMechanics<Record>.claimRequestID(connection, method: method, context: context, recordID: id) {
      return try RecordMechanics<Record>.replay(connection, id: first, principal: principal).pooled
    }
    let result = try connection.query(
      """
      SELECT \(unsafeSQL: Record.columns), \(ApprovalStore.lockColumn(Record.recordType, table: Record.table, principal: principal))
      FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = \(id) FOR UPDATE
      """)
    guard let row = result.first else { throw RecordMechanics<Record>.notFound(id) }
    let record = try Record(row: row)
    guard principal.canRead(Record.recordType, ownedBy: record.ownerID, pool: record.poolID) else {
      throw RecordMechanics<Record>.notFound(id)
    }
    if let request = try row.decode("approval_lock", as: UUID?.self) {
      throw ApprovalStore.locked(Record.recordType, by: request)
    }
    if let expected = target.expectedVersion, expected != record.version {
      throw CRMError.staleEtag(current: Etag.make(record.version))
    }
    if record.archivedAt != nil {
      throw CRMError.failedPrecondition("\(Record.noun) \(id.lowercasedString) is archived; undelete it first")
    }
    return try body(record, connection)
  }

  /// Gives a pooled record to `user` (a claim by the caller, or an assignment by a pool admin).
  private static func take(
    _ any: any PoolableRecord, for user: UUID, _ connection: PostgresConnection, context: ChangeLog.Context, assigning: Bool,
    notes: [FieldChange] = []
  ) throws -> PooledRecord {
    func open<Record: PoolableRecord>(_ record: Record) throws -> PooledRecord {
      let principal = context.principal
      let tenant = principal.tenantID
      guard let poolID = record.poolID else {
        throw CRMError.failedPrecondition("the \(Record.noun) is not in a pool: someone holds it")
      }
      let pool = try load(connection, id: poolID, tenant: tenant)
      if assigning {
        guard principal.isInPool(poolID, asAdmin: true) else {
          throw CRMError.permissionDenied("only admins and the pool's admins assign from it")
        }
        let member = try connection.query(
          "SELECT 1 FROM pool_members WHERE tenant_id = \(tenant) AND pool_id = \(poolID) AND user_id = \(user)")
        let active = try connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenant) AND id = \(user) AND is_active")
        guard member.count == 1, active.count == 1 else {
          throw CRMError.invalid("user_id", "is not an active member of the pool", reason: "NOT_FOUND")
        }
      } else {
        guard principal.isInPool(poolID) else {
          throw CRMError.permissionDenied("you are not a member of pool \"\(pool.settings.name)\"")
        }
        if pool.settings.reclaimCooldownDays > 0 {
          let recent = try connection.query(
            """
            SELECT returned_at + make_interval(days => \(pool.settings.reclaimCooldownDays)) AS until FROM pool_returns
            WHERE tenant_id = \(tenant) AND record_type = \(Record.recordType.rawValue) AND record_id = \(record.id)
              AND user_id = \(user) AND kind IN ('release', 'recycle')
              AND returned_at > now() - make_interval(days => \(pool.settings.reclaimCooldownDays))
            ORDER BY returned_at DESC LIMIT 1
            """)
          if let until = try recent.first?.decode("until", as: Timestamp.self) {
            throw CRMError.failedPrecondition(
              "you returned this \(Record.noun) recently; you may claim it again after \(until.rfc3339)")
          }
        }
      }
      if pool.archivedAt != nil { throw CRMError.failedPrecondition("pool \"\(pool.settings.name)\" is archived") }
      try checkHoldLimits(Record.self, connection, user: user, pool: pool, tenant: tenant)
      var next = record
      next.ownerID = user
      next.poolID = nil
      next.claimedFromPoolID = poolID
      next.claimedAt = .now
      return try RecordMechanics<Record>.write(connection, next, over: record, context: context, notes: notes).pooled
    }
    return try open(any)
  }

  /// Serializes `user`'s claims of this record type, then checks the pool's and the tenant's limits.
  static func checkHoldLimits<Record: PoolableRecord>(
    _ type: Record.Type, _ connection: PostgresConnection, user: UUID, pool: Pool, tenant: UUID
  ) throws {
    try connection.query(
      "SELECT pg_advisory_xact_lock(hashtextextended('pool-holds:' || \(tenant) || \(user) || \(Record.recordType.rawValue), 0))")
    let limits = try connection.query(
      "SELECT lead_hold_limit, account_hold_limit FROM crm_hold_limits(\(tenant))")[0]
    let tenantLimit: Int? = try limits.decode(Record.recordType == .lead ? "lead_hold_limit" : "account_hold_limit")
    guard pool.settings.holdLimit != nil || tenantLimit != nil else { return }
    let counts = try connection.query(
      """
      SELECT count(*) FILTER (WHERE r.claimed_from_pool_id = \(pool.id) AND (\(pool.settings.countClosed) OR NOT (\(unsafeSQL: Record.closedCondition)))) AS in_pool,
             count(*) FILTER (WHERE p.count_closed OR NOT (\(unsafeSQL: Record.closedCondition))) AS in_all
      FROM \(unsafeSQL: Record.table) r
      JOIN pools p ON p.tenant_id = r.tenant_id AND p.id = r.claimed_from_pool_id
      WHERE r.tenant_id = \(tenant) AND r.owner_id = \(user) AND r.claimed_from_pool_id IS NOT NULL AND r.archived_at IS NULL
      """)[0]
    let inPool: Int = try counts.decode("in_pool")
    let inAll: Int = try counts.decode("in_all")
    if let limit = pool.settings.holdLimit, inPool >= limit {
      throw CRMError.failedPrecondition(
        "hold limit reached: \(inPool) of \(limit) \(Record.noun)s from pool \"\(pool.settings.name)\"; release one first")
    }
    if let limit = tenantLimit, inAll >= limit {
      throw CRMError.failedPrecondition(
        "hold limit reached: \(inAll) of \(limit) \(Record.noun)s from all pools; release one first")
    }
  }

  /// Puts a record in `pool` without an owner, recording the return (release, recycle or move).
  static func putInPool(
    _ any: any PoolableRecord, pool poolID: UUID, kind: PoolReturnKind, reasonCode: String, note: String?,
    _ connection: PostgresConnection, context: ChangeLog.Context
  ) throws -> PooledRecord {
    func open<Record: PoolableRecord>(_ record: Record) throws -> PooledRecord {
      let tenant = context.principal.tenantID
      let pool = try load(connection, id: poolID, tenant: tenant)
      guard pool.settings.recordType == Record.recordType else {
        throw CRMError.invalid(
          "pool_id", "pool \"\(pool.settings.name)\" holds \(pool.settings.recordType.rawValue)s", reason: "INVALID")
      }
      if pool.archivedAt != nil { throw CRMError.failedPrecondition("pool \"\(pool.settings.name)\" is archived") }
      var next = record
      next.ownerID = nil
      next.poolID = poolID
      next.claimedFromPoolID = nil
      next.claimedAt = nil
      let written = try RecordMechanics<Record>.write(connection, next, over: record, context: context)
      try connection.query(
        """
        INSERT INTO pool_returns (tenant_id, pool_id, record_type, record_id, user_id, kind, reason_code, note, actor_id)
        VALUES (\(tenant), \(poolID), \(Record.recordType.rawValue), \(record.id), \(record.ownerID), \(kind.rawValue),
                \(reasonCode), \(note), \(context.principal.userID))
        """)
      return written.pooled
    }
    return try open(any)
  }

  /// The holdings of one pool (of `holder`, or everyone's), with their due dates (only those due by
  /// `dueBy` when given).
  static func holdings<Record: PoolableRecord>(
    _ type: Record.Type, _ connection: PostgresConnection, pool: Pool, holder: UUID?, dueBy: Timestamp?, limit: Int = 1000,
    tenant: UUID
  ) throws -> [Holding] {
    let settings = pool.settings
    guard settings.recycleAfterDays != nil || settings.recycleNoProgressDays != nil || dueBy == nil else { return [] }
    var query: PostgresQuery = """
      SELECT r.id, r.owner_id, r.claimed_at, \(unsafeSQL: Record.displayName) AS display_name,
        (SELECT max(l.occurred_at) FROM interaction_links l
         JOIN interactions i ON i.tenant_id = l.tenant_id AND i.id = l.interaction_id
         WHERE l.tenant_id = r.tenant_id AND l.record_type = \(Record.recordType.rawValue) AND l.record_id = r.id
           AND l.occurred_at >= r.claimed_at AND i.kind = ANY(\(settings.qualifyingKinds.map(\.rawValue))::text[])) AS worked_at,
        \(unsafeSQL: Record.recordType == .account
          ? """
            (SELECT max(h.changed_at) FROM opportunities o
             JOIN opportunity_stage_history h ON h.tenant_id = o.tenant_id AND h.opportunity_id = o.id
             WHERE o.tenant_id = r.tenant_id AND o.account_id = r.id AND h.changed_at >= r.claimed_at)
            """ : "NULL::timestamptz") AS progressed_at
      FROM \(unsafeSQL: Record.table) r
      WHERE r.tenant_id = \(tenant) AND r.claimed_from_pool_id = \(pool.id) AND r.owner_id IS NOT NULL
        AND r.archived_at IS NULL AND NOT (\(unsafeSQL: Record.closedCondition))
      """
    if let holder { query.append(" AND r.owner_id = \(holder)") }
    if let dueBy {
      // The rule of Holding.due in SQL, so that a batch is the first due rows, not the first held ones.
      query = """
        SELECT * FROM (\(query)) h
        WHERE greatest(
          h.claimed_at + make_interval(days => \(settings.protectionDays)),
          least(
            greatest(h.claimed_at, coalesce(h.worked_at, h.claimed_at)) + make_interval(days => \(settings.recycleAfterDays)),
            greatest(h.claimed_at, coalesce(h.progressed_at, h.claimed_at))
              + make_interval(days => \(settings.recycleNoProgressDays)))) <= \(dueBy)::timestamptz
        ORDER BY h.claimed_at, h.id
        LIMIT \(limit)
        """
    }
    return try connection.query(query).rows.compactMap { row in
      let claimedAt: Timestamp = try row.decode("claimed_at")
      let worked: Timestamp? = try row.decode("worked_at")
      let progressed: Timestamp? = try row.decode("progressed_at")
      let due = Holding.due(claimedAt: claimedAt, lastWorkedAt: worked, lastProgressAt: progressed, settings: settings)
      if let dueBy, !(due.map { $0.at <= dueBy } ?? false) { return nil }
      return Holding(
        record: RecordLink(type: Record.recordType, id: try row.decode("id")), displayName: try row.decode("display_name"),
        poolID: pool.id, holderID: try row.decode("owner_id"), claimedAt: claimedAt, lastWorkedAt: worked,
        lastProgressAt: progressed, returnsAt: due?.at, reason: due?.reason)
    }
  }

  /// Returns up to `limit` due records of one pool; rows another transaction holds are skipped.
  static func recycle<Record: PoolableRecord>(
    _ type: Record.Type, _ connection: PostgresConnection, pool: Pool, dueBy: Timestamp, limit: Int, tenant: UUID
  ) throws -> Int {
    let due = try holdings(Record.self, connection, pool: pool, holder: nil, dueBy: dueBy, limit: limit, tenant: tenant)
    guard !due.isEmpty else { return 0 }
    // One statement for the whole batch (it was five round trips per record: 813 records/s at 100k):
    // take the rows nobody else holds, return them, and write their pool_returns rows, change-log
    // entries (the same owner_id / pool_id changes RecordMechanics.write logs) and their holders'
    // "recycled" tasks with those tasks' change-log entries.
    let system = Self.systemActor
    let requestID = "recycle:\(pool.id.lowercasedString)"
    let result = try connection.query(
      """
      WITH batch AS (
        SELECT b.id, b.reason FROM unnest(\(due.map(\.record.id))::uuid[], \(due.map { $0.reason ?? "no_activity" })::text[])
          AS b(id, reason)
      ), taken AS (
        SELECT r.id, r.owner_id AS holder, r.claimed_at, batch.reason, \(unsafeSQL: Record.displayName) AS display_name
        FROM \(unsafeSQL: Record.table) r JOIN batch ON batch.id = r.id
        WHERE r.tenant_id = \(tenant) AND r.claimed_from_pool_id = \(pool.id) AND r.owner_id IS NOT NULL
        FOR UPDATE OF r SKIP LOCKED
      ), moved AS (
        UPDATE \(unsafeSQL: Record.table) r SET owner_id = NULL, pool_id = \(pool.id), claimed_from_pool_id = NULL,
          claimed_at = NULL, version = r.version + 1, updated_at = now(), updated_by = \(system)
        FROM taken WHERE r.tenant_id = \(tenant) AND r.id = taken.id
        RETURNING r.id, taken.holder, taken.claimed_at, taken.reason, taken.display_name
      ), returned AS (
        INSERT INTO pool_returns (tenant_id, pool_id, record_type, record_id, user_id, kind, reason_code, actor_id)
        SELECT \(tenant), \(pool.id), \(Record.recordType.rawValue), id, holder, 'recycle', reason, \(system) FROM moved
      ), logged AS (
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
        SELECT \(tenant), \(Record.recordType.rawValue), id, 'update', \(system), \(requestID),
          jsonb_build_array(
            jsonb_build_object('field', 'owner_id', 'old', holder::text, 'new', NULL),
            jsonb_build_object('field', 'pool_id', 'old', NULL, 'new', \(pool.id.lowercasedString)::text))
        FROM moved
      ), told AS (
        INSERT INTO tasks (tenant_id, id, owner_id, subject, description, priority, related_type, related_id, alert_kind,
                           alert_key, created_by, updated_by)
        SELECT \(tenant), crm_uuid_v7(), holder, left(\("Returned to pool \"\(pool.settings.name)\": ") || display_name, 255),
          'This \(unsafeSQL: Record.noun) went back to the pool (' || reason || '); claim it again from the pool if it is still yours to work.',
          'low', \(Record.recordType.rawValue), id, 'recycled',
          'recycled:' || \(Record.recordType.rawValue) || ':' || id || ':' || extract(epoch FROM claimed_at)::bigint,
          \(system), \(system)
        FROM moved
        ON CONFLICT (tenant_id, alert_key) WHERE alert_key IS NOT NULL DO NOTHING
        RETURNING id, owner_id, subject
      ), told_logged AS (
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
        SELECT \(tenant), 'task', id, 'create', \(system), \(requestID),
          jsonb_build_array(jsonb_build_object('field', 'subject', 'old', NULL, 'new', subject),
                            jsonb_build_object('field', 'owner_id', 'old', NULL, 'new', owner_id::text))
        FROM told
      )
      SELECT count(*) AS n FROM moved
      """)
    return try result[0].decode("n")
  }

  private static func page<Record: PoolableRecord>(
    _ type: Record.Type, _ connection: PostgresConnection, pool: UUID, token: PageToken?, tokens: PageTokenCodec,
    fingerprint: String, pageSize: Int,
    principal: Principal
  ) throws -> Page<PooledRecord> {
    var query: PostgresQuery =
      "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND pool_id = \(pool)"
    if let token { query.append(" AND (updated_at, id) < (\(token.key)::timestamptz, \(token.id))") }
    query.append(" ORDER BY updated_at DESC, id DESC LIMIT \(pageSize + 1)")
    var records = try connection.query(query).rows.map(Record.init(row:))
    var next: String?
    if records.count > pageSize {
      records.removeLast()
      let last = records[pageSize - 1]
      next = tokens.encode(PageToken(key: last.updatedAt.postgresText ?? "", id: last.id, query: fingerprint))
    }
    return Page(items: records.map(\.pooled), nextPageToken: next)
  }

  static let settingColumns = """
    name, description, hold_limit, count_closed, reclaim_cooldown_days, recycle_after_days, recycle_no_progress_days,
    protection_days, warning_days, qualifying_kinds
    """

  static func settingValues(_ s: PoolSettings) -> PostgresQuery {
    """
    \(s.name), \(s.description), \(s.holdLimit), \(s.countClosed), \(s.reclaimCooldownDays), \(s.recycleAfterDays),
    \(s.recycleNoProgressDays), \(s.protectionDays), \(s.warningDays), \(s.qualifyingKinds.map(\.rawValue))::text[]
    """
  }

  static let columns =
    "id, record_type, version, created_at, updated_at, archived_at, \(settingColumns)"

  static func pool(_ row: PostgresRow) throws -> Pool {
    var settings = PoolSettings(
      name: try row.decode("name"), recordType: RecordType(rawValue: try row.decode("record_type")) ?? .lead)
    settings.description = try row.decode("description")
    settings.holdLimit = try row.decode("hold_limit")
    settings.countClosed = try row.decode("count_closed")
    settings.reclaimCooldownDays = try row.decode("reclaim_cooldown_days")
    settings.recycleAfterDays = try row.decode("recycle_after_days")
    settings.recycleNoProgressDays = try row.decode("recycle_no_progress_days")
    settings.protectionDays = try row.decode("protection_days")
    settings.warningDays = try row.decode("warning_days")
    settings.qualifyingKinds = try row.decode("qualifying_kinds", as: [String].self).compactMap(InteractionKind.init(rawValue:))
    return Pool(
      id: try row.decode("id"), version: try row.decode("version"), settings: settings, createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"), archivedAt: try row.decode("archived_at"))
  }

  static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> Pool {
    guard
      let row = try connection.query("SELECT \(unsafeSQL: columns) FROM pools WHERE tenant_id = \(tenant) AND id = \(id)").first
    else { throw CRMError.notFound("pool \(id.lowercasedString) not found") }
    return try pool(row)
  }

  static func pools(_ connection: PostgresConnection, tenant: UUID) throws -> [Pool] {
    try connection.query(
      "SELECT \(unsafeSQL: columns) FROM pools WHERE tenant_id = \(tenant) AND archived_at IS NULL ORDER BY id"
    ).rows.map(pool)
  }

  private static func lock(_ connection: PostgresConnection, id: UUID, tenant: UUID, expectedVersion: Int64?) throws -> Pool {
    guard
      let row = try connection.query(
        "SELECT \(unsafeSQL: columns) FROM pools WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE"
      ).first
    else { throw CRMError.notFound("pool \(id.lowercasedString) not found") }
    let pool = try pool(row)
    if let expectedVersion, expectedVersion != pool.version { throw CRMError.staleEtag(current: pool.etag) }
    return pool
  }

  private static func members(_ connection: PostgresConnection, pool: UUID, tenant: UUID) throws -> [(
    userID: UUID, isAdmin: Bool
  )] {
    try connection.query(
      "SELECT user_id, is_admin FROM pool_members WHERE tenant_id = \(tenant) AND pool_id = \(pool) ORDER BY added_at, user_id"
    ).rows.map { (try $0.decode("user_id"), try $0.decode("is_admin")) }
  }

  @discardableResult
  private static func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    try CRMStore.translatingConstraints(
      ["pools_name": .alreadyExists(field: "pool.name", message: "another pool has this name")], body)
  }
}
