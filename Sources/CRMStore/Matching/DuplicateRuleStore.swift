public import CRMCore
import Foundation
import LibPQ

/// The tenant's duplicate rules, one per record type; a type without a stored rule follows
/// ``DuplicateRule/standard(for:)``.
public struct DuplicateRuleStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Every matchable record type's rule, in ``RecordType/matchable`` order.
  public func rules(principal: Principal) async throws -> [DuplicateRule] {
    try await database.read(principal.tenantID, [Self.select(tenant: principal.tenantID, type: nil)]) { results in
      let stored = try Dictionary(uniqueKeysWithValues: results[0].rows.map(Self.rule(row:)).map { ($0.recordType, $0) })
      return RecordType.matchable.map { stored[$0] ?? .standard(for: $0) }
    }
  }

  /// Stores `rule` for its record type (admins only).
  public func set(_ rule: DuplicateRule, principal: Principal) async throws -> DuplicateRule {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      let result = try connection.query(
        """
        INSERT INTO duplicate_rules AS r (tenant_id, record_type, action, match_keys, match_record_types, min_score,
          ignore_plus_tags, updated_by)
        VALUES (\(principal.tenantID), \(rule.recordType.rawValue), \(rule.action.rawValue),
          \(rule.keys.sorted().map(\.rawValue))::text[], \(rule.matchRecordTypes.map(\.rawValue))::text[], \(rule.minScore),
          \(rule.ignorePlusTags), \(principal.userID))
        ON CONFLICT (tenant_id, record_type) DO UPDATE SET
          action = excluded.action, match_keys = excluded.match_keys, match_record_types = excluded.match_record_types,
          min_score = excluded.min_score, ignore_plus_tags = excluded.ignore_plus_tags, version = r.version + 1,
          updated_at = now(), updated_by = excluded.updated_by
        RETURNING \(unsafeSQL: Self.columns)
        """)
      return try Self.rule(row: result[0])
    }
  }

  /// The rule for `type`, read inside a writer's transaction.
  static func rule(_ connection: PostgresConnection, for type: RecordType, tenant: UUID) throws -> DuplicateRule {
    try connection.query(select(tenant: tenant, type: type)).first.map(rule(row:)) ?? .standard(for: type)
  }

  static let columns = "record_type, action, match_keys, match_record_types, min_score, ignore_plus_tags"

  static func select(tenant: UUID, type: RecordType?) -> PostgresQuery {
    var query: PostgresQuery = "SELECT \(unsafeSQL: columns) FROM duplicate_rules WHERE tenant_id = \(tenant)"
    if let type { query.append(" AND record_type = \(type.rawValue)") }
    return query
  }

  static func rule(row: PostgresRow) throws -> DuplicateRule {
    let type: String = try row.decode("record_type")
    let action: String = try row.decode("action")
    let keys: [String] = try row.decode("match_keys")
    let types: [String] = try row.decode("match_record_types")
    guard let recordType = RecordType(rawValue: type), let action = DuplicateAction(rawValue: action) else {
      throw PostgresError(kind: .decoding, serverMessage: "duplicate_rules holds an unknown record type or action")
    }
    return DuplicateRule(
      recordType: recordType, action: action, keys: Set(keys.compactMap(MatchKey.init(rawValue:))),
      matchRecordTypes: types.compactMap(RecordType.init(rawValue:)), minScore: try row.decode("min_score"),
      ignorePlusTags: try row.decode("ignore_plus_tags"))
  }
}
