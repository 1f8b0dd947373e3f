import CRMStore
import CRMTestSupport
import Foundation
import LibPQ
import Logging
import Synchronization
import Testing

@Suite("LibPQ: the connection pool")
struct PoolTests {
  @Test("a borrower waits for a free connection and fails with poolExhausted after the timeout")
  func exhaustion() async throws {
    let pool = ConnectionPool(
      configuration: .init(
        connectionString: try TestDatabase.connectionString(), maxConnections: 1, acquireTimeout: .milliseconds(200)))
    // The holder keeps the only connection until the waiter has given up (however slowly a loaded
    // machine connects), so the waiter can only time out.
    let waiterDone = Atomic(false)
    let (held, heldContinuation) = AsyncStream.makeStream(of: Void.self)
    async let holder: Void = pool.withConnection { connection in
      heldContinuation.yield()
      let deadline = ContinuousClock.now + .seconds(60)
      while !waiterDone.load(ordering: .acquiring), ContinuousClock.now < deadline {
        _ = try connection.query("SELECT pg_sleep(0.02)")
      }
    }
    for await _ in held { break }
    let waited = ContinuousClock.now
    await #expect(throws: PostgresError.self) {
      try await pool.withConnection { _ in 1 }
    }
    #expect(ContinuousClock.now - waited >= .milliseconds(200))
    waiterDone.store(true, ordering: .releasing)
    try await holder
    // Once the holder is done, the same pool lends again.
    #expect(try await pool.withConnection { try $0.query("SELECT 2 AS v")[0].decode("v", as: Int.self) } == 2)
    await pool.close()
  }

  @Test("waiters are served in order, and no more connections open than the limit")
  func fairness() async throws {
    // A generous acquire timeout: on a loaded machine 40 borrowers of 3 connections may wait long.
    let pool = ConnectionPool(
      configuration: .init(
        connectionString: try TestDatabase.connectionString(), maxConnections: 3, acquireTimeout: .seconds(60)))
    let maxOpen = Counter()
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<40 {
        group.addTask {
          try await pool.withConnection { connection in
            _ = try connection.query("SELECT pg_sleep(0.01)")
            let open = pool.statistics.open
            maxOpen.raise(to: open)
          }
        }
      }
      try await group.waitForAll()
    }
    #expect(maxOpen.value <= 3)
    #expect(pool.statistics.leased == 0)
    await pool.close()
  }

  @Test("a serialization failure reruns the transaction")
  func retriesConflicts() async throws {
    let pool = ConnectionPool(configuration: .init(connectionString: try TestDatabase.connectionString(), maxConnections: 2))
    let attempts = Counter()
    let value = try await pool.withTransaction { connection in
      let attempt = attempts.increment()
      if attempt == 1 {
        _ = try connection.query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$")
      }
      return attempt
    }
    #expect(value == 2)
    await pool.close()
  }

  @Test("an error inside a transaction rolls it back and the connection stays usable")
  func rollback() async throws {
    let url = try TestDatabase.connectionString()
    let pool = ConnectionPool(configuration: .init(connectionString: url, maxConnections: 1))
    let table = "rollback_\(UUID().uuidString.prefix(8).lowercased())"
    try await pool.withConnection { try $0.execute(unsafeSQL: "CREATE TABLE \(table) (a int)") }
    await #expect(throws: PostgresError.self) {
      try await pool.withTransaction { connection in
        _ = try connection.query("INSERT INTO \(unsafeSQL: table) VALUES (1)")
        _ = try connection.query("SELECT 1/0")
      }
    }
    let count = try await pool.withConnection {
      try $0.query("SELECT count(*) AS n FROM \(unsafeSQL: table)")[0].decode("n", as: Int.self)
    }
    #expect(count == 0)
    try await pool.withConnection { try $0.execute(unsafeSQL: "DROP TABLE \(table)") }
    await pool.close()
  }

  @Test("a body may commit in its last pipeline; a failure before that COMMIT still rolls everything back")
  func pipelinedCommit() async throws {
    let pool = ConnectionPool(configuration: .init(connectionString: try TestDatabase.connectionString(), maxConnections: 1))
    let table = "piped_commit_\(UUID().uuidString.prefix(8).lowercased())"
    try await pool.withConnection { try $0.execute(unsafeSQL: "CREATE TABLE \(table) (a int PRIMARY KEY)") }
    let committed = try await pool.withTransaction { connection in
      _ = try connection.query("INSERT INTO \(unsafeSQL: table) VALUES (1)")
      _ = try connection.pipeline(["INSERT INTO \(unsafeSQL: table) VALUES (2)", "COMMIT"])
      return connection.isIdle
    }
    #expect(committed)
    await #expect(throws: PostgresError.self) {
      try await pool.withTransaction { connection in
        _ = try connection.query("INSERT INTO \(unsafeSQL: table) VALUES (3)")
        _ = try connection.pipeline(["INSERT INTO \(unsafeSQL: table) VALUES (1)", "COMMIT"])
      }
    }
    let rows = try await pool.withConnection { connection in
      try connection.query("SELECT a FROM \(unsafeSQL: table) ORDER BY a").rows.map { try $0.decode("a", as: Int.self) }
    }
    #expect(rows == [1, 2])
    // The connection came back clean: the next transaction works.
    #expect(try await pool.withTransaction { try $0.query("SELECT count(*) AS n FROM \(unsafeSQL: table)")[0].decode("n", as: Int.self) } == 2)
    try await pool.withConnection { try $0.execute(unsafeSQL: "DROP TABLE \(table)") }
    await pool.close()
  }

  @Test("while the server is down borrowers fail fast; after it restarts the pool reconnects")
  func reconnect() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crm-pool-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: directory) }
    let cluster = EmbeddedCluster(dataDirectory: directory, logger: Logger(label: "test"))
    try await runBlocking { try cluster.start() }
    // Failing fast means not waiting out the acquire timeout (60 s here) for a connection that cannot come.
    let pool = ConnectionPool(
      configuration: .init(connectionString: cluster.connectionString, maxConnections: 2, acquireTimeout: .seconds(60)))
    do {
      #expect(try await pool.withConnection { try $0.query("SELECT 1 AS v")[0].decode("v", as: Int.self) } == 1)
      try await runBlocking { cluster.stop() }
      let started = ContinuousClock.now
      do {
        _ = try await pool.withTransaction { try $0.query("SELECT 1").count }
        Issue.record("expected a connection failure while the server is down")
      } catch let error as PostgresError {
        #expect(error.isConnectionFailure)
      }
      #expect(ContinuousClock.now - started < .seconds(20))
      try await runBlocking { try cluster.start() }
      // For its fail-fast window after a failed connect the pool refuses at once without trying: the
      // same pool answers again once the window has passed and the server is back.
      var value: Int?
      try await waitUntil("the pool to reconnect to the restarted server") {
        do {
          value = try await pool.withTransaction { try $0.query("SELECT 3 AS v")[0].decode("v", as: Int.self) }
        } catch let error as PostgresError where error.isConnectionFailure {}
        return value != nil
      }
      #expect(value == 3)
    } catch {
      try? await runBlocking { cluster.stop() }
      await pool.close()
      throw error
    }
    try await runBlocking { cluster.stop() }
    await pool.close()
  }
}

