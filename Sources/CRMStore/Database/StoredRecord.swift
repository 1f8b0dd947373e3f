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

  init(row: PostgresRow) throws
  var id: UUID { get }
  var ownerID: UUID { get }
  var version: Int64 { get }
  var archivedAt: Timestamp? { get }
  var snapshot: [String: JSONValue] { get }
}

/// Record mechanics shared by every aggregate; each runs inside the caller's tenant transaction.
enum RecordMechanics<Record: StoredRecord> {
  static func notFound(_ id: UUID) -> CRMError {
    .notFound("\(Record.noun) \(id.lowercasedString) not found")
  }

  /// The record if it exists and the caller may read it.
  static func fetch(_ connection: PostgresConnection, id: UUID, principal: Principal) throws -> Record? {
    let result = try connection.query(
      "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = \(id)"
    )
    guard let row = result.first else { return nil }
    let record = try Record(row: row)
    return principal.canRead(Record.recordType, ownedBy: record.ownerID) ? record : nil
  }

  /// Every record named, in the order named; NOT_FOUND when any is missing or out of sight.
  static func batchGet(_ connection: PostgresConnection, ids: [UUID], principal: Principal) throws -> [Record] {
    let result = try connection.query(
      "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = ANY(\(ids)::uuid[])"
    )
    var byID: [UUID: Record] = [:]
    for row in result.rows {
      let record = try Record(row: row)
      if principal.canRead(Record.recordType, ownedBy: record.ownerID) { byID[record.id] = record }
    }
    return try ids.map { id in
      guard let record = byID[id] else { throw notFound(id) }
      return record
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
      "SELECT \(unsafeSQL: Record.columns) FROM \(unsafeSQL: Record.table) WHERE tenant_id = \(principal.tenantID) AND id = \(id) FOR UPDATE"
    )
    guard let row = result.first else { throw notFound(id) }
    let record = try Record(row: row)
    guard principal.canRead(Record.recordType, ownedBy: record.ownerID) else { throw notFound(id) }
    guard principal.canWrite(ownedBy: record.ownerID) else {
      throw CRMError.permissionDenied("only the owner, their managers or an admin may change this \(Record.noun)")
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

  /// The change-log entries for a create.
  static func creationChanges(_ record: Record, order: [String]) -> [FieldChange] {
    FieldChange.diff(fields: order, old: nil, new: record.snapshot)
  }

  /// The change-log entries between two versions.
  static func updateChanges(from old: Record, to new: Record, order: [String]) -> [FieldChange] {
    FieldChange.diff(fields: order, old: old.snapshot, new: new.snapshot)
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

extension PostgresError {
  /// The constraint a unique violation hit, if this is one.
  var uniqueConstraint: String? { sqlState == SQLState.uniqueViolation ? constraint : nil }
}
