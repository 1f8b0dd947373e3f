import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import LibPQ
import Logging
import SwiftProtobuf
import Testing

@Suite("Server: failures of the database and of time")
struct FailureRPCTests {
  @Test("with the database unreachable, calls answer UNAVAILABLE quickly and health says NOT_SERVING")
  func databaseDown() async throws {
    let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-cluster-\(UUID().uuidString.prefix(8))")
    // Quickly means without waiting out the acquire timeout (60 s here) for a connection that cannot come.
    let database = Database(
      configuration: .init(
        connectionString: "host=\(missing.path) dbname=crm user=crm connect_timeout=60", acquireTimeout: .seconds(60)),
      logger: Logger(label: "test"))
    try await TestServer.withClient(database: database) { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let started = ContinuousClock.now
      #expect(await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth(TokenSecret.generate())) } == .unavailable)
      #expect(ContinuousClock.now - started < .seconds(20))
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      #expect(try await health.check(.init()).status == .notServing)
    }
    await database.close()
  }

  @Test("a statement blocked past the caller's deadline is cancelled in PostgreSQL, not left waiting")
  func deadlineReachesPostgres() async throws {
    let tenant = try await TestTenant.make()
    let account = try await AccountStore(database: tenant.database).create(
      AccountFields(name: "Locked"), ownerID: nil, context: tenant.context(tenant.admin)
    ).record
    let locker = try TestDatabase.ownerConnection()
    defer { locker.close() }
    try locker.execute(unsafeSQL: "BEGIN")
    try locker.query("SELECT 1 FROM accounts WHERE tenant_id = \(tenant.tenantID) AND id = \(account.id) FOR UPDATE")
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      var options = CallOptions.defaults
      options.timeout = .milliseconds(300)
      let request = Crm_V1_UpdateAccountRequest.with {
        $0.account = .with {
          $0.id = account.id.lowercasedString; $0.name = "Waited"
        }
        $0.updateMask = .with { $0.paths = ["name"] }
      }
      #expect(
        await code { try await accounts.updateAccount(request, metadata: TestServer.auth(tenant.adminSecret), options: options) }
          == .deadlineExceeded)
      // The cancel reaches PostgreSQL on its own schedule; a statement left waiting would wait on this
      // lock until the test ends, so the bound fails it. Only sessions this test's lock blocks count:
      // other tests wait on row locks of their own.
      try await waitUntil("the blocked UPDATE to be cancelled in PostgreSQL") {
        try locker.query(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )[0].decode("n", as: Int.self) == 0
      }
    }
    try locker.execute(unsafeSQL: "ROLLBACK")
  }
}

/// Sends bytes as they are, to put malformed protobuf on the wire.
struct RawBytesSerializer: MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

/// Keeps a response's bytes as they are.
struct RawBytesDeserializer: MessageDeserializer {
  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}

@Suite("Server: malformed messages")
struct MalformedMessageTests {
  @Test(
    "malformed protobuf answers INVALID_ARGUMENT and the server keeps serving",
    arguments: [
      [0xff, 0xff, 0xff, 0xff], [0x0a, 0x7f, 0x01], [0x08], Array(repeating: 0x80, count: 12),
    ] as [[UInt8]])
  func malformed(bytes: [UInt8]) async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let descriptor = MethodDescriptor(fullyQualifiedService: "crm.v1.AccountService", method: "CreateAccount")
      let failure = await code {
        try await client.unary(
          request: ClientRequest(message: bytes, metadata: TestServer.auth(tenant.adminSecret)), descriptor: descriptor,
          serializer: RawBytesSerializer(), deserializer: RawBytesDeserializer(), options: .defaults
        ) { try $0.message }
      }
      #expect(failure == .invalidArgument)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      #expect(try await accounts.listAccounts(.init(), metadata: TestServer.auth(tenant.adminSecret)).accounts.isEmpty)
    }
  }
}
