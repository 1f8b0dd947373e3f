public import CRMCore
public import Foundation
import LibPQ

/// SQL for pipelines and their stages. Everyone reads them; only admins change them.
public struct PipelineStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// What an admin sends to create a pipeline or replace its definition.
  public struct Definition: Sendable {
    public var name: String
    public var description: String?
    public var isDefault: Bool
    /// Validated with ``StageSpec/normalized(_:field:into:)``.
    public var stages: [StageSpec]

    /// A definition.
    public init(name: String, description: String?, isDefault: Bool, stages: [StageSpec]) {
      self.name = name
      self.description = description
      self.isDefault = isDefault
      self.stages = stages
    }
  }

  /// The tenant's pipelines, the default first, then by name; archived ones only when asked.
  public func list(includeArchived: Bool, principal: Principal) async throws -> [Pipeline] {
    let condition: PostgresQuery = includeArchived ? "" : " AND p.archived_at IS NULL"
    return try await database.read(
      principal.tenantID,
      [
        """
        SELECT \(unsafeSQL: Self.columns) FROM pipelines p
        LEFT JOIN pipeline_stages s ON s.tenant_id = p.tenant_id AND s.pipeline_id = p.id AND s.archived_at IS NULL
        WHERE p.tenant_id = \(principal.tenantID)\(condition)
        ORDER BY p.is_default DESC, lower(p.name), p.id, s.position
        """
      ]
    ) { results in try Self.pipelines(results[0]) }
  }

  /// One pipeline with its current stages.
  public func get(_ id: UUID, principal: Principal) async throws -> Pipeline {
    try await database.read(principal.tenantID, [Self.select(id: id, tenant: principal.tenantID)]) { results in
      guard let pipeline = try Self.pipelines(results[0]).first else { throw Self.notFound(id) }
      return pipeline
    }
  }

  /// Creates a pipeline; when it is the default, the previous default stops being one.
  public func create(_ definition: Definition, context: ChangeLog.Context) async throws -> Pipeline {
    let principal = context.principal
    try principal.requireAdmin()
    let id = UUID.v7()
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try RecordMechanics<Opportunity>.claimRequestID(
        connection, method: "CreatePipeline", context: context, recordID: id)
      {
        return try Self.load(connection, id: first, tenant: principal.tenantID)
      }
      if definition.isDefault { try Self.clearDefault(connection, tenant: principal.tenantID) }
      try Self.translatingConstraints {
        try connection.query(
          """
          INSERT INTO pipelines (tenant_id, id, name, description, is_default, created_by, updated_by)
          VALUES (\(principal.tenantID), \(id), \(definition.name), \(definition.description), \(definition.isDefault),
                  \(principal.userID), \(principal.userID))
          """)
      }
      for (position, stage) in definition.stages.enumerated() {
        try Self.insertStage(connection, stage, position: position, pipeline: id, tenant: principal.tenantID)
      }
      return try Self.load(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Replaces a pipeline's name, description, default flag and stage list. Stages named by id keep
  /// their identity (deals in them stay); new ones are added; stages left out are retired, which
  /// needs them to hold no deals. A stage holding deals keeps its category.
  ///
  /// - Throws: `staleEtag`, `notFound`, `failedPrecondition` (a retired or re-categorized stage holds
  ///   deals; un-defaulting the default: make another pipeline the default instead), `invalidArgument`
  ///   (a stage id of another pipeline).
  public func update(_ id: UUID, _ definition: Definition, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> Pipeline
  {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let (wasDefault, archived) = try Self.lock(connection, id: id, tenant: tenant, expectedVersion: expectedVersion)
      if archived { throw CRMError.failedPrecondition("pipeline \(id.lowercasedString) is archived") }
      if wasDefault, !definition.isDefault {
        throw CRMError.failedPrecondition("a tenant always has a default pipeline: make another one the default instead")
      }
      let current = try Self.load(connection, id: id, tenant: tenant)
      let occupancy = try Self.occupancy(connection, pipeline: id, tenant: tenant)
      for (index, stage) in definition.stages.enumerated() {
        guard let stageID = stage.id else { continue }
        guard let existing = current.stage(stageID) else {
          throw CRMError.invalid("pipeline.stages[\(index)].id", "is not a stage of this pipeline", reason: "NOT_FOUND")
        }
        if existing.category != stage.category, occupancy[stageID, default: 0] > 0 {
          throw CRMError.failedPrecondition(
            "stage \"\(existing.name)\" holds \(occupancy[stageID]!) deals; it cannot change from \(existing.category.rawValue) to \(stage.category.rawValue)"
          )
        }
      }
      let kept = Set(definition.stages.compactMap(\.id))
      for stage in current.stages where !kept.contains(stage.id) {
        if let count = occupancy[stage.id], count > 0 {
          throw CRMError.failedPrecondition(
            "stage \"\(stage.name)\" holds \(count) deals; move them to another stage before removing it")
        }
      }
      if definition.isDefault, !wasDefault { try Self.clearDefault(connection, tenant: tenant) }
      try Self.translatingConstraints {
        try connection.query(
          """
          UPDATE pipelines SET name = \(definition.name), description = \(definition.description),
            is_default = \(definition.isDefault), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id)
          """)
      }
      try connection.query(
        """
        UPDATE pipeline_stages SET archived_at = now()
        WHERE tenant_id = \(tenant) AND pipeline_id = \(id) AND archived_at IS NULL AND id <> ALL(\(Array(kept))::uuid[])
        """)
      for (position, stage) in definition.stages.enumerated() {
        if let stageID = stage.id {
          try connection.query(
            """
            UPDATE pipeline_stages SET name = \(stage.name), position = \(position), category = \(stage.category.rawValue),
              probability = \(stage.probability ?? 0), forecast_category = \((stage.forecastCategory ?? .pipeline).rawValue),
              required_fields = \(stage.requiredFields.map(\.rawValue))::text[]
            WHERE tenant_id = \(tenant) AND id = \(stageID)
            """)
        } else {
          try Self.insertStage(connection, stage, position: position, pipeline: id, tenant: tenant)
        }
      }
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  /// Archives a pipeline that holds no open deals and is not the default.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Pipeline {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let (isDefault, archived) = try Self.lock(connection, id: id, tenant: tenant, expectedVersion: expectedVersion)
      if archived { return try Self.load(connection, id: id, tenant: tenant) }
      if isDefault {
        throw CRMError.failedPrecondition("the default pipeline cannot be archived; make another one the default first")
      }
      let open: Int64 = try connection.query(
        """
        SELECT count(*) AS n FROM opportunities
        WHERE tenant_id = \(tenant) AND pipeline_id = \(id) AND state = 'open' AND archived_at IS NULL
        """)[0].decode("n")
      if open > 0 {
        throw CRMError.failedPrecondition("the pipeline holds \(open) open deals; move or close them first")
      }
      try connection.query(
        """
        UPDATE pipelines SET archived_at = now(), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.load(connection, id: id, tenant: tenant)
    }
  }

  // MARK: - Shared with the opportunity store

  static func notFound(_ id: UUID) -> CRMError { .notFound("pipeline \(id.lowercasedString) not found") }

  static let columns = """
    p.id, p.name, p.description, p.is_default, p.version, p.created_at, p.updated_at, p.archived_at,
    s.id AS stage_id, s.name AS stage_name, s.position, s.category, s.probability, s.forecast_category, s.required_fields
    """

  /// One pipeline and its current stages, by the pipeline's id.
  static func select(id: UUID, tenant: UUID) -> PostgresQuery {
    """
    SELECT \(unsafeSQL: columns) FROM pipelines p
    LEFT JOIN pipeline_stages s ON s.tenant_id = p.tenant_id AND s.pipeline_id = p.id AND s.archived_at IS NULL
    WHERE p.tenant_id = \(tenant) AND p.id = \(id)
    ORDER BY s.position
    """
  }

  /// The pipeline holding `stageID` (a current stage), or the tenant's default pipeline when `nil`.
  static func select(holding stageID: UUID?, tenant: UUID) -> PostgresQuery {
    let pipeline: PostgresQuery =
      if let stageID {
        "(SELECT pipeline_id FROM pipeline_stages WHERE tenant_id = \(tenant) AND id = \(stageID) AND archived_at IS NULL)"
      } else {
        "(SELECT id FROM pipelines WHERE tenant_id = \(tenant) AND is_default)"
      }
    return """
      SELECT \(unsafeSQL: columns) FROM pipelines p
      LEFT JOIN pipeline_stages s ON s.tenant_id = p.tenant_id AND s.pipeline_id = p.id AND s.archived_at IS NULL
      WHERE p.tenant_id = \(tenant) AND p.id = \(pipeline)
      ORDER BY s.position
      """
  }

  /// One pipeline, in the caller's transaction.
  static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> Pipeline {
    guard let pipeline = try pipelines(connection.query(select(id: id, tenant: tenant))).first else { throw notFound(id) }
    return pipeline
  }

  /// Pipelines from rows of ``columns``, one row per stage, grouped by pipeline in row order.
  static func pipelines(_ result: PostgresResult) throws -> [Pipeline] {
    var pipelines: [Pipeline] = []
    for row in result.rows {
      let id: UUID = try row.decode("id")
      if pipelines.last?.id != id {
        pipelines.append(
          Pipeline(
            id: id, version: try row.decode("version"), name: try row.decode("name"),
            description: try row.decode("description"), isDefault: try row.decode("is_default"), stages: [],
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
            archivedAt: try row.decode("archived_at")))
      }
      guard let stageID = try row.decode("stage_id", as: UUID?.self) else { continue }
      let required: [String] = try row.decode("required_fields")
      pipelines[pipelines.count - 1].stages.append(
        PipelineStage(
          id: stageID, name: try row.decode("stage_name"), position: try row.decode("position"),
          category: StageCategory(rawValue: try row.decode("category")) ?? .open,
          probability: try row.decode("probability"),
          forecastCategory: ForecastCategory(rawValue: try row.decode("forecast_category")) ?? .pipeline,
          requiredFields: required.compactMap(OpportunityField.init(rawValue:))))
    }
    return pipelines
  }

  /// Deals (not archived) per current stage of a pipeline.
  static func occupancy(_ connection: PostgresConnection, pipeline: UUID, tenant: UUID) throws -> [UUID: Int64] {
    let rows = try connection.query(
      """
      SELECT stage_id, count(*) AS n FROM opportunities
      WHERE tenant_id = \(tenant) AND pipeline_id = \(pipeline) AND archived_at IS NULL
      GROUP BY stage_id
      """)
    var counts: [UUID: Int64] = [:]
    for row in rows.rows { counts[try row.decode("stage_id")] = try row.decode("n") }
    return counts
  }

  private static func insertStage(
    _ connection: PostgresConnection, _ stage: StageSpec, position: Int, pipeline: UUID, tenant: UUID
  ) throws {
    try connection.query(
      """
      INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position, category, probability, forecast_category,
                                   required_fields)
      VALUES (\(tenant), \(UUID.v7()), \(pipeline), \(stage.name), \(position), \(stage.category.rawValue),
              \(stage.probability ?? 0), \((stage.forecastCategory ?? .pipeline).rawValue),
              \(stage.requiredFields.map(\.rawValue))::text[])
      """)
  }

  private static func clearDefault(_ connection: PostgresConnection, tenant: UUID) throws {
    try connection.query(
      """
      UPDATE pipelines SET is_default = false, version = version + 1, updated_at = now()
      WHERE tenant_id = \(tenant) AND is_default
      """)
  }

  @discardableResult
  private static func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    try CRMStore.translatingConstraints(
      ["pipelines_name": .alreadyExists(field: "pipeline.name", message: "another pipeline has this name")], body)
  }

  /// Locks the pipeline's row and checks the etag: its default flag and whether it is archived.
  private static func lock(_ connection: PostgresConnection, id: UUID, tenant: UUID, expectedVersion: Int64?) throws
    -> (isDefault: Bool, archived: Bool)
  {
    let lock = try connection.query(
      "SELECT version, is_default, archived_at FROM pipelines WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE")
    guard let row = lock.first else { throw notFound(id) }
    let version: Int64 = try row.decode("version")
    if let expectedVersion, expectedVersion != version { throw CRMError.staleEtag(current: Etag.make(version)) }
    return (try row.decode("is_default"), try row.decode("archived_at", as: Timestamp?.self) != nil)
  }
}
