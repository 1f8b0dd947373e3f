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

  /// How many changes a page with a type filter reads at most, to find `pageSize` of those types.
  let filteredWindow: Int

  /// A feed reader over `database`; a page with a type filter reads at most `filteredWindow`
  /// changes (or its page size, when larger).
  public init(database: Database, filteredWindow: Int = 2000) {
    self.database = database
    self.filteredWindow = filteredWindow
  }

  /// Plans the statements after it in the transaction for their parameters and the tables' sizes now.
  static let planEachCall: PostgresQuery = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"

  /// The fewest and most days a tenant's changes may be kept.
  public static let retentionDays = 30...3650

  /// Sets how long the feed keeps the tenant's changes (admins only).
  public func setRetention(days: Int, principal: Principal) async throws -> Int {
    guard principal.role == .admin else { throw CRMError.permissionDenied("only admins set the change feed's retention") }
    guard Self.retentionDays.contains(days) else {
      throw CRMError.invalid(
        "days", "must be \(Self.retentionDays.lowerBound) to \(Self.retentionDays.upperBound)", reason: "OUT_OF_RANGE")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        UPDATE tenants SET change_feed_retention_days = \(days) WHERE id = \(principal.tenantID)
        RETURNING change_feed_retention_days AS days
        """)[0].decode("days")
    }
  }

  /// One page of the feed.
  public struct Page: Sendable {
    public var events: [ChangeEvent]
    /// The position to resume after: the last one read, even when the caller may not see it.
    public var resumeAfter: Int64
  }

  /// The tenant's changes after `position` in commit order, at most `pageSize` read (fewer come back
  /// when some are out of the caller's sight, or of the types asked for).
  ///
  /// A page reads a window of the feed by position and looks each change up by its primary key, so
  /// what one call costs is bounded by the window whatever the types, the statistics or the plan
  /// (a filtered page whose window holds too few of the types asked for ends at the window's end, and
  /// the caller reads on from there). The statement is planned for each call: a plan cached while
  /// the tables were small (a cluster minutes old, a tenant's first import) read every change of the
  /// tenant through the wrong index once they had grown — half a second a page during an import
  /// (BENCHMARKS.md).
  ///
  /// - Throws: ``CursorExpired`` when `position` is older than the oldest change the feed still
  ///   keeps; `failedPrecondition` when the database cannot decode changes.
  public func changes(after position: Int64, types: Set<RecordType>, pageSize: Int, principal: Principal) async throws -> Page {
    let tenant = principal.tenantID
    let windowSize = types.isEmpty ? pageSize : max(pageSize, filteredWindow)
    var filter: PostgresQuery = ""
    if !types.isEmpty { filter = " WHERE c.record_type = ANY(\(types.map(\.rawValue).sorted())::text[])" }
    // One statement, one snapshot: the page, the window's extent and the tenant's last position, so
    // a change that commits meanwhile is either in all or in none. The page walks the window in
    // position order and stops once it has `pageSize` events; each lookup is limited, so neither the
    // type filter nor row-level security's tenant reaches change_log's scan: it is an equality on
    // both columns of its primary key. The extent is counted on the index alone.
    func window(_ columns: String) -> PostgresQuery {
      """
      SELECT \(unsafeSQL: columns) FROM change_feed f WHERE f.tenant_id = \(tenant) AND f.position > \(position)
      ORDER BY f.position
      LIMIT \(windowSize)
      """
    }
    let read: PostgresQuery = """
      WITH p AS (
        SELECT w.position, w.transaction_id, w.sequence_in_transaction, w.commit_time, c.*
        FROM (\(window("f.position, f.change_sequence, f.transaction_id, f.sequence_in_transaction, f.commit_time"))) AS w
        CROSS JOIN LATERAL (
          SELECT \(unsafeSQL: ChangeLog.columns) FROM change_log
          WHERE tenant_id = \(tenant) AND sequence = w.change_sequence
          LIMIT 1
        ) AS c\(filter)
        ORDER BY w.position
        LIMIT \(pageSize)
      )
      SELECT current_setting('wal_level') AS level,
        (SELECT up_to FROM change_feed_pruned WHERE tenant_id = \(tenant)) AS pruned,
        EXISTS (
          SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND slot_name LIKE 'crm\\_feed\\_%'
        ) AS decoding,
        (SELECT max(position) FROM change_feed WHERE tenant_id = \(tenant)) AS last,
        extent.windowed, extent.window_end, p.*
      FROM (
        SELECT count(*) AS windowed, max(x.position) AS window_end FROM (\(window("f.position"))) AS x
      ) AS extent LEFT JOIN p ON true
      ORDER BY p.position
      """
    return try await database.withTenant(tenant) { connection in
      connection.deferUntilNextStatement([Self.planEachCall])
      let rows = try connection.query(read).rows
      let level: String = try rows[0].decode("level")
      guard level == "logical" else {
        throw CRMError.failedPrecondition(
          "the change feed needs the database's wal_level = logical (it is \(level)); see docs/changes.md")
      }
      guard try rows[0].decode("decoding", as: Bool.self) else {
        throw CRMError.failedPrecondition(
          "the change feed has not started: the database has no replication slot for it (crmd's log says why; see docs/changes.md)"
        )
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
      // A full page ends at its last event; a full window at its end; a short one has read
      // everything the tenant had.
      let last: Int64? = try rows[0].decode("last")
      let resumeAfter: Int64
      if events.count == pageSize {
        resumeAfter = events[pageSize - 1].position
      } else if try rows[0].decode("windowed", as: Int64.self) == windowSize {
        resumeAfter = try rows[0].decode("window_end")
      } else {
        resumeAfter = max(position, last ?? position)
      }
      let links = Set(events.map { RecordLink(type: $0.entry.recordType, id: $0.entry.recordID) })
      let states = try RecordAccess.states(connection, Array(links), principal: principal)
      let visible = events.filter { states[RecordLink(type: $0.entry.recordType, id: $0.entry.recordID)]?.visible == true }
      return Page(events: visible, resumeAfter: resumeAfter)
    }
  }
}
