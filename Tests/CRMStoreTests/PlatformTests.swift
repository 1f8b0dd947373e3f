import CRMCore
import CRMTestSupport
import Foundation
import LibPQ
import Logging
import Testing

@testable import CRMStore

@Suite("Store: page tokens")
struct PageTokenCodecTests {
  let codec = PageTokenCodec(secret: Array(repeating: 7, count: 32))

  @Test("a token round-trips and is bound to its query; an empty one is no token")
  func roundTrip() throws {
    let token = PageToken(key: "2026-12-06 05:00:00+00", id: UUID(), query: "q1")
    #expect(try codec.decode(codec.encode(token), query: "q1") == token)
    #expect(try codec.decode("", query: "q1") == nil)
    #expect(Self.reason { try codec.decode(codec.encode(token), query: "q2") } == "MISMATCH")
  }

  @Test("an edited, forged, truncated or foreign token is refused before it reaches SQL")
  func tampering() throws {
    let token = PageToken(key: "2026-12-06 05:00:00+00", id: UUID(), query: "q1")
    let issued = codec.encode(token)
    let parts = issued.split(separator: ".").map(String.init)
    // The payload edited to carry a key no timestamp parses from, signature kept.
    var forged = token
    forged.key = "garbage"
    let forgedPayload = PageTokenCodec.base64URL(try JSONEncoder().encode(forged))
    let foreign = PageTokenCodec(secret: Array(repeating: 8, count: 32)).encode(token)
    for text in [
      forgedPayload + "." + parts[1], forgedPayload, parts[0], parts[0] + ".", issued + "x", String(issued.dropLast(2)),
      foreign, "garbage!!", "a.b.c", String(repeating: "A", count: 5000),
    ] {
      #expect(Self.reason { try codec.decode(text, query: "q1") } == "INVALID_FORMAT", "\(text.prefix(40))")
    }
  }

  static func reason(_ body: () throws -> PageToken?) -> String? {
    do {
      _ = try body()
      return nil
    } catch let error as CRMError {
      guard case .invalidArgument(let violations) = error, violations.first?.field == "page_token" else { return "\(error)" }
      return violations.first?.reason
    } catch {
      return "\(error)"
    }
  }
}

@Suite("Store: start-up, tokens and the embedded cluster")
struct PlatformTests {
  @Test("two nodes migrating a fresh database at once apply each migration exactly once")
  func concurrentMigrations() async throws {
    let name = "crm_migrate_\(UUID().uuidString.prefix(8).lowercased())"
    let owner = try TestDatabase.ownerConnection()
    try owner.execute(unsafeSQL: "CREATE DATABASE \(name)")
    defer {
      _ = try? owner.execute(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)")
      owner.close()
    }
    let url = try TestDatabase.connectionString().replacingOccurrences(of: "dbname=crm_test", with: "dbname=\(name)")
    let applied = try await withThrowingTaskGroup(of: [String].self) { group in
      for _ in 0..<2 {
        group.addTask { try Migrator().migrate(connectionString: url) }
      }
      return try await group.reduce(into: [String]()) { $0 += $1 }
    }
    #expect(applied.sorted() == Migrator.bundled.map(\.name).sorted())
    let check = try PostgresConnection(connectionString: url)
    defer { check.close() }
    #expect(try check.query("SELECT count(*) AS n FROM schema_migrations")[0].decode("n", as: Int.self) == Migrator.bundled.count)
  }

