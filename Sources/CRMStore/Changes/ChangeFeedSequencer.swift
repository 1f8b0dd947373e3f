import CRMCore
import Foundation
import LibPQ
public import Logging

/// Copies committed `change_log` rows into `change_feed` in commit order, giving each the next
/// position (docs/changes.md).
///
/// Commit order comes from PostgreSQL's logical decoding: the replication slot `change_feed_state`
/// names, decoded with `pgoutput` over the `crm_change_feed` publication (only `change_log`'s tenant
/// and sequence travel). Every node runs a sequencer; a session advisory lock on its own connection
/// lets one copy at a time. A step peeks at the slot, skips transactions at or before the bookmark,
/// writes the rest with the bookmark in one transaction, and only then advances the slot to the end
/// of the last transaction it decoded — so a crash anywhere repeats work but never skips or doubles a
/// change.
public final class ChangeFeedSequencer: Sendable {
  /// Decoded rows (messages) read per step at most; a step always ends on a transaction boundary.
  public static let messagesPerStep = 20_000
  /// How often, at most, a step that decoded nothing writes a heartbeat.
  static let heartbeatSeconds = 10
  /// The advisory lock key only the sequencer takes.
  public static let lockKey: Int64 = 0x63_72_6D_66_65_65_64  // "crmfeed"

  private let connection: PinnedConnection
  private let logger: Logger

  /// A sequencer over the database at `connectionString`, on a session of its own (it needs the
  /// connecting role's replication rights, not `crm_app`'s).
  public init(connectionString: String, logger: Logger = Logger(label: "crm.feed")) {
    connection = PinnedConnection(
      connectionString: connectionString, setupStatements: ["SET DateStyle = ISO", "SET TimeZone = 'UTC'"])
    self.logger = logger
  }

  /// What one step did.
  public enum Step: Sendable, Equatable {
    /// Another node holds the sequencer lock.
    case follower
    /// The database cannot decode: `wal_level` is not `logical` (the message says what it is).
    case unavailable(String)
    /// Copied this many changes; `more` when the slot had more than one step reads.
    case copied(Int, more: Bool)
  }

  /// Copies what has committed since the last step, if this node is the sequencer.
  public func step() async throws -> Step {
    do {
      return try await connection.withConnection { connection in try Self.step(connection) }
    } catch let error as PostgresError where error.sqlState == "42501" {
      // insufficient_privilege: the role cannot create or read a replication slot.
      return .unavailable(
        "the database role may not create or read a replication slot (\(error.serverMessage)); grant it REPLICATION "
          + "or use a superuser (docs/changes.md)")
    }
  }

  /// True once the replication slot exists and is consistent: every change committed from then on
  /// reaches the feed. (Creating it waits for the transactions running at the time to end.)
  public func isReady() async throws -> Bool {
    try await connection.withConnection { connection in
      try connection.query(
        """
        SELECT count(*) AS n FROM pg_replication_slots s JOIN change_feed_state f ON f.slot_name = s.slot_name
        WHERE s.confirmed_flush_lsn IS NOT NULL
        """)[0].decode("n", as: Int.self) == 1
    }
  }

  /// Deletes the changes older than each tenant's retention and moves the tenants' watermarks (any
  /// node may run it; it is idempotent). Returns how many changes went.
  @discardableResult
  public func prune() async throws -> Int {
    try await connection.withConnection { connection in
      try connection.query(
        """
        WITH gone AS (
          DELETE FROM change_feed f USING tenants t
          WHERE f.tenant_id = t.id AND f.commit_time < now() - t.change_feed_retention_days * interval '1 day'
          RETURNING f.tenant_id, f.position
        ), marks AS (
          INSERT INTO change_feed_pruned (tenant_id, up_to)
          SELECT tenant_id, max(position) FROM gone GROUP BY tenant_id
          ON CONFLICT (tenant_id) DO UPDATE SET up_to = GREATEST(change_feed_pruned.up_to, excluded.up_to)
        )
        SELECT count(*) AS n FROM gone
        """)[0].decode("n", as: Int.self)
    }
  }

  /// Closes the sequencer's session (another node's sequencer takes over).
  public func close() async { await connection.close() }

