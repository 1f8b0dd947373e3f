public import CRMCore
public import Foundation
import LibPQ

/// SQL for opportunities: create, read, update, archive, list, and the stage verbs (move, win, lose,
/// reopen) that write the stage history in the same transaction as the change log.
public struct OpportunityStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<Opportunity>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Where a new deal starts: a pipeline (the tenant's default when `nil`) and a stage (the
  /// pipeline's first open stage when `nil`); a lost reason when the stage is a lost one.
  public struct Placement: Sendable {
    public var pipelineID: UUID?
    public var stageID: UUID?
    public var lostReason: String?

    /// A placement.
    public init(pipelineID: UUID? = nil, stageID: UUID? = nil, lostReason: String? = nil) {
      self.pipelineID = pipelineID
      self.stageID = stageID
      self.lostReason = lostReason
    }
  }

  /// Creates a deal owned by `ownerID` (the caller when `nil`).
  ///
  /// - Throws: ``CRMError`` — `notFound` for an account, contact or lead out of sight, `invalidArgument`
  ///   for a stage outside the pipeline, `failedPrecondition` for a stage whose required fields are empty.
  public func create(
    _ fields: OpportunityFields, ownerID: UUID?, placement: Placement, context: ChangeLog.Context
  ) async throws -> Opportunity {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Self.create(connection, fields, ownerID: ownerID, placement: placement, method: "CreateOpportunity", context: context)
    }
  }

  /// The create, inside the caller's transaction (lead conversion shares it).
  static func create(
    _ connection: PostgresConnection, _ fields: OpportunityFields, ownerID: UUID?, placement: Placement, method: String,
    context: ChangeLog.Context
  ) throws -> Opportunity {
    let principal = context.principal
    let owner = ownerID ?? principal.userID
    let pipeline = try Self.pipeline(connection, placement: placement, tenant: principal.tenantID)
    guard let stage = placement.stageID.flatMap(pipeline.stage) ?? pipeline.firstOpenStage else {
      throw CRMError.failedPrecondition("pipeline \"\(pipeline.name)\" has no open stage")
    }
    let now = Timestamp.now
    var draft = Opportunity(
      id: UUID.v7(), version: 1, ownerID: owner, fields: fields, pipelineID: pipeline.id, stageID: stage.id, state: .open,
      probability: 0, forecastCategory: .pipeline, lostReason: placement.lostReason, stageEnteredAt: now, closedAt: nil,
      lastActivityAt: nil, createdAt: now, updatedAt: now, createdBy: principal.userID, updatedBy: principal.userID,
      archivedAt: nil)
    draft.enter(stage, of: pipeline)
    if stage.category.isClosed {
      draft.closedAt = now
      // A deal closed without a close date closed today: the forecast counts it in today's period.
      if draft.fields.closeDate == nil { draft.fields.closeDate = now.utcDate }
    }
    let created = try Mechanics.create(connection, method: method, draft, duplicateAction: .allow, context: context) {
      if pipeline.archivedAt != nil {
        throw CRMError.failedPrecondition("pipeline \"\(pipeline.name)\" is archived")
      }
      try Owners.checkAssignable(connection, owner: owner, field: "opportunity.owner_id", principal: principal)
      try Self.checkLinks(connection, fields, changed: nil, principal: principal)
      try draft.checkCanEnter(stage, of: pipeline)
    } afterInsert: { record in
      try Self.recordStage(connection, record, from: nil, at: now, context: context)
    }
    return created.record
  }

  /// The deal, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Opportunity {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// The deals named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Opportunity] {
    try await Mechanics.batchGet(database, ids: ids, principal: principal)
  }

  /// Applies the fields in `mask` from `patch` (and `owner_id` from `newOwnerID`). Fields the current
  /// stage requires cannot be emptied; a closed deal's probability and forecast follow its stage.
  public func update(
    _ id: UUID, patch: OpportunityFields, mask: Set<OpportunityField>, newOwnerID: UUID?, expectedVersion: Int64?,
    context: ChangeLog.Context
  ) async throws -> Opportunity {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateOpportunity", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Self.lockActive(connection, id: id, expectedVersion: expectedVersion, principal: principal)
      if current.state.isClosed, !mask.isDisjoint(with: [.probability, .forecastCategory]) {
        throw CRMError.failedPrecondition(
          "a \(current.state.rawValue) deal takes its stage's probability and forecast category; reopen it first")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      if mask.contains(.ownerID), let newOwnerID, newOwnerID != current.ownerID {
        try Owners.checkAssignable(connection, owner: newOwnerID, field: "opportunity.owner_id", principal: principal)
        next.ownerID = newOwnerID
      }
      try Self.checkLinks(connection, next.fields, changed: current.fields, principal: principal)
      if !mask.isDisjoint(with: StageSpec.requirableFields.union([.probability, .forecastCategory])) {
        let pipeline = try PipelineStore.load(connection, id: current.pipelineID, tenant: principal.tenantID)
        if let stage = pipeline.stage(current.stageID) {
          let missing = next.fields.missing(pipeline.requirements(for: stage)).filter(mask.contains)
          if !missing.isEmpty {
            throw CRMError.failedPrecondition(
              "stage \"\(stage.name)\" requires \(missing.map(\.rawValue).joined(separator: ", ")); they cannot be emptied")
          }
          if current.state == .open {
            next.probability = next.fields.probability ?? stage.probability
            next.forecastCategory = next.fields.forecastCategory ?? stage.forecastCategory
          }
        }
      }
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Archives (soft-deletes) the deal.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Opportunity {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// Restores an archived deal.
  public func restore(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Opportunity {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: false, expectedVersion: expectedVersion, context: context)
    }
  }

  /// What a stage verb asks for.
  public enum StageRequest: Sendable {
    /// Any stage of any current pipeline; an open deal only (closed ones are reopened). Entering a
    /// won or lost stage closes the deal (a lost one needs `lostReason`). `probability` overrides the
    /// stage's default in the new stage.
    case move(stageID: UUID, probability: Int?, lostReason: String?)
    /// The named won stage of the deal's pipeline, or its first.
    case win(stageID: UUID?)
    /// The named lost stage of the deal's pipeline, or its first, with the reason.
    case lose(stageID: UUID?, reason: String)
    /// A closed deal back to the named open stage, or the last open stage it was in.
    case reopen(stageID: UUID?)

    /// The RPC, for request ids.
    var method: String {
      switch self {
      case .move: "MoveOpportunityStage"
      case .win: "CloseOpportunityWon"
      case .lose: "CloseOpportunityLost"
      case .reopen: "ReopenOpportunity"
      }
    }
  }

  /// Moves the deal as `request` says: checks the stage's required fields, records the change in
  /// the stage history and the change log. Moving to the stage the deal is in writes nothing.
  ///
  /// - Throws: ``CRMError`` — `failedPrecondition` for a closed deal (moved or closed again), an open
  ///   deal reopened, or empty required fields; `invalidArgument` for a stage outside the pipeline or
  ///   of the wrong category; `staleEtag`, `notFound`, `permissionDenied`.
  public func changeStage(
    _ id: UUID, _ request: StageRequest, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> Opportunity {
    try await database.withTenant(context.principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: request.method, context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: context.principal)
      }
      return try Self.changeStage(connection, id, request, expectedVersion: expectedVersion, context: context)
    }
  }

  /// ``changeStage(_:_:expectedVersion:context:)`` inside the caller's transaction (an approval's final
  /// action moves a deal this way). A stage an approval process gates needs its approval first.
  static func changeStage(
    _ connection: PostgresConnection, _ id: UUID, _ request: StageRequest, expectedVersion: Int64?, context: ChangeLog.Context
  ) throws -> Opportunity {
    let principal = context.principal
    let tenant = principal.tenantID
    let current = try Self.lockActive(connection, id: id, expectedVersion: expectedVersion, principal: principal)
    var next = current
    let pipeline: Pipeline
    let stage: PipelineStage
    switch request {
    case .move(let stageID, let probability, let lostReason):
      guard current.state == .open else {
        throw CRMError.failedPrecondition(
          "the deal is \(current.state.rawValue); reopen it (ReopenOpportunity) before moving it")
      }
      pipeline = try Self.pipeline(connection, placement: Placement(stageID: stageID), tenant: tenant)
      guard let target = pipeline.stage(stageID) else { throw CRMError.invalid("stage_id", "no such stage", reason: "NOT_FOUND") }
      if target.id == current.stageID, probability == nil { return current }
      stage = target
      next.fields.probability = probability
      next.lostReason = lostReason
    case .win(let stageID), .lose(let stageID, _):
      let category: StageCategory
      if case .lose(_, let reason) = request {
        category = .lost
        next.lostReason = reason
      } else {
        category = .won
      }
      guard current.state == .open else {
        throw CRMError.failedPrecondition("the deal is already \(current.state.rawValue); reopen it first")
      }
      pipeline = try PipelineStore.load(connection, id: current.pipelineID, tenant: tenant)
      stage = try Self.stage(stageID, in: pipeline, category: category)
    case .reopen(let stageID):
      guard current.state.isClosed else { throw CRMError.failedPrecondition("the deal is open; only closed deals reopen") }
      pipeline = try PipelineStore.load(connection, id: current.pipelineID, tenant: tenant)
      if let stageID {
        stage = try Self.stage(stageID, in: pipeline, category: .open)
      } else {
        stage = try Self.lastOpenStage(connection, of: current, in: pipeline, tenant: tenant)
      }
      next.fields.probability = nil
      next.fields.forecastCategory = nil
    }
    if pipeline.archivedAt != nil { throw CRMError.failedPrecondition("pipeline \"\(pipeline.name)\" is archived") }
    if stage.id != current.stageID { try ApprovalStore.checkGate(connection, deal: id, stage: stage.id, tenant: tenant) }
    next.enter(stage, of: pipeline)
    try next.checkCanEnter(stage, of: pipeline)
    let now = Timestamp.now
    if next.stageID != current.stageID { next.stageEnteredAt = now }
    next.closedAt = stage.category.isClosed ? now : nil
    if stage.category.isClosed, next.fields.closeDate == nil { next.fields.closeDate = now.utcDate }
    let history = next.stageID != current.stageID ? [Self.stageRow(next, from: current.stageID, at: now, context: context)] : []
    return try Mechanics.write(connection, next, over: current, context: context, alongside: history)
  }

  /// The stages a deal went through, oldest first, with how long it stayed in each.
  public func stageHistory(of id: UUID, principal: Principal) async throws -> [StageChange] {
    try await database.withTenant(principal.tenantID) { connection in
      try RecordAccess.requireVisible(connection, RecordLink(type: .opportunity, id: id), principal: principal)
      let rows = try connection.query(
        """
        SELECT h.sequence, h.from_stage_id, h.to_stage_id, f.name AS from_name, t.name AS to_name, h.pipeline_id,
               h.amount_currency, h.amount_units, h.amount_nanos, h.probability, h.forecast_category, h.close_date,
               h.changed_at, h.changed_by,
               (extract(epoch FROM coalesce(lead(h.changed_at) OVER w, now()) - h.changed_at) * 1000000)::bigint AS duration_us
        FROM opportunity_stage_history h
        JOIN pipeline_stages t ON t.tenant_id = h.tenant_id AND t.id = h.to_stage_id
        LEFT JOIN pipeline_stages f ON f.tenant_id = h.tenant_id AND f.id = h.from_stage_id
        WHERE h.tenant_id = \(principal.tenantID) AND h.opportunity_id = \(id)
        WINDOW w AS (ORDER BY h.sequence)
        ORDER BY h.sequence
        LIMIT 10000
        """)
      return try rows.rows.map { row in
        let currency: String? = try row.decode("amount_currency")
        return StageChange(
          sequence: try row.decode("sequence"), fromStageID: try row.decode("from_stage_id"),
          toStageID: try row.decode("to_stage_id"), fromStageName: try row.decode("from_name"),
          toStageName: try row.decode("to_name"), pipelineID: try row.decode("pipeline_id"),
          amount: try currency.map {
            Money(currencyCode: $0, units: try row.decode("amount_units"), nanos: try row.decode("amount_nanos") ?? 0)
          },
          probability: try row.decode("probability"),
          forecastCategory: ForecastCategory(rawValue: try row.decode("forecast_category")) ?? .pipeline,
          closeDate: try row.decode("close_date"), changedAt: try row.decode("changed_at"),
          changedBy: try row.decode("changed_by"), durationMicroseconds: max(0, try row.decode("duration_us")))
      }
    }
  }

  /// One page of deals matching `filter`, in its order, keyset-paginated.
  public func list(
    _ filter: OpportunityFilter, pageSize: Int, pageToken: String, includeTotal: Bool, principal: Principal
  ) async throws -> Page<Opportunity> {
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      var conditions = Mechanics.commonConditions(
        principal: principal, archive: filter.archive, ownerID: filter.ownerID, tag: filter.tag,
        updatedSince: filter.updatedSince)
      if let team = filter.teamID {
        conditions.append(
          """
           AND owner_id IN (
            SELECT u.id FROM users u WHERE u.tenant_id = \(tenant) AND u.team_id IN (
              WITH RECURSIVE below AS (
                SELECT id, 0 AS depth FROM teams WHERE tenant_id = \(tenant) AND id = \(team)
                UNION ALL
                SELECT t.id, below.depth + 1 FROM teams t JOIN below ON t.tenant_id = \(tenant) AND t.parent_team_id = below.id
                WHERE below.depth < 20
              )
              SELECT id FROM below))
          """)
      }
      if let account = filter.accountID { conditions.append(" AND account_id = \(account)") }
      if let pipeline = filter.pipelineID { conditions.append(" AND pipeline_id = \(pipeline)") }
      if let stage = filter.stageID { conditions.append(" AND stage_id = \(stage)") }
      if let state = filter.state { conditions.append(" AND state = \(state.rawValue)") }
      if let category = filter.forecastCategory { conditions.append(" AND forecast_category = \(category.rawValue)") }
      if let owners = filter.ownerIDs {
        conditions.append(" AND owner_id = ANY(\(ForecastStore.sorted(owners))::uuid[])")
      }
      if let categories = filter.forecastCategories {
        conditions.append(" AND forecast_category = ANY(\(categories.map(\.rawValue).sorted())::text[])")
      }
      if let currency = filter.currencyCode { conditions.append(" AND amount_currency = \(currency)") }
      if let from = filter.closeDateFrom { conditions.append(" AND close_date >= \(from)::date") }
      if let to = filter.closeDateTo { conditions.append(" AND close_date <= \(to)::date") }
      if let minimum = filter.minAmount {
        conditions.append(
          " AND amount_currency = \(minimum.currencyCode) AND (amount_units, coalesce(amount_nanos, 0)) >= (\(minimum.units), \(minimum.nanos))"
        )
      }
      if let maximum = filter.maxAmount {
        conditions.append(
          " AND amount_currency = \(maximum.currencyCode) AND (amount_units, coalesce(amount_nanos, 0)) <= (\(maximum.units), \(maximum.nanos))"
        )
      }
      if let prefix = filter.namePrefix {
        conditions.append(IndexedFilter.namePrefix.condition(Opportunity.table, Mechanics.likePrefix(prefix)))
      }
      return try Mechanics.page(
        connection, where: conditions, order: filter.order, token: token, tokens: tokens, fingerprint: filter.fingerprint,
        pageSize: pageSize, includeTotal: includeTotal)
    }
  }

  // MARK: - Helpers

  /// Locks the deal for a change (see ``RecordMechanics/lockForWrite``); archived deals do not change.
  static func lockActive(
    _ connection: PostgresConnection, id: UUID, expectedVersion: Int64?, principal: Principal
  ) throws -> Opportunity {
    let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
    guard current.archivedAt == nil else {
      throw CRMError.failedPrecondition("opportunity \(id.lowercasedString) is archived; undelete it first")
    }
    return current
  }

  /// The pipeline a placement names: by stage, by pipeline id, or the tenant's default.
  static func pipeline(_ connection: PostgresConnection, placement: Placement, tenant: UUID) throws -> Pipeline {
    let query =
      placement.pipelineID.map { PipelineStore.select(id: $0, tenant: tenant) }
      ?? PipelineStore.select(holding: placement.stageID, tenant: tenant)
    guard let pipeline = try PipelineStore.pipelines(connection.query(query)).first else {
      if placement.pipelineID != nil { throw CRMError.invalid("pipeline_id", "no such pipeline", reason: "NOT_FOUND") }
      if placement.stageID != nil { throw CRMError.invalid("stage_id", "no such stage", reason: "NOT_FOUND") }
      throw CRMError.failedPrecondition("the tenant has no default pipeline")
    }
    if let stageID = placement.stageID, pipeline.stage(stageID) == nil {
      throw CRMError.invalid("stage_id", "is not a stage of pipeline \"\(pipeline.name)\"", reason: "INVALID")
    }
    return pipeline
  }

  /// The named stage of `pipeline` in `category`, or its first stage in that category.
  static func stage(_ id: UUID?, in pipeline: Pipeline, category: StageCategory) throws -> PipelineStage {
    if let id {
      guard let stage = pipeline.stage(id) else {
        throw CRMError.invalid("stage_id", "is not a stage of pipeline \"\(pipeline.name)\"", reason: "INVALID")
      }
      guard stage.category == category else {
        throw CRMError.invalid(
          "stage_id", "is a \(stage.category.rawValue) stage, not a \(category.rawValue) one", reason: "INVALID")
      }
      return stage
    }
    guard let stage = pipeline.firstStage(category) else {
      throw CRMError.failedPrecondition("pipeline \"\(pipeline.name)\" has no \(category.rawValue) stage")
    }
    return stage
  }

  /// The open stage a closed deal was last in (still part of its pipeline), else the first open stage.
  static func lastOpenStage(_ connection: PostgresConnection, of deal: Opportunity, in pipeline: Pipeline, tenant: UUID) throws
    -> PipelineStage
  {
    let rows = try connection.query(
      """
      SELECT to_stage_id FROM opportunity_stage_history
      WHERE tenant_id = \(tenant) AND opportunity_id = \(deal.id)
      ORDER BY sequence DESC LIMIT 100
      """)
    for row in rows.rows {
      if let stage = pipeline.stage(try row.decode("to_stage_id")), stage.category == .open { return stage }
    }
    return try stage(nil, in: pipeline, category: .open)
  }

  /// Checks the account, contacts and source lead a deal names exist and are in sight (only those
  /// that differ from `changed` when given).
  static func checkLinks(
    _ connection: PostgresConnection, _ fields: OpportunityFields, changed old: OpportunityFields?, principal: Principal
  ) throws {
    var links: [RecordLink] = []
    if old?.accountID != fields.accountID { links.append(RecordLink(type: .account, id: fields.accountID)) }
    let oldContacts = Set(old?.contactIDs ?? [])
    for id in fields.contactIDs where !oldContacts.contains(id) { links.append(RecordLink(type: .contact, id: id)) }
    if let lead = fields.sourceLeadID, lead != old?.sourceLeadID {
      try RecordAccess.requireVisible(connection, RecordLink(type: .lead, id: lead), principal: principal)
    }
    if !links.isEmpty { try RecordAccess.requireReadable(connection, links, principal: principal) }
  }

  /// Appends the stage the deal just entered to its history.
  static func recordStage(
    _ connection: PostgresConnection, _ deal: Opportunity, from: UUID?, at time: Timestamp, context: ChangeLog.Context
  ) throws {
    try connection.query(stageRow(deal, from: from, at: time, context: context))
  }

  /// The history row for the stage `deal` enters.
  static func stageRow(_ deal: Opportunity, from: UUID?, at time: Timestamp, context: ChangeLog.Context) -> PostgresQuery {
    let amount = deal.fields.amount
    return """
      INSERT INTO opportunity_stage_history (tenant_id, opportunity_id, from_stage_id, to_stage_id, pipeline_id,
        amount_currency, amount_units, amount_nanos, probability, forecast_category, close_date, changed_at, changed_by)
      VALUES (\(context.principal.tenantID), \(deal.id), \(from), \(deal.stageID), \(deal.pipelineID), \(amount?.currencyCode),
        \(amount?.units), \(amount?.nanos), \(deal.probability), \(deal.forecastCategory.rawValue), \(deal.fields.closeDate)::date,
        \(time), \(context.principal.userID))
      """
  }
}
