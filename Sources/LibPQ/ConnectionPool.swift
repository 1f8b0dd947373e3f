public import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A bounded pool of ``PostgresConnection``s with its own threads for libpq's blocking calls.
///
/// `withConnection` lends one connection to a closure that runs on the pool's dedicated threads, never
/// on a NIO event loop or Swift's cooperative pool: one blocked cooperative thread is half of a
/// two-core machine. Waiting is fair (first come, first served) and bounded by
/// ``Configuration/acquireTimeout``. A connection that failed is dropped and replaced on demand, so the
/// pool reconnects when the server comes back; while the server is down, borrowers fail fast with a
/// `.connection` error instead of queueing.
///
/// It does not retry statements by itself; ``withTransaction(_:)`` retries whole transactions.
public final class ConnectionPool: Sendable {
  /// How the pool connects and how large it grows.
  public struct Configuration: Sendable {
    /// A libpq connection string or URI.
    public var connectionString: String
    /// The most connections open at once (also the number of threads).
    public var maxConnections: Int
    /// How long a borrower waits for a free connection before failing with `.poolExhausted`.
    public var acquireTimeout: Duration
    /// After a failed connect, how long new borrowers fail at once rather than trying again.
    public var failFastWindow: Duration
    /// Statements run on every new connection (e.g. `SET ROLE crm_app`), text chosen by code.
    public var setupStatements: [String]
    /// How many times ``ConnectionPool/withTransaction(_:)`` runs a transaction that hit a
    /// serialization failure or deadlock.
    public var transactionAttempts: Int

    /// A configuration with defaults: 8 connections, 5 s acquire timeout, 3 transaction attempts.
    public init(
      connectionString: String,
      maxConnections: Int = 8,
      acquireTimeout: Duration = .seconds(5),
      failFastWindow: Duration = .milliseconds(500),
      setupStatements: [String] = [],
      transactionAttempts: Int = 3
    ) {
      self.connectionString = connectionString
      self.maxConnections = max(1, maxConnections)
      self.acquireTimeout = acquireTimeout
      self.failFastWindow = failFastWindow
      self.setupStatements = setupStatements
      self.transactionAttempts = max(1, transactionAttempts)
    }
  }

  /// A borrower's claim: a connection to use, or a permit to open one.
  enum Lease: Sendable {
    case connection(PostgresConnection)
    case permit
  }

  struct Waiter {
    var id: UInt64
    var continuation: CheckedContinuation<Lease, any Error>
    /// Fails the waiter with `.poolExhausted` when the acquire timeout passes; cancelled when served.
    var timer: Task<Void, Never>

    /// Hands the waiter what it waited for.
    func resume(with result: Result<Lease, any Error>) {
      timer.cancel()
      continuation.resume(with: result)
    }
  }

  struct State {
    var idle: [PostgresConnection] = []
    var open = 0
    var waiters: [Waiter] = []
    var nextWaiterID: UInt64 = 0
    var isClosed = false
    var lastConnectFailure: (at: ContinuousClock.Instant, error: PostgresError)?
    var leased = 0
  }

  /// What the pool is doing right now, for metrics and tests.
  public struct Statistics: Sendable, Equatable {
    /// Connections open, idle or lent.
    public var open: Int
    /// Connections lent out now.
    public var leased: Int
    /// Borrowers waiting.
    public var waiting: Int
  }

  /// The configuration the pool was made with.
  public let configuration: Configuration
  private let threads: NIOThreadPool
  private let state = Mutex(State())
  private let logger: Logger

  /// Makes a pool and starts its threads; connections open lazily.
  public init(configuration: Configuration, logger: Logger = Logger(label: "crm.libpq")) {
    self.configuration = configuration
    self.logger = logger
    threads = NIOThreadPool(numberOfThreads: configuration.maxConnections)
    threads.start()
  }

  /// The pool's current use.
  public var statistics: Statistics {
    state.withLock { Statistics(open: $0.open, leased: $0.leased, waiting: $0.waiters.count) }
  }

