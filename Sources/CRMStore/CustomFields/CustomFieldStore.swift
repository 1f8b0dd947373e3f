public import CRMCore
public import Foundation
import LibPQ

/// Custom fields' definitions (migration 0074, docs/custom-fields.md). Admins write them; everyone in
/// the tenant reads them (clients render forms from them).
public struct CustomFieldStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// What an update changes: the definition's parts named by the request's mask.
  public enum Part: String, Sendable, CaseIterable {
    case label, type, options, required, unique, filterable
    case maxLength = "max_length"
    case scale
    case referenceType = "reference_type"
    case defaultValue = "default_value"
    case helpText = "help_text"
  }

  /// Defines a field; a repeated `requestID` returns the first result.
  public func create(_ definition: CustomFieldDefinition, context: ChangeLog.Context) async throws -> CustomField {
    try context.principal.requireAdmin()
    let id = UUID.v7()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Lead>.claimRequestID(
        connection, method: "CreateCustomField", context: context, recordID: id)
      {
        return try Self.load(connection, id: first, tenant: tenant, lock: false)
      }
      let type = definition.recordType.rawValue
      // Serializes definitions of one record type, so the count below holds until commit.
      try connection.query("SELECT pg_advisory_xact_lock(hashtext(\(tenant.lowercasedString + "/custom_fields/" + type)))")
      let taken = try connection.query(
        "SELECT id FROM custom_fields WHERE tenant_id = \(tenant) AND record_type = \(type) AND api_name = \(definition.apiName)")
      if !taken.rows.isEmpty {
        throw CRMError.alreadyExists(
          field: "field.api_name", message: "\(type) already has a custom field \"\(definition.apiName)\" (archived ones count)")
      }
      let count = try connection.query(
        "SELECT count(*) AS n FROM custom_fields WHERE tenant_id = \(tenant) AND record_type = \(type)")[0].decode(
          "n", as: Int.self)
      if count >= CustomFieldDefinition.maxFieldsPerType {
        throw CRMError.failedPrecondition(
          "\(type) has \(count) custom fields (archived ones count); a tenant may define at most \(CustomFieldDefinition.maxFieldsPerType) per record type"
        )
      }
      try connection.query(
        """
        INSERT INTO custom_fields (tenant_id, id, record_type, api_name, label, type, config, required, is_unique,
          filterable, help_text, created_by, updated_by)
        VALUES (\(tenant), \(id), \(type), \(definition.apiName), \(definition.label), \(definition.type.rawValue),
          \(try Self.config(definition))::jsonb, \(definition.required), \(definition.unique), \(definition.filterable),
          \(definition.helpText), \(context.principal.userID), \(context.principal.userID))
        """)
      return try Self.load(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Changes the `parts` of a field to those of `changes` (validated against the result as a whole by
  /// `validate`, given the merged definition). Options are merged by value: new ones are added,
  /// labels renamed, options left out are kept, retired — a stored value never loses its option.
  public func update(
    _ id: UUID, parts: Set<Part>, changes: CustomFieldDefinition, expectedVersion: Int64,
    context: ChangeLog.Context, validate: @escaping @Sendable (inout CustomFieldDefinition) throws -> Void
  ) async throws -> CustomField {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.load(connection, id: id, tenant: tenant, lock: true)
      if expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      var merged = current.definition
      for part in parts {
        switch part {
        case .label: merged.label = changes.label
        case .type: merged.type = changes.type
        case .options: merged.options = Self.merge(current.definition.options, changes.options)
        case .required: merged.required = changes.required
        case .unique: merged.unique = changes.unique
        case .filterable: merged.filterable = changes.filterable
        case .maxLength: merged.maxLength = changes.maxLength
        case .scale: merged.scale = changes.scale
        case .referenceType: merged.referenceType = changes.referenceType
        case .defaultValue: merged.defaultValue = changes.defaultValue
        case .helpText: merged.helpText = changes.helpText
        }
      }
      // A type change drops what belonged to the old type unless the mask sets it anew.
      if parts.contains(.type) && merged.type != current.definition.type {
        if !parts.contains(.maxLength) { merged.maxLength = nil }
        if !parts.contains(.scale) { merged.scale = nil }
        if !parts.contains(.options) && !merged.type.hasOptions { merged.options = [] }
        if !parts.contains(.referenceType) { merged.referenceType = nil }
        if !parts.contains(.defaultValue) { merged.defaultValue = nil }
      }
      try validate(&merged)
      try connection.query(
        """
        UPDATE custom_fields SET label = \(merged.label), type = \(merged.type.rawValue),
          config = \(try Self.config(merged))::jsonb, required = \(merged.required), is_unique = \(merged.unique),
          filterable = \(merged.filterable), help_text = \(merged.helpText), version = version + 1, updated_at = now(),
          updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.load(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// Archives (`archived` true) or restores a field.
  public func setArchived(_ id: UUID, _ archived: Bool, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> CustomField
  {
    try context.principal.requireAdmin()
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.load(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      guard (current.archivedAt != nil) != archived else { return current }
      try connection.query(
        """
        UPDATE custom_fields SET archived_at = \(unsafeSQL: archived ? "now()" : "NULL"), version = version + 1,
          updated_at = now(), updated_by = \(context.principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.load(connection, id: id, tenant: tenant, lock: false)
    }
  }

  /// One field, archived or not.
  public func get(_ id: UUID, principal: Principal) async throws -> CustomField {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.load(connection, id: id, tenant: principal.tenantID, lock: false)
    }
  }

  /// A record type's fields (every type's when nil), in the order they were defined.
  public func list(recordType: RecordType?, includeArchived: Bool, principal: Principal) async throws -> [CustomField] {
    try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Self.columns) FROM custom_fields WHERE tenant_id = \(principal.tenantID)"
      if let recordType { query.append(" AND record_type = \(recordType.rawValue)") }
      if !includeArchived { query.append(unsafeSQL: " AND archived_at IS NULL") }
      query.append(unsafeSQL: " ORDER BY record_type, created_at, id")
      return try connection.query(query).rows.map(Self.field)
    }
  }

  /// `current` options with `changes` applied by value: changed labels and retired flags taken, new
  /// values appended, values left out kept and retired.
  static func merge(_ current: [CustomFieldOption], _ changes: [CustomFieldOption]) -> [CustomFieldOption] {
    let sent = Dictionary(changes.map { ($0.value, $0) }, uniquingKeysWith: { first, _ in first })
    var merged = current.map { option in
      sent[option.value] ?? CustomFieldOption(value: option.value, label: option.label, retired: true)
    }
    let known = Set(current.map(\.value))
    merged += changes.filter { !known.contains($0.value) }
    return merged
  }

  // MARK: - Rows

  /// The definition's type-specific parts and default, as stored in `config`.
  struct Config: Codable {
    var maxLength: Int?
    var scale: Int?
    var options: [CustomFieldOption]?
    var referenceType: String?
    var defaultValue: CustomFieldValue?

    enum CodingKeys: String, CodingKey {
      case maxLength = "max_length"
      case scale, options
      case referenceType = "reference_type"
      case defaultValue = "default_value"
    }
  }

  static func config(_ definition: CustomFieldDefinition) throws -> String {
    let config = Config(
      maxLength: definition.maxLength, scale: definition.scale,
      options: definition.options.isEmpty ? nil : definition.options, referenceType: definition.referenceType?.rawValue,
      defaultValue: definition.defaultValue)
    return String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
  }

  static let columns =
    "id, version, record_type, api_name, label, type, config::text AS config, required, is_unique, filterable, help_text, created_at, updated_at, archived_at"

  static func load(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool) throws -> CustomField {
    var query: PostgresQuery = "SELECT \(unsafeSQL: columns) FROM custom_fields WHERE tenant_id = \(tenant) AND id = \(id)"
    if lock { query.append(unsafeSQL: " FOR UPDATE") }
    guard let row = try connection.query(query).first else {
      throw CRMError.notFound("custom field \(id.lowercasedString) not found")
    }
    return try field(row)
  }

  static func field(_ row: PostgresRow) throws -> CustomField {
    let config = try JSONDecoder().decode(Config.self, from: Data(try row.decode("config", as: String.self).utf8))
    guard let recordType = RecordType(rawValue: try row.decode("record_type")),
      let type = CustomFieldType(rawValue: try row.decode("type"))
    else { throw CRMError.failedPrecondition("a stored custom field has an unknown record type or type") }
    return CustomField(
      id: try row.decode("id"), version: try row.decode("version"), createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"), archivedAt: try row.decode("archived_at"),
      definition: CustomFieldDefinition(
        recordType: recordType, apiName: try row.decode("api_name"), label: try row.decode("label"), type: type,
        maxLength: config.maxLength, scale: config.scale, options: config.options ?? [],
        referenceType: config.referenceType.flatMap(RecordType.init(rawValue:)), required: try row.decode("required"),
        defaultValue: config.defaultValue, helpText: try row.decode("help_text"), unique: try row.decode("is_unique"),
        filterable: try row.decode("filterable")))
  }
}
