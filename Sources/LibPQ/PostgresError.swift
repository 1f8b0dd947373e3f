/// An error from PostgreSQL or from talking to it.
///
/// `description` is deliberately generic: it names the SQLSTATE and the constraint, never the server's
/// message, because messages such as `invalid input syntax for type uuid: "…"` or a unique violation's
/// detail quote the values that were bound. The server's text is kept in ``serverMessage`` for a
/// debugger, not for logs or clients.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
  /// What went wrong, broadly.
  public enum Kind: Sendable, Equatable {
    /// The connection could not be made, or was lost.
    case connection
    /// The server rejected a statement; ``PostgresError/sqlState`` says why.
    case server
    /// A value could not be decoded into the Swift type asked for.
    case decoding
    /// The pool could not lend a connection in time, or is closed.
    case poolExhausted
    /// The pool is shut down.
    case poolClosed
    /// A caller handed libpq something it cannot carry (e.g. a NUL byte in text).
    case invalidInput
  }

  /// What went wrong, broadly.
  public var kind: Kind
  /// The five-character SQLSTATE for server errors (e.g. "23505"); empty otherwise.
  public var sqlState: String
  /// The constraint a violation names, when the server says.
  public var constraint: String?
  /// The server's or libpq's own text. May contain bound values: never log it or send it to a client.
  public var serverMessage: String

  /// Makes an error; see the properties for what each part means.
  public init(kind: Kind, sqlState: String = "", constraint: String? = nil, serverMessage: String = "") {
    self.kind = kind
    self.sqlState = sqlState
    self.constraint = constraint
    self.serverMessage = serverMessage
  }

  /// A description safe to log: no values, no SQL.
  public var description: String {
    switch kind {
    case .connection: return "PostgreSQL connection failed or was lost"
    case .server:
      if let constraint { return "PostgreSQL error \(sqlState) on constraint \(constraint)" }
      return "PostgreSQL error \(sqlState)"
    case .decoding: return "a PostgreSQL value could not be decoded"
    case .poolExhausted: return "no PostgreSQL connection became free in time"
    case .poolClosed: return "the PostgreSQL connection pool is closed"
    case .invalidInput: return "a value cannot be sent to PostgreSQL"
    }
  }

  /// Serialization failure (40001) or deadlock (40P01): the transaction may succeed if run again.
  public var isRetryableConflict: Bool { sqlState == SQLState.serializationFailure || sqlState == SQLState.deadlockDetected }

  /// True when the connection itself failed, so the database may be down.
  public var isConnectionFailure: Bool {
    kind == .connection || sqlState.hasPrefix("08") || sqlState == SQLState.adminShutdown
      || sqlState == SQLState.cannotConnectNow
  }
}

/// SQLSTATE codes this project reacts to.
public enum SQLState {
  public static let uniqueViolation = "23505"
  public static let foreignKeyViolation = "23503"
  public static let checkViolation = "23514"
  public static let notNullViolation = "23502"
  public static let exclusionViolation = "23P01"
  public static let serializationFailure = "40001"
  public static let deadlockDetected = "40P01"
  public static let queryCanceled = "57014"
  public static let adminShutdown = "57P01"
  public static let cannotConnectNow = "57P03"
  public static let insufficientPrivilege = "42501"
  public static let invalidTextRepresentation = "22P02"
  public static let stringDataRightTruncation = "22001"
  public static let numericValueOutOfRange = "22003"
  public static let raiseException = "P0001"
}
