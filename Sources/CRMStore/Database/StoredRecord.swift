import CRMCore
import Foundation
import LibPQ

/// What the shared record mechanics (read visibility, locking for write, archive, restore, batch get,
/// idempotency) need to know about an aggregate's table.
protocol StoredRecord: Sendable {
  /// The table, chosen by code.
  static var table: String { get }
  /// The change log's record type.
  static var recordType: RecordType { get }
  /// The select list that ``init(row:)`` decodes.
  static var columns: String { get }
  /// The API name used in messages and field paths (`account`, `contact`).
  static var noun: String { get }

  /// The columns callers write, in ``writableValues`` order.
  static var writableColumns: String { get }
  /// The expression `ORDER BY … , id` sorts by for the name order, with its index behind it.
  static var nameSortKey: String { get }
  /// The expression ``ListOrder/scoreDescending`` sorts by; nil (the default) for records without a score.
  static var scoreSortKey: String? { get }
  /// The order fields appear in change-log entries.
  static var changeLogOrder: [String] { get }
  /// Domain errors for the table's named constraints (unique keys, foreign keys).
  static var constraintErrors: [String: CRMError] { get }

  init(row: PostgresRow) throws
  /// The values of ``writableColumns``.
  var writableValues: PostgresQuery { get }
  var id: UUID { get }
  /// The owner visibility and write access are decided by; `nil` while the record sits in a pool.
  var accessOwner: UUID? { get }
  /// The shared pool the record sits in (no owner), if any.
  var poolID: UUID? { get }
  var version: Int64 { get }
  var archivedAt: Timestamp? { get }
  var updatedAt: Timestamp { get }
  var snapshot: [String: JSONValue] { get }
  /// The keys duplicate detection compares.
  var matchSubject: MatchSubject { get }
}

extension StoredRecord {
  static var scoreSortKey: String? { nil }
  /// Records that never sit in a pool.
  var poolID: UUID? { nil }
  /// Whether the table has a `pool_id` column (leads and accounts).
  static var pooled: Bool { false }
}

/// A record just created, with what the tenant's duplicate rule found.
public struct Created<Record: Sendable>: Sendable {
  public var record: Record
  /// Likely duplicates, when the rule (or the request) says warn; empty otherwise.
  public var duplicates: DuplicateFindings

  /// A result.
  public init(_ record: Record, duplicates: DuplicateFindings = .none) {
    self.record = record
    self.duplicates = duplicates
  }
}

/// Record mechanics shared by every aggregate; each runs inside the caller's tenant transaction.
enum RecordMechanics<Record: StoredRecord> {
  static func notFound(_ id: UUID) -> CRMError {
    .notFound("\(Record.noun) \(id.lowercasedString) not found")
  }

  /// The statement reading one record by id.
  static func selectByID(_ id: UUID, principal: Principal) -> PostgresQuery {
    "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = \(id)"
  }

  /// The record a ``selectByID(_:principal:)`` result holds, if the caller may read it.
  static func visible(_ result: PostgresResult, principal: Principal) throws -> Record? {
    guard let row = result.first else { return nil }
    let record = try Record(row: row)
    return principal.canRead(Record.recordType, ownedBy: record.accessOwner, pool: record.poolID) ? record : nil
  }

  /// The record if it exists and the caller may read it.
  static func fetch(_ connection: PostgresConnection, id: UUID, principal: Principal) throws -> Record? {
    try visible(connection.query(selectByID(id, principal: principal)), principal: principal)
  }

  /// The record, read in one round trip; NOT_FOUND when missing or out of sight.
  static func get(_ database: Database, id: UUID, principal: Principal) async throws -> Record {
    try await database.read(principal.tenantID, [selectByID(id, principal: principal)]) { results in
      guard let record = try visible(results[0], principal: principal) else { throw notFound(id) }
      return record
    }
  }

  /// Every record named, in the order named, in one round trip; NOT_FOUND when any is missing or out
  /// of sight.
  static func batchGet(_ database: Database, ids: [UUID], principal: Principal) async throws -> [Record] {
    let query: PostgresQuery =
      "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id \(isAnyOf: ids, type: "uuid")"
    return try await database.read(principal.tenantID, [query]) { results in
      var byID: [UUID: Record] = [:]
      for row in results[0].rows {
        let record = try Record(row: row)
        if principal.canRead(Record.recordType, ownedBy: record.accessOwner, pool: record.poolID) { byID[record.id] = record }
      }
      return try ids.map { id in
        guard let record = byID[id] else { throw notFound(id) }
        return record
      }
    }
  }

