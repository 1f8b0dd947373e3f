import CRMCore
import Foundation
public import LibPQ
public import Logging
import Synchronization

/// The store's entry point: one connection pool whose connections act as `crm_app` (so row-level
/// security applies), and the tenant-scoped transactions every aggregate's store runs in.
///
/// It knows nothing of gRPC; it takes and returns `CRMCore` values and throws ``CRMError`` for
/// domain failures and ``PostgresError`` for infrastructure ones.
public final class Database: Sendable {
  /// How to reach PostgreSQL and how large a pool to keep.
  public struct Configuration: Sendable {
    /// A libpq connection string or URI.
    public var connectionString: String
    /// The most connections (and blocking threads) the pool uses.
    public var maxConnections: Int
    /// How long a request waits for a free connection.
    public var acquireTimeout: Duration
    /// The longest a statement may run when the caller set no shorter deadline.
    public var statementTimeout: Duration

    /// A configuration with a pool of `maxConnections` (default 8) and a 30 s statement timeout.
    public init(
      connectionString: String, maxConnections: Int = 8, acquireTimeout: Duration = .seconds(5),
      statementTimeout: Duration = .seconds(30)
    ) {
      self.connectionString = connectionString
      self.maxConnections = maxConnections
      self.acquireTimeout = acquireTimeout
      self.statementTimeout = statementTimeout
    }
  }

  /// The pool request connections come from.
  public let pool: ConnectionPool
  /// The configuration used.
  public let configuration: Configuration
  let logger: Logger
  /// The page-token codec, made with the database's key the first time a list needs it.
  private let tokenCodec = Mutex<PageTokenCodec?>(nil)

  /// Session settings every connection gets: UTC ISO timestamps, and the unprivileged role.
  static let sessionSetup = [
    "SET DateStyle = ISO",
    "SET TimeZone = 'UTC'",
    "SET ROLE crm_app",
  ]

  /// Makes the pool (connections open lazily). Run ``Migrator`` first so that `crm_app` exists.
  public init(configuration: Configuration, logger: Logger = Logger(label: "crm.store")) {
    self.configuration = configuration
    self.logger = logger
    pool = ConnectionPool(
      configuration: .init(
        connectionString: configuration.connectionString,
        maxConnections: configuration.maxConnections,
        acquireTimeout: configuration.acquireTimeout,
        setupStatements: Self.sessionSetup
      ),
      logger: logger
    )
  }

  /// Closes the pool.
  public func close() async { await pool.close() }

  /// True when the database answers a trivial query.
  public func isReachable() async -> Bool {
    do {
      return try await pool.withConnection { connection in
        try connection.query("SELECT 1").count == 1
      }
    } catch {
      return false
    }
  }

  /// The codec that signs and checks page tokens with this database's key (one key for every node;
  /// read once, then kept).
  public func pageTokens() async throws -> PageTokenCodec {
    if let codec = tokenCodec.withLock({ $0 }) { return codec }
    let secret = try await pool.withConnection { connection in
      try connection.query("SELECT crm_page_token_key() AS k")[0].decode("k", as: PostgresBytes.self)
    }
    let codec = PageTokenCodec(secret: secret.bytes)
    tokenCodec.withLock { $0 = codec }
    return codec
  }

  /// The time left to the current request's deadline, set by the server for each call; statements
  /// run under `min(this, Configuration.statementTimeout)` so a query outliving its caller is cancelled
  /// (SQLSTATE 57014) instead of holding a connection.
  @TaskLocal public static var remainingTime: Duration?

  /// Runs `body` in a transaction scoped to `tenantID`: row-level security sees only that tenant.
  public func withTenant<T: Sendable>(
    _ tenantID: UUID,
    _ body: @escaping @Sendable (PostgresConnection) throws -> T
  ) async throws -> T {
    try await pool.withTransaction(opening: tenantSetup(tenantID), body)
  }

  /// Runs independent read statements scoped to `tenantID` in one round trip (pipeline mode, one
  /// implicit transaction), then decodes their results on the pool's thread. A connection found dead
  /// is replaced once: reads have no effects to repeat.
  public func read<T: Sendable>(
    _ tenantID: UUID,
    _ queries: [PostgresQuery],
    _ decode: @escaping @Sendable ([PostgresResult]) throws -> T
  ) async throws -> T {
    let statements = [tenantSetup(tenantID)] + queries
    var retried = false
    while true {
      do {
        return try await pool.withConnection { connection in
          try decode(Array(try connection.pipeline(statements).dropFirst()))
        }
      } catch let error as PostgresError where error.isConnectionFailure && !retried {
        retried = true
      }
    }
  }

  /// The statement that opens every tenant-scoped transaction: the tenant for row-level security,
  /// and the statement timeout (the request's remaining time, at most the configured one).
  func tenantSetup(_ tenantID: UUID) -> PostgresQuery {
    let timeout = min(Self.remainingTime ?? configuration.statementTimeout, configuration.statementTimeout)
    let milliseconds = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
    return "SELECT set_config('crm.tenant_id', \(tenantID), true), set_config('statement_timeout', \(String(milliseconds)), true)"
  }
}