  @Test("expired and revoked tokens do not authenticate; live ones carry role and hierarchy")
  func tokens() async throws {
    let tenant = try await TestTenant.make()
    let access = AccessStore(database: tenant.database)
    let (rep, secret) = try await tenant.makeUser(.salesRep)
    #expect(try await access.authenticate(secret: secret)?.userID == rep.userID)
    #expect(try await access.authenticate(secret: secret + "x") == nil)
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    try owner.query(
      "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = \(TokenSecret.hash(secret))::bytea")
    #expect(try await access.authenticate(secret: secret) == nil)

    let (_, second) = try await tenant.makeUser(.manager)
    let tokenID: UUID = try owner.query("SELECT id FROM api_tokens WHERE token_hash = \(TokenSecret.hash(second))::bytea")[0]
      .decode("id")
    _ = try await access.revokeToken(tokenID, principal: tenant.admin)
    #expect(try await access.authenticate(secret: second) == nil)

    let (inactive, third) = try await tenant.makeUser(.salesRep)
    _ = try await access.updateUser(
      inactive.userID, role: nil, teamID: nil, isActive: false, displayName: nil, principal: tenant.admin)
    #expect(try await access.authenticate(secret: third) == nil)
    await #expect(throws: CRMError.permissionDenied("this needs the admin role")) {
      try await access.listTokens(userID: nil, principal: rep)
    }
  }

  @Test("token secrets are 256 random bits and only their hash is stored")
  func tokenStorage() async throws {
    let secret = TokenSecret.generate()
    #expect(secret.hasPrefix("crm_"))
    #expect(secret.count == 4 + 43)
    #expect(TokenSecret.generate() != secret)
    let tenant = try await TestTenant.make()
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    let stored = try owner.query("SELECT encode(token_hash, 'hex') AS h FROM api_tokens WHERE tenant_id = \(tenant.tenantID)")
    #expect(stored.count == 1)
    #expect(try !stored[0].decode("h", as: String.self).contains(tenant.adminSecret))
  }

  @Test("the embedded cluster starts, is reused while running, and recovers from a stale postmaster.pid")
  func embeddedCluster() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crm-embedded-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: directory) }
    let cluster = EmbeddedCluster(dataDirectory: directory, logger: Logger(label: "test"))
    #expect(try await runBlocking { try cluster.start() })
    #expect(try await runBlocking { try cluster.start() } == false, "a running cluster is reused")
    let pidFile = cluster.clusterDirectory.appendingPathComponent("postmaster.pid")
    let pid = try #require(Int32(try String(contentsOf: pidFile, encoding: .utf8).split(separator: "\n")[0]))
    // A crash: the postmaster dies without cleaning up, and its PID now names another process.
    kill(pid, SIGKILL)
    try await waitUntil("the killed postmaster to exit") { kill(pid, 0) != 0 }
    var contents = try String(contentsOf: pidFile, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    contents[0] = Substring(String(getpid()))
    try contents.joined(separator: "\n").write(to: pidFile, atomically: false, encoding: .utf8)
    // The children of the killed postmaster linger a moment holding its shared memory: wait until no
    // process works in the cluster's directory any more (PostgreSQL's processes all chdir there).
    try await waitUntil("the killed postmaster's children to exit") {
      try Self.processes(workingIn: cluster.clusterDirectory).isEmpty
    }
    #expect(try await runBlocking { try cluster.start() })
    let connection = try PostgresConnection(connectionString: cluster.connectionString)
    #expect(try connection.query("SELECT current_database() AS db")[0].decode("db", as: String.self) == "crm")
    connection.close()
    try await runBlocking { cluster.stop() }
    #expect(!PostgresConnection.ping(connectionString: cluster.connectionString))
  }
  /// The ids of the processes whose working directory is `directory`.
  static func processes(workingIn directory: URL) throws -> [Int32] {
    let target = directory.resolvingSymlinksInPath().path
    return try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { name in
      guard let pid = Int32(name),
        let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/cwd")
      else { return nil }
      return cwd == target ? pid : nil
    }
  }


  @Test("a data directory the postgres user cannot reach (like /root/…) still gets a working cluster")
  func unreachableDataDirectory() async throws {
    let locked = FileManager.default.temporaryDirectory.appendingPathComponent("crm-locked-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(at: locked) }
    let cluster = EmbeddedCluster(dataDirectory: locked.appendingPathComponent("crm-data"), logger: Logger(label: "test"))
    #expect(!EmbeddedCluster.canTraverse(locked, as: "postgres") || geteuid() != 0)
    if geteuid() == 0 {
      #expect(cluster.clusterDirectory.path.hasPrefix("/var/lib/crm/clusters/"))
    } else {
      #expect(cluster.clusterDirectory.path.hasPrefix(locked.path))
    }
    #expect(try await runBlocking { try cluster.start() })
    let connection = try PostgresConnection(connectionString: cluster.connectionString)
    #expect(try connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
    connection.close()
    try await runBlocking { cluster.stop() }
    try? FileManager.default.removeItem(at: cluster.clusterDirectory)
  }
}