  /// Locks the record for a change and checks the caller may make it and the etag is current.
  ///
  /// - Throws: NOT_FOUND (absent or unreadable), PERMISSION_DENIED (readable but not writable),
  ///   ABORTED with the current etag (stale `expectedVersion`).
  static func lockForWrite(
    _ connection: PostgresConnection, id: UUID, principal: Principal, expectedVersion: Int64?
  ) throws -> Record {
    let result = try connection.query(
      """
      SELECT \(unsafeSQL: Record.columns), \(ApprovalStore.lockColumn(Record.recordType, table: Record.table, principal: principal))
      FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = \(id) FOR UPDATE
      """)
    guard let row = result.first else { throw notFound(id) }
    let record = try Record(row: row)
    guard principal.canRead(Record.recordType, ownedBy: record.accessOwner, pool: record.poolID) else { throw notFound(id) }
    guard principal.canWrite(ownedBy: record.accessOwner, pool: record.poolID) else {
      throw CRMError.permissionDenied("only the owner, their managers or an admin may change this \(Record.noun)")
    }
    if let request = try row.decode("approval_lock", as: UUID?.self) {
      throw ApprovalStore.locked(Record.recordType, by: request)
    }
    if let expectedVersion, expectedVersion != record.version {
      throw CRMError.staleEtag(current: Etag.make(record.version))
    }
    return record
  }

  /// Archives (`archive: true`) or restores the record; a no-op when it is already in that state.
  static func setArchived(
    _ connection: PostgresConnection, id: UUID, archive: Bool, expectedVersion: Int64?, context: ChangeLog.Context
  ) throws -> Record {
    let current = try lockForWrite(connection, id: id, principal: context.principal, expectedVersion: expectedVersion)
    if (current.archivedAt != nil) == archive { return current }
    let result = try connection.query(
      """
      UPDATE \(unsafeSQL: Record.table)
      SET archived_at = \(unsafeSQL: archive ? "now()" : "NULL"), version = version + 1, updated_at = now(),
          updated_by = \(context.principal.userID)
      WHERE tenant_id = \(context.principal.tenantID) AND id = \(id)
      RETURNING \(unsafeSQL: Record.columns)
      """)
    let updated = try Record(row: result[0])
    let change = FieldChange(
      field: "archive_time",
      oldValue: current.archivedAt.map { .string($0.postgresText ?? "") } ?? .null,
      newValue: updated.archivedAt.map { .string($0.postgresText ?? "") } ?? .null)
    try ChangeLog.append(
      connection, context: context, recordType: Record.recordType, recordID: id,
      operation: archive ? .archive : .restore, changes: [change])
    return updated
  }

  /// Records `requestID` for `method` and `recordID`; returns the id of the first result when the
  /// request id was used before (then the caller must write nothing).
  static func claimRequestID(
    _ connection: PostgresConnection, method: String, context: ChangeLog.Context, recordID: UUID
  ) throws -> UUID? {
    guard let requestID = context.requestID else { return nil }
    let inserted = try connection.query(
      """
      INSERT INTO idempotency_keys (tenant_id, method, request_id, record_id)
      VALUES (\(context.principal.tenantID), \(method), \(requestID), \(recordID))
      ON CONFLICT DO NOTHING
      """)
    if inserted.affectedRows == 1 { return nil }
    let existing = try connection.query(
      """
      SELECT record_id FROM idempotency_keys
      WHERE tenant_id = \(context.principal.tenantID) AND method = \(method) AND request_id = \(requestID)
      """)
    return try existing.first?.decode("record_id", as: UUID.self)
  }

  /// The first result of a repeated request, as the caller may see it now.
  static func replay(_ connection: PostgresConnection, id: UUID, principal: Principal) throws -> Record {
    guard let record = try fetch(connection, id: id, principal: principal) else { throw notFound(id) }
    return record
  }

  /// The create every store shares: claims the request id (a repeat returns the first result, without
  /// findings), runs the store's `checks`, applies the duplicate rule, inserts `draft`, then runs
  /// `afterInsert` on the new record (rows that hang off it).
  /// `route` may change the draft once the request id is claimed (the assignment rules pick its owner)
  /// and returns notes for the change log.
  static func create(
    _ connection: PostgresConnection, method: String, _ draft: Record, duplicateAction: DuplicateAction?,
    context: ChangeLog.Context, route: (Record) throws -> (Record, [FieldChange]) = { ($0, []) },
    checks: () throws -> Void, afterInsert: (Record) throws -> Void = { _ in }
  ) throws -> Created<Record> {
    if let first = try claimRequestID(connection, method: method, context: context, recordID: draft.id) {
      return Created(try replay(connection, id: first, principal: context.principal))
    }
    let (routed, notes) = try route(draft)
    try checks()
    let findings = try checkDuplicates(connection, routed, override: duplicateAction, principal: context.principal)
    let record = try insert(connection, routed, context: context, notes: notes)
    try afterInsert(record)
    return Created(record, duplicates: findings)
  }

