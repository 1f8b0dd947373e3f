public import CRMCore
public import Foundation
import LibPQ

/// The change log: one row per changed record per mutation, written in the mutation's transaction.
///
/// Nothing else in the store keeps history; audit trails, the change feed and sync read this table.
public enum ChangeLog {
  /// Who is changing what, and under which request id: the context every mutation carries.
  public struct Context: Sendable {
    /// The caller.
    public var principal: Principal
    /// The caller's request id, if any.
    public var requestID: String?
    /// Where the change comes from (the caller's `x-client-origin`), for feed consumers to skip their
    /// own writes.
    public var origin: String?

    /// Makes a context; the origin defaults to the calling task's ``ChangeLog/clientOrigin``.
    public init(principal: Principal, requestID: String?, origin: String? = ChangeLog.clientOrigin) {
      self.principal = principal
      self.requestID = requestID
      self.origin = origin
    }
  }

  /// The current call's client origin: the server sets it for each call from `x-client-origin`.
  @TaskLocal public static var clientOrigin: String?

  /// Appends one entry inside the caller's transaction; writes nothing when an update changed nothing.
  static func append(
    _ connection: PostgresConnection, context: Context, recordType: RecordType, recordID: UUID,
    operation: ChangeOperation, changes: [FieldChange]
  ) throws {
    if operation == .update, changes.isEmpty { return }
    try connection.query(
      insert(context: context, recordType: recordType, recordID: recordID, operation: operation, changes: changes))
  }

  /// The statement appending one entry (for callers that pipeline it with their write).
  static func insert(
    context: Context, recordType: RecordType, recordID: UUID, operation: ChangeOperation, changes: [FieldChange]
  ) -> PostgresQuery {
    """
    INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin)
    VALUES (\(context.principal.tenantID), \(recordType.rawValue), \(recordID), \(operation.rawValue),
            \(context.principal.userID), \(context.requestID), \(PostgresJSON(FieldChange.render(changes)))::jsonb,
            \(context.origin))
    """
  }

  /// A page of one record's history, newest first.
  static func history(
    _ connection: PostgresConnection, tenantID: UUID, recordType: RecordType, recordID: UUID, pageSize: Int,
    before sequence: Int64?
  ) throws -> [ChangeEntry] {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: columns) FROM change_log
      WHERE tenant_id = \(tenantID) AND record_type = \(recordType.rawValue) AND record_id = \(recordID)
        AND sequence < \(sequence ?? Int64.max)
      ORDER BY sequence DESC
      LIMIT \(pageSize + 1)
      """)
    return try rows.rows.map { try entry($0, recordType: recordType) }
  }

  /// The select list ``entry(_:recordType:)`` decodes.
  static let columns =
    "sequence, record_type, record_id, operation, actor_id, changed_at, request_id, changes::text AS changes, origin, rule_id, event_name"

  /// One entry from a row selecting ``columns``.
  static func entry(_ row: PostgresRow, recordType: RecordType) throws -> ChangeEntry {
    ChangeEntry(
      sequence: try row.decode("sequence"),
      recordType: RecordType(rawValue: try row.decode("record_type", as: String.self)) ?? recordType,
      recordID: try row.decode("record_id"),
      operation: ChangeOperation(rawValue: try row.decode("operation", as: String.self)) ?? .update,
      actorID: try row.decode("actor_id"),
      changedAt: try row.decode("changed_at"),
      requestID: try row.decode("request_id"),
      changesJSON: try row.decode("changes"), origin: try row.decode("origin"), ruleID: try row.decode("rule_id"),
      eventName: try row.decode("event_name"))
  }
}

/// Reads history with the same visibility as the records themselves.
public struct HistoryStore: Sendable {
  let database: Database

  /// A history reader over `database`.
  public init(database: Database) { self.database = database }

  /// One page of a record's history, newest first.
  ///
  /// - Throws: ``CRMError/notFound(_:)`` when the record does not exist or is out of sight.
  public func history(
    of recordType: RecordType, id: UUID, principal: Principal, pageSize: Int, pageToken: String
  ) async throws -> Page<ChangeEntry> {
    let fingerprint = "history|\(recordType.rawValue)|\(id.lowercasedString)"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    let before = try token.map { token throws(CRMError) -> Int64 in
      guard let value = Int64(token.key) else { throw .invalid("page_token", "is malformed", reason: "INVALID_FORMAT") }
      return value
    }
    return try await database.withTenant(principal.tenantID) { connection in
      try RecordAccess.requireVisible(connection, RecordLink(type: recordType, id: id), principal: principal)
      var entries = try ChangeLog.history(
        connection, tenantID: principal.tenantID, recordType: recordType, recordID: id, pageSize: pageSize, before: before)
      let rules = try TriggerRuleStore.names(
        connection, ids: Array(Set(entries.compactMap(\.ruleID))), tenant: principal.tenantID)
      for index in entries.indices { entries[index].ruleName = entries[index].ruleID.flatMap { rules[$0] } }
      var next: String?
      if entries.count > pageSize {
        entries.removeLast()
        next = tokens.encode(PageToken(key: String(entries.last!.sequence), id: id, query: fingerprint))
      }
      return Page(items: entries, nextPageToken: next)
    }
  }
}
