import NIOPosix
import Synchronization

/// One connection kept apart from any pool, with its own thread for libpq's blocking calls: for a
/// session that must outlive a single borrow (a session-level advisory lock held by a leader, a
/// replication slot read) and must not carry the pool's session settings.
///
/// The connection opens on first use and again after it is found broken; closing it ends the session
/// (and with it any session lock).
public final class PinnedConnection: Sendable {
  private let connectionString: String
  private let setupStatements: [String]
  private let thread = NIOThreadPool(numberOfThreads: 1)
  private let connection = Mutex<PostgresConnection?>(nil)

  /// A connection to `connectionString` that runs `setupStatements` whenever it (re)connects.
  public init(connectionString: String, setupStatements: [String] = []) {
    self.connectionString = connectionString
    self.setupStatements = setupStatements
    thread.start()
  }

  /// Runs `body` with the connection on the dedicated thread. A connection failure drops the
  /// connection (the next call reconnects) and is rethrown.
  public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
    try await thread.runIfActive { [self] in
      let current = try connection.withLock { held -> PostgresConnection in
        if let held, held.isHealthy { return held }
        let opened = try PostgresConnection(connectionString: connectionString)
        for statement in setupStatements { try opened.execute(unsafeSQL: statement) }
        held = opened
        return opened
      }
      do {
        return try body(current)
      } catch let error as PostgresError where error.isConnectionFailure {
        connection.withLock { held in
          held?.close()
          held = nil
        }
        throw error
      }
    }
  }

  /// Runs `cleanup`, closes the connection and stops the thread. Both run on the connection's own
  /// thread, after whatever body is running there: closing from the caller's thread freed the
  /// connection (and the caller's stream, in `cleanup`) under a body still inside libpq — a double
  /// free that aborted the test process once.
  public func close(_ cleanup: @escaping @Sendable () -> Void = {}) async {
    let closeHere: @Sendable () -> Void = { [self] in
      connection.withLock { held in
        held?.close()
        held = nil
      }
    }
    var ranOnThread = true
    do {
      try await thread.runIfActive {
        cleanup()
        closeHere()
      }
    } catch {
      ranOnThread = false
    }
    try? await thread.shutdownGracefully()
    if !ranOnThread { cleanup() }
    // A body queued behind the close may have opened a connection again; no thread runs one now.
    closeHere()
  }
}
