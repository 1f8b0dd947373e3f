public import CRMCore
public import Foundation
import LibPQ

/// Trigger rules' definitions (admins). The rules themselves run in PostgreSQL, from the change log's
/// statement trigger (migration 0037, docs/rules.md): this store writes what that trigger reads, each
/// field already resolved to its stored column and each value to the form the engine compares.
public struct TriggerRuleStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Creates a rule; a repeated `requestID` returns the first result.
  public func create(_ definition: TriggerRuleDefinition, context: ChangeLog.Context) async throws -> TriggerRule {
    try context.principal.requireAdmin()
    let id = UUID.v7()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Lead>.claimRequestID(
        connection, method: "CreateTriggerRule", context: context, recordID: id)
      {
        return try Self.load(connection, id: first, tenant: tenant, lock: false)
      }
      try Self.checkReferences(connection, definition, tenant: tenant)
      let live = try connection.query(
        """
        SELECT count(*) AS n FROM trigger_rules
        WHERE tenant_id = \(tenant) AND record_type = \(definition.recordType.rawValue) AND archived_at IS NULL
        """)[0].decode("n", as: Int.self)
      if live >= TriggerRuleDefinition.maxRulesPerType {
        throw CRMError.failedPrecondition(
          "a tenant has at most \(TriggerRuleDefinition.maxRulesPerType) \(definition.recordType.rawValue) rules; delete one first"
        )
      }
      try connection.query(
        """
        INSERT INTO trigger_rules (tenant_id, id, record_type, name, position, is_active, on_create, on_update, conditions,
                                   actions, created_by, updated_by)
        VALUES (\(tenant), \(id), \(definition.recordType.rawValue), \(definition.name), \(definition.position),
                \(definition.isActive), \(definition.onCreate), \(definition.onUpdate),
                \(StoredRule.conditions(definition.conditions, definition.recordType))::jsonb, \(StoredRule.actions(definition))::jsonb,
                \(context.principal.userID), \(context.principal.userID))
        """)
      return try Self.load(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Replaces a rule's definition (not its record type).
  public func update(_ id: UUID, _ definition: TriggerRuleDefinition, expectedVersion: Int64?, context: ChangeLog.Context)
    async throws -> TriggerRule
  {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.load(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if definition.recordType != current.definition.recordType {
        throw CRMError.invalid("rule.record_type", "a rule's record type cannot change", reason: "INVALID")
      }
      try Self.checkReferences(connection, definition, tenant: tenant)
      try connection.query(
        """
        UPDATE trigger_rules SET name = \(definition.name), position = \(definition.position),
          is_active = \(definition.isActive), on_create = \(definition.onCreate), on_update = \(definition.onUpdate),
          conditions = \(StoredRule.conditions(definition.conditions, definition.recordType))::jsonb, actions = \(StoredRule.actions(definition))::jsonb,
          version = version + 1, updated_at = now(), updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.load(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Archives a rule: it stops running; history entries keep naming it.
  public func archive(_ id: UUID, context: ChangeLog.Context) async throws {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    try await database.withTenant(tenant) { connection in
      _ = try Self.load(connection, id: id, tenant: tenant, lock: true)
      try connection.query(
        """
        UPDATE trigger_rules SET archived_at = now(), version = version + 1, updated_at = now(),
          updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
    }
  }

  /// One rule (archived ones too, so a history entry's rule can be looked up).
  public func get(_ id: UUID, principal: Principal) async throws -> TriggerRule {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.load(connection, id: id, tenant: principal.tenantID, lock: false, archived: true)
    }
  }

  /// The tenant's live rules in the order they run (one record type's when given).
  public func list(recordType: RecordType?, principal: Principal) async throws -> [TriggerRule] {
    try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Self.columns) FROM trigger_rules WHERE tenant_id = \(principal.tenantID) AND archived_at IS NULL"
      if let recordType { query.append(" AND record_type = \(recordType.rawValue)") }
      query.append(unsafeSQL: " ORDER BY record_type, position, id")
      return try connection.query(query).rows.map(Self.rule)
    }
  }

  /// The names of the rules `ids` name (archived ones too), for history entries.
  static func names(_ connection: PostgresConnection, ids: [UUID], tenant: UUID) throws -> [UUID: String] {
    guard !ids.isEmpty else { return [:] }
    let rows = try connection.query(
      "SELECT id, name FROM trigger_rules WHERE tenant_id = \(tenant) AND id = ANY(\(ids)::uuid[])")
    return Dictionary(
      uniqueKeysWithValues: try rows.rows.map { (try $0.decode("id", as: UUID.self), try $0.decode("name", as: String.self)) })
  }

  // MARK: - Rows

  static let columns =
    "id, version, record_type, name, position, is_active, on_create, on_update, conditions::text AS conditions, actions::text AS actions, created_at, updated_at"

  private static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool, archived: Bool = false) throws
    -> TriggerRule
  {
    var query: PostgresQuery = "SELECT \(unsafeSQL: columns) FROM trigger_rules WHERE tenant_id = \(tenant) AND id = \(id)"
    if !archived { query.append(unsafeSQL: " AND archived_at IS NULL") }
    if lock { query.append(unsafeSQL: " FOR UPDATE") }
    guard let row = try connection.query(query).first else {
      throw CRMError.notFound("trigger rule \(id.lowercasedString) not found")
    }
    return try rule(row)
  }

  private static func rule(_ row: PostgresRow) throws -> TriggerRule {
    let type = RecordType(rawValue: try row.decode("record_type")) ?? .lead
    let definition = TriggerRuleDefinition(
      recordType: type, name: try row.decode("name"), position: try row.decode("position"),
      isActive: try row.decode("is_active"), onCreate: try row.decode("on_create"), onUpdate: try row.decode("on_update"),
      conditions: try StoredRule.conditions(row.decode("conditions")), actions: try StoredRule.actions(row.decode("actions")))
    return TriggerRule(
      id: try row.decode("id"), version: try row.decode("version"), definition: definition,
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }

  /// A task's named assignee must be a user of the tenant; a named approval process must be one of the
  /// rule's record type.
  private static func checkReferences(_ connection: PostgresConnection, _ definition: TriggerRuleDefinition, tenant: UUID) throws
  {
    for (index, action) in definition.actions.enumerated() {
      switch action {
      case .createTask(let task):
        guard let assignee = task.assigneeID else { continue }
        let found = try connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenant) AND id = \(assignee)").count
        if found == 0 {
          throw CRMError.invalid("rule.actions[\(index)].create_task.assignee_id", "no such user", reason: "NOT_FOUND")
        }
      case .submitForApproval(let process?):
        let found = try connection.query(
          """
          SELECT 1 FROM approval_processes
          WHERE tenant_id = \(tenant) AND id = \(process) AND record_type = \(definition.recordType.rawValue) AND archived_at IS NULL
          """
        ).count
        if found == 0 {
          throw CRMError.invalid(
            "rule.actions[\(index)].submit_for_approval.process_id", "no such \(definition.recordType.rawValue) approval process",
            reason: "NOT_FOUND")
        }
      default: continue
      }
    }
  }

}

