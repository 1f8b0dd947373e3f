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

  /// Closes the connection and stops the thread.
  public func close() async {
    connection.withLock { held in
      held?.close()
      held = nil
    }
    try? await thread.shutdownGracefully()
  }
}
