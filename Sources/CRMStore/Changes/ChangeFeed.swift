public import CRMCore
import Foundation
import LibPQ

/// A feed cursor older than what the feed keeps.
public struct CursorExpired: Error, Sendable {
  /// The position to resume after from the oldest change still kept.
  public var oldestResumePosition: Int64
}

/// One committed change as the feed carries it.
public struct ChangeEvent: Sendable, Hashable {
  /// Its place in the feed: increases in commit order.
  public var position: Int64
  public var entry: ChangeEntry
  public var commitTime: Timestamp
  /// The PostgreSQL transaction that committed it, and its place among that transaction's changes.
  public var transactionID: Int64
  public var sequenceInTransaction: Int
}

/// Reads the change feed (`change_feed`, filled by ``ChangeFeedSequencer``) for a caller: only
/// changes to records the caller may see now, as a `Get` would.
public struct ChangeFeedStore: Sendable {
  let database: Database

  /// A feed reader over `database`.
  public init(database: Database) { self.database = database }

  /// The fewest and most days a tenant's changes may be kept.
  public static let retentionDays = 30...3650

  /// Sets how long the feed keeps the tenant's changes (admins only).
  public func setRetention(days: Int, principal: Principal) async throws -> Int {
    guard principal.role == .admin else { throw CRMError.permissionDenied("only admins set the change feed's retention") }
    guard Self.retentionDays.contains(days) else {
      throw CRMError.invalid("days", "must be \(Self.retentionDays.lowerBound) to \(Self.retentionDays.upperBound)", reason: "OUT_OF_RANGE")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        UPDATE tenants SET change_feed_retention_days = \(days) WHERE id = \(principal.tenantID)
        RETURNING change_feed_retention_days AS days
        """)[0].decode("days")
    }
  }

  /// ``ChangeLog/columns``, qualified with the change log's alias `c`.
  static let changeColumns = ChangeLog.columns.split(separator: ",")
    .map { "c." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")

  /// One page of the feed.
  public struct Page: Sendable {
    public var events: [ChangeEvent]
    /// The position to resume after: the last one read, even when the caller may not see it.
    public var resumeAfter: Int64
  }

  /// The tenant's changes after `position` in commit order, at most `pageSize` read (fewer come back
  /// when some are out of the caller's sight).
  ///
  /// - Throws: ``CursorExpired`` when `position` is older than the oldest change the feed still
  ///   keeps; `failedPrecondition` when the database cannot decode changes.
  public func changes(after position: Int64, types: Set<RecordType>, pageSize: Int, principal: Principal) async throws -> Page {
    let tenant = principal.tenantID
    var filter: PostgresQuery = ""
    if !types.isEmpty { filter = " AND c.record_type = ANY(\(types.map(\.rawValue).sorted())::text[])" }
    // One statement, one snapshot: the page and the tenant's last position, so a change that
    // commits meanwhile is either in both or in neither.
    let read: PostgresQuery = """
      SELECT current_setting('wal_level') AS level, m.pruned, m.decoding, m.last, p.*
      FROM (
        SELECT (SELECT up_to FROM change_feed_pruned WHERE tenant_id = \(tenant)) AS pruned,
          EXISTS (
            SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND slot_name LIKE 'crm\\_feed\\_%'
          ) AS decoding,
          (SELECT max(position) FROM change_feed WHERE tenant_id = \(tenant)) AS last
      ) AS m
      LEFT JOIN LATERAL (
        SELECT f.position, f.transaction_id, f.sequence_in_transaction, f.commit_time, \(unsafeSQL: Self.changeColumns)
        FROM change_feed f JOIN change_log c ON c.tenant_id = f.tenant_id AND c.sequence = f.change_sequence
        WHERE f.tenant_id = \(tenant) AND f.position > \(position)\(filter)
        ORDER BY f.position
        LIMIT \(pageSize)
      ) AS p ON true
      ORDER BY p.position
      """
    return try await database.withTenant(tenant) { connection in
      let rows = try connection.query(read).rows
      let level: String = try rows[0].decode("level")
      guard level == "logical" else {
        throw CRMError.failedPrecondition(
          "the change feed needs the database's wal_level = logical (it is \(level)); see docs/changes.md")
      }
      guard try rows[0].decode("decoding", as: Bool.self) else {
        throw CRMError.failedPrecondition(
          "the change feed has not started: the database has no replication slot for it (crmd's log says why; see docs/changes.md)")
      }
      // Positions at or before the watermark were pruned: a cursor before it would skip them.
      if let pruned: Int64 = try rows[0].decode("pruned"), position > 0, position < pruned {
        throw CursorExpired(oldestResumePosition: pruned)
      }
      var events: [ChangeEvent] = []
      for row in rows where try !row.isNull("position") {
        events.append(
          ChangeEvent(
            position: try row.decode("position"), entry: try ChangeLog.entry(row, recordType: .lead),
            commitTime: try row.decode("commit_time"), transactionID: try row.decode("transaction_id"),
            sequenceInTransaction: try row.decode("sequence_in_transaction")))
      }
      // A full page ends at its last event; a short one has read everything the tenant had.
      let last: Int64? = try rows[0].decode("last")
      let resumeAfter = events.count == pageSize ? events[pageSize - 1].position : max(position, last ?? position)
      let links = Set(events.map { RecordLink(type: $0.entry.recordType, id: $0.entry.recordID) })
      let states = try RecordAccess.states(connection, Array(links), principal: principal)
      let visible = events.filter { states[RecordLink(type: $0.entry.recordType, id: $0.entry.recordID)]?.visible == true }
      return Page(events: visible, resumeAfter: resumeAfter)
    }
  }
}
