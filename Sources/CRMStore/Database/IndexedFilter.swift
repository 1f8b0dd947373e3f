import LibPQ

/// List filters whose operators PostgreSQL does not take as leakproof (`@>` on arrays, LIKE, lower()),
/// so that under row-level security no index served them and every such list read the caller's whole
/// tenant. Each is answered by `crm_filter_ids` (migration 0073): the matching ids, found by index as
/// the owner in the caller's tenant only, which the list then reads by primary key under its usual
/// row-level security and visibility conditions.
enum IndexedFilter: String {
  case tag
  case email
  case phone
  /// Contacts: first or last name; accounts and opportunities: the name. The value is a LIKE pattern
  /// (``RecordMechanics/likePrefix(_:)``).
  case namePrefix = "name_prefix"
  /// Leads: the company. The value is a LIKE pattern (``RecordMechanics/likePrefix(_:)``).
  case companyPrefix = "company_prefix"
  /// Opportunities naming a contact (primary or in a role); the value is the contact's id (0075).
  case contact

  /// ` AND id = ANY(…)`: the rows of `table` this filter holds with `value`.
  func condition(_ table: String, _ value: String) -> PostgresQuery {
    " AND id = ANY(ARRAY(SELECT crm_filter_ids(\(table), \(rawValue), \(value))))"
  }

  /// ` AND id = ANY(…)`: the rows of `table` this filter holds with any of `values`.
  func condition(_ table: String, anyOf values: [String]) -> PostgresQuery {
    " AND id = ANY(ARRAY(SELECT crm_filter_ids(\(table), \(rawValue), value) FROM unnest(\(values)::text[]) AS value))"
  }
}
