public import CRMCore
public import Foundation
import LibPQ

/// SQL for assignment rules: their definitions (admins), routing a record through them inside the
/// write's transaction, dry runs, and bulk reassignment.
///
/// A team rule's rotation is fair under concurrency: routing locks the rule's row before it reads
/// the members' counts and takes the next turn, so two concurrent creates never pick from the same
/// (stale) turn; the lock is held until the create commits.
public struct AssignmentStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// What an admin sends to create a rule or replace one.
  public struct Definition: Sendable {
    public var recordType: RecordType
    public var name: String
    public var position: Int
    public var isActive: Bool
    public var criteria: AssignmentCriteria
    public var action: AssignmentAction

    /// A definition.
    public init(
      recordType: RecordType, name: String, position: Int, isActive: Bool, criteria: AssignmentCriteria,
      action: AssignmentAction
    ) {
      self.recordType = recordType
      self.name = name
      self.position = position
      self.isActive = isActive
      self.criteria = criteria
      self.action = action
    }
  }

  /// Creates a rule (admins).
  public func create(_ definition: Definition, context: ChangeLog.Context) async throws -> AssignmentRule {
    try context.principal.requireAdmin()
    let id = UUID.v7()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Lead>.claimRequestID(
        connection, method: "CreateAssignmentRule", context: context, recordID: id)
      {
        return try Self.load(connection, id: first, tenant: tenant)
      }
      try Self.checkTargets(connection, definition, tenant: tenant)
      try connection.query(
        """
        INSERT INTO assignment_rules (tenant_id, id, record_type, name, position, is_active, criteria, action, user_id,
                                      pool_id, open_record_cap, created_by, updated_by)
        VALUES (\(tenant), \(id), \(definition.recordType.rawValue), \(definition.name), \(definition.position),
                \(definition.isActive), \(StoredCriteria.json(definition.criteria))::jsonb, \(Self.actionValues(definition.action)),
                \(context.principal.userID), \(context.principal.userID))
        """)
      try Self.replaceMembers(connection, rule: id, definition.action, tenant: tenant)
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// Replaces a rule's definition (admins); team members keep their counts, new ones join level
  /// with the least served so the rotation stays fair.
  public func update(_ id: UUID, _ definition: Definition, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> AssignmentRule
  {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.lock(connection, id: id, tenant: tenant)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if definition.recordType != current.recordType {
        throw CRMError.invalid("rule.record_type", "a rule's record type cannot change", reason: "INVALID")
      }
      try Self.checkTargets(connection, definition, tenant: tenant)
      try connection.query(
        """
        UPDATE assignment_rules SET name = \(definition.name), position = \(definition.position),
          is_active = \(definition.isActive), criteria = \(StoredCriteria.json(definition.criteria))::jsonb,
          (action, user_id, pool_id, open_record_cap) = (\(Self.actionValues(definition.action))),
          version = version + 1, updated_at = now(), updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      try Self.replaceMembers(connection, rule: id, definition.action, tenant: tenant)
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// Archives a rule (admins); it stops firing.
  public func archive(_ id: UUID, context: ChangeLog.Context) async throws {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    try await database.withTenant(tenant) { connection in
      _ = try Self.lock(connection, id: id, tenant: tenant)
      try connection.query(
        """
        UPDATE assignment_rules SET archived_at = now(), version = version + 1, updated_at = now(),
          updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id) AND archived_at IS NULL
        """)
    }
  }

  /// The tenant's rules in the order they are tried (one record type's when given).
  public func list(recordType: RecordType?, principal: Principal) async throws -> [AssignmentRule] {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.rules(connection, recordType: recordType, activeOnly: false, tenant: principal.tenantID)
    }
  }

  /// Which rule would fire for an existing lead or account, why, and whom it would pick — without
  /// taking the turn.
  public func test(_ record: RecordLink, principal: Principal) async throws -> AssignmentDecision {
    try await database.withTenant(principal.tenantID) { connection in
      let subject: AssignmentSubject
      switch record.type {
      case .lead:
        subject = AssignmentSubject(try RecordMechanics<Lead>.replay(connection, id: record.id, principal: principal).fields)
      case .account:
        subject = AssignmentSubject(try RecordMechanics<Account>.replay(connection, id: record.id, principal: principal).fields)
      case .ticket:
        subject = AssignmentSubject(try RecordMechanics<Ticket>.replay(connection, id: record.id, principal: principal).fields)
      default:
        throw CRMError.invalid("record.record_type", "assignment rules route leads, accounts and tickets", reason: "INVALID")
      }
      return try Self.route(connection, subject, type: record.type, tenant: principal.tenantID, dryRun: true)
    }
  }

  // MARK: - Routing

  /// Runs `subject` through the tenant's active rules for `type`, in order; the first rule that
  /// matches and can place the record fires. Unless `dryRun`, a team rule's turn is taken.
  static func route(
    _ connection: PostgresConnection, _ subject: AssignmentSubject, type: RecordType, tenant: UUID, dryRun: Bool
  ) throws -> AssignmentDecision {
    try Router(connection, type: type, tenant: tenant, dryRun: dryRun).route([subject])[0]
  }

  /// Routes any number of records of one type in one statement: `crm_assignment_route` (migration
  /// 0044) decides, the same function the trigger rules' assign action calls, so every path routes
  /// alike. It takes team turns in memory in order and writes the counts back once: a single create
  /// is a batch of one, an import batch of 1,000 one statement. The rules are read here too, to
  /// explain decisions in words (TestAssignment) and name the rule in history.
  struct Router {
    let connection: PostgresConnection
    let type: RecordType
    let tenant: UUID
    let dryRun: Bool
    let rules: [AssignmentRule]

    init(_ connection: PostgresConnection, type: RecordType, tenant: UUID, dryRun: Bool) throws {
      self.connection = connection
      self.type = type
      self.tenant = tenant
      self.dryRun = dryRun
      rules = try AssignmentStore.rules(connection, recordType: type, activeOnly: true, tenant: tenant)
    }

    /// True when the tenant has no active rule for the type: nothing will fire.
    var isEmpty: Bool { rules.isEmpty }

    /// The decisions for `subjects`, in order; unless a dry run, team turns are taken.
    func route(_ subjects: [AssignmentSubject]) throws -> [AssignmentDecision] {
      guard !rules.isEmpty, !subjects.isEmpty else {
        return subjects.map { _ in AssignmentDecision(rule: nil, outcome: nil, reasons: [], skipped: []) }
      }
      let rows = try connection.query(
        """
        SELECT o_ordinal, o_rule_id, o_user_id, o_pool_id, o_turn::text AS o_turn, o_passed::text AS o_passed
        FROM crm_assignment_route(\(tenant), \(type.rawValue), \(PostgresJSON(JSONValue.array(subjects.map(\.stored)).rendered))::jsonb,
                                  \(dryRun))
        ORDER BY o_ordinal
        """)
      var byID = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0) })
      return try zip(subjects, rows.rows).map { subject, row in
        let fired: UUID? = try row.decode("o_rule_id")
        // A rule made active after the rules were read (another transaction committed between).
        if let fired, byID[fired] == nil { byID[fired] = try AssignmentStore.load(connection, id: fired, tenant: tenant) }
        let passed = try JSONDecoder().decode(JSONValue.self, from: Data(try row.decode("o_passed", as: String.self).utf8))
        var unplaced: [String: String] = [:]
        if case .array(let entries) = passed {
          for entry in entries {
            guard let id = entry["rule_id"]?.stringValue else { continue }
            unplaced[id] =
              entry["why"]?.stringValue == "unavailable"
              ? "its user is inactive or out of office"
              : "no member is available (inactive, out of office or at the open-record cap)"
          }
        }
        var skipped: [(String, String)] = []
        for rule in rules {
          if rule.id == fired { break }
          let why =
            unplaced[rule.id.lowercasedString]
            ?? rule.criteria.evaluate(subject).reasons.filter { $0.hasPrefix("✗") }.joined(separator: "; ")
          skipped.append((rule.name, why))
        }
        guard let fired, let rule = byID[fired] else {
          return AssignmentDecision(rule: nil, outcome: nil, reasons: [], skipped: skipped)
        }
        var reasons = rule.criteria.evaluate(subject).reasons
        let outcome: AssignmentOutcome
        if let user: UUID = try row.decode("o_user_id") {
          outcome = .user(user)
          if let turn = try row.decode("o_turn", as: String?.self),
            let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(turn.utf8))
          {
            reasons.append(
              "round-robin turn: \(user.lowercasedString) (\(parsed["assigned"]?.rendered ?? "?") assigned before, weight \(parsed["weight"]?.rendered ?? "?"))"
            )
          }
        } else {
          outcome = .pool(try row.decode("o_pool_id"))
        }
        return AssignmentDecision(rule: rule, outcome: outcome, reasons: reasons, skipped: skipped)
      }
    }
  }

  /// A new lead or account with no owner named: the rules place it (its draft owner stays when none
  /// fires), and the note for its change-log entry names the rule.
  static func routeNew<Record: PoolableRecord>(
    _ connection: PostgresConnection, _ draft: Record, subject: AssignmentSubject, tenant: UUID
  ) throws -> (Record, [FieldChange]) {
    let decision = try route(connection, subject, type: Record.recordType, tenant: tenant, dryRun: false)
    var routed = draft
    switch decision.outcome {
    case .user(let user):
      routed.ownerID = user
      routed.poolID = nil
    case .pool(let pool):
      routed.ownerID = nil
      routed.poolID = pool
    case nil:
      break
    }
    return (routed, note(decision))
  }

  /// The change-log note naming the rule that fired.
  static func note(_ decision: AssignmentDecision) -> [FieldChange] {
    guard let rule = decision.rule else { return [] }
    return [
      FieldChange(
        field: "assignment_rule", oldValue: .null,
        newValue: .object([("id", .string(rule.id.lowercasedString)), ("name", .string(rule.name))]))
    ]
  }

  // MARK: - Reading and writing rules

  static let columns = """
    id, record_type, name, position, is_active, criteria::text AS criteria, action, user_id, pool_id, open_record_cap, version,
    created_at, updated_at
    """

  static func rules(_ connection: PostgresConnection, recordType: RecordType?, activeOnly: Bool, tenant: UUID) throws
    -> [AssignmentRule]
  {
    var query: PostgresQuery =
      "SELECT \(unsafeSQL: columns) FROM assignment_rules WHERE tenant_id = \(tenant) AND archived_at IS NULL"
    if let recordType { query.append(" AND record_type = \(recordType.rawValue)") }
    if activeOnly { query.append(unsafeSQL: " AND is_active") }
    query.append(unsafeSQL: " ORDER BY record_type, position, id")
    let rows = try connection.query(query).rows
    let teamRules = try rows.filter { try $0.decode("action", as: String.self) == "team" }.map {
      try $0.decode("id", as: UUID.self)
    }
    let members = try members(connection, rules: teamRules, tenant: tenant)
    return try rows.map { try rule($0, members: members) }
  }

  static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> AssignmentRule {
    guard
      let row = try connection.query(
        "SELECT \(unsafeSQL: columns) FROM assignment_rules WHERE tenant_id = \(tenant) AND id = \(id)"
      ).first
    else { throw CRMError.notFound("assignment rule \(id.lowercasedString) not found") }
    return try rule(row, members: members(connection, rules: [id], tenant: tenant))
  }

  private static func lock(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> AssignmentRule {
    guard
      let row = try connection.query(
        "SELECT \(unsafeSQL: columns) FROM assignment_rules WHERE tenant_id = \(tenant) AND id = \(id) AND archived_at IS NULL FOR UPDATE"
      ).first
    else { throw CRMError.notFound("assignment rule \(id.lowercasedString) not found") }
    return try rule(row, members: members(connection, rules: [id], tenant: tenant))
  }

  private static func rule(_ row: PostgresRow, members: [UUID: [RotationMember]]) throws -> AssignmentRule {
    let id: UUID = try row.decode("id")
    let action: AssignmentAction
    switch try row.decode("action", as: String.self) {
    case "user": action = .user(try row.decode("user_id"))
    case "pool": action = .pool(try row.decode("pool_id"))
    default: action = .team(members: members[id] ?? [], openRecordCap: try row.decode("open_record_cap"))
    }
    return AssignmentRule(
      id: id, version: try row.decode("version"), recordType: RecordType(rawValue: try row.decode("record_type")) ?? .lead,
      name: try row.decode("name"), position: try row.decode("position"), isActive: try row.decode("is_active"),
      criteria: try StoredCriteria.decode(row.decode("criteria")), action: action, createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"))
  }

  static func members(_ connection: PostgresConnection, rules: [UUID], tenant: UUID) throws -> [UUID: [RotationMember]] {
    guard !rules.isEmpty else { return [:] }
    let rows = try connection.query(
      """
      SELECT rule_id, user_id, weight, assigned FROM assignment_rule_members
      WHERE tenant_id = \(tenant) AND rule_id = ANY(\(rules)::uuid[])
      ORDER BY rule_id, position
      """)
    var members: [UUID: [RotationMember]] = [:]
    for row in rows.rows {
      members[try row.decode("rule_id"), default: []].append(
        RotationMember(userID: try row.decode("user_id"), weight: try row.decode("weight"), assigned: try row.decode("assigned")))
    }
    return members
  }

  private static func actionValues(_ action: AssignmentAction) -> PostgresQuery {
    switch action {
    case .user(let user): "'user', \(user), NULL::uuid, NULL::integer"
    case .pool(let pool): "'pool', NULL::uuid, \(pool), NULL::integer"
    case .team(_, let cap): "'team', NULL::uuid, NULL::uuid, \(cap)::integer"
    }
  }

  /// The user, pool or members a rule names exist (active users; a pool of the rule's record type).
  private static func checkTargets(_ connection: PostgresConnection, _ definition: Definition, tenant: UUID) throws {
    switch definition.action {
    case .user(let user):
      guard try connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenant) AND id = \(user) AND is_active").count == 1
      else { throw CRMError.invalid("rule.user_id", "no active user", reason: "NOT_FOUND") }
    case .pool(let pool):
      let found = try connection.query(
        "SELECT record_type FROM pools WHERE tenant_id = \(tenant) AND id = \(pool) AND archived_at IS NULL")
      guard let row = found.first else { throw CRMError.invalid("rule.pool_id", "no such pool", reason: "NOT_FOUND") }
      guard try row.decode("record_type", as: String.self) == definition.recordType.rawValue else {
        throw CRMError.invalid("rule.pool_id", "the pool holds another record type", reason: "INVALID")
      }
    case .team(let members, _):
      let ids = members.map(\.userID)
      let known = Set(
        try connection.query("SELECT id FROM users WHERE tenant_id = \(tenant) AND id = ANY(\(ids)::uuid[]) AND is_active")
          .rows.map { try $0.decode("id", as: UUID.self) })
      if let (index, _) = ids.enumerated().first(where: { !known.contains($0.element) }) {
        throw CRMError.invalid("rule.members[\(index)].user_id", "no active user", reason: "NOT_FOUND")
      }
    }
  }

  /// Replaces a team rule's members: those kept keep their counts; new ones start level with the
  /// least-served member (per unit of weight), so joining does not hand them a run of turns.
  private static func replaceMembers(_ connection: PostgresConnection, rule: UUID, _ action: AssignmentAction, tenant: UUID)
    throws
  {
    guard case .team(let members, _) = action else {
      try connection.query("DELETE FROM assignment_rule_members WHERE tenant_id = \(tenant) AND rule_id = \(rule)")
      return
    }
    let ids = members.map(\.userID)
    try connection.query(
      "DELETE FROM assignment_rule_members WHERE tenant_id = \(tenant) AND rule_id = \(rule) AND user_id <> ALL(\(ids)::uuid[])")
    try connection.query(
      """
      WITH level AS (
        SELECT coalesce(min(assigned::double precision / weight), 0) AS share FROM assignment_rule_members
        WHERE tenant_id = \(tenant) AND rule_id = \(rule)
      )
      INSERT INTO assignment_rule_members (tenant_id, rule_id, user_id, weight, assigned, position)
      SELECT \(tenant), \(rule), m.user_id, m.weight, floor(level.share * m.weight)::bigint, m.position
      FROM unnest(\(ids)::uuid[], \(members.map(\.weight))::integer[]) WITH ORDINALITY AS m(user_id, weight, position), level
      ON CONFLICT (tenant_id, rule_id, user_id) DO UPDATE SET weight = excluded.weight, position = excluded.position
      """)
  }
}

/// How criteria are stored: `{"sources": [...], "region_codes": [...], ...}`.
struct StoredCriteria: Codable {
  var sources: [String]?
  var regionCodes: [String]?
  var industries: [String]?
  var companySizeMin: Int?
  var companySizeMax: Int?
  var scoreMin: Int?
  var scoreMax: Int?
  var tags: [String]?
  var channels: [String]?
  var ticketTypes: [String]?
  var priorities: [String]?

  static func json(_ criteria: AssignmentCriteria) -> PostgresJSON? {
    func list(_ values: [String]) -> [String]? { values.isEmpty ? nil : values }
    return StoredJSON.encode(
      StoredCriteria(
        sources: list(criteria.sources.map(\.rawValue)), regionCodes: list(criteria.regionCodes),
        industries: list(criteria.industries), companySizeMin: criteria.companySizeMin,
        companySizeMax: criteria.companySizeMax, scoreMin: criteria.scoreMin, scoreMax: criteria.scoreMax,
        tags: list(criteria.tags), channels: list(criteria.channels.map(\.rawValue)),
        ticketTypes: list(criteria.ticketTypes.map(\.rawValue)), priorities: list(criteria.priorities.map(\.rawValue))))
  }

  static func decode(_ json: PostgresJSON?) throws -> AssignmentCriteria {
    guard let stored = try StoredJSON.decode(StoredCriteria.self, from: json) else { return AssignmentCriteria() }
    var criteria = AssignmentCriteria()
    criteria.sources = (stored.sources ?? []).compactMap(LeadSource.init(rawValue:))
    criteria.regionCodes = stored.regionCodes ?? []
    criteria.industries = stored.industries ?? []
    criteria.companySizeMin = stored.companySizeMin
    criteria.companySizeMax = stored.companySizeMax
    criteria.scoreMin = stored.scoreMin
    criteria.scoreMax = stored.scoreMax
    criteria.tags = stored.tags ?? []
    criteria.channels = (stored.channels ?? []).compactMap(TicketChannel.init(rawValue:))
    criteria.ticketTypes = (stored.ticketTypes ?? []).compactMap(TicketType.init(rawValue:))
    criteria.priorities = (stored.priorities ?? []).compactMap(TicketPriority.init(rawValue:))
    return criteria
  }
}

extension AssignmentSubject {
  /// The subject as `crm_assignment_route` reads it: `crm_assignment_subject`'s keys.
  var stored: JSONValue {
    .object([
      ("source", source.flatMap { $0 == .unspecified ? nil : .string($0.rawValue) } ?? .null),
      ("region_code", .optional(regionCode)), ("industry", .optional(industry)),
      ("company_size", companySize.map { .int(Int64($0)) } ?? .null), ("score", score.map { .int(Int64($0)) } ?? .null),
      ("tags", .array(tags.map { .string($0) })), ("channel", .optional(channel?.rawValue)),
      ("ticket_type", .optional(ticketType?.rawValue)), ("priority", .optional(priority?.rawValue)),
    ])
  }
}

extension AssignmentStore {
  /// Where a bulk reassignment sends records.
  public enum Destination: Sendable {
    case user(UUID)
    case pool(UUID)
  }

  /// What a bulk reassignment did.
  public struct Reassigned: Sendable {
    /// The records changed, in order.
    public var ids: [UUID]
    /// True when the filter matched more than one call handles: call again.
    public var more: Bool
  }

  /// The most records one ReassignRecords call changes.
  public static let maxReassign = 1000

  /// Gives the named records, or those `fromOwner` owns (not archived; open leads only), to a user or a
  /// pool — managers and admins, each record needing the caller's write access; every record's change
  /// is in its history with the reason. One transaction: all or nothing.
  public func reassign(
    _ type: RecordType, ids: [UUID], fromOwner: UUID?, to destination: Destination, reason: String?, context: ChangeLog.Context
  ) async throws -> Reassigned {
    let principal = context.principal
    guard principal.isAdmin || principal.role == .manager else {
      throw CRMError.permissionDenied("reassigning records needs the manager or admin role")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      switch type {
      case .lead:
        return try Self.reassign(
          Lead.self, connection, ids: ids, fromOwner: fromOwner, to: destination, reason: reason, context: context)
      case .account:
        return try Self.reassign(
          Account.self, connection, ids: ids, fromOwner: fromOwner, to: destination, reason: reason, context: context)
      default:
        throw CRMError.invalid("record_type", "reassignment moves leads and accounts", reason: "INVALID")
      }
    }
  }

  private static func reassign<Record: PoolableRecord>(
    _ type: Record.Type, _ connection: PostgresConnection, ids named: [UUID], fromOwner: UUID?, to destination: Destination,
    reason: String?, context: ChangeLog.Context
  ) throws -> Reassigned {
    let principal = context.principal
    let tenant = principal.tenantID
    var ids = named
    var more = false
    if let fromOwner {
      let open = Record.recordType == .lead ? " AND r.status NOT IN ('converted', 'disqualified')" : ""
      let rows = try connection.query(
        """
        SELECT r.id FROM \(unsafeSQL: Record.table) r
        WHERE r.tenant_id = \(tenant) AND r.owner_id = \(fromOwner) AND r.archived_at IS NULL\(unsafeSQL: open)
        ORDER BY r.id LIMIT \(maxReassign + 1)
        """)
      ids = try rows.rows.map { try $0.decode("id", as: UUID.self) }
      more = ids.count > maxReassign
      ids = Array(ids.prefix(maxReassign))
    }
    if case .user(let user) = destination {
      try Owners.checkAssignable(connection, owner: user, field: "to_user_id", principal: principal)
    }
    let notes = reason.map { [FieldChange(field: "reassignment_reason", oldValue: .null, newValue: .string($0))] } ?? []
    for id in ids.sorted(by: { $0.lowercasedString < $1.lowercasedString }) {
      let current = try RecordMechanics<Record>.lockForWrite(connection, id: id, principal: principal, expectedVersion: nil)
      if current.archivedAt != nil {
        throw CRMError.failedPrecondition("\(Record.noun) \(id.lowercasedString) is archived; undelete it first")
      }
      switch destination {
      case .user(let user):
        var next = current
        next.ownerID = user
        next.poolID = nil
        _ = try RecordMechanics<Record>.write(connection, next, over: current, context: context, notes: notes)
      case .pool(let pool):
        _ = try PoolStore.putInPool(
          current, pool: pool, kind: .move, reasonCode: reason ?? "reassigned", note: nil, connection, context: context)
      }
    }
    return Reassigned(ids: ids, more: more)
  }
}
