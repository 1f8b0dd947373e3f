public import CRMCore
public import Foundation
import LibPQ

/// Approval processes (admins) and requests: submit, approve, reject, recall, and what waits for whom
/// (docs/approvals.md). Submission is the database's `crm_approval_submit`, which trigger rules call
/// too; decisions are taken here, each step's approvers named by `crm_approval_approvers`. A pending
/// request locks its record (``RecordMechanics/lockForWrite(_:id:principal:expectedVersion:)``).
public struct ApprovalStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  // MARK: - Processes

  /// Creates a process (admins); a repeated `requestID` returns the first result.
  public func createProcess(_ definition: ApprovalProcessDefinition, context: ChangeLog.Context) async throws -> ApprovalProcess {
    try context.principal.requireAdmin()
    let id = UUID.v7()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Lead>.claimRequestID(
        connection, method: "CreateApprovalProcess", context: context, recordID: id)
      {
        return try Self.process(connection, id: first, tenant: tenant, lock: false)
      }
      try Self.checkReferences(connection, definition, tenant: tenant)
      try connection.query(
        """
        INSERT INTO approval_processes (tenant_id, id, record_type, name, position, is_active, entry_conditions,
                                        gated_stage_id, steps, on_approve, on_reject, created_by, updated_by)
        VALUES (\(tenant), \(id), \(definition.recordType.rawValue), \(definition.name), \(definition.position),
                \(definition.isActive), \(StoredRule.conditions(definition.entryConditions, definition.recordType))::jsonb,
                \(definition.gatedStageID), \(StoredApproval.steps(definition.steps))::jsonb,
                \(StoredApproval.actions(definition.onApprove, definition.recordType))::jsonb,
                \(StoredApproval.actions(definition.onReject, definition.recordType))::jsonb,
                \(context.principal.userID), \(context.principal.userID))
        """)
      return try Self.process(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Replaces a process's definition (not its record type); open requests go on with the new steps.
  public func updateProcess(
    _ id: UUID, _ definition: ApprovalProcessDefinition, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> ApprovalProcess {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.process(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if definition.recordType != current.definition.recordType {
        throw CRMError.invalid("process.record_type", "a process's record type cannot change", reason: "INVALID")
      }
      try Self.checkReferences(connection, definition, tenant: tenant)
      try connection.query(
        """
        UPDATE approval_processes SET name = \(definition.name), position = \(definition.position),
          is_active = \(definition.isActive),
          entry_conditions = \(StoredRule.conditions(definition.entryConditions, definition.recordType))::jsonb,
          gated_stage_id = \(definition.gatedStageID), steps = \(StoredApproval.steps(definition.steps))::jsonb,
          on_approve = \(StoredApproval.actions(definition.onApprove, definition.recordType))::jsonb,
          on_reject = \(StoredApproval.actions(definition.onReject, definition.recordType))::jsonb,
          version = version + 1, updated_at = now(), updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.process(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Archives a process: nothing new is submitted to it; open requests go on.
  public func archiveProcess(_ id: UUID, context: ChangeLog.Context) async throws {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    try await database.withTenant(tenant) { connection in
      _ = try Self.process(connection, id: id, tenant: tenant, lock: true)
      try connection.query(
        """
        UPDATE approval_processes SET archived_at = now(), version = version + 1, updated_at = now(),
          updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
    }
  }

  /// The live processes in the order submission tries them (one record type's when given).
  public func listProcesses(recordType: RecordType?, principal: Principal) async throws -> [ApprovalProcess] {
    try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Self.processColumns) FROM approval_processes WHERE tenant_id = \(principal.tenantID) AND archived_at IS NULL"
      if let recordType { query.append(" AND record_type = \(recordType.rawValue)") }
      query.append(unsafeSQL: " ORDER BY record_type, position, id")
      return try connection.query(query).rows.map(Self.process)
    }
  }

  // MARK: - Requests

  /// Submits a record the caller can see: through `processID`, or the first active process whose entry
  /// conditions hold. Opens the request, names step 1's approvers and locks the record.
  ///
  /// - Throws: NOT_FOUND (record or process), FAILED_PRECONDITION (no process takes the record, a request
  ///   is already open, or step 1 has nobody to decide it).
  public func submit(_ record: RecordLink, processID: UUID?, comment: String?, context: ChangeLog.Context) async throws
    -> ApprovalRequest
  {
    let principal = context.principal
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try RecordAccess.requireVisible(connection, record, principal: principal)
      let row = try connection.query(
        """
        SELECT request_id, why FROM crm_approval_submit(\(tenant), \(record.type.rawValue), \(record.id), \(processID),
          \(principal.userID), \(comment), \(context.requestID), \(context.origin), NULL)
        """)[0]
      guard let id = try row.decode("request_id", as: UUID?.self) else {
        switch try row.decode("why", as: String.self) {
        case "no_process":
          throw CRMError.failedPrecondition(
            processID == nil
              ? "no active \(record.type.rawValue) approval process takes this record (see each process's entry conditions)"
              : "that approval process is not active for \(record.type.rawValue)s, or the record does not meet its entry conditions"
          )
        case "pending":
          throw CRMError.failedPrecondition("the record already has a pending approval request; recall it first")
        case "no_approver":
          throw CRMError.failedPrecondition(
            "the first step has nobody to decide it (the owner has no manager, or the user or team is inactive)")
        default:
          throw CRMError.notFound("\(record.type.rawValue) \(record.id.lowercasedString) not found")
        }
      }
      return try Self.request(connection, id: id, tenant: tenant)
    }
  }

  /// Approves (`approve`) or rejects the request's current step as one of its approvers (or an admin):
  /// a rejection ends the request; an approval completes the step when it needs no other answer, then
  /// opens the next step or, after the last, approves the request. Final actions run in the same
  /// transaction.
  ///
  /// - Throws: NOT_FOUND, FAILED_PRECONDITION (not pending; the next step has nobody to decide it),
  ///   PERMISSION_DENIED (the caller does not decide this step).
  public func decide(_ id: UUID, approve: Bool, comment: String?, context: ChangeLog.Context) async throws -> ApprovalRequest {
    let principal = context.principal
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let open = try Self.lockPending(connection, id: id, tenant: tenant)
      let mine = try connection.query(
        """
        UPDATE approval_decisions SET decision = \(approve ? "approved" : "rejected"), comment = \(comment), decided_at = now()
        WHERE tenant_id = \(tenant) AND request_id = \(id) AND step = \(open.step) AND approver_id = \(principal.userID)
          AND decision = 'pending'
        """
      ).affectedRows
      if mine == 0 {
        guard principal.isAdmin else {
          throw CRMError.permissionDenied("you do not decide step \(open.step) of this request")
        }
        // An admin decides in the approvers' place; their answer is recorded as such.
        try connection.query(
          """
          INSERT INTO approval_decisions (tenant_id, request_id, step, approver_id, decision, comment, decided_at)
          VALUES (\(tenant), \(id), \(open.step), \(principal.userID), \(approve ? "approved" : "rejected"), \(comment), now())
          ON CONFLICT (tenant_id, request_id, step, approver_id)
          DO UPDATE SET decision = EXCLUDED.decision, comment = EXCLUDED.comment, decided_at = EXCLUDED.decided_at
          """)
      }
      let process = try Self.process(connection, id: open.processID, tenant: tenant, lock: false)
      let steps = process.definition.steps
      let step = steps[min(open.step, steps.count) - 1]
      try Self.log(
        connection, open, event: "approval_decided", context: context,
        [
          ("approval_step", .string(step.name)), ("approval_decision", .string(approve ? "approved" : "rejected")),
          ("approval_comment", .optional(comment)),
        ])
      let unanimous: Bool
      if case .team(_, let all) = step.approver { unanimous = all } else { unanimous = false }
      if approve, unanimous, mine > 0 {
        let waiting = try connection.query(
          """
          SELECT count(*) AS n FROM approval_decisions
          WHERE tenant_id = \(tenant) AND request_id = \(id) AND step = \(open.step) AND decision = 'pending'
          """)[0].decode("n", as: Int.self)
        if waiting > 0 { return try Self.request(connection, id: id, tenant: tenant) }
      }
      try Self.skipWaiting(connection, id, tenant: tenant)
      if approve, open.step < steps.count {
        let next = open.step + 1
        let named = try connection.query(
          """
          INSERT INTO approval_decisions (tenant_id, request_id, step, approver_id)
          SELECT \(tenant), \(id), \(next), a
          FROM crm_approval_approvers(\(tenant), \(StoredApproval.step(steps[next - 1]))::jsonb,
                                      coalesce(crm_record_owner(\(tenant), \(open.record.type.rawValue), \(open.record.id)),
                                               \(open.submittedBy))) a
          """
        ).affectedRows
        if named == 0 {
          throw CRMError.failedPrecondition(
            "step \(next) (\(steps[next - 1].name)) has nobody to decide it; fix the process, then approve again")
        }
        try connection.query(
          "UPDATE approval_requests SET step = \(next), version = version + 1 WHERE tenant_id = \(tenant) AND id = \(id)")
        return try Self.request(connection, id: id, tenant: tenant)
      }
      try connection.query(
        """
        UPDATE approval_requests SET status = \(approve ? "approved" : "rejected"), decided_at = now(), version = version + 1
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      try Self.log(
        connection, open, event: approve ? "approval_approved" : "approval_rejected", context: context,
        [("approval_status", .string(approve ? "approved" : "rejected")), ("approval_comment", .optional(comment))])
      try Self.finish(
        connection, open, actions: approve ? process.definition.onApprove : process.definition.onReject, context: context)
      return try Self.request(connection, id: id, tenant: tenant)
    }
  }

  /// Withdraws a pending request (its submitter or an admin); the record unlocks.
  public func recall(_ id: UUID, comment: String?, context: ChangeLog.Context) async throws -> ApprovalRequest {
    let principal = context.principal
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let open = try Self.lockPending(connection, id: id, tenant: tenant)
      guard principal.isAdmin || open.submittedBy == principal.userID else {
        throw CRMError.permissionDenied("only the submitter or an admin may recall a request")
      }
      try Self.skipWaiting(connection, id, tenant: tenant)
      try connection.query(
        """
        UPDATE approval_requests SET status = 'recalled', decided_at = now(), version = version + 1
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      try Self.log(
        connection, open, event: "approval_recalled", context: context,
        [("approval_status", .string("recalled")), ("approval_comment", .optional(comment))])
      return try Self.request(connection, id: id, tenant: tenant)
    }
  }

  /// One request, to those who may see its record or decide it.
  public func get(_ id: UUID, principal: Principal) async throws -> ApprovalRequest {
    try await database.withTenant(principal.tenantID) { connection in
      let request = try Self.request(connection, id: id, tenant: principal.tenantID)
      try Self.requireSight(connection, request, principal: principal)
      return request
    }
  }

  /// A record's requests, newest first.
  public func list(for record: RecordLink, principal: Principal) async throws -> [ApprovalRequest] {
    try await database.withTenant(principal.tenantID) { connection in
      try RecordAccess.requireVisible(connection, record, principal: principal)
      let ids = try connection.query(
        """
        SELECT id FROM approval_requests
        WHERE tenant_id = \(principal.tenantID) AND record_type = \(record.type.rawValue) AND record_id = \(record.id)
        ORDER BY submitted_at DESC, id DESC LIMIT 100
        """
      ).rows.map { try $0.decode("id", as: UUID.self) }
      return try Self.requests(connection, ids: ids, tenant: principal.tenantID)
    }
  }

  /// The pending requests whose current step waits for `userID` (default: the caller), oldest first.
  public func waiting(for userID: UUID?, principal: Principal, pageSize: Int, pageToken: String) async throws
    -> Page<ApprovalRequest>
  {
    let user = userID ?? principal.userID
    if user != principal.userID { try principal.requireAdmin() }
    let fingerprint = "approvals|\(user.lowercasedString)"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = """
        SELECT r.id, r.submitted_at::text AS key FROM approval_decisions d
        JOIN approval_requests r ON r.tenant_id = d.tenant_id AND r.id = d.request_id AND r.step = d.step
        WHERE d.tenant_id = \(principal.tenantID) AND d.approver_id = \(user) AND d.decision = 'pending' AND r.status = 'pending'
        """
      if let token { query.append(" AND (r.submitted_at, r.id) > (\(token.key)::timestamptz, \(token.id))") }
      query.append(" ORDER BY r.submitted_at, r.id LIMIT \(pageSize + 1)")
      let rows = try connection.query(query).rows
      let requests = try Self.requests(
        connection, ids: rows.prefix(pageSize).map { try $0.decode("id", as: UUID.self) }, tenant: principal.tenantID)
      var next: String?
      if rows.count > pageSize, let last = requests.last {
        next = tokens.encode(PageToken(key: try rows[pageSize - 1].decode("key"), id: last.id, query: fingerprint))
      }
      return Page(items: requests, nextPageToken: next)
    }
  }

  // MARK: - Inside transactions

  /// The pending request another caller's write must wait for: set when `principal` is neither an admin
  /// nor an approver of its current step, selected beside the row of `table` (not aliased).
  ///
  /// An admin's statement has no subquery at all rather than one switched off by a parameter: with the
  /// switch as a parameter, every custom plan folded the subquery away and so always looked cheaper than
  /// the generic plan, and PostgreSQL planned the write's first statement again on every call (a fifth
  /// of the database's CPU under AddComment).
  static func lockColumn(_ type: RecordType, table: String, principal: Principal) -> PostgresQuery {
    if principal.isAdmin { return "NULL::uuid AS approval_lock" }
    return """
      (SELECT r.id FROM approval_requests r
       WHERE r.tenant_id = \(unsafeSQL: table).tenant_id AND r.record_type = \(type.rawValue) AND r.record_id = \(unsafeSQL: table).id
         AND r.status = 'pending'
         AND NOT EXISTS (SELECT 1 FROM approval_decisions d WHERE d.tenant_id = r.tenant_id AND d.request_id = r.id
                         AND d.step = r.step AND d.approver_id = \(principal.userID) AND d.decision = 'pending')) AS approval_lock
      """
  }

  /// The error for a record ``lockColumn(_:table:principal:)`` found locked.
  static func locked(_ type: RecordType, by request: UUID) -> CRMError {
    .failedPrecondition(
      "the \(type.rawValue) is locked while approval request \(request.lowercasedString) is pending; its approvers or an admin may change it, or its submitter may recall it"
    )
  }

  /// Refuses a move into a stage an active process gates, when the deal meets its entry conditions and
  /// has no approved request of it.
  static func checkGate(_ connection: PostgresConnection, deal: UUID, stage: UUID, tenant: UUID) throws {
    let gate = try connection.query(
      """
      SELECT p.name FROM approval_processes p
      JOIN opportunities o ON o.tenant_id = p.tenant_id AND o.id = \(deal)
      WHERE p.tenant_id = \(tenant) AND p.gated_stage_id = \(stage) AND p.archived_at IS NULL AND p.is_active
        AND crm_rule_conditions_hold(p.entry_conditions, '[]'::jsonb, crm_rule_record('opportunity', to_jsonb(o)))
        AND NOT EXISTS (SELECT 1 FROM approval_requests r WHERE r.tenant_id = p.tenant_id AND r.process_id = p.id
                        AND r.record_type = 'opportunity' AND r.record_id = o.id AND r.status = 'approved')
      ORDER BY p.position, p.id LIMIT 1
      """)
    if let row = gate.first {
      throw CRMError.failedPrecondition(
        "entering this stage needs approval (\"\(try row.decode("name", as: String.self))\"); submit the deal with SubmitForApproval"
      )
    }
  }

  private struct Open {
    var processID: UUID
    var record: RecordLink
    var step: Int
    var submittedBy: UUID
  }

  private static func lockPending(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> Open {
    guard
      let row = try connection.query(
        """
        SELECT process_id, record_type, record_id, step, submitted_by, status FROM approval_requests
        WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE
        """
      ).first
    else { throw CRMError.notFound("approval request \(id.lowercasedString) not found") }
    let status: String = try row.decode("status")
    guard status == "pending" else { throw CRMError.failedPrecondition("the request is already \(status)") }
    return Open(
      processID: try row.decode("process_id"),
      record: RecordLink(type: RecordType(rawValue: try row.decode("record_type")) ?? .lead, id: try row.decode("record_id")),
      step: try row.decode("step"), submittedBy: try row.decode("submitted_by"))
  }

  private static func skipWaiting(_ connection: PostgresConnection, _ id: UUID, tenant: UUID) throws {
    try connection.query(
      """
      UPDATE approval_decisions SET decision = 'skipped', decided_at = now()
      WHERE tenant_id = \(tenant) AND request_id = \(id) AND decision = 'pending'
      """)
  }

  /// The record's history entry for a step of the request (an `event`, so feed consumers see it).
  private static func log(
    _ connection: PostgresConnection, _ open: Open, event: String, context: ChangeLog.Context,
    _ fields: [(String, JSONValue)]
  ) throws {
    let changes = fields.map { FieldChange(field: $0.0, oldValue: .null, newValue: $0.1) }
    try connection.query(
      """
      INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin, event_name)
      VALUES (\(context.principal.tenantID), \(open.record.type.rawValue), \(open.record.id), 'event', \(context.principal.userID),
              \(context.requestID), \(PostgresJSON(FieldChange.render(changes)))::jsonb, \(context.origin), \(event))
      """)
  }

  /// Runs a closed request's final actions on its record, with the system's rights.
  private static func finish(
    _ connection: PostgresConnection, _ open: Open, actions: [ApprovalFinalAction], context: ChangeLog.Context
  ) throws {
    let tenant = context.principal.tenantID
    for action in actions {
      switch action {
      case .setField(let field, let value):
        let stored = StoredRule.setField(field, value, recordType: open.record.type)
        try connection.query(
          """
          SELECT crm_apply_set_field(\(tenant), \(open.record.type.rawValue), ARRAY[\(open.record.id)]::uuid[],
            \(stored)::jsonb, \(context.principal.userID), \(context.requestID), \(context.origin), NULL)
          """)
      case .moveStage(let stage):
        var system = context
        system.principal.role = .admin
        system.requestID = nil
        _ = try OpportunityStore.changeStage(
          connection, open.record.id, .move(stageID: stage, probability: nil, lostReason: nil), expectedVersion: nil,
          context: system)
      }
    }
  }

  private static func requireSight(_ connection: PostgresConnection, _ request: ApprovalRequest, principal: Principal) throws {
    if request.decisions.contains(where: { $0.approverID == principal.userID }) || request.submittedBy == principal.userID {
      return
    }
    do {
      try RecordAccess.requireVisible(connection, request.record, principal: principal)
    } catch is CRMError {
      throw CRMError.notFound("approval request \(request.id.lowercasedString) not found")
    }
  }

  // MARK: - Rows

  static let processColumns = """
    id, version, record_type, name, position, is_active, entry_conditions::text AS entry_conditions, gated_stage_id,
    steps::text AS steps, on_approve::text AS on_approve, on_reject::text AS on_reject, created_at, updated_at
    """

  private static func process(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool) throws -> ApprovalProcess {
    var query: PostgresQuery =
      "SELECT \(unsafeSQL: processColumns) FROM approval_processes WHERE tenant_id = \(tenant) AND id = \(id)"
    if lock { query.append(unsafeSQL: " AND archived_at IS NULL FOR UPDATE") }
    guard let row = try connection.query(query).first else {
      throw CRMError.notFound("approval process \(id.lowercasedString) not found")
    }
    return try process(row)
  }

  private static func process(_ row: PostgresRow) throws -> ApprovalProcess {
    let type = RecordType(rawValue: try row.decode("record_type")) ?? .opportunity
    return ApprovalProcess(
      id: try row.decode("id"), version: try row.decode("version"),
      definition: ApprovalProcessDefinition(
        recordType: type, name: try row.decode("name"), position: try row.decode("position"),
        isActive: try row.decode("is_active"), entryConditions: try StoredRule.conditions(row.decode("entry_conditions")),
        gatedStageID: try row.decode("gated_stage_id"), steps: try StoredApproval.steps(row.decode("steps")),
        onApprove: try StoredApproval.actions(row.decode("on_approve")),
        onReject: try StoredApproval.actions(row.decode("on_reject"))),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }

  static func request(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> ApprovalRequest {
    guard let request = try requests(connection, ids: [id], tenant: tenant).first else {
      throw CRMError.notFound("approval request \(id.lowercasedString) not found")
    }
    return request
  }

  /// The requests `ids` names that exist, in that order, with their decisions: two statements in one
  /// round trip however many there are (a page of ListMyApprovals is not a query per request).
  static func requests(_ connection: PostgresConnection, ids: [UUID], tenant: UUID) throws -> [ApprovalRequest] {
    guard !ids.isEmpty else { return [] }
    let results = try connection.pipeline([
      """
      SELECT r.id, r.process_id, p.name AS process_name, p.steps::text AS steps, r.record_type, r.record_id, r.status, r.step,
             r.submitted_by, r.submitted_at, r.comment, r.decided_at, r.rule_id
      FROM approval_requests r JOIN approval_processes p ON p.tenant_id = r.tenant_id AND p.id = r.process_id
      WHERE r.tenant_id = \(tenant) AND r.id = ANY(\(ids)::uuid[])
      """,
      """
      SELECT request_id, step, approver_id, decision, comment, decided_at FROM approval_decisions
      WHERE tenant_id = \(tenant) AND request_id = ANY(\(ids)::uuid[])
      ORDER BY request_id, step, decided_at NULLS LAST, approver_id
      """,
    ])
    var decisions: [UUID: [ApprovalDecision]] = [:]
    for decision in results[1].rows {
      decisions[try decision.decode("request_id"), default: []].append(
        ApprovalDecision(
          step: try decision.decode("step"), approverID: try decision.decode("approver_id"),
          outcome: ApprovalDecision.Outcome(rawValue: try decision.decode("decision")) ?? .pending,
          comment: try decision.decode("comment"), decidedAt: try decision.decode("decided_at")))
    }
    var byID: [UUID: ApprovalRequest] = [:]
    for row in results[0].rows {
      let id: UUID = try row.decode("id")
      let steps = try StoredApproval.steps(row.decode("steps"))
      let step: Int = try row.decode("step")
      byID[id] = ApprovalRequest(
        id: id, processID: try row.decode("process_id"), processName: try row.decode("process_name"),
        record: RecordLink(type: RecordType(rawValue: try row.decode("record_type")) ?? .lead, id: try row.decode("record_id")),
        status: ApprovalStatus(rawValue: try row.decode("status")) ?? .pending, step: step,
        stepName: step <= steps.count ? steps[step - 1].name : "", stepCount: steps.count,
        submittedBy: try row.decode("submitted_by"), submittedAt: try row.decode("submitted_at"),
        comment: try row.decode("comment"), decidedAt: try row.decode("decided_at"), ruleID: try row.decode("rule_id"),
        decisions: decisions[id] ?? [])
    }
    return ids.compactMap { byID[$0] }
  }

  /// Named users, teams and stages must exist in the tenant.
  private static func checkReferences(_ connection: PostgresConnection, _ definition: ApprovalProcessDefinition, tenant: UUID)
    throws
  {
    for (index, step) in definition.steps.enumerated() {
      switch step.approver {
      case .user(let user):
        if try connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenant) AND id = \(user)").count == 0 {
          throw CRMError.invalid("process.steps[\(index)].user_id", "no such user", reason: "NOT_FOUND")
        }
      case .team(let team, _):
        if try connection.query("SELECT 1 FROM teams WHERE tenant_id = \(tenant) AND id = \(team)").count == 0 {
          throw CRMError.invalid("process.steps[\(index)].team_id", "no such team", reason: "NOT_FOUND")
        }
      case .manager: continue
      }
    }
    var stages: [(String, UUID)] = definition.gatedStageID.map { [("process.gated_stage_id", $0)] } ?? []
    for (name, actions) in [("on_approve", definition.onApprove), ("on_reject", definition.onReject)] {
      for (index, action) in actions.enumerated() {
        if case .moveStage(let stage) = action { stages.append(("process.\(name)[\(index)].move_stage_id", stage)) }
      }
    }
    for (field, stage) in stages
    where try connection.query("SELECT 1 FROM pipeline_stages WHERE tenant_id = \(tenant) AND id = \(stage)").count == 0 {
      throw CRMError.invalid(field, "no such stage", reason: "NOT_FOUND")
    }
  }
}