  /// Lends a connection to `body`, run on the pool's threads; returns what `body` returns.
  ///
  /// - Throws: what `body` throws, or ``PostgresError`` (`.poolExhausted`, `.poolClosed`, `.connection`).
  public func withConnection<T: Sendable>(
    _ body: @escaping @Sendable (PostgresConnection) throws -> T
  ) async throws -> T {
    let lease = try await acquire()
    return try await threads.runIfActive { [self] in
      let connection: PostgresConnection
      switch lease {
      case .connection(let lent):
        connection = lent
      case .permit:
        do {
          connection = try self.connect()
        } catch let error as PostgresError {
          self.connectFailed(error)
          throw error
        }
      }
      do {
        let value = try body(connection)
        self.release(connection)
        return value
      } catch {
        self.recover(connection, after: error)
        throw error
      }
    }
  }

  /// Runs `body` in a transaction: `BEGIN`, the body, `COMMIT`; `ROLLBACK` if it throws.
  ///
  /// `BEGIN` and `opening` travel with the body's first statement or pipeline rather than in a round
  /// trip of their own, and a body may end its last pipeline with `COMMIT` (then nothing is sent after
  /// it): a transaction of one read pipeline and one write pipeline costs two round trips. A body that
  /// runs no statement opens no transaction.
  ///
  /// A serialization failure (40001) or deadlock (40P01) runs the whole transaction again, up to
  /// ``Configuration/transactionAttempts`` times with a short random pause; a connection that turns out
  /// to be dead at `BEGIN` (e.g. the server restarted) is replaced once. So `body` must have no effects
  /// outside the database.
  ///
  /// - Parameter opening: a statement to run first in the transaction (e.g. setting the tenant),
  ///   sent in one round trip with `BEGIN` (pipeline mode).
  public func withTransaction<T: Sendable>(
    isolation: IsolationLevel = .readCommitted,
    opening setup: PostgresQuery? = nil,
    _ body: @escaping @Sendable (PostgresConnection) throws -> T
  ) async throws -> T {
    var attempt = 1
    var replacedDeadConnection = false
    while true {
      do {
        return try await withConnection { connection in
          connection.deferUntilNextStatement([PostgresQuery(unsafeSQL: isolation.beginStatement)] + (setup.map { [$0] } ?? []))
          do {
            let value = try body(connection)
            if !connection.discardDeferred(), !connection.isIdle { try connection.execute(unsafeSQL: "COMMIT") }
            return value
          } catch {
            let opened = !connection.discardDeferred()
            if opened, connection.isHealthy, !connection.isIdle { try? connection.execute(unsafeSQL: "ROLLBACK") }
            // A connection found dead by the round trip that opened the transaction (the server
            // restarted since it was last used): nothing ran, so the transaction may start over.
            if let error = error as? PostgresError, error.isConnectionFailure, connection.lostWithDeferred {
              throw TransactionStartFailure(error: error)
            }
            throw error
          }
        }
      } catch let failure as TransactionStartFailure {
        guard !replacedDeadConnection else { throw failure.error }
        replacedDeadConnection = true
      } catch let error as PostgresError where error.isRetryableConflict && attempt < configuration.transactionAttempts {
        attempt += 1
        try await Task.sleep(for: .milliseconds(Int.random(in: 2...20) * attempt))
      }
    }
  }

  /// Closes idle connections and fails waiters; connections lent out close when returned.
  public func close() async {
    let (idle, waiters) = state.withLock { state in
      state.isClosed = true
      let idle = state.idle
      let waiters = state.waiters
      state.idle.removeAll()
      state.waiters.removeAll()
      state.open -= idle.count
      return (idle, waiters)
    }
    for waiter in waiters { waiter.resume(with: .failure(PostgresError(kind: .poolClosed))) }
    for connection in idle { connection.close() }
    try? await threads.shutdownGracefully()
  }

  // MARK: - Lending