/// A thread-safe counter for closures that run on the pool's threads.
final class Counter: Sendable {
  private let state = Mutex(0)

  var value: Int { state.withLock { $0 } }

  func increment() -> Int {
    state.withLock { count in
      count += 1
      return count
    }
  }

  func raise(to candidate: Int) {
    state.withLock { $0 = max($0, candidate) }
  }
}

@Suite("LibPQ: the pool under contention")
struct PoolContentionTests {
  @Test("many borrowers on a tiny pool all get served: no connection is stranded while others wait")
  func noStrandedConnections() async throws {
    // A stranded connection leaves its waiters queued until they time out, however long that is; the
    // generous timeout keeps a busy CI machine (48 waiters on 2 cores) from failing for slowness alone.
    let pool = ConnectionPool(
      configuration: .init(connectionString: try TestDatabase.connectionString(), maxConnections: 2, acquireTimeout: .seconds(120))
    )
    let failures = Counter()
    await withTaskGroup(of: Void.self) { group in
      for _ in 0..<48 {
        group.addTask {
          for _ in 0..<100 {
            do {
              _ = try await pool.withConnection { try $0.query("SELECT 1 AS v").count }
            } catch {
              _ = failures.increment()
            }
          }
        }
      }
    }
    #expect(failures.value == 0)
    #expect(pool.statistics.leased == 0)
    #expect(pool.statistics.waiting == 0)
    await pool.close()
  }
}