@Suite("Store: SLA clock records")
struct SLARecordTests {
  @Test("a clock target's jsonb, spelled out by hand, decodes to what JSONEncoder's would")
  func targetJSON() throws {
    let targets = [
      SLATarget(minutes: 60, businessHours: false),
      SLATarget(minutes: 1, businessHours: true, warningMinutes: 10, calendarID: UUID()),
      SLATarget(minutes: 525_600, businessHours: true, warningMinutes: nil, calendarID: UUID()),
      SLATarget(minutes: 90, businessHours: false, warningMinutes: 0),
    ]
    for target in targets {
      let stored = StoredTarget(target)
      let byHand = try StoredJSON.decoder.decode(StoredTarget.self, from: Data(stored.json.utf8)).target
      let byEncoder = try StoredJSON.decoder.decode(StoredTarget.self, from: StoredJSON.encoder.encode(stored)).target
      #expect(byHand == target)
      #expect(byHand == byEncoder)
    }
  }
}

@Suite("Store: reading pgoutput")
struct PgOutputTests {
  static func be(_ value: UInt64, _ width: Int) -> [UInt8] { (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
  static func string(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

  @Test("begin, relation, inserts and commit become one transaction of rows; LSNs round-trip through text")
  func transaction() throws {
    var reader = PgOutputReader()
    try reader.read([UInt8(ascii: "B")] + Self.be(0x1_0000_0010, 8) + Self.be(1_000_000, 8) + Self.be(742, 4))
    let relation =
      [UInt8(ascii: "R")] + Self.be(16_500, 4) + Self.string("public") + Self.string("change_log") + [UInt8(ascii: "d")]
      + Self.be(2, 2) + [1] + Self.string("tenant_id") + Self.be(2950, 4) + Self.be(0xFFFF_FFFF, 4)
      + [1] + Self.string("sequence") + Self.be(20, 4) + Self.be(0xFFFF_FFFF, 4)
    try reader.read(relation)
    for sequence in ["41", "42"] {
      let tenant = "01a24b00-1d76-7448-b7e3-af6a3e321793"
      try reader.read(
        [UInt8(ascii: "I")] + Self.be(16_500, 4) + [UInt8(ascii: "N")] + Self.be(2, 2)
          + [UInt8(ascii: "t")] + Self.be(UInt64(tenant.utf8.count), 4) + Array(tenant.utf8)
          + [UInt8(ascii: "t")] + Self.be(UInt64(sequence.utf8.count), 4) + Array(sequence.utf8))
    }
    #expect(reader.committed.isEmpty, "nothing is committed before the commit message")
    try reader.read([UInt8(ascii: "C"), 0] + Self.be(0x1_0000_0010, 8) + Self.be(0x1_0000_0040, 8) + Self.be(2_000_000, 8))
    let transaction = try #require(reader.committed.first)
    #expect(transaction.xid == 742 && transaction.endLSN == 0x1_0000_0040)
    #expect(transaction.commitMicroseconds == PgOutputReader.postgresEpochOffset + 2_000_000)
    #expect(transaction.rows.map { $0["sequence"] ?? nil } == ["41", "42"])
    #expect(PgOutputReader.text(lsn: 0x16_B374_D848) == "16/B374D848")
    #expect(PgOutputReader.lsn("16/B374D848") == 0x16_B374_D848 && PgOutputReader.lsn("nonsense") == nil)
    // A truncated message is an error, not a crash.
    #expect(throws: PgOutputReader.Failure.self) { try reader.read([UInt8(ascii: "B"), 1, 2]) }
  }
}
