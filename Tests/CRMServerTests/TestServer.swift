import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging

/// A real crmd gRPC server on a loopback port, over the shared test database, for one test.
enum TestServer {
  /// Runs `body` with a client connected to a fresh server; stops both afterwards, also on failure.
  static func withClient<T: Sendable>(
    maxRequestBytes: Int = ServerConfiguration.defaults.maxRequestBytes,
    database given: Database? = nil,
    tls: ServerConfiguration.TLS? = nil,
    now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
    slaClock: @escaping @Sendable () -> Timestamp = { .now },
    feed: Bool = false,
    webhooks dispatcher: WebhookDispatcher? = nil,
    _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
  ) async throws -> T {
    let shared = try await TestDatabase.database()
    let database = given ?? shared
    var configuration = ServerConfiguration.defaults
    configuration.port = 0
    configuration.maxRequestBytes = maxRequestBytes
    configuration.tls = tls
    // A test that delivers webhooks brings its own dispatcher (and shuts its sender down); the others
    // get one that only serves redeliveries, and is shut down here.
    guard let webhooks = dispatcher else {
      let sender = WebhookSender(allowPrivateAddresses: true)
      let outcome: Result<T, any Error>
      do {
        outcome = .success(
          try await withClient(
            maxRequestBytes: maxRequestBytes, database: database, tls: tls, now: now, slaClock: slaClock, feed: feed,
            webhooks: WebhookDispatcher(database: database, sender: sender, logger: Logger(label: "test-webhooks")), body))
      } catch {
        outcome = .failure(error)
      }
      await sender.shutdown()
      return try outcome.get()
    }
    let server = try CRMServer(
      configuration: configuration, database: database, webhooks: webhooks, logger: Logger(label: "test-server"), now: now,
      slaClock: slaClock)
    // With `feed`, this server runs the change feed's sequencer like crmd does, and the body starts
    // once the replication slot exists (changes before it never reach the feed; whichever server's
    // sequencer creates it, creating waits for the transactions running then to end).
    var feedTask: Task<Void, any Error>?
    defer { feedTask?.cancel() }
    if feed {
      let job = ChangeFeedJob(
        connectionString: database.configuration.connectionString, interval: .milliseconds(20), wakeup: webhooks.wakeup,
        logger: Logger(label: "test-feed"))
      feedTask = Task { try await job.run() }
      try await waitUntil("the change feed's replication slot to exist") { try await job.isReady() }
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.server.serve() }
      let outcome: Result<T, any Error>
      do {
        guard let address = try await server.listeningAddress?.ipv4 else { throw TestDatabase.Missing() }
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tls {
          security = .tls {
            $0.trustRoots = .certificates([.file(path: tls.certificatePath, format: .pem)])
          }
        } else {
          security = .plaintext
        }
        let transport = try HTTP2ClientTransport.Posix(
          target: .ipv4(address: address.host, port: address.port), transportSecurity: security)
        outcome = .success(try await withGRPCClient(transport: transport) { client in try await body(client) })
      } catch {
        outcome = .failure(error)
      }
      // Stop the server gracefully and wait for it, after a failure too. Leaving the group by a throw
      // would cancel `serve()`, and cancelling a serving NIO transport can trap in swift-nio when a
      // stream was accepted but not yet served ("Deinited NIOAsyncWriter without calling finish()",
      // seen once in a loaded CI run).
      server.beginGracefulShutdown()
      try await group.waitForAll()
      return try outcome.get()
    }
  }

  /// Metadata carrying a bearer secret.
  static func auth(_ secret: String) -> Metadata { ["authorization": "Bearer \(secret)"] }
}

/// The gRPC code a call failed with, or `nil` when it succeeded.
func code<T>(_ call: () async throws -> T) async -> RPCError.Code? {
  do {
    _ = try await call()
    return nil
  } catch let error as RPCError {
    return error.code
  } catch {
    return .unknown
  }
}
