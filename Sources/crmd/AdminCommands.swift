import ArgumentParser
import CRMCore
import CRMStore
import Foundation
import Logging

/// `crmd admin …`: manage tenants, users, teams and tokens straight in the database, without a token.
struct Admin: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Manage tenants, users, teams and tokens directly in the database (no token needed).",
    discussion: """
      These commands talk to PostgreSQL directly, acting as an admin of the tenant given with --tenant
      (default: the system tenant crmd bootstrapped). Use them to recover from a lost admin token; day
      to day, use `crm admin …` through the server.
      """,
    subcommands: [CreateTenant.self, CreateUser.self, CreateTeam.self, CreateToken.self, RevokeToken.self, ListUsers.self])

  /// Runs `body` with a store and the operator principal, then closes everything.
  static func withAccess<T>(
    _ options: DatabaseOptions, tenant: String?, _ body: (AccessStore, Principal) async throws -> T
  ) async throws -> T {
    let logger = try options.bootstrapLogging()
    // A cluster a running crmd uses is left running; one started just for this command is stopped.
    let (connectionString, cluster) = try options.prepareDatabase(logger: logger, stopReusedCluster: false)
    defer { cluster?.stop() }
    let tenantID = try tenant.map { text -> UUID in
      guard let id = UUID(uuidString: text) else { throw ValidationError("--tenant must be a tenant id (UUID)") }
      return id
    }
    let principal = try AccessStore.operatorPrincipal(connectionString: connectionString, tenantID: tenantID)
    let database = Database(configuration: .init(connectionString: connectionString, maxConnections: 2), logger: logger)
    do {
      let value = try await body(AccessStore(database: database), principal)
      await database.close()
      return value
    } catch {
      await database.close()
      throw error
    }
  }

  static func parseRole(_ text: String) throws -> Role {
    guard let role = Role(rawValue: text) else {
      throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return role
  }

  static func parseEmail(_ text: String) throws -> EmailAddress {
    guard let email = EmailAddress(text) else { throw ValidationError("not an email address: \(text)") }
    return email
  }
}

extension Admin {
  struct CreateTenant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a tenant with its first admin; prints the admin's token.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The tenant's name.") var name: String
    @Option(help: "The first admin's email.") var adminEmail: String
    @Option(help: "The first admin's display name.") var adminName: String = ""

    func run() async throws {
      let email = try Admin.parseEmail(adminEmail)
      let (tenant, user, secret) = try await Admin.withAccess(database, tenant: nil) { store, principal in
        try await store.createTenant(name: name, adminEmail: email, adminName: adminName, principal: principal)
      }
      print("tenant \(tenant.id.lowercasedString)\nadmin  \(user.id.lowercasedString) \(user.email)\ntoken  \(secret)")
    }
  }

  struct CreateUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a user.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: the system tenant).") var tenant: String?
    @Option(help: "Email address.") var email: String
    @Option(help: "admin, manager, sales_rep, service_agent, integration or collector.") var role: String
    @Option(help: "Display name.") var name: String = ""
    @Option(help: "Team id.") var teamID: String?

    func run() async throws {
      let role = try Admin.parseRole(role)
      let email = try Admin.parseEmail(email)
      let team = try teamID.map { text -> UUID in
        guard let id = UUID(uuidString: text) else { throw ValidationError("--team-id must be a UUID") }
        return id
      }
      let user = try await Admin.withAccess(database, tenant: tenant) { store, principal in
        try await store.createUser(email: email, displayName: name, role: role, teamID: team, principal: principal)
      }
      print("user \(user.id.lowercasedString) \(user.email) \(user.role.rawValue)")
    }
  }

  struct CreateTeam: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a team.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: the system tenant).") var tenant: String?
    @Option(help: "Team name.") var name: String
    @Option(help: "Parent team id.") var parentTeamID: String?
    @Option(help: "Manager's user id.") var managerID: String?

    func run() async throws {
      let parent = try parentTeamID.map {
        guard let id = UUID(uuidString: $0) else { throw ValidationError("--parent-team-id must be a UUID") }; return id
      }
      let manager = try managerID.map {
        guard let id = UUID(uuidString: $0) else { throw ValidationError("--manager-id must be a UUID") }; return id
      }
      let team = try await Admin.withAccess(database, tenant: tenant) { store, principal in
        try await store.createTeam(name: name, parentTeamID: parent, managerID: manager, principal: principal)
      }
      print("team \(team.id.lowercasedString) \(team.name)")
    }
  }

  struct CreateToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mint a token for a user and print its secret (shown once).")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: the system tenant).") var tenant: String?
    @Option(help: "The user's email.") var userEmail: String
    @Option(help: "A label for the token.") var name: String = "crmd admin"
    @Option(help: "Expire after this many days (default: never).") var expiresInDays: Int?

    func run() async throws {
      let expiry = try expiresInDays.map { days -> Timestamp in
        guard days > 0 else { throw ValidationError("--expires-in-days must be positive") }
        return Timestamp(microsecondsSinceEpoch: Timestamp.now.microsecondsSinceEpoch + Int64(days) * 86_400_000_000)
      }
      let (token, secret) = try await Admin.withAccess(database, tenant: tenant) { store, principal in
        let user = try await store.userID(email: userEmail, principal: principal)
        return try await store.createToken(userID: user, name: name, expiresAt: expiry, principal: principal)
      }
      FileHandle.standardError.write(Data("token \(token.id.lowercasedString) for user \(token.userID.lowercasedString)\n".utf8))
      print(secret)
    }
  }

  struct RevokeToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Revoke a token by id.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: the system tenant).") var tenant: String?
    @Option(help: "The token's id.") var id: String

    func run() async throws {
      guard let tokenID = UUID(uuidString: id) else { throw ValidationError("--id must be a UUID") }
      let token = try await Admin.withAccess(database, tenant: tenant) { store, principal in
        try await store.revokeToken(tokenID, principal: principal)
      }
      print("revoked \(token.id.lowercasedString)")
    }
  }

  struct ListUsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the users of a tenant.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: the system tenant).") var tenant: String?

    func run() async throws {
      let users = try await Admin.withAccess(database, tenant: tenant) { store, principal in
        try await store.listUsers(pageSize: 1000, pageToken: "", principal: principal).items
      }
      for user in users {
        print(
          "\(user.id.lowercasedString)  \(user.role.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0))  \(user.isActive ? "active  " : "inactive")  \(user.email)"
        )
      }
    }
  }
}
