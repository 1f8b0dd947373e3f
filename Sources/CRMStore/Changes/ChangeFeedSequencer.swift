import CRMCore
import Foundation
import LibPQ
public import Logging
import Synchronization

/// Copies committed `change_log` rows into `change_feed` in commit order, giving each the next
/// position (docs/changes.md).
///
/// Commit order comes from PostgreSQL's logical decoding: the replication slot `change_feed_state`
/// names, decoded with `pgoutput` over the `crm_change_feed` publication (only `change_log`'s tenant
/// and sequence travel), streamed over a walsender connection (``ReplicationStream``) so the server
/// decodes each WAL record once. Every node runs a sequencer; a session advisory lock on its own
/// connection lets one copy at a time, and the slot streams to one session at a time. A step reads what
/// the stream has brought, writes the transactions after the bookmark with the bookmark in one
/// transaction, and only then confirms their end to the slot — so a crash anywhere repeats work but
/// never skips or doubles a change.
public final class ChangeFeedSequencer: Sendable {
  /// Decoded messages read per step at most (a transaction may span steps).
  public static let messagesPerStep = 20_000
  /// How often, at most, the slot hears from an idle sequencer (below wal_sender_timeout's 60 s).
  static let statusSeconds = 10
  /// The advisory lock key only the sequencer takes.
  public static let lockKey: Int64 = 0x63_72_6D_66_65_65_64  // "crmfeed"

  private let connection: PinnedConnection
  private let connectionString: String
  private let waitMilliseconds: Int32
  private let gather: Duration
  private let logger: Logger
  /// The open stream and what it has decoded but not yet copied. Touched only inside
  /// `connection.withConnection`, which runs one body at a time on the connection's thread.
  private let streaming = Mutex<Streaming?>(nil)

  /// A stream from the slot, its reader (a transaction may arrive across steps), and what the slot
  /// has been told.
  final class Streaming: @unchecked Sendable {
    let stream: ReplicationStream
    var reader = PgOutputReader()
    /// The last position confirmed to the slot, and when.
    var confirmed: UInt64 = 0
    var confirmedAt: ContinuousClock.Instant = .now
    /// The WAL end of the last keepalive: everything committed before it has been received.
    var keepaliveEnd: UInt64 = 0
    var replyRequested = false
    /// The bookmark as this stream's steps left it (read from `change_feed_state` when the stream
    /// opened; only the session streaming from the slot writes it).
    var applied: UInt64
    var nextPosition: Int64

    init(_ stream: ReplicationStream, applied: UInt64, nextPosition: Int64) {
      self.stream = stream
      self.applied = applied
      self.nextPosition = nextPosition
    }
  }

