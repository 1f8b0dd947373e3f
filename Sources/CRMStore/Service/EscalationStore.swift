public import CRMCore
public import Foundation
import LibPQ

/// SQL for escalation rules (admins define them, everyone reads) and the job that fires them.
///
/// Each rule fires once per clock instance (warning and breach rules) or per status spell (age
/// rules): the firing's row in `escalation_firings` is inserted before the actions run, in the same
/// transaction, so two nodes (or two passes) never apply a rule twice. The actions go through the
/// ticket's normal write — SLA clocks are re-planned (a raised priority re-targets them) — and the
/// ticket's history names the rule.
public struct EscalationStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp

  /// A store over `database`; `now` is the SLA clock.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// What an admin sends to create a rule or replace one.
  public struct Definition: Sendable, Hashable {
    public var name: String
    public var isActive: Bool
    public var trigger: EscalationTrigger
    public var conditions: SLAPolicy.Conditions
    public var actions: EscalationActions

    /// A definition.
    public init(
      name: String, isActive: Bool, trigger: EscalationTrigger, conditions: SLAPolicy.Conditions, actions: EscalationActions
    ) {
      self.name = name
      self.isActive = isActive
      self.trigger = trigger
      self.conditions = conditions
      self.actions = actions
    }
  }

  /// The tenant's rules in the order they are tried.
  public func list(includeArchived: Bool = false, principal: Principal) async throws -> [EscalationRule] {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.rules(connection, tenant: principal.tenantID, includeArchived: includeArchived)
    }
  }

  /// Creates a rule at the end of the order.
  public func create(_ definition: Definition, context: ChangeLog.Context) async throws -> EscalationRule {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    let id = UUID.v7()
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Ticket>.claimRequestID(
        connection, method: "CreateEscalationRule", context: context, recordID: id)
      {
        return try Self.load(connection, id: first, tenant: tenant)
      }
      try Self.checkReferences(connection, definition.actions, tenant: tenant)
      let live = try Self.rules(connection, tenant: tenant, includeArchived: false)
      if live.count >= 200 { throw CRMError.failedPrecondition("a tenant keeps at most 200 escalation rules; archive one first") }
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          INSERT INTO escalation_rules (tenant_id, id, name, position, is_active, trigger, metric, level, minutes, status,
            conditions, actions, created_by, updated_by)
          VALUES (\(tenant), \(id), \(definition.name), \((live.map(\.position).max() ?? -1) + 1), \(definition.isActive),
            \(Self.values(definition.trigger)), \(StoredPolicy.conditions(definition.conditions))::jsonb,
            \(StoredActions.json(definition.actions))::jsonb, \(principal.userID), \(principal.userID))
          """)
      }
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// Replaces a rule's definition; firings already recorded stay (a rule does not fire twice on the
  /// same clock instance because it was edited).
  public func update(_ id: UUID, _ definition: Definition, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> EscalationRule
  {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.load(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      try Self.checkReferences(connection, definition.actions, tenant: tenant)
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          UPDATE escalation_rules SET name = \(definition.name), is_active = \(definition.isActive),
            (trigger, metric, level, minutes, status) = (\(Self.values(definition.trigger))),
            conditions = \(StoredPolicy.conditions(definition.conditions))::jsonb,
            actions = \(StoredActions.json(definition.actions))::jsonb, version = version + 1, updated_at = now(),
            updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id) AND archived_at IS NULL
          """)
      }
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// Archives a rule: it stops firing.
  public func archive(_ id: UUID, context: ChangeLog.Context) async throws {
    let principal = context.principal
    try principal.requireAdmin()
    try await database.withTenant(principal.tenantID) { connection in
      _ = try Self.load(connection, id: id, tenant: principal.tenantID, lock: true)
      try connection.query(
        """
        UPDATE escalation_rules SET archived_at = now(), version = version + 1, updated_at = now(),
          updated_by = \(principal.userID)
        WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND archived_at IS NULL
        """)
    }
  }

  // MARK: - The job

  /// Fires every live rule whose trigger is met by `now` (default: the SLA clock) across tenants
  /// (`only`: one tenant). Returns how many times rules fired.
  public func run(now moment: Timestamp? = nil, tenant only: UUID? = nil, batchSize: Int = 200) async throws -> Int {
    let at = moment ?? now()
    let tenants: [UUID] = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id FROM crm_escalation_tenants()").rows.map { try $0.decode("tenant_id") }
    }
    var fired = 0
    for tenant in tenants where only == nil || only == tenant {
      while true {
        let count = try await database.withTenant(tenant) { connection in
          try Self.fireBatch(connection, tenant: tenant, at: at, limit: batchSize)
        }
        fired += count
        if count < batchSize { break }
      }
    }
    return fired
  }

  /// One pass over the tenant's rules: up to `limit` (rule, ticket) pairs whose trigger is met and
  /// that have not fired, each claimed by its firing row and acted on.
  static func fireBatch(_ connection: PostgresConnection, tenant: UUID, at: Timestamp, limit: Int) throws -> Int {
    let rules = try Self.rules(connection, tenant: tenant, includeArchived: false).filter(\.isActive)
    let system = Principal(tenantID: tenant, userID: PoolStore.systemActor, role: .admin, ownersInHierarchy: [])
    var fired = 0
    for rule in rules where fired < limit {
      let matches = Self.matching(rule.conditions)
      let due: PostgresQuery
      switch rule.trigger {
      case .warning(let metric):
        due = """
          SELECT i.ticket_id, i.metric || '#' || i.instance AS key FROM sla_instances i
          JOIN tickets t ON t.tenant_id = i.tenant_id AND t.id = i.ticket_id
          WHERE i.tenant_id = \(tenant) AND i.metric = \(metric.rawValue) AND i.warned
            AND t.status NOT IN ('solved', 'closed') AND t.archived_at IS NULL\(matches)
            AND NOT EXISTS (SELECT 1 FROM escalation_firings f WHERE f.tenant_id = i.tenant_id AND f.rule_id = \(rule.id)
                            AND f.ticket_id = i.ticket_id AND f.key = i.metric || '#' || i.instance)
          LIMIT \(limit - fired)
          """
      case .breach(let metric, _, let after):
        due = """
          SELECT i.ticket_id, i.metric || '#' || i.instance AS key FROM sla_instances i
          JOIN tickets t ON t.tenant_id = i.tenant_id AND t.id = i.ticket_id
          WHERE i.tenant_id = \(tenant) AND i.metric = \(metric.rawValue) AND i.breached
            AND i.breach_at <= \(at)::timestamptz - make_interval(mins => \(after))
            AND t.status NOT IN ('solved', 'closed') AND t.archived_at IS NULL\(matches)
            AND NOT EXISTS (SELECT 1 FROM escalation_firings f WHERE f.tenant_id = i.tenant_id AND f.rule_id = \(rule.id)
                            AND f.ticket_id = i.ticket_id AND f.key = i.metric || '#' || i.instance)
          LIMIT \(limit - fired)
          """
      case .age(let status, let minutes):
        due = """
          SELECT t.id AS ticket_id, t.status_changed_at::text AS key FROM tickets t
          WHERE t.tenant_id = \(tenant) AND t.status = \(status.rawValue) AND t.archived_at IS NULL
            AND t.status_changed_at <= \(at)::timestamptz - make_interval(mins => \(minutes))\(matches)
            AND NOT EXISTS (SELECT 1 FROM escalation_firings f WHERE f.tenant_id = t.tenant_id AND f.rule_id = \(rule.id)
                            AND f.ticket_id = t.id AND f.key = t.status_changed_at::text)
          LIMIT \(limit - fired)
          """
      }
      for row in try connection.query(due).rows {
        let ticketID: UUID = try row.decode("ticket_id")
        let key: String = try row.decode("key")
        let claimed = try connection.query(
          """
          INSERT INTO escalation_firings (tenant_id, rule_id, ticket_id, key) VALUES (\(tenant), \(rule.id), \(ticketID), \(key))
          ON CONFLICT DO NOTHING
          """)
        guard claimed.affectedRows == 1 else { continue }
        fired += 1
        try apply(rule, to: ticketID, connection, principal: system, at: at)
      }
    }
    return fired
  }

  /// The rule's conditions as SQL over the ticket `t` (and its account), so the scan returns only
  /// tickets the rule applies to: the same AND-across, OR-within semantics as ``SLAPolicy/Conditions``.
  static func matching(_ c: SLAPolicy.Conditions) -> PostgresQuery {
    var sql: PostgresQuery = ""
    if !c.priorities.isEmpty { sql.append(" AND t.priority = ANY(\(c.priorities.map(\.rawValue))::text[])") }
    if !c.types.isEmpty { sql.append(" AND t.type = ANY(\(c.types.map(\.rawValue))::text[])") }
    if !c.channels.isEmpty { sql.append(" AND t.channel = ANY(\(c.channels.map(\.rawValue))::text[])") }
    if !c.groupIDs.isEmpty { sql.append(" AND t.group_id = ANY(\(Array(c.groupIDs))::uuid[])") }
    if !c.tags.isEmpty { sql.append(" AND t.tags && \(Array(c.tags))::text[]") }
    if !c.accountTiers.isEmpty || !c.accountTags.isEmpty {
      sql.append(" AND EXISTS (SELECT 1 FROM accounts a WHERE a.tenant_id = t.tenant_id AND a.id = t.account_id")
      if !c.accountTiers.isEmpty { sql.append(" AND a.tier = ANY(\(Array(c.accountTiers))::text[])") }
      if !c.accountTags.isEmpty { sql.append(" AND a.tags && \(Array(c.accountTags))::text[]") }
      sql.append(unsafeSQL: ")")
    }
    return sql
  }

  /// Applies `rule`'s actions to the ticket: its fields
  /// through the ticket's write (clocks re-planned), a task for the assignee's manager.
  static func apply(
    _ rule: EscalationRule, to ticketID: UUID, _ connection: PostgresConnection, principal: Principal, at: Timestamp
  )
    throws
  {
    let tenant = principal.tenantID
    guard
      let row = try connection.query(
        "SELECT \(unsafeSQL: Ticket.columns) FROM tickets WHERE tenant_id = \(tenant) AND id = \(ticketID) FOR UPDATE"
      ).first
    else { return }
    let current = try Ticket(row: row)
    var next = current
    rule.actions.apply(to: &next.fields)
    let context = ChangeLog.Context(principal: principal, requestID: "escalation:\(rule.id.lowercasedString)")
    let note = FieldChange(
      field: "escalation_rule", oldValue: .null,
      newValue: .object([("id", .string(rule.id.lowercasedString)), ("name", .string(rule.name))]))
    var extra: [PostgresQuery] = []
    if rule.actions.taskForManager, let assignee = next.fields.assigneeID,
      let manager = try connection.query(
        """
        SELECT t.manager_id FROM users u JOIN teams t ON t.tenant_id = u.tenant_id AND t.id = u.team_id
        WHERE u.tenant_id = \(tenant) AND u.id = \(assignee) AND t.manager_id IS NOT NULL AND t.manager_id <> u.id
        """
      ).first?.decode("manager_id", as: UUID.self)
    {
      let subject = String("Escalated: #\(current.number) \(current.fields.subject)".unicodeScalars.prefix(255))
      extra.append(
        """
        WITH raised AS (
          INSERT INTO tasks (tenant_id, id, owner_id, subject, description, due_at, priority, related_type, related_id,
                             created_by, updated_by)
          VALUES (\(tenant), crm_uuid_v7(), \(manager), \(subject),
            \("Escalation rule \"\(rule.name)\" fired on ticket #\(current.number)."), now() + interval '4 hours', 'high',
            'ticket', \(ticketID), \(principal.userID), \(principal.userID))
          RETURNING id, subject
        )
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
        SELECT \(tenant), 'task', id, 'create', NULL, \(context.requestID),
          jsonb_build_array(jsonb_build_object('field', 'subject', 'old', NULL, 'new', subject))
        FROM raised
        """)
    }
    _ = try TicketStore.save(
      connection, next, over: current, context: context, at: at, note: "escalation \"\(rule.name)\"", notes: [note],
      extra: extra, always: true)
  }

  // MARK: - Rows

  static let columns = """
    id, name, position, is_active, trigger, metric, level, minutes, status, conditions, actions, version, created_at,
    updated_at
    """

  static func rules(_ connection: PostgresConnection, tenant: UUID, includeArchived: Bool) throws -> [EscalationRule] {
    try connection.query(
      """
      SELECT \(unsafeSQL: columns) FROM escalation_rules
      WHERE tenant_id = \(tenant)\(unsafeSQL: includeArchived ? "" : " AND archived_at IS NULL")
      ORDER BY position, id
      """
    ).rows.map(Self.rule(row:))
  }

  static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool = false) throws -> EscalationRule {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: columns) FROM escalation_rules WHERE tenant_id = \(tenant) AND id = \(id) AND archived_at IS NULL
      \(unsafeSQL: lock ? "FOR UPDATE" : "")
      """)
    guard let row = rows.first else { throw CRMError.notFound("escalation rule \(id.lowercasedString) not found") }
    return try rule(row: row)
  }

  static func rule(row: PostgresRow) throws -> EscalationRule {
    let metric = try row.decode("metric", as: String?.self).flatMap(SLAMetric.init(rawValue:)) ?? .resolution
    let minutes: Int = try row.decode("minutes")
    let trigger: EscalationTrigger
    switch try row.decode("trigger", as: String.self) {
    case "warning": trigger = .warning(metric)
    case "breach": trigger = .breach(metric, level: try row.decode("level", as: Int?.self) ?? 1, afterMinutes: minutes)
    default:
      trigger = .age(TicketStatus(rawValue: try row.decode("status", as: String?.self) ?? "") ?? .open, minutes: minutes)
    }
    return EscalationRule(
      id: try row.decode("id"), version: try row.decode("version"), name: try row.decode("name"),
      position: try row.decode("position"), isActive: try row.decode("is_active"), trigger: trigger,
      conditions: try StoredPolicy.conditions(from: row.decode("conditions")),
      actions: try StoredActions.decode(row.decode("actions")), createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"))
  }

  /// The `(trigger, metric, level, minutes, status)` values of a trigger.
  static func values(_ trigger: EscalationTrigger) -> PostgresQuery {
    switch trigger {
    case .warning(let metric): "'warning', \(metric.rawValue), NULL::integer, 0, NULL::text"
    case .breach(let metric, let level, let after): "'breach', \(metric.rawValue), \(level), \(after), NULL::text"
    case .age(let status, let minutes): "'age', NULL::text, NULL::integer, \(minutes), \(status.rawValue)"
    }
  }

  static func checkReferences(_ connection: PostgresConnection, _ actions: EscalationActions, tenant: UUID) throws {
    if let user = actions.assigneeID, try TicketStore.activeUser(connection, user, tenant: tenant) == nil {
      throw CRMError.invalid("rule.actions.assignee_id", "no such active user", reason: "NOT_FOUND")
    }
    if let group = actions.groupID,
      try connection.query("SELECT 1 FROM teams WHERE tenant_id = \(tenant) AND id = \(group)").first == nil
    {
      throw CRMError.invalid("rule.actions.group_id", "no such team", reason: "NOT_FOUND")
    }
  }

  static func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    try CRMStore.translatingConstraints(
      ["escalation_rules_name": .alreadyExists(field: "rule.name", message: "another escalation rule has this name")], body)
  }
}

/// How a rule's actions are stored (jsonb).
enum StoredActions {
  struct Stored: Codable {
    var assigneeId: UUID?
    var groupId: UUID?
    var raisePriorityTo: String?
    var addTag: String?
    var taskForManager: Bool?
  }

  static func json(_ actions: EscalationActions) -> PostgresJSON? {
    StoredJSON.encode(
      Stored(
        assigneeId: actions.assigneeID, groupId: actions.groupID, raisePriorityTo: actions.raisePriorityTo?.rawValue,
        addTag: actions.addTag, taskForManager: actions.taskForManager))
  }

  static func decode(_ json: PostgresJSON?) throws -> EscalationActions {
    let stored = try StoredJSON.decode(Stored.self, from: json)
    return EscalationActions(
      assigneeID: stored?.assigneeId, groupID: stored?.groupId,
      raisePriorityTo: stored?.raisePriorityTo.flatMap(TicketPriority.init(rawValue:)), addTag: stored?.addTag,
      taskForManager: stored?.taskForManager ?? false)
  }
}
