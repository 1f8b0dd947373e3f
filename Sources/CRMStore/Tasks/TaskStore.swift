public import CRMCore
public import Foundation
import LibPQ

/// SQL for tasks: create, read, update, archive, the assignee's list, and the alerts job that raises
/// tasks for stale deals and for pool holdings about to return.
public struct TaskStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<WorkTask>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Creates a task for `ownerID` (the caller when `nil`).
  public func create(_ fields: TaskFields, ownerID: UUID?, context: ChangeLog.Context) async throws -> WorkTask {
    let principal = context.principal
    let owner = ownerID ?? principal.userID
    let draft = WorkTask(
      id: UUID.v7(), version: 1, ownerID: owner, fields: fields, completedAt: fields.status == .done ? .now : nil,
      alertKind: nil, flaggedManagerID: nil, createdAt: .now, updatedAt: .now, createdBy: principal.userID,
      updatedBy: principal.userID, archivedAt: nil)
    return try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.create(connection, method: "CreateTask", draft, duplicateAction: .allow, context: context) {
        try Owners.checkAssignable(connection, owner: owner, field: "task.owner_id", principal: principal)
        if let related = fields.related { try RecordAccess.requireVisible(connection, related, principal: principal) }
      }.record
    }
  }

  /// The task, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> WorkTask {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// Applies the fields in `mask`; marking it done stamps `completed_at`, reopening clears it.
  public func update(
    _ id: UUID, patch: TaskFields, mask: Set<TaskField>, newOwnerID: UUID?, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> WorkTask {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateTask", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("task \(id.lowercasedString) is archived; undelete it first")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      if mask.contains(.ownerID), let newOwnerID, newOwnerID != current.ownerID {
        try Owners.checkAssignable(connection, owner: newOwnerID, field: "task.owner_id", principal: principal)
        next.ownerID = newOwnerID
      }
      if mask.contains(.related), let related = next.fields.related, related != current.fields.related {
        try RecordAccess.requireVisible(connection, related, principal: principal)
      }
      if next.fields.status != current.fields.status {
        next.completedAt = next.fields.status == .done ? .now : nil
      }
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Archives (soft-deletes) the task.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> WorkTask {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// What a task list shows.
  public struct Filter: Sendable {
    /// The assignee (the caller when `nil`).
    public var ownerID: UUID?
    /// Done and cancelled tasks too.
    public var includeClosed = false
    /// Also tasks that flag the assignee as the owner's manager.
    public var includeFlagged = false
    /// Only tasks about this record.
    public var related: RecordLink?

    /// A filter.
    public init(ownerID: UUID? = nil, includeClosed: Bool = false, includeFlagged: Bool = false, related: RecordLink? = nil) {
      self.ownerID = ownerID
      self.includeClosed = includeClosed
      self.includeFlagged = includeFlagged
      self.related = related
    }

    var fingerprint: String {
      ["tasks", ownerID?.lowercasedString ?? "", "\(includeClosed)", "\(includeFlagged)", related?.key ?? ""].joined(
        separator: "|")
    }
  }

  /// One page of a user's tasks: by due time, so overdue ones come first, then those due later, then
  /// those without a due time; ties by id.
  public func list(_ filter: Filter, pageSize: Int, pageToken: String, principal: Principal) async throws -> Page<WorkTask> {
    let owner = filter.ownerID ?? principal.userID
    guard principal.canRead(.task, ownedBy: owner) else {
      throw CRMError.permissionDenied("only the assignee, their managers or an admin may list their tasks")
    }
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      let sortKey = "coalesce(due_at, 'infinity'::timestamptz)"
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: WorkTask.columns), \(unsafeSQL: sortKey)::text AS sort_key FROM tasks WHERE tenant_id = \(principal.tenantID)"
      query.append(
        filter.includeFlagged
          ? " AND (owner_id = \(owner) OR flagged_manager_id = \(owner))" : " AND owner_id = \(owner)")
      query.append(unsafeSQL: " AND archived_at IS NULL")
      if !filter.includeClosed { query.append(unsafeSQL: " AND status IN ('open', 'in_progress')") }
      if let related = filter.related {
        query.append(" AND related_type = \(related.type.rawValue) AND related_id = \(related.id)")
      }
      if let token { query.append(" AND (\(unsafeSQL: sortKey), id) > (\(token.key)::timestamptz, \(token.id))") }
      query.append(" ORDER BY \(unsafeSQL: sortKey), id LIMIT \(pageSize + 1)")
      let rows = try connection.query(query)
      var tasks = try rows.rows.map(WorkTask.init(row:))
      var next: String?
      if tasks.count > pageSize {
        tasks.removeLast()
        next = tokens.encode(
          PageToken(key: try rows[pageSize - 1].decode("sort_key"), id: tasks[pageSize - 1].id, query: filter.fingerprint))
      }
      return Page(items: tasks, nextPageToken: next)
    }
  }

  /// The open tasks about `record` whose assignee the caller may read (their own, their reports',
  /// every one for an admin), the earliest due first; at most `limit`, and whether there are more.
  public func upcoming(about record: RecordLink, limit: Int, principal: Principal) async throws -> (
    tasks: [WorkTask], more: Bool
  ) {
    try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = """
        SELECT \(unsafeSQL: WorkTask.columns) FROM tasks
        WHERE tenant_id = \(principal.tenantID) AND related_type = \(record.type.rawValue) AND related_id = \(record.id)
          AND archived_at IS NULL AND status IN ('open', 'in_progress')
        """
      if let owners = principal.readableOwners(.task) { query.append(" AND owner_id = ANY(\(owners)::uuid[])") }
      query.append(" ORDER BY coalesce(due_at, 'infinity'::timestamptz), id LIMIT \(limit + 1)")
      let tasks = try connection.query(query).rows.map(WorkTask.init(row:))
      return (Array(tasks.prefix(limit)), tasks.count > limit)
    }
  }

  /// Sets the tenant's stale-deal days (admins).
  public func setStaleDealDays(_ days: Int, principal: Principal) async throws {
    try principal.requireAdmin()
    try await database.withTenant(principal.tenantID) { connection in
      _ = try connection.query("SELECT crm_set_stale_deal_days(\(principal.tenantID), \(days))")
    }
  }

  // MARK: - Alerts

  /// What one alerts pass raised.
  public struct AlertReport: Sendable {
    public var staleDeals = 0
    public var expiringHoldings = 0
  }

  /// Raises a task, once per event, for the owner of every open deal without activity for the
  /// tenant's stale-deal days (flagging the owner's team manager), and for the holder of every pool
  /// record returning within its pool's warning days. Idempotent (each event has a key) and safe on
  /// several nodes (a per-tenant advisory lock that other nodes skip).
  public func raiseAlerts(tenant only: UUID? = nil) async throws -> AlertReport {
    let tenants = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id, stale_deal_days FROM crm_alert_tenants()").rows.map {
        (try $0.decode("tenant_id", as: UUID.self), try $0.decode("stale_deal_days", as: Int.self))
      }
    }
    var report = AlertReport()
    for (tenant, days) in tenants where only == nil || only == tenant {
      let (stale, expiring) = try await database.withTenant(tenant) { connection -> (Int, Int) in
        let lock = try connection.query("SELECT pg_try_advisory_xact_lock(hashtextextended('alerts:' || \(tenant), 0)) AS ok")
        guard try lock[0].decode("ok", as: Bool.self) else { return (0, 0) }
        return (
          try Self.raiseStaleDeals(connection, days: days, tenant: tenant),
          try Self.raiseExpiringHoldings(connection, tenant: tenant)
        )
      }
      report.staleDeals += stale
      report.expiringHoldings += expiring
    }
    return report
  }

  /// One task per stale open deal and quiet spell (the key carries the last sign of life).
  static func raiseStaleDeals(_ connection: PostgresConnection, days: Int, tenant: UUID) throws -> Int {
    let rows = try connection.query(
      """
      WITH stale AS (
        SELECT o.id, o.name, o.owner_id, greatest(o.last_activity_at, o.stage_entered_at) AS quiet_since, t.manager_id
        FROM opportunities o
        JOIN users u ON u.tenant_id = o.tenant_id AND u.id = o.owner_id
        LEFT JOIN teams t ON t.tenant_id = u.tenant_id AND t.id = u.team_id AND t.manager_id IS DISTINCT FROM o.owner_id
        WHERE o.tenant_id = \(tenant) AND o.state = 'open' AND o.archived_at IS NULL
          -- Implied by the next line (greatest ≥ coalesce); it is what opportunities_open_by_activity indexes.
          AND coalesce(o.last_activity_at, o.stage_entered_at) < now() - make_interval(days => \(days))
          AND greatest(o.last_activity_at, o.stage_entered_at) < now() - make_interval(days => \(days))
      ), raised AS (
        INSERT INTO tasks (tenant_id, id, owner_id, subject, description, due_at, priority, related_type, related_id,
                           alert_kind, alert_key, flagged_manager_id, created_by, updated_by)
        SELECT \(tenant), crm_uuid_v7(), s.owner_id, left('Stale deal: ' || s.name, 255),
          'No activity since ' || to_char(s.quiet_since AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' (' || \(days) ||
            ' days or more). Log a call or meeting, move the stage, or close it.',
          now() + interval '1 day', 'high', 'opportunity', s.id, 'stale_deal',
          'stale_deal:' || s.id || ':' || extract(epoch FROM s.quiet_since)::bigint, s.manager_id,
          \(PoolStore.systemActor), \(PoolStore.systemActor)
        FROM stale s
        ON CONFLICT (tenant_id, alert_key) WHERE alert_key IS NOT NULL DO NOTHING
        RETURNING id, owner_id, subject
      )
      \(Self.logCreated())
      """)
    return try rows[0].decode("n")
  }

  /// One task per holding returning within its pool's warning days (the key carries the due time),
  /// one INSERT per pool for all its holdings.
  static func raiseExpiringHoldings(_ connection: PostgresConnection, tenant: UUID) throws -> Int {
    var raised = 0
    for pool in try PoolStore.pools(connection, tenant: tenant) {
      let settings = pool.settings
      guard settings.recycleAfterDays != nil || settings.recycleNoProgressDays != nil else { continue }
      let horizon = Timestamp(
        microsecondsSinceEpoch: Timestamp.now.microsecondsSinceEpoch + Int64(settings.warningDays) * 86_400_000_000)
      let holdings =
        settings.recordType == .lead
        ? try PoolStore.holdings(Lead.self, connection, pool: pool, holder: nil, dueBy: horizon, limit: 10_000, tenant: tenant)
        : try PoolStore.holdings(Account.self, connection, pool: pool, holder: nil, dueBy: horizon, limit: 10_000, tenant: tenant)
      let due = holdings.compactMap { holding in holding.returnsAt.map { (holding, $0) } }
      guard !due.isEmpty else { continue }
      let rows = try connection.query(
        """
        WITH raised AS (
          INSERT INTO tasks (tenant_id, id, owner_id, subject, description, due_at, priority, related_type, related_id,
                             alert_kind, alert_key, created_by, updated_by)
          SELECT \(tenant), crm_uuid_v7(), a.owner, left(a.subject, 255), a.description, a.due, 'high', a.related_type,
                 a.related_id, 'expiring_holding', left(a.key, 200), \(PoolStore.systemActor), \(PoolStore.systemActor)
          FROM unnest(\(due.map(\.0.holderID))::uuid[], \(due.map { "Returns to pool: " + $0.0.displayName })::text[],
                      \(due.map { "Unless worked, this \($0.0.record.type.rawValue) returns to its pool at \($0.1.rfc3339) (\($0.0.reason ?? "no_activity"))." })::text[],
                      \(due.map(\.1))::timestamptz[], \(due.map(\.0.record.type.rawValue))::text[], \(due.map(\.0.record.id))::uuid[],
                      \(due.map { "expiring:\($0.0.record.key):\($0.1.seconds)" })::text[])
            AS a(owner, subject, description, due, related_type, related_id, key)
          ON CONFLICT (tenant_id, alert_key) WHERE alert_key IS NOT NULL DO NOTHING
          RETURNING id, owner_id, subject
        )
        \(Self.logCreated())
        """)
      raised += try rows[0].decode("n", as: Int.self)
    }
    return raised
  }

  /// The tail of an alert insert (`WITH raised AS (INSERT INTO tasks … RETURNING id, owner_id,
  /// subject)`): a change-log row per raised task, and the count. The alert job raises as the system
  /// actor; a caller's context (the dunning job's) names its own actor, request id and origin.
  static func logCreated(_ context: ChangeLog.Context? = nil) -> PostgresQuery {
    """
    , logged AS (
      INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin)
      SELECT crm_current_tenant(), 'task', id, 'create', \(context?.principal.userID ?? PoolStore.systemActor),
        \(context.map { $0.requestID } ?? "alerts"),
        jsonb_build_array(jsonb_build_object('field', 'subject', 'old', NULL, 'new', subject),
                          jsonb_build_object('field', 'owner_id', 'old', NULL, 'new', owner_id::text)),
        \(context?.origin)
      FROM raised
    )
    SELECT count(*) AS n FROM raised
    """
  }
}