  /// A sequencer over the database at `connectionString`, on a session of its own (it needs the
  /// connecting role's replication rights, not `crm_app`'s).
  /// A step waits up to `waitMilliseconds` for the first message, then takes what else arrives within
  /// `gather` of it: under a steady stream of commits one step copies several transactions in one
  /// write rather than one each, for a few milliseconds of lag.
  public init(
    connectionString: String, waitMilliseconds: Int32 = 100, gather: Duration = .milliseconds(10),
    logger: Logger = Logger(label: "crm.feed")
  ) {
    connection = PinnedConnection(
      connectionString: connectionString, setupStatements: ["SET DateStyle = ISO", "SET TimeZone = 'UTC'"])
    self.connectionString = connectionString
    self.waitMilliseconds = waitMilliseconds
    self.gather = gather
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

  /// Copies what has committed since the last step, if this node is the sequencer: waits for the
  /// stream up to the sequencer's wait, then takes what has arrived.
  public func step() async throws -> Step {
    do {
      return try await connection.withConnection { [self] connection in try step(connection) }
    } catch let error as PostgresError where error.sqlState == "55006" {
      // object_in_use: another node's session streams from the slot.
      return .follower
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

  /// Closes the sequencer's stream and session (another node's sequencer takes over).
  public func close() async {
    // On the session's thread, after a step that may be reading the stream.
    await connection.close { [self] in
      streaming.withLock { state in
        state?.stream.close()
        state = nil
      }
    }
  }

  private func step(_ connection: PostgresConnection) throws -> Step {
    // The sequencer holds the lock for as long as it streams; a node that cannot take it is a follower.
    // While it streams, the bookmark lives in memory: a step under load is the stream's read and one
    // write, not three more round trips to re-read what only this session writes.
    let current: Streaming
    if let held = streaming.withLock({ $0 }) {
      current = held
    } else {
      let level = try connection.query("SELECT current_setting('wal_level') AS level")[0].decode("level", as: String.self)
      guard level == "logical" else {
        return .unavailable(
          "the database runs with wal_level = \(level); the change feed needs wal_level = logical (docs/changes.md)")
      }
      let state = try connection.query("SELECT slot_name, applied_lsn::text AS applied, next_position FROM change_feed_state")[0]
      let slot: String = try state.decode("slot_name")
      let locked = try connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey)) AS locked")[0].decode(
        "locked", as: Bool.self)
      guard locked else { return .follower }
      do {
        let exists = try connection.query("SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = \(slot)")[0]
        if try exists.decode("n", as: Int.self) == 0 {
          // Waits for the transactions running now to end (the slot needs a consistent starting point).
          _ = try connection.query("SELECT pg_create_logical_replication_slot(\(slot), 'pgoutput')")
        }
        // From the slot's confirmed position; what was copied but not confirmed comes again and is
        // skipped by the bookmark.
        do {
          current = Streaming(
            try ReplicationStream(
              connectionString: connectionString,
              startCommand:
                "START_REPLICATION SLOT \"\(slot)\" LOGICAL 0/0 (proto_version '1', publication_names 'crm_change_feed')"),
            applied: PgOutputReader.lsn(try state.decode("applied")) ?? 0, nextPosition: try state.decode("next_position"))
        } catch let error as PostgresError where error.kind == .connection {
          // The database answers ordinary sessions but refused the replication one (max_wal_senders,
          // pg_hba.conf): say so like the other reasons the feed is off, and keep retrying.
          _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
          return .unavailable(
            "the database refused the change feed's replication connection (\(error.serverMessage)); it needs "
              + "max_wal_senders ≥ 1 and pg_hba.conf letting the role connect to this database (docs/changes.md)")
        }
      } catch {
        _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
        throw error
      }
      streaming.withLock { $0 = current }
    }
    let applied = current.applied
    var position = current.nextPosition
    let fresh: [PgOutputReader.Transaction]
    let more: Bool
    do {
      var read = 0
      var wait = waitMilliseconds
      var first: ContinuousClock.Instant?
      while read < Self.messagesPerStep, let message = try current.stream.next(waitMilliseconds: wait) {
        let now = ContinuousClock.now
        let started = first ?? now
        first = started
        let left = started + gather - now
        wait = left > .zero ? Int32((left / .milliseconds(1)).rounded(.up)) : 0
        switch message {
        case .data(_, _, let payload):
          read += 1
          try current.reader.read(payload)
        case .keepalive(let walEnd, let replyRequested):
          current.keepaliveEnd = max(current.keepaliveEnd, walEnd)
          current.replyRequested = current.replyRequested || replyRequested
        }
      }
      more = read >= Self.messagesPerStep
      fresh = current.reader.takeCommitted()
    } catch {
      endStream(connection)
      throw error
    }
    var positions: [Int64] = []
    var tenants: [String] = []
    var sequences: [String] = []
    var transactions: [Int64] = []
    var places: [Int] = []
    var lsns: [String] = []
    var times: [Int64] = []
    for transaction in fresh where transaction.endLSN > applied {
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
    if let last = fresh.last, last.endLSN > applied {
      // One pipeline: one transaction for the rows and the bookmark. If it fails, the transactions
      // taken from the reader are not in the feed: the stream starts again from the slot's confirmed
      // position (and the bookmark from the table), or they would be skipped.
      do {
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
      } catch {
        endStream(connection)
        throw error
      }
      current.applied = last.endLSN
      current.nextPosition = position
    }
    // Confirm what is now copied: the end of the last transaction, or — with no transaction half
    // read — the last keepalive's WAL end (every commit before it has arrived and is copied), so
    // WAL that other tables wrote is released too.
    var through = fresh.last?.endLSN ?? 0
    if !current.reader.isInTransaction { through = max(through, current.keepaliveEnd) }
    through = max(through, current.confirmed)
    if through > current.confirmed || current.replyRequested
      || ContinuousClock.now - current.confirmedAt > .seconds(Self.statusSeconds)
    {
      do {
        try current.stream.confirm(flushed: through)
      } catch {
        endStream(connection)
        throw error
      }
      current.confirmed = through
      current.confirmedAt = .now
      current.replyRequested = false
    }
    return .copied(positions.count, more: more)
  }

  /// Closes the stream and lets go of the lock (the next step opens it again from the slot's confirmed
  /// position, unless another node's sequencer has taken over).
  private func endStream(_ connection: PostgresConnection) {
    streaming.withLock { state in
      state?.stream.close()
      state = nil
    }
    _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
  }
}