  /// Applies the tenant's duplicate rule for this record type (or `override`) to `draft`: throws
  /// ``CRMError/duplicate(_:)`` when it blocks, returns the matches when it warns. A record with no
  /// match keys (an interaction, a lead named only by its title) reads no rule.
  static func checkDuplicates(
    _ connection: PostgresConnection, _ draft: Record, override: DuplicateAction?, principal: Principal
  ) throws -> DuplicateFindings {
    if override == .allow || draft.matchSubject.isEmpty { return .none }
    let rule = try DuplicateRuleStore.rule(connection, for: Record.recordType, tenant: principal.tenantID)
    return try DuplicateStore.check(
      connection, draft.matchSubject, excluding: (Record.recordType, draft.id), rule: rule, override: override,
      principal: principal)
  }

  /// Inserts `draft` (its id, owner and writable fields) and its change-log entry.
  static func insert(_ connection: PostgresConnection, _ draft: Record, context: ChangeLog.Context, notes: [FieldChange] = [])
    throws -> Record
  {
    let principal = context.principal
    let result = try translatingConstraints {
      try connection.query(
        """
        INSERT INTO \(unsafeSQL: Record.table) (tenant_id, id, created_by, updated_by, \(unsafeSQL: Record.writableColumns))
        VALUES (\(principal.tenantID), \(draft.id), \(principal.userID), \(principal.userID), \(draft.writableValues))
        RETURNING \(unsafeSQL: Record.columns)
        """)
    }
    let record = try Record(row: result[0])
    let log = ChangeLog.insert(
      context: context, recordType: Record.recordType, recordID: record.id, operation: .create,
      changes: FieldChange.diff(fields: Record.changeLogOrder, old: nil, new: record.snapshot) + notes)
    let results = try connection.pipeline([log, rereadIfRulesChanged(record.id, tenant: principal.tenantID)])
    return try results[1].first.map(Record.init(row:)) ?? record
  }

  /// The statement reading the record again when a trigger rule changed a record in this transaction
  /// (the rules engine, migration 0037, sets `crm.rules_touched`), so the caller gets what was stored
  /// and its etag; it returns no row otherwise. Pipelined after a change-log entry, it costs no round trip.
  static func rereadIfRulesChanged(_ id: UUID, tenant: UUID) -> PostgresQuery {
    """
    SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table)
    WHERE current_setting('crm.rules_touched', true) = 'on' AND tenant_id = \(tenant) AND id = \(id)
    """
  }

  /// Writes `next` over `current` (locked by ``lockForWrite``) and logs the changed fields; writes
  /// nothing when nothing changed.
  ///
  /// The update, its change-log row and `alongside` (statements that must run with it, e.g. a stage
  /// history row) go in one round trip: the logged changes are the difference between `current` and
  /// `next`, which is what the row becomes (the columns the snapshot covers are written as given).
  ///
  /// `always` writes the row even when no logged field changed (a ticket comment moves SLA facts the
  /// snapshot does not show); the change log still gets a row only for changes or notes. `commit`
  /// ends the transaction in the same round trip, for a caller whose last statement this is.
  static func write(
    _ connection: PostgresConnection, _ next: Record, over current: Record, context: ChangeLog.Context, notes: [FieldChange] = [],
    alongside: [PostgresQuery] = [], always: Bool = false, commit: Bool = false
  ) throws -> Record {
    let changes = FieldChange.diff(fields: Record.changeLogOrder, old: current.snapshot, new: next.snapshot)
    if changes.isEmpty && !always { return current }
    let principal = context.principal
    let update: PostgresQuery = """
      UPDATE \(unsafeSQL: Record.table) SET (\(unsafeSQL: Record.writableColumns)) = (\(next.writableValues)),
        version = version + 1, updated_at = now(), updated_by = \(principal.userID)
      WHERE tenant_id = \(principal.tenantID) AND id = \(current.id)
      RETURNING \(unsafeSQL: Record.columns)
      """
    let logged = changes + notes
    let log =
      logged.isEmpty
      ? []
      : [
        ChangeLog.insert(
          context: context, recordType: Record.recordType, recordID: current.id, operation: .update, changes: logged),
        rereadIfRulesChanged(current.id, tenant: principal.tenantID),
      ]
    let results = try translatingConstraints {
      try connection.pipeline([update] + log + alongside + (commit ? [PostgresQuery(unsafeSQL: "COMMIT")] : []))
    }
    if !log.isEmpty, let reread = results[2].first { return try Record(row: reread) }
    return try Record(row: results[0][0])
  }

