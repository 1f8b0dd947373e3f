import CLibPQ

/// The rows a statement returned, read in place from libpq's result (no copy until you decode).
///
/// Not `Sendable`: it lives on the thread that ran the statement, inside the pool's scoped closure.
/// Decode what you need into Sendable values before the closure returns.
public final class PostgresResult {
  let handle: OpaquePointer
  /// The number of rows.
  public let count: Int
  private let columnIndex: [String: Int32]

  init(handle: OpaquePointer) {
    self.handle = handle
    count = Int(PQntuples(handle))
    var index: [String: Int32] = [:]
    let fields = PQnfields(handle)
    for column in 0..<fields {
      if let name = PQfname(handle, column) { index[String(cString: name)] = column }
    }
    columnIndex = index
  }

  deinit { PQclear(handle) }

  /// The rows affected by an INSERT, UPDATE, DELETE, COPY or the like.
  public var affectedRows: Int {
    guard let text = PQcmdTuples(handle) else { return 0 }
    return Int(String(cString: text)) ?? 0
  }

  /// The row at `index`.
  public subscript(index: Int) -> PostgresRow { PostgresRow(result: self, index: Int32(index)) }

  /// Every row in order.
  public var rows: [PostgresRow] { (0..<count).map { self[$0] } }

  /// The first row, if any.
  public var first: PostgresRow? { count > 0 ? self[0] : nil }

  /// Appends every cell's text to `bytes`, each length-prefixed (NULL apart from empty), row by row:
  /// two results with equal bytes hold equal values, so what was decoded from one serves the other.
  public func appendContents(to bytes: inout [UInt8]) {
    let fields = PQnfields(handle)
    withUnsafeBytes(of: Int64(count).littleEndian) { bytes.append(contentsOf: $0) }
    withUnsafeBytes(of: Int64(fields).littleEndian) { bytes.append(contentsOf: $0) }
    for row in 0..<Int32(count) {
      for column in 0..<fields {
        guard PQgetisnull(handle, row, column) == 0, let value = PQgetvalue(handle, row, column) else {
          withUnsafeBytes(of: Int64(-1).littleEndian) { bytes.append(contentsOf: $0) }
          continue
        }
        let length = Int(PQgetlength(handle, row, column))
        withUnsafeBytes(of: Int64(length).littleEndian) { bytes.append(contentsOf: $0) }
        value.withMemoryRebound(to: UInt8.self, capacity: length) { bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
      }
    }
  }

  func column(named name: String) throws -> Int32 {
    guard let column = columnIndex[name] else {
      throw PostgresError(kind: .decoding, serverMessage: "no column \(name)")
    }
    return column
  }
}

/// One row of a ``PostgresResult``.
public struct PostgresRow {
  let result: PostgresResult
  let index: Int32

  /// Decodes the named column; `T` may be optional to accept NULL.
  public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
    try decode(at: result.column(named: column), as: type)
  }

  /// Decodes the column at a position.
  public func decode<T: PostgresDecodable>(at column: Int32, as type: T.Type = T.self) throws -> T {
    if PQgetisnull(result.handle, index, column) == 1 { return try T.postgresNull() }
    guard let value = PQgetvalue(result.handle, index, column) else { return try T.postgresNull() }
    return try T(postgresText: String(cString: value))
  }

  /// True when the named column is NULL.
  public func isNull(_ column: String) throws -> Bool {
    PQgetisnull(result.handle, index, try result.column(named: column)) == 1
  }
}