  static func step(_ connection: PostgresConnection) throws -> Step {
    let level = try connection.query("SELECT current_setting('wal_level') AS level")[0].decode("level", as: String.self)
    guard level == "logical" else {
      return .unavailable(
        "the database runs with wal_level = \(level); the change feed needs wal_level = logical (docs/changes.md)")
    }
    let locked = try connection.query("SELECT pg_try_advisory_lock(\(lockKey)) AS locked")[0].decode("locked", as: Bool.self)
    guard locked else { return .follower }
    defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(lockKey))") }
    let state = try connection.query("SELECT slot_name, applied_lsn::text AS applied, next_position FROM change_feed_state")[0]
    let slot: String = try state.decode("slot_name")
    let applied = PgOutputReader.lsn(try state.decode("applied")) ?? 0
    var position: Int64 = try state.decode("next_position")
    let exists = try connection.query("SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = \(slot)")[0]
    if try exists.decode("n", as: Int.self) == 0 {
      // Waits for the transactions running now to end (the slot needs a consistent starting point).
      _ = try connection.query("SELECT pg_create_logical_replication_slot(\(slot), 'pgoutput')")
    }
    // Up to what decoding can read (the WAL flushed so far). The slot only ever advances to the end of
    // a transaction decoded here, never to a WAL position read separately: with asynchronous commit
    // the written position runs ahead of the flushed one, and advancing past what was decoded would
    // skip the transactions in between.
    let rows = try connection.query(
      """
      SELECT data FROM pg_logical_slot_peek_binary_changes(\(slot), NULL, \(messagesPerStep),
        'proto_version', '1', 'publication_names', 'crm_change_feed')
      """)
    var reader = PgOutputReader()
    for row in rows.rows { try reader.read(try row.decode("data", as: PostgresBytes.self).bytes) }
    let more = rows.count >= messagesPerStep
    let fresh = reader.committed.filter { $0.endLSN > applied }
    var positions: [Int64] = []
    var tenants: [String] = []
    var sequences: [String] = []
    var transactions: [Int64] = []
    var places: [Int] = []
    var lsns: [String] = []
    var times: [Int64] = []
    for transaction in fresh {
      for (index, row) in transaction.rows.enumerated() {
        guard let tenant = row["tenant_id"] ?? nil, let sequence = row["sequence"] ?? nil else { continue }
        positions.append(position)
        position += 1
        tenants.append(tenant)
        sequences.append(sequence)
        transactions.append(Int64(transaction.xid))
        places.append(index + 1)
        lsns.append(PgOutputReader.text(lsn: transaction.endLSN))
        times.append(transaction.commitMicroseconds)
      }
    }
    if let last = fresh.last {
      // One pipeline: one transaction for the rows and the bookmark.
      _ = try connection.pipeline([
        """
        INSERT INTO change_feed (position, tenant_id, change_sequence, transaction_id, sequence_in_transaction, commit_lsn,
          commit_time)
        SELECT u.p, u.t::uuid, u.s::bigint, u.x, u.i, u.l::pg_lsn, timestamptz 'epoch' + u.c * interval '1 microsecond'
        FROM unnest(\(positions)::bigint[], \(tenants)::text[], \(sequences)::text[], \(transactions)::bigint[],
                    \(places)::int[], \(lsns)::text[], \(times)::bigint[]) AS u (p, t, s, x, i, l, c)
        """,
        """
        UPDATE change_feed_state SET applied_lsn = \(PgOutputReader.text(lsn: last.endLSN))::pg_lsn, next_position = \(position)
        """,
      ])
    }
    if let last = reader.committed.last {
      _ = try connection.query("SELECT pg_replication_slot_advance(\(slot), \(PgOutputReader.text(lsn: last.endLSN))::pg_lsn)")
    } else {
      // Nothing decoded: a heartbeat (at most one every `heartbeatInterval`) gives the next step a
      // transaction to advance to, and old beats go (deletes are not published).
      _ = try connection.query(
        """
        WITH old AS (
          DELETE FROM change_feed_heartbeat WHERE at < now() - \(String(Self.heartbeatSeconds * 10)) * interval '1 second'
        )
        INSERT INTO change_feed_heartbeat (at) SELECT now()
        WHERE NOT EXISTS (
          SELECT 1 FROM change_feed_heartbeat WHERE at > now() - \(String(Self.heartbeatSeconds)) * interval '1 second'
        )
        """)
    }
    return .copied(positions.count, more: more)
  }
}