  /// Takes an idle connection or a permit to open one, or queues until a borrower gives one back.
  ///
  /// Deciding and queueing happen under one lock, so a connection returned between the two cannot be
  /// stranded in the idle list while borrowers wait.
  private func acquire() async throws -> Lease {
    enum Decision {
      case lease(Lease)
      case fail(any Error)
      case queued
    }
    let id = state.withLock { state -> UInt64 in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    let timeout = configuration.acquireTimeout
    let failFastWindow = configuration.failFastWindow
    let maxConnections = configuration.maxConnections
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
        let now = ContinuousClock.now
        let decision = state.withLock { state -> Decision in
          if state.isClosed { return .fail(PostgresError(kind: .poolClosed)) }
          if Task.isCancelled { return .fail(CancellationError()) }
          if state.waiters.isEmpty, let connection = state.idle.popLast() {
            state.leased += 1
            return .lease(.connection(connection))
          }
          if state.open < maxConnections {
            if let failure = state.lastConnectFailure, now - failure.at < failFastWindow {
              return .fail(failure.error)
            }
            state.open += 1
            state.leased += 1
            return .lease(.permit)
          }
          let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            self?.abandon(waiter: id, with: PostgresError(kind: .poolExhausted))
          }
          state.waiters.append(Waiter(id: id, continuation: continuation, timer: timer))
          return .queued
        }
        switch decision {
        case .lease(let lease): continuation.resume(returning: lease)
        case .fail(let error): continuation.resume(throwing: error)
        case .queued: break
        }
      }
    } onCancel: {
      abandon(waiter: id, with: CancellationError())
    }
  }

  private func abandon(waiter id: UInt64, with error: any Error) {
    let waiter = state.withLock { state -> Waiter? in
      guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
      return state.waiters.remove(at: index)
    }
    waiter?.resume(with: .failure(error))
  }

  /// Gives a healthy, idle connection back: to the first waiter, or to the idle list.
  private func release(_ connection: PostgresConnection) {
    guard connection.isHealthy, connection.isIdle else {
      discard(connection)
      return
    }
    let (waiter, closeIt) = state.withLock { state -> (Waiter?, Bool) in
      if state.isClosed {
        state.open -= 1
        state.leased -= 1
        return (nil, true)
      }
      if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
      state.leased -= 1
      state.idle.append(connection)
      return (nil, false)
    }
    if closeIt { connection.close() }
    waiter?.resume(with: .success(.connection(connection)))
  }

  /// After `body` threw: keep the connection if it is still usable, else drop it (and, if the link
  /// failed, drop the idle ones too: the server probably restarted, so they are dead as well).
  private func recover(_ connection: PostgresConnection, after error: any Error) {
    if connection.isHealthy, !connection.isIdle { try? connection.execute(unsafeSQL: "ROLLBACK") }
    if let error = error as? PostgresError, error.isConnectionFailure {
      logger.warning("PostgreSQL connection lost; dropping idle connections", metadata: ["db.error": "\(error)"])
      let idle = state.withLock { state -> [PostgresConnection] in
        let idle = state.idle
        state.idle.removeAll()
        state.open -= idle.count
        return idle
      }
      for stale in idle { stale.close() }
      discard(connection)
      return
    }
    release(connection)
  }

  /// Closes a connection and hands its slot to the first waiter as a permit.
  private func discard(_ connection: PostgresConnection) {
    connection.close()
    freeSlot()
  }

  private func freeSlot() {
    let waiter = state.withLock { state -> Waiter? in
      if !state.isClosed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
      state.open -= 1
      state.leased -= 1
      return nil
    }
    waiter?.resume(with: .success(.permit))
  }

  private func connect() throws -> PostgresConnection {
    let connection = try PostgresConnection(connectionString: configuration.connectionString)
    do {
      for statement in configuration.setupStatements { try connection.execute(unsafeSQL: statement) }
    } catch {
      connection.close()
      throw error
    }
    state.withLock { $0.lastConnectFailure = nil }
    return connection
  }

  private func connectFailed(_ error: PostgresError) {
    logger.warning("PostgreSQL connect failed", metadata: ["db.error": "\(error)"])
    state.withLock { $0.lastConnectFailure = (ContinuousClock.now, error) }
    freeSlot()
  }
}

/// `BEGIN` failed because the connection was dead; the pool may retry on a new one.
struct TransactionStartFailure: Error {
  var error: PostgresError
}

/// Transaction isolation levels.
public enum IsolationLevel: Sendable {
  case readCommitted
  case repeatableRead
  case serializable

  var beginStatement: String {
    switch self {
    case .readCommitted: return "BEGIN"
    case .repeatableRead: return "BEGIN ISOLATION LEVEL REPEATABLE READ"
    case .serializable: return "BEGIN ISOLATION LEVEL SERIALIZABLE"
    }
  }
}
