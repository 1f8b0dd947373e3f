import ArgumentParser
import CRMServer
import CRMStore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `crmd serve` (the default): run the gRPC server until SIGINT or SIGTERM.
struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the server (the default command).")

  @OptionGroup var database: DatabaseOptions

  @Option(help: "Address to listen on (env: CRM_HOST; default: 127.0.0.1).")
  var host: String?

  @Option(help: "Port to listen on; 0 picks a free one (env: CRM_PORT; default: 50051).")
  var port: Int?

  @Option(help: "Database connections (and blocking threads) in the pool (env: CRM_POOL_SIZE; default: 8).")
  var poolSize: Int?

  @Option(help: "TLS certificate chain, PEM (env: CRM_TLS_CERT). Needs --tls-key.")
  var tlsCert: String?

  @Option(help: "TLS private key, PEM (env: CRM_TLS_KEY). Needs --tls-cert.")
  var tlsKey: String?

  @Option(help: "Largest request message in bytes (env: CRM_MAX_REQUEST_BYTES; default: 16777216).")
  var maxRequestBytes: Int?

  @Option(help: "Seconds a checked token is trusted before it is checked again (env: CRM_AUTH_CACHE_SECONDS; default: 5).")
  var authCacheSeconds: Int?

  @Option(
    help:
      "Seconds between background job passes (pool recycling, stale-deal and expiring-holding alerts); 0 turns them off on this node (env: CRM_JOB_INTERVAL_SECONDS; default: 300)."
  )
  var jobIntervalSeconds: Int?

  @Option(
    help:
      "Seconds an import stream holds its import without a batch or heartbeat; after a node dies its imports read as interrupted this long after their last sign of life (env: CRM_IMPORT_LEASE_SECONDS; default: 30)."
  )
  var importLeaseSeconds: Int?

  @Flag(
    help:
      "Let webhooks reach private, loopback and link-local addresses (receivers inside your network; env: CRM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES). Off by default: a webhook URL must not become a way into the network crmd sits in."
  )
  var webhookAllowPrivateAddresses = false

  @Option(
    help:
      "Seconds one webhook attempt may take, connection and response included, 1 to 30 (env: CRM_WEBHOOK_TIMEOUT_SECONDS; default: 15)."
  )
  var webhookTimeoutSeconds: Int?

  @Option(
    help:
      "Webhook subscriptions this node delivers at once, 0 to 256; 0: this node delivers none (others do; redeliveries still work) (env: CRM_WEBHOOK_WORKERS; default: 32)."
  )
  var webhookWorkers: Int?

  @Option(help: "Where the first admin token is written, mode 0600 (env: CRM_TOKEN_FILE; default: DATA_DIR/admin-token).")
  var tokenFile: String?

  func run() async throws {
    let logger = try database.bootstrapLogging()
    var server = ServerConfiguration.defaults
    server.host = host ?? Environment.string("CRM_HOST") ?? server.host
    server.port = try port ?? Environment.int("CRM_PORT") ?? server.port
    server.maxRequestBytes = try maxRequestBytes ?? Environment.int("CRM_MAX_REQUEST_BYTES") ?? server.maxRequestBytes
    server.authCacheTTL = .seconds(try authCacheSeconds ?? Environment.int("CRM_AUTH_CACHE_SECONDS") ?? 5)
    let importLease = try importLeaseSeconds ?? Environment.int("CRM_IMPORT_LEASE_SECONDS") ?? 30
    guard (1...3600).contains(importLease) else { throw ValidationError("--import-lease-seconds must be 1 to 3600") }
    server.importLease = .seconds(importLease)
    let certificate = tlsCert ?? Environment.string("CRM_TLS_CERT")
    let key = tlsKey ?? Environment.string("CRM_TLS_KEY")
    switch (certificate, key) {
    case (let certificate?, let key?): server.tls = .init(certificatePath: certificate, keyPath: key)
    case (nil, nil): break
    default: throw ValidationError("--tls-cert and --tls-key go together")
    }
    guard (0...65535).contains(server.port) else { throw ValidationError("--port must be 0 to 65535") }
    let poolSize = try poolSize ?? Environment.int("CRM_POOL_SIZE") ?? 8
    guard (1...200).contains(poolSize) else { throw ValidationError("--pool-size must be 1 to 200") }
    guard server.maxRequestBytes >= 1024 else { throw ValidationError("--max-request-bytes must be at least 1024") }
    let webhookTimeout = try webhookTimeoutSeconds ?? Environment.int("CRM_WEBHOOK_TIMEOUT_SECONDS") ?? 15
    guard (1...30).contains(webhookTimeout) else { throw ValidationError("--webhook-timeout-seconds must be 1 to 30") }
    let workers = try webhookWorkers ?? Environment.int("CRM_WEBHOOK_WORKERS") ?? 32
    guard (0...256).contains(workers) else { throw ValidationError("--webhook-workers must be 0 to 256") }
    let allowPrivate = try webhookAllowPrivateAddresses || (Environment.bool("CRM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES") ?? false)

    let (connectionString, cluster) = try database.prepareDatabase(logger: logger)
    defer { cluster?.stop() }

    let tokenPath =
      tokenFile ?? Environment.string("CRM_TOKEN_FILE")
      ?? database.resolvedDataDirectory.appendingPathComponent("admin-token").path
    let bootstrapped = try AccessStore.bootstrapIfEmpty(connectionString: connectionString, logger: logger) { secret in
      try TokenFile.write(secret, to: tokenPath)
    }
    if bootstrapped { logger.info("wrote the first admin token", metadata: ["crm.token_file": "\(tokenPath)"]) }

    let store = Database(configuration: .init(connectionString: connectionString, maxConnections: poolSize), logger: logger)
    let sender = WebhookSender(timeout: .seconds(webhookTimeout), allowPrivateAddresses: allowPrivate)
    let webhooks = WebhookDispatcher(database: store, sender: sender, logger: logger, concurrency: max(workers, 1))
    let crmServer: CRMServer
    do {
      crmServer = try CRMServer(configuration: server, database: store, webhooks: webhooks, logger: logger)
    } catch {
      await sender.shutdown()
      throw error
    }
    let jobInterval = try jobIntervalSeconds ?? Environment.int("CRM_JOB_INTERVAL_SECONDS") ?? 300
    guard jobInterval >= 0 else { throw ValidationError("--job-interval-seconds must not be negative") }
    // The change feed's sequencer: its first step creates the replication slot, so changes from
    // here on reach the feed even before a consumer asks.
    let feed = ChangeFeedJob(connectionString: connectionString, wakeup: webhooks.wakeup, logger: logger)
    do {
      if case .unavailable(let reason) = try await feed.step() {
        logger.error("the change feed is off", metadata: ["reason": "\(reason)"])
      }
    } catch {
      // E.g. a role without the right to create a replication slot: the rest of crmd still serves,
      // and the job keeps retrying (docs/changes.md).
      logger.error("the change feed could not start; retrying in the background", metadata: ["error": "\(error)"])
    }
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: crmServer), .init(service: feed)]
    if workers > 0 { services.append(.init(service: webhooks)) }
    if jobInterval > 0 {
      services.append(.init(service: BackgroundJobs(database: store, interval: .seconds(jobInterval), logger: logger)))
    }
    let group = ServiceGroup(
      configuration: .init(
        services: services,
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    let announcement = Task {
      guard let address = try? await crmServer.listeningAddress else { return }
      let scheme = server.tls == nil ? "plaintext" : "TLS"
      var lines = ["crmd listening on \(Self.describe(address)) (gRPC, \(scheme))"]
      if FileManager.default.fileExists(atPath: tokenPath) {
        lines.append("admin token: \(tokenPath)")
        lines.append("try: export CRM_ADDRESS=\(Self.describe(address)) CRM_TOKEN=$(cat \(tokenPath)); crm accounts list")
      } else {
        lines.append(
          "no admin token file at \(tokenPath); mint a token with: crmd admin create-token --user-email admin@localhost")
      }
      FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
    do {
      try await group.run()
    } catch {
      announcement.cancel()
      await sender.shutdown()
      await store.close()
      throw error
    }
    announcement.cancel()
    await sender.shutdown()
    await store.close()
    logger.info("crmd stopped")
  }

  static func describe(_ address: some CustomStringConvertible) -> String {
    let text = address.description
    // "[ipv4]127.0.0.1:50051" → "127.0.0.1:50051"
    if let end = text.firstIndex(of: "]"), text.hasPrefix("[") { return String(text[text.index(after: end)...]) }
    return text
  }
}

/// Writes a secret to a file only its owner can read.
enum TokenFile {
  static func write(_ secret: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid())")
    guard
      FileManager.default.createFile(
        atPath: temporary.path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
    else {
      throw StartupError(description: "cannot write the admin token to \(path)")
    }
    guard rename(temporary.path, path) == 0 else {
      try? FileManager.default.removeItem(at: temporary)
      throw StartupError(description: "cannot write the admin token to \(path)")
    }
  }
}
