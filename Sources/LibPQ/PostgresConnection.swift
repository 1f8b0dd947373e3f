import CLibPQ
import Glibc
import Logging

/// One libpq connection (`PGconn*`).
///
/// Every call blocks its thread until the server answers: use a connection only on a thread that may
/// block, which ``ConnectionPool`` guarantees by lending connections to closures it runs on its own
/// thread pool. Statements are always parameterized; texts seen before are prepared once per
/// connection and executed by name.
///
/// `@unchecked Sendable`: libpq connections are not thread-safe, and this type adds no locking.
/// It is safe because a connection is only ever reachable by one borrower at a time: the pool hands
/// it out inside a scoped closure and takes it back when that closure returns, and that closure runs
/// on a single thread.
public final class PostgresConnection: @unchecked Sendable {
  private let handle: OpaquePointer
  private var prepared: [String: String] = [:]
  private var isClosed = false
  /// Statements that go out ahead of the next one, in its round trip (see ``deferUntilNextStatement(_:)``).
  private var deferred: [PostgresQuery] = []
  /// True when the round trip that carried deferred statements lost the connection before any
  /// `COMMIT` could have run in it: nothing it sent took effect.
  public private(set) var lostWithDeferred = false

  /// The most statements prepared per connection before the cache is cleared.
  static let preparedStatementLimit = 512

  /// Connects, blocking the calling thread.
  ///
  /// - Parameter connectionString: A libpq connection string or URI (`postgresql://…`, `host=/tmp dbname=crm`).
  /// - Throws: ``PostgresError`` of kind `.connection`.
  public init(connectionString: String) throws {
    handle = try openedConnection(PQconnectdb(connectionString))
  }

  deinit { close() }

  /// Closes the connection; later calls fail with a connection error.
  public func close() {
    guard !isClosed else { return }
    isClosed = true
    PQfinish(handle)
  }

  /// True while the connection is open and usable.
  public var isHealthy: Bool { !isClosed && PQstatus(handle) == CONNECTION_OK }

  /// True when no transaction is open (idle, not in a failed transaction).
  public var isIdle: Bool { !isClosed && PQtransactionStatus(handle) == PQTRANS_IDLE }

  /// The server's version as an integer, e.g. 150020 for 15.20.
  public var serverVersion: Int { Int(PQserverVersion(handle)) }

  /// Sends `statements` with the next statement or pipeline instead of in a round trip of their own
  /// (a transaction's `BEGIN` and setup): their results are dropped, and an error in them is the next
  /// statement's error.
  public func deferUntilNextStatement(_ statements: [PostgresQuery]) {
    deferred += statements
    lostWithDeferred = false
  }

  /// Drops the deferred statements not sent yet; true if there were any.
  @discardableResult
  public func discardDeferred() -> Bool {
    defer { deferred = [] }
    return !deferred.isEmpty
  }

  /// Sends the deferred statements now, for a call that cannot carry them (COPY, simple protocol).
  private func flushDeferred() throws {
    if !deferred.isEmpty { _ = try pipeline([]) }
  }

  /// Runs a statement, preparing it first if this connection has not seen its text.
  ///
  /// - Throws: ``PostgresError`` with the server's SQLSTATE, or kind `.connection` if the link failed.
  @discardableResult
  public func query(_ query: PostgresQuery) throws -> PostgresResult {
    if !deferred.isEmpty { return try pipeline([query])[0] }
    let sql = query.sql
    let binds = query.binds
    let name = try statementName(for: sql, parameterCount: binds.count)
    return try withCStrings(binds) { values in
      try check(PQexecPrepared(handle, name, Int32(values.count), values, nil, nil, 0))
    }
  }

  /// Runs several statements in one round trip (libpq pipeline mode), as one implicit transaction:
  /// if one fails, the ones before it are rolled back and the ones after it do not run.
  ///
  /// Use it for work whose statements do not depend on each other's results, such as setting the
  /// tenant and reading. Each statement is prepared once per connection, like ``query(_:)``.
  ///
  /// - Returns: one result per statement, in order.
  /// - Throws: the first statement's error (``PostgresError``).
  public func pipeline(_ queries: [PostgresQuery]) throws -> [PostgresResult] {
    let carried = deferred.count
    let queries = deferred + queries
    deferred = []
    do {
      return Array(try send(queries).dropFirst(carried))
    } catch let error as PostgresError where carried > 0 && error.isConnectionFailure {
      lostWithDeferred = !queries.contains { $0.sql == "COMMIT" }
      throw error
    }
  }