/// The JSON the rules engine reads (migration 0037 documents its shape).
enum StoredRule {
  static func conditions(_ conditions: [RuleCondition], _ type: RecordType) -> PostgresJSON {
    let columns = Dictionary(uniqueKeysWithValues: RuleField.catalogue(type).map { ($0.name, $0.column) })
    return PostgresJSON(
      JSONValue.array(
        conditions.map { condition in
          .object([
            ("field", .string(condition.field)), ("column", .string(columns[condition.field] ?? condition.field)),
            ("op", .string(condition.op.rawValue)), ("value", condition.value),
          ])
        }
      ).rendered)
  }

  /// A set_field action as `crm_apply_set_field` reads it: the field's column, and the values a guarded
  /// field may be moved from.
  static func setFieldValue(_ name: String, _ value: JSONValue, recordType: RecordType) -> JSONValue {
    let field = RuleField.catalogue(recordType).first { $0.name == name }
    return .object([
      ("type", .string("set_field")), ("field", .string(name)), ("column", .string(field?.column ?? name)), ("value", value),
      ("from", field?.settableFrom.map { .array($0.map { .string($0) }) } ?? .null),
    ])
  }

  static func setField(_ name: String, _ value: JSONValue, recordType: RecordType) -> PostgresJSON {
    PostgresJSON(setFieldValue(name, value, recordType: recordType).rendered)
  }

  static func actions(_ definition: TriggerRuleDefinition) -> PostgresJSON {
    PostgresJSON(
      JSONValue.array(
        definition.actions.map { action in
          switch action {
          case .setField(let name, let value): setFieldValue(name, value, recordType: definition.recordType)
          case .addTag(let tag): .object([("type", .string("add_tag")), ("tag", .string(tag))])
          case .createTask(let task):
            .object([
              ("type", .string("create_task")), ("subject", .string(task.subject)), ("description", .optional(task.description)),
              ("priority", .string(task.priority.rawValue)), ("due_in_hours", task.dueInHours.map { .int(Int64($0)) } ?? .null),
              ("assignee_id", .optional(task.assigneeID?.lowercasedString)),
            ])
          case .emitEvent(let name): .object([("type", .string("emit_event")), ("name", .string(name))])
          case .submitForApproval(let process):
            .object([("type", .string("submit_for_approval")), ("process_id", .optional(process?.lowercasedString))])
          case .assign: .object([("type", .string("assign"))])
          }
        }
      ).rendered)
  }

  static func conditions(_ json: PostgresJSON) throws -> [RuleCondition] {
    try JSONDecoder().decode([JSONValue].self, from: Data(json.text.utf8)).compactMap { stored in
      guard let field = stored["field"]?.stringValue, let op = stored["op"]?.stringValue.flatMap(RuleOperator.init(rawValue:))
      else { return nil }
      return RuleCondition(field: field, op: op, value: stored["value"] ?? .null)
    }
  }

  static func actions(_ json: PostgresJSON) throws -> [RuleAction] {
    try JSONDecoder().decode([JSONValue].self, from: Data(json.text.utf8)).compactMap { stored in
      switch stored["type"]?.stringValue {
      case "set_field": stored["field"]?.stringValue.map { .setField($0, stored["value"] ?? .null) }
      case "add_tag": stored["tag"]?.stringValue.map { .addTag($0) }
      case "emit_event": stored["name"]?.stringValue.map { .emitEvent($0) }
      case "assign": .assign
      case "submit_for_approval": .submitForApproval(processID: stored["process_id"]?.stringValue.flatMap(UUID.init(uuidString:)))
      case "create_task":
        .createTask(
          RuleTask(
            subject: stored["subject"]?.stringValue ?? "",
            description: stored["description"]?.stringValue,
            priority: stored["priority"]?.stringValue.flatMap(TaskPriority.init(rawValue:)) ?? .normal,
            dueInHours: {
              if case .int(let hours) = stored["due_in_hours"] { return Int(hours) }
              return nil
            }(),
            assigneeID: stored["assignee_id"]?.stringValue.flatMap(UUID.init(uuidString:))))
      default: nil
      }
    }
  }
}
