public import CRMCore
public import CRMStore
import Foundation
public import LibPQ
import Logging

/// The PostgreSQL that scripts/test.sh starts for the tests, reached through `CRM_TEST_DATABASE_URL`.
///
/// Tests that need it fail when it is missing; they never skip.
public enum TestDatabase {
  /// Why a storage test cannot run.
  public struct Missing: Error, CustomStringConvertible {
    public init() {}
    public var description: String {
      "CRM_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts a throwaway PostgreSQL"
    }
  }

  /// The connection string of the test database.
  public static func connectionString() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["CRM_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
    return url
  }

  private static let shared = Shared()

  /// The migrated test database's pool, shared by every test in the process.
  public static func database() async throws -> Database {
    try await shared.database()
  }

  actor Shared {
    var cached: Database?

    func database() throws -> Database {
      if let cached { return cached }
      let url = try TestDatabase.connectionString()
      try Migrator().migrate(connectionString: url)
      // The change feed's slot, made here — after the migration (pgoutput cannot decode changes from
      // before its publication existed) and before the tests that wait for this pool open their
      // transactions: creating a slot waits for every transaction running in the cluster, and in the
      // middle of the suite that would be other tests' deliberately long ones.
      let owner = try PostgresConnection(connectionString: url)
      defer { owner.close() }
      _ = try owner.query(
        """
        SELECT pg_create_logical_replication_slot(slot_name, 'pgoutput') FROM change_feed_state
        WHERE current_setting('wal_level') = 'logical' AND slot_name NOT IN (SELECT slot_name FROM pg_replication_slots)
        """)
      // A generous acquire timeout: the whole suite shares this pool on a loaded two-core machine, and a
      // test must not fail because another test held the connections for a while (the pool's own
      // timeout is tested with pools of its own in LibPQTests).
      let database = Database(
        configuration: .init(connectionString: url, maxConnections: 16, acquireTimeout: .seconds(120)),
        logger: Logger(label: "test"))
      cached = database
      return database
    }
  }

  /// A direct connection as the database owner (no row-level security), for setting up and checking.
  public static func ownerConnection() throws -> PostgresConnection {
    let connection = try PostgresConnection(connectionString: try connectionString())
    try connection.execute(unsafeSQL: "SET TimeZone = 'UTC'; SET DateStyle = ISO")
    return connection
  }
}

/// A tenant of its own for one test, with an admin; more users on demand. Tests never share tenants,
/// so they run in parallel without seeing each other.
public struct TestTenant: Sendable {
  /// The tenant.
  public let tenantID: UUID
  /// Its admin.
  public let admin: Principal
  /// The admin's bearer secret.
  public let adminSecret: String
  /// The store the tenant lives in.
  public let database: Database

  /// Makes a tenant with one admin in the shared test database.
  public static func make(_ name: String = "test") async throws -> TestTenant {
    let database = try await TestDatabase.database()
    let tenantID = UUID.v7()
    let adminID = UUID.v7()
    let secret = TokenSecret.generate()
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    try connection.query("INSERT INTO tenants (id, name) VALUES (\(tenantID), \(name))")
    try connection.query(
      "INSERT INTO users (tenant_id, id, email, display_name, role) VALUES (\(tenantID), \(adminID), \("admin@\(tenantID.lowercasedString).test"), 'Admin', 'admin')"
    )
    try connection.query(
      "INSERT INTO api_tokens (tenant_id, id, user_id, token_hash, name) VALUES (\(tenantID), \(UUID.v7()), \(adminID), \(TokenSecret.hash(secret))::bytea, 'test')"
    )
    let admin = Principal(tenantID: tenantID, userID: adminID, role: .admin, ownersInHierarchy: [])
    return TestTenant(tenantID: tenantID, admin: admin, adminSecret: secret, database: database)
  }

  /// Adds a user and returns the principal the server would build for them, plus their token secret.
  public func makeUser(_ role: Role, team: UUID? = nil, email: String? = nil) async throws -> (Principal, String) {
    let access = AccessStore(database: database)
    let address = EmailAddress(email ?? "\(role.rawValue)-\(UUID().uuidString.prefix(8).lowercased())@example.com")!
    let user = try await access.createUser(email: address, displayName: role.rawValue, role: role, teamID: team, principal: admin)
    let (_, secret) = try await access.createToken(userID: user.id, name: "test", expiresAt: nil, principal: admin)
    guard let principal = try await access.authenticate(secret: secret) else { throw TestDatabase.Missing() }
    return (principal, secret)
  }

  /// A team, optionally under another and with a manager.
  public func makeTeam(_ name: String, parent: UUID? = nil, manager: UUID? = nil) async throws -> UUID {
    try await AccessStore(database: database).createTeam(name: name, parentTeamID: parent, managerID: manager, principal: admin)
      .id
  }

  /// The principal a secret authenticates as now (re-read after teams change).
  public func principal(for secret: String) async throws -> Principal {
    guard let principal = try await AccessStore(database: database).authenticate(secret: secret) else {
      throw TestDatabase.Missing()
    }
    return principal
  }

  /// A mutation context for `principal`.
  public func context(_ principal: Principal, requestID: String? = nil) -> ChangeLog.Context {
    ChangeLog.Context(principal: principal, requestID: requestID)
  }
}
