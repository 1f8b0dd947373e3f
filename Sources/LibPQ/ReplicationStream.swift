import CLibPQ
import Glibc

/// A logical replication stream: a walsender connection (`replication=database`) in the CopyBoth
/// state after `START_REPLICATION … LOGICAL`, as PostgreSQL's "Streaming Replication Protocol"
/// describes it. The server decodes each WAL record once and pushes transactions as they commit;
/// the client reads them with ``next(waitMilliseconds:)`` and tells the server how far it has
/// durably consumed with ``confirm(flushed:)`` (the slot's `confirmed_flush_lsn`).
///
/// `@unchecked Sendable`: like ``PostgresConnection``, one owner at a time uses it, on a thread that
/// may block.
public final class ReplicationStream: @unchecked Sendable {
  private let handle: OpaquePointer
  private var isClosed = false

  /// What the server sent.
  public enum Message: Sendable, Equatable {
    /// WAL data: a decoded message of the output plugin, and the server's WAL end when it sent it.
    case data(walStart: UInt64, walEnd: UInt64, payload: [UInt8])
    /// A keepalive: everything committed at or before `walEnd` has been sent; `replyRequested`
    /// asks for a status update now.
    case keepalive(walEnd: UInt64, replyRequested: Bool)
  }

  /// Connects to `connectionString` as a logical walsender and runs `startCommand`
  /// (`START_REPLICATION SLOT … LOGICAL …`).
  ///
  /// - Throws: ``PostgresError`` (kind `.connection`, or the server's SQLSTATE — `55006` when
  ///   another session streams from the slot).
  public init(connectionString: String, startCommand: String) throws {
    // The connection string (or URI) expanded from dbname, then replication=database on top.
    let keywords = ["dbname", "replication"]
    let values = [connectionString, "database"]
    let handle = try openedConnection(
      withArrayOfCStrings(keywords) { keys in withArrayOfCStrings(values) { vals in PQconnectdbParams(keys, vals, 1) } })
    self.handle = handle
    guard let result = PQexec(handle, startCommand) else {
      PQfinish(handle)
      throw PostgresError(kind: .connection, serverMessage: "out of memory")
    }
    defer { PQclear(result) }
    guard PQresultStatus(result) == PGRES_COPY_BOTH else {
      func field(_ code: UInt8) -> String {
        guard let value = PQresultErrorField(result, Int32(code)) else { return "" }
        return String(cString: value)
      }
      let sqlState = field(UInt8(ascii: "C"))
      let message = field(UInt8(ascii: "M"))
      PQfinish(handle)
      throw PostgresError(
        kind: sqlState.isEmpty ? .connection : .server, sqlState: sqlState,
        serverMessage: message.isEmpty ? "START_REPLICATION failed" : message)
    }
  }

  deinit { close() }

  /// Ends the stream and the connection.
  public func close() {
    guard !isClosed else { return }
    isClosed = true
    PQfinish(handle)
  }

  /// The next message, waiting up to `waitMilliseconds` for one (0: only what has arrived); `nil`
  /// when none came in time.
  ///
  /// - Throws: ``PostgresError`` when the server ended the stream or the connection failed.
  public func next(waitMilliseconds: Int32) throws -> Message? {
    var waited = false
    while true {
      var buffer: UnsafeMutablePointer<CChar>?
      let length = PQgetCopyData(handle, &buffer, 1)
      if length > 0, let buffer {
        let bytes = [UInt8](UnsafeRawBufferPointer(start: buffer, count: Int(length)))
        PQfreemem(buffer)
        return try Self.parse(bytes)
      }
      if length == -1 {
        // The server ended the copy (its result follows).
        let message = String(cString: PQerrorMessage(handle))
        throw PostgresError(kind: .connection, serverMessage: "the replication stream ended: \(message)")
      }
      if length < -1 {
        throw PostgresError(kind: .connection, serverMessage: String(cString: PQerrorMessage(handle)))
      }
      // Nothing complete has arrived: wait for the socket once, then take what came.
      if waited || waitMilliseconds <= 0 { return nil }
      waited = true
      var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
      let ready = poll(&descriptor, 1, waitMilliseconds)
      if ready < 0 && errno != EINTR {
        throw PostgresError(kind: .connection, serverMessage: "poll failed: errno \(errno)")
      }
      if ready > 0 && PQconsumeInput(handle) == 0 {
        throw PostgresError(kind: .connection, serverMessage: String(cString: PQerrorMessage(handle)))
      }
    }
  }

  /// Tells the server that everything up to `flushed` is consumed: the slot's
  /// `confirmed_flush_lsn` moves there and WAL before it may be released.
  public func confirm(flushed: UInt64) throws {
    // Standby status update: 'r', written, flushed, applied, client time (µs since 2000-01-01), reply.
    var message: [UInt8] = [UInt8(ascii: "r")]
    let now = Int64(time(nil)) * 1_000_000 - 946_684_800_000_000
    for value in [flushed, flushed, flushed, UInt64(bitPattern: now)] {
      for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    message.append(0)
    let sent = message.withUnsafeBufferPointer { bytes in
      bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
    }
    guard sent == 1 else { throw PostgresError(kind: .connection, serverMessage: String(cString: PQerrorMessage(handle))) }
    while true {
      let flushing = PQflush(handle)
      if flushing == 0 { return }
      if flushing < 0 { throw PostgresError(kind: .connection, serverMessage: String(cString: PQerrorMessage(handle))) }
      var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLOUT), revents: 0)
      _ = poll(&descriptor, 1, 1000)
    }
  }

  /// Decodes one CopyData message of the replication protocol.
  static func parse(_ bytes: [UInt8]) throws -> Message {
    func uint64(at offset: Int) -> UInt64 {
      bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }
    switch bytes.first {
    case UInt8(ascii: "w") where bytes.count >= 25:
      return .data(walStart: uint64(at: 1), walEnd: uint64(at: 9), payload: Array(bytes[25...]))
    case UInt8(ascii: "k") where bytes.count >= 18:
      return .keepalive(walEnd: uint64(at: 1), replyRequested: bytes[17] != 0)
    default:
      throw PostgresError(
        kind: .connection, serverMessage: "unexpected replication message \(bytes.first.map { String($0) } ?? "(empty)")")
    }
  }
}

/// Runs `body` with `strings` as a NULL-terminated array of C strings.
private func withArrayOfCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
  let copies = strings.map { strdup($0) }
  defer { copies.forEach { free($0) } }
  return body(copies.map { UnsafePointer($0) } + [nil])
}