  /// The filters every list shares, for ``page(_:where:order:token:fingerprint:pageSize:includeTotal:)``.
  static func commonConditions(
    principal: Principal, archive: ArchiveFilter, ownerID: UUID?, tag: String?, updatedSince: Timestamp?
  ) -> PostgresQuery {
    var conditions: PostgresQuery = "tenant_id = \(principal.tenantID)"
    switch archive {
    case .active: conditions.append(unsafeSQL: " AND archived_at IS NULL")
    case .archived: conditions.append(unsafeSQL: " AND archived_at IS NOT NULL")
    case .all: break
    }
    if let ownerID { conditions.append(" AND owner_id = \(ownerID)") }
    if let tag { conditions.append(IndexedFilter.tag.condition(Record.table, tag)) }
    if let updatedSince { conditions.append(" AND updated_at >= \(updatedSince)") }
    if let owners = principal.readableOwners(Record.recordType) {
      let pools = Array(principal.pools.keys)
      if Record.pooled, !pools.isEmpty {
        conditions.append(" AND (owner_id = ANY(\(owners)::uuid[]) OR pool_id = ANY(\(pools)::uuid[]))")
      } else {
        conditions.append(" AND owner_id = ANY(\(owners)::uuid[])")
      }
    }
    return conditions
  }

  /// One keyset page of the rows matching `conditions`, in `order`, after `token`.
  static func page(
    _ connection: PostgresConnection, where conditions: PostgresQuery, order: ListOrder, token: PageToken?,
    tokens: PageTokenCodec, fingerprint: String, pageSize: Int, includeTotal: Bool
  ) throws -> Page<Record> {
    var total: Int64?
    if includeTotal {
      total = try connection.query("SELECT count(*) AS n FROM \(unsafeSQL: Record.table) WHERE \(conditions)")[0].decode("n")
    }
    let sortKey = order == .scoreDescending ? Record.scoreSortKey : Record.nameSortKey
    guard let sortKey else {
      throw CRMError.invalid("order_by", "only leads sort by score", reason: "INVALID")
    }
    var query: PostgresQuery =
      "SELECT \(unsafeSQL: Record.columns), \(unsafeSQL: sortKey) AS sort_key FROM \(unsafeSQL: Record.table) WHERE \(conditions)"
    switch order {
    case .name:
      if let token { query.append(" AND (\(unsafeSQL: Record.nameSortKey), id) > (\(token.key), \(token.id))") }
      query.append(unsafeSQL: " ORDER BY \(Record.nameSortKey), id")
    case .updateTimeDescending:
      if let token { query.append(" AND (updated_at, id) < (\(token.key)::timestamptz, \(token.id))") }
      query.append(unsafeSQL: " ORDER BY updated_at DESC, id DESC")
    case .scoreDescending:
      if let token { query.append(" AND (\(unsafeSQL: sortKey), id) < (\(token.key)::int, \(token.id))") }
      query.append(unsafeSQL: " ORDER BY \(sortKey) DESC, id DESC")
    }
    query.append(" LIMIT \(pageSize + 1)")
    let rows = try connection.query(query)
    var records = try rows.rows.map(Record.init(row:))
    var next: String?
    if records.count > pageSize {
      records.removeLast()
      let last = records[pageSize - 1]
      let key: String =
        order == .updateTimeDescending ? (last.updatedAt.postgresText ?? "") : try rows[pageSize - 1].decode("sort_key")
      next = tokens.encode(PageToken(key: key, id: last.id, query: fingerprint))
    }
    return Page(items: records, nextPageToken: next, totalSize: total)
  }

  /// Runs `body`, turning violations of the table's named constraints into domain errors.
  static func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    try CRMStore.translatingConstraints(Record.constraintErrors, body)
  }

  /// Escapes `%`, `_` and `\` for a LIKE pattern.
  static func likePrefix(_ prefix: String) -> String {
    var escaped = ""
    for character in prefix.lowercased() {
      if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
      escaped.append(character)
    }
    return escaped + "%"
  }
}

/// Runs `body`, turning violations of the named constraints in `errors` into those domain errors.
@discardableResult
func translatingConstraints<T>(_ errors: [String: CRMError], _ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as PostgresError {
    if let constraint = error.constraint, let mapped = errors[constraint] { throw mapped }
    throw error
  }
}

extension PostgresError {
  /// The constraint a unique violation hit, if this is one.
  var uniqueConstraint: String? { sqlState == SQLState.uniqueViolation ? constraint : nil }
}