  private func send(_ queries: [PostgresQuery]) throws -> [PostgresResult] {
    let statements = try queries.map { query in
      (name: try statementName(for: query.sql, parameterCount: query.binds.count), binds: query.binds)
    }
    guard PQenterPipelineMode(handle) == 1 else { throw connectionError() }
    var sent = 0
    var results: [PostgresResult] = []
    var failure: (any Error)?
    for statement in statements {
      let ok = try withCStrings(statement.binds) { values in
        PQsendQueryPrepared(handle, statement.name, Int32(values.count), values, nil, nil, 0) == 1
      }
      guard ok else {
        failure = connectionError()
        break
      }
      sent += 1
    }
    if PQpipelineSync(handle) != 1 { failure = failure ?? connectionError() }
    for _ in 0..<sent {
      var first: OpaquePointer?
      while let result = PQgetResult(handle) {
        if first == nil { first = result } else { PQclear(result) }
      }
      guard let first else {
        failure = failure ?? connectionError()
        continue
      }
      if PQresultStatus(first) == PGRES_PIPELINE_ABORTED {
        PQclear(first)
        continue
      }
      do {
        results.append(try check(first))
      } catch {
        failure = failure ?? error
      }
    }
    // The sync point closes the implicit transaction.
    if let sync = PQgetResult(handle) { PQclear(sync) }
    if PQexitPipelineMode(handle) != 1 { failure = failure ?? connectionError() }
    if let failure { throw failure }
    return results
  }

  /// Runs a statement without preparing it (for one-off statements such as DDL).
  @discardableResult
  public func queryUnprepared(_ query: PostgresQuery) throws -> PostgresResult {
    try flushDeferred()
    let binds = query.binds
    return try withCStrings(binds) { values in
      try check(PQexecParams(handle, query.sql, Int32(values.count), nil, values, nil, nil, 0))
    }
  }

  /// Runs one or more statements with no parameters in the simple protocol (migrations, `BEGIN`).
  public func execute(unsafeSQL sql: String) throws {
    try flushDeferred()
    _ = try check(PQexec(handle, sql))
  }