/// The JSON of a process's steps and final actions (migration 0038 documents its shape).
enum StoredApproval {
  static func step(_ step: ApprovalStep) -> PostgresJSON { PostgresJSON(stepValue(step).rendered) }

  static func stepValue(_ step: ApprovalStep) -> JSONValue {
    switch step.approver {
    case .manager(let level):
      .object([("name", .string(step.name)), ("approver", .string("manager")), ("level", .int(Int64(level)))])
    case .user(let user):
      .object([("name", .string(step.name)), ("approver", .string("user")), ("user_id", .string(user.lowercasedString))])
    case .team(let team, let unanimous):
      .object([
        ("name", .string(step.name)), ("approver", .string("team")), ("team_id", .string(team.lowercasedString)),
        ("unanimous", .bool(unanimous)),
      ])
    }
  }

  static func steps(_ steps: [ApprovalStep]) -> PostgresJSON { PostgresJSON(JSONValue.array(steps.map(stepValue)).rendered) }

  static func actions(_ actions: [ApprovalFinalAction], _ type: RecordType) -> PostgresJSON {
    PostgresJSON(
      JSONValue.array(
        actions.map { action in
          switch action {
          case .setField(let field, let value): StoredRule.setFieldValue(field, value, recordType: type)
          case .moveStage(let stage): .object([("type", .string("move_stage")), ("stage_id", .string(stage.lowercasedString))])
          }
        }
      ).rendered)
  }

  static func steps(_ json: PostgresJSON) throws -> [ApprovalStep] {
    try JSONDecoder().decode([JSONValue].self, from: Data(json.text.utf8)).compactMap { stored in
      let name = stored["name"]?.stringValue ?? ""
      switch stored["approver"]?.stringValue {
      case "manager":
        guard case .int(let level) = stored["level"] ?? .int(1) else { return nil }
        return ApprovalStep(name: name, approver: .manager(level: Int(level)))
      case "user":
        return stored["user_id"]?.stringValue.flatMap(UUID.init(uuidString:)).map {
          ApprovalStep(name: name, approver: .user($0))
        }
      case "team":
        guard let team = stored["team_id"]?.stringValue.flatMap(UUID.init(uuidString:)) else { return nil }
        return ApprovalStep(name: name, approver: .team(team, unanimous: stored["unanimous"] == .bool(true)))
      default: return nil
      }
    }
  }

  static func actions(_ json: PostgresJSON) throws -> [ApprovalFinalAction] {
    try JSONDecoder().decode([JSONValue].self, from: Data(json.text.utf8)).compactMap { stored in
      switch stored["type"]?.stringValue {
      case "set_field": stored["field"]?.stringValue.map { .setField($0, stored["value"] ?? .null) }
      case "move_stage": stored["stage_id"]?.stringValue.flatMap(UUID.init(uuidString:)).map { .moveStage($0) }
      default: nil
      }
    }
  }
}