  /// Streams rows into `COPY … FROM STDIN` in text format.
  ///
  /// - Parameters:
  ///   - statement: e.g. `COPY staging (a, b) FROM STDIN`.
  ///   - rows: each row's column values in text format, `nil` for NULL.
  /// - Returns: the number of rows copied.
  @discardableResult
  public func copyIn(_ statement: PostgresQuery, rows: some Sequence<[String?]>) throws -> Int {
    try flushDeferred()
    let start = try check(PQexec(handle, statement.sql), allowing: PGRES_COPY_IN)
    _ = start
    var buffer: [UInt8] = []
    buffer.reserveCapacity(64 * 1024)
    func flush() throws {
      guard !buffer.isEmpty else { return }
      let status = buffer.withUnsafeBufferPointer { pointer in
        pointer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
      }
      guard status == 1 else { throw connectionError() }
      buffer.removeAll(keepingCapacity: true)
    }
    for row in rows {
      for (index, value) in row.enumerated() {
        if index > 0 { buffer.append(UInt8(ascii: "\t")) }
        guard let value else {
          buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
          continue
        }
        for byte in value.utf8 {
          switch byte {
          case UInt8(ascii: "\\"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
          case UInt8(ascii: "\t"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
          case UInt8(ascii: "\n"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
          case UInt8(ascii: "\r"): buffer.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
          case 0: throw PostgresError(kind: .invalidInput, serverMessage: "NUL byte in COPY data")
          default: buffer.append(byte)
          }
        }
      }
      buffer.append(UInt8(ascii: "\n"))
      if buffer.count >= 60 * 1024 { try flush() }
    }
    try flush()
    guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError() }
    var copied = 0
    var failure: PostgresError?
    while let result = PQgetResult(handle) {
      do {
        let checked = try check(result)
        copied = checked.affectedRows
      } catch let error as PostgresError {
        failure = failure ?? error
      }
    }
    if let failure { throw failure }
    return copied
  }

  // MARK: - Internals

  private func statementName(for sql: String, parameterCount: Int) throws -> String {
    if let name = prepared[sql] { return name }
    if prepared.count >= Self.preparedStatementLimit {
      _ = try? check(PQexec(handle, "DEALLOCATE ALL"))
      prepared.removeAll()
    }
    let name = "s\(prepared.count)"
    _ = try check(PQprepare(handle, name, sql, Int32(parameterCount), nil))
    prepared[sql] = name
    return name
  }

  private func withCStrings<T>(
    _ values: [String?],
    _ body: ([UnsafePointer<CChar>?]) throws -> T
  ) throws -> T {
    var owned: [UnsafeMutablePointer<CChar>?] = []
    owned.reserveCapacity(values.count)
    defer { for pointer in owned { free(pointer) } }
    for value in values {
      guard let value else {
        owned.append(nil)
        continue
      }
      if value.utf8.contains(0) {
        throw PostgresError(kind: .invalidInput, serverMessage: "NUL byte in a text parameter")
      }
      owned.append(strdup(value))
    }
    return try body(owned.map { UnsafePointer($0) })
  }

  private func connectionError() -> PostgresError {
    PostgresError(kind: .connection, serverMessage: String(cString: PQerrorMessage(handle)))
  }

  /// Turns a result into a ``PostgresResult`` or throws its error; frees it on error.
  private func check(_ result: OpaquePointer?, allowing allowed: ExecStatusType? = nil) throws -> PostgresResult {
    guard !isClosed else { throw PostgresError(kind: .connection, serverMessage: "connection closed") }
    guard let result else { throw connectionError() }
    let status = PQresultStatus(result)
    if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY
      || (allowed != nil && status == allowed!)
    {
      return PostgresResult(handle: result)
    }
    defer { PQclear(result) }
    func field(_ code: CChar) -> String? {
      guard let value = PQresultErrorField(result, Int32(code)) else { return nil }
      return String(cString: value)
    }
    let sqlState = field(CChar(UInt8(ascii: "C"))) ?? ""
    let message = field(CChar(UInt8(ascii: "M"))) ?? String(cString: PQerrorMessage(handle))
    let constraint = field(CChar(UInt8(ascii: "n")))
    if sqlState.isEmpty || PQstatus(handle) != CONNECTION_OK {
      throw PostgresError(kind: .connection, sqlState: sqlState, serverMessage: message)
    }
    throw PostgresError(kind: .server, sqlState: sqlState, constraint: constraint, serverMessage: message)
  }
}

extension PostgresConnection {
  /// Asks a server whether it accepts connections, without authenticating (libpq's `PQping`).
  public static func ping(connectionString: String) -> Bool {
    PQping(connectionString) == PQPING_OK
  }
}

/// A connection libpq opened, checked: connected, with notices going to the logger;
/// otherwise closed and thrown as a ``PostgresError`` of kind `.connection`.
func openedConnection(_ opened: OpaquePointer?) throws -> OpaquePointer {
  guard let handle = opened else { throw PostgresError(kind: .connection, serverMessage: "out of memory") }
  guard PQstatus(handle) == CONNECTION_OK else {
    let message = String(cString: PQerrorMessage(handle))
    PQfinish(handle)
    throw PostgresError(kind: .connection, serverMessage: message)
  }
  PQsetNoticeReceiver(handle, postgresNoticeReceiver, nil)
  return handle
}

/// Where libpq's notices go: the server's NOTICE, WARNING and asynchronous FATAL messages ("terminating
/// connection due to administrator command"), which libpq would otherwise print raw on stderr.
let postgresNoticeLogger = Logger(label: "crm.libpq")

/// libpq's notice receiver: one structured log line per notice, at a level by its severity.
private func postgresNoticeReceiver(_ argument: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
  guard let result else { return }
  func field(_ code: UInt8) -> String {
    guard let value = PQresultErrorField(result, Int32(code)) else { return "" }
    return String(cString: value)
  }
  let severity = field(UInt8(ascii: "V"))
  let level: Logger.Level =
    switch severity {
    case "DEBUG", "LOG", "INFO": .debug
    case "NOTICE": .info
    default: .warning
    }
  postgresNoticeLogger.log(
    level: level, "PostgreSQL \(severity.lowercased()): \(field(UInt8(ascii: "M")))",
    metadata: ["db.sqlstate": "\(field(UInt8(ascii: "C")))"])
}
