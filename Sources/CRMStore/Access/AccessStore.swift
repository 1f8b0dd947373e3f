public import CRMCore
public import Foundation
import LibPQ
public import Logging

/// Tenants, users, teams, tokens and authentication.
///
/// Authentication goes through the `crm_authenticate` definer function because the tenant is not
/// known until the token is found; everything else runs tenant-scoped under row-level security.
public struct AccessStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// The principal a bearer secret stands for, or `nil` when it is unknown, revoked, expired or its
  /// user is inactive.
  public func authenticate(secret: String) async throws -> Principal? {
    guard secret.utf8.count <= 256 else { return nil }
    let hash = TokenSecret.hash(secret)
    return try await database.pool.withTransaction { connection -> Principal? in
      guard
        let row = try connection.query(
          """
          SELECT tenant_id, user_id, role, is_system, sharing::text AS sharing, token_id, capture_channel, rate_per_minute
          FROM crm_authenticate(\(hash)::bytea)
          """
        ).first
      else { return nil }
      let tenantID: UUID = try row.decode("tenant_id")
      let userID: UUID = try row.decode("user_id")
      let tokenID: UUID = try row.decode("token_id")
      let captureScope = try Self.captureLimits(from: row).map { CaptureScope(keyID: tokenID, limits: $0) }
      try connection.query("SELECT set_config('crm.tenant_id', \(tenantID), true)")
      try connection.query(
        """
        UPDATE api_tokens SET last_used_at = now()
        WHERE tenant_id = \(tenantID) AND id = \(tokenID)
          AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        """)
      return try Self.principal(
        connection, tenantID: tenantID, userID: userID, role: Role(rawValue: try row.decode("role")) ?? .salesRep,
        sharing: Self.sharing(fromJSON: try row.decode("sharing")), isSystemTenant: try row.decode("is_system"),
        captureScope: captureScope)
    }
  }

  /// The principal a user acts as — what they may see and change — in a transaction where their
  /// tenant is current: the users below them in the team hierarchy and their pool memberships.
  static func principal(
    _ connection: PostgresConnection, tenantID: UUID, userID: UUID, role: Role, sharing: [RecordType: SharingMode],
    isSystemTenant: Bool, captureScope: CaptureScope? = nil
  ) throws -> Principal {
    let subordinates = try connection.query(
      """
      WITH RECURSIVE managed AS (
        SELECT id FROM teams WHERE tenant_id = \(tenantID) AND manager_id = \(userID)
        UNION
        SELECT t.id FROM teams t JOIN managed m ON t.tenant_id = \(tenantID) AND t.parent_team_id = m.id
      )
      SELECT id FROM users WHERE tenant_id = \(tenantID) AND team_id IN (SELECT id FROM managed)
      """)
    let memberships = try connection.query(
      "SELECT pool_id, is_admin FROM pool_members WHERE tenant_id = \(tenantID) AND user_id = \(userID)")
    var pools: [UUID: Bool] = [:]
    for row in memberships.rows { pools[try row.decode("pool_id")] = try row.decode("is_admin") }
    return Principal(
      tenantID: tenantID, userID: userID, role: role,
      ownersInHierarchy: Set(try subordinates.rows.map { try $0.decode("id", as: UUID.self) }),
      sharing: sharing, isSystemTenant: isSystemTenant, captureScope: captureScope, pools: pools,
      fieldSecurity: role == .admin ? .unrestricted : try fieldSecurity(connection, tenantID: tenantID, role: role))
  }

  /// A role's field-level security in a tenant.
  static func fieldSecurity(_ connection: PostgresConnection, tenantID: UUID, role: Role) throws -> FieldSecurity {
    var rules: [RecordType: [String: FieldAccess]] = [:]
    for row in try connection.query(
      "SELECT record_type, field, access FROM field_security WHERE tenant_id = \(tenantID) AND role = \(role.rawValue)"
    ).rows {
      guard let type = RecordType(rawValue: try row.decode("record_type")),
        let access = FieldAccess(rawValue: try row.decode("access"))
      else { continue }
      rules[type, default: [:]][try row.decode("field")] = access
    }
    return FieldSecurity(rules: rules)
  }

  /// One rule of field-level security.
  public struct FieldRule: Sendable, Hashable {
    public var role: Role
    public var recordType: RecordType
    public var field: String
    public var access: FieldAccess

    /// A rule.
    public init(role: Role, recordType: RecordType, field: String, access: FieldAccess) {
      self.role = role
      self.recordType = recordType
      self.field = field
      self.access = access
    }
  }

  /// Sets how a role may treat a field (admins only); `editable` removes the restriction. Validating
  /// that the field exists is the API's job (it knows the messages). Returns the tenant's rules.
  public func setFieldAccess(_ rule: FieldRule, principal: Principal) async throws -> [FieldRule] {
    try principal.requireAdmin()
    guard rule.role != .admin else {
      throw CRMError.invalid("role", "admins are never restricted (they set field security)", reason: "INVALID")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      if rule.access == .editable {
        try connection.query(
          """
          DELETE FROM field_security WHERE tenant_id = \(principal.tenantID) AND role = \(rule.role.rawValue)
            AND record_type = \(rule.recordType.rawValue) AND field = \(rule.field)
          """)
      } else {
        try connection.query(
          """
          INSERT INTO field_security (tenant_id, role, record_type, field, access, updated_by)
          VALUES (\(principal.tenantID), \(rule.role.rawValue), \(rule.recordType.rawValue), \(rule.field),
            \(rule.access.rawValue), \(principal.userID))
          ON CONFLICT (tenant_id, role, record_type, field)
          DO UPDATE SET access = EXCLUDED.access, updated_at = now(), updated_by = EXCLUDED.updated_by
          """)
      }
      return try Self.fieldRules(connection, tenantID: principal.tenantID)
    }
  }

  /// The tenant's field-level security rules (admins only), by role, record type and field.
  public func fieldRules(principal: Principal) async throws -> [FieldRule] {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { try Self.fieldRules($0, tenantID: principal.tenantID) }
  }

  static func fieldRules(_ connection: PostgresConnection, tenantID: UUID) throws -> [FieldRule] {
    try connection.query(
      "SELECT role, record_type, field, access FROM field_security WHERE tenant_id = \(tenantID) ORDER BY role, record_type, field"
    ).rows.compactMap { row in
      guard let role = Role(rawValue: try row.decode("role")), let type = RecordType(rawValue: try row.decode("record_type")),
        let access = FieldAccess(rawValue: try row.decode("access"))
      else { return nil }
      return FieldRule(role: role, recordType: type, field: try row.decode("field"), access: access)
    }
  }

  /// The principal of an active user of the tenant, as a bearer token of theirs would authenticate
  /// (jobs that act for a user, such as webhook deliveries); `nil` when the user is inactive or gone.
  public static func activePrincipal(_ connection: PostgresConnection, tenantID: UUID, userID: UUID) throws -> Principal? {
    guard
      let row = try connection.query(
        """
        SELECT u.role, t.is_system, t.sharing::text AS sharing FROM users u JOIN tenants t ON t.id = u.tenant_id
        WHERE u.tenant_id = \(tenantID) AND u.id = \(userID) AND u.is_active
        """
      ).first
    else { return nil }
    return try principal(
      connection, tenantID: tenantID, userID: userID, role: Role(rawValue: try row.decode("role")) ?? .salesRep,
      sharing: sharing(fromJSON: try row.decode("sharing")), isSystemTenant: try row.decode("is_system"))
  }

  /// On an empty database: creates the system tenant, its admin and a token, hands the token's secret
  /// to `persist` (which must keep it, e.g. in a file) before committing, and returns `true`. Returns
  /// `false` when a system tenant exists already (another node, or an earlier start). If `persist`
  /// throws, nothing is committed, so the next start tries again.
  public static func bootstrapIfEmpty(
    connectionString: String, logger: Logger, persist: (String) throws -> Void
  ) throws -> Bool {
    let connection = try PostgresConnection(connectionString: connectionString)
    defer { connection.close() }
    try connection.execute(unsafeSQL: "BEGIN")
    do {
      try connection.query("SELECT pg_advisory_xact_lock(\(Int64(0x63726D5F626F6F74)))")
      if try connection.query("SELECT 1 FROM tenants WHERE is_system").count > 0 {
        try connection.execute(unsafeSQL: "ROLLBACK")
        return false
      }
      let tenantID = UUID.v7()
      let userID = UUID.v7()
      let secret = TokenSecret.generate()
      try connection.query("INSERT INTO tenants (id, name, is_system) VALUES (\(tenantID), 'Default', true)")
      try connection.query(
        "INSERT INTO users (tenant_id, id, email, display_name, role) VALUES (\(tenantID), \(userID), 'admin@localhost', 'Administrator', 'admin')"
      )
      try connection.query(
        """
        INSERT INTO api_tokens (tenant_id, id, user_id, token_hash, name)
        VALUES (\(tenantID), \(UUID.v7()), \(userID), \(TokenSecret.hash(secret))::bytea, 'bootstrap')
        """)
      try persist(secret)
      try connection.execute(unsafeSQL: "COMMIT")
      logger.info("bootstrapped the system tenant and its admin", metadata: ["crm.tenant": "\(tenantID.lowercasedString)"])
      return true
    } catch {
      try? connection.execute(unsafeSQL: "ROLLBACK")
      throw error
    }
  }

  // MARK: - Tenants

  /// Creates a tenant with its first admin and that admin's token secret. Only admins of the system
  /// tenant may.
  public func createTenant(name: String, adminEmail: EmailAddress, adminName: String, principal: Principal) async throws
    -> (Tenant, User, String)
  {
    guard principal.isAdmin, principal.isSystemTenant else {
      throw CRMError.permissionDenied("only admins of the system tenant may create tenants")
    }
    let tenantID = UUID.v7()
    let userID = UUID.v7()
    let secret = TokenSecret.generate()
    return try await database.pool.withTransaction { connection in
      try connection.query("SELECT crm_create_tenant(\(tenantID), \(name), false)")
      try connection.query("SELECT set_config('crm.tenant_id', \(tenantID), true)")
      let tenant = try Self.tenant(connection, tenantID)
      let user = try Self.user(
        from: connection.query(
          """
          INSERT INTO users (tenant_id, id, email, display_name, role)
          VALUES (\(tenantID), \(userID), \(adminEmail.value), \(adminName), 'admin')
          RETURNING \(unsafeSQL: Self.userColumns)
          """)[0])
      try connection.query(
        """
        INSERT INTO api_tokens (tenant_id, id, user_id, token_hash, name)
        VALUES (\(tenantID), \(UUID.v7()), \(userID), \(TokenSecret.hash(secret))::bytea, 'first admin')
        """)
      return (tenant, user, secret)
    }
  }

  /// The caller's tenant.
  public func tenant(principal: Principal) async throws -> Tenant {
    try await database.withTenant(principal.tenantID) { connection in try Self.tenant(connection, principal.tenantID) }
  }

  /// Sets the sharing mode for one record type in the caller's tenant (admins only).
  public func setSharing(_ mode: SharingMode, for type: RecordType, principal: Principal) async throws -> Tenant {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        UPDATE tenants SET sharing = sharing || jsonb_build_object(\(type.rawValue)::text, \(mode.rawValue)::text),
          version = version + 1, updated_at = now()
        WHERE id = \(principal.tenantID)
        """)
      return try Self.tenant(connection, principal.tenantID)
    }
  }

  // MARK: - Users

  /// Creates a user in the caller's tenant (admins only).
  public func createUser(email: EmailAddress, displayName: String, role: Role, teamID: UUID?, principal: Principal) async throws
    -> User
  {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try translating {
        try Self.user(
          from: connection.query(
            """
            INSERT INTO users (tenant_id, id, email, display_name, role, team_id)
            VALUES (\(principal.tenantID), \(UUID.v7()), \(email.value), \(displayName), \(role.rawValue), \(teamID))
            RETURNING \(unsafeSQL: Self.userColumns)
            """)[0])
      }
    }
  }

  /// Changes a user's role, team, name or active flag (admins only); `nil` keeps a value. Use
  /// `teamID: .some(nil)` to take the user out of every team.
  public func updateUser(
    _ id: UUID, role: Role?, teamID: UUID??, isActive: Bool?, displayName: String?, outOfOfficeUntil: Timestamp?? = nil,
    principal: Principal
  ) async throws -> User {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try translating {
        let result = try connection.query(
          """
          UPDATE users SET
            role = coalesce(\(role?.rawValue), role),
            team_id = CASE WHEN \(teamID != nil) THEN \(teamID ?? nil)::uuid ELSE team_id END,
            is_active = coalesce(\(isActive), is_active),
            display_name = coalesce(\(displayName), display_name),
            out_of_office_until = CASE WHEN \(outOfOfficeUntil != nil) THEN \(outOfOfficeUntil ?? nil)::timestamptz
                                       ELSE out_of_office_until END,
            version = version + 1, updated_at = now()
          WHERE tenant_id = \(principal.tenantID) AND id = \(id)
          RETURNING \(unsafeSQL: Self.userColumns)
          """)
        guard let row = result.first else { throw CRMError.notFound("user \(id.lowercasedString) not found") }
        return try Self.user(from: row)
      }
    }
  }

  /// A page of the tenant's users by email (admins only).
  public func listUsers(pageSize: Int, pageToken: String, principal: Principal) async throws -> Page<User> {
    try principal.requireAdmin()
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: "users")
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Self.userColumns), lower(email) AS sort_key FROM users WHERE tenant_id = \(principal.tenantID)"
      if let token { query.append(" AND (lower(email), id) > (\(token.key), \(token.id))") }
      query.append(" ORDER BY lower(email), id LIMIT \(pageSize + 1)")
      let rows = try connection.query(query)
      var users = try rows.rows.map(Self.user(from:))
      var next: String?
      if users.count > pageSize {
        users.removeLast()
        next = tokens.encode(
          PageToken(key: try rows[pageSize - 1].decode("sort_key"), id: users[pageSize - 1].id, query: "users"))
      }
      return Page(items: users, nextPageToken: next)
    }
  }

  // MARK: - Teams

  /// Creates a team (admins only).
  public func createTeam(name: String, parentTeamID: UUID?, managerID: UUID?, principal: Principal) async throws -> Team {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try translating {
        try Self.team(
          from: connection.query(
            """
            INSERT INTO teams (tenant_id, id, name, parent_team_id, manager_id)
            VALUES (\(principal.tenantID), \(UUID.v7()), \(name), \(parentTeamID), \(managerID))
            RETURNING id, name, parent_team_id, manager_id, created_at
            """)[0])
      }
    }
  }

  /// Every team of the tenant, by name (admins only).
  public func listTeams(principal: Principal) async throws -> [Team] {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        "SELECT id, name, parent_team_id, manager_id, created_at FROM teams WHERE tenant_id = \(principal.tenantID) ORDER BY lower(name), id"
      ).rows.map(Self.team(from:))
    }
  }

  // MARK: - Tokens

  /// Mints a token for a user of the tenant (admins only); returns it with its secret. With `capture`,
  /// the token is a capture key: it may call `CaptureLead` for that channel only, at that rate.
  public func createToken(
    userID: UUID, name: String, expiresAt: Timestamp?, capture: CaptureKeyLimits? = nil, principal: Principal
  ) async throws -> (APIToken, String) {
    try principal.requireAdmin()
    let secret = TokenSecret.generate()
    return try await database.withTenant(principal.tenantID) { connection in
      let token = try translating {
        try Self.token(
          from: connection.query(
            """
            INSERT INTO api_tokens (tenant_id, id, user_id, token_hash, name, expires_at, capture_channel, rate_per_minute)
            VALUES (\(principal.tenantID), \(UUID.v7()), \(userID), \(TokenSecret.hash(secret))::bytea, \(name), \(expiresAt),
                    \(capture?.storedChannel), \(capture.map { Int32($0.ratePerMinute) }))
            RETURNING \(unsafeSQL: Self.tokenColumns)
            """)[0])
      }
      return (token, secret)
    }
  }

  /// The tenant's full tokens (or, with `captureKeys`, its capture keys), newest first, optionally of
  /// one user (admins only).
  public func listTokens(userID: UUID?, captureKeys: Bool = false, principal: Principal) async throws -> [APIToken] {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = "SELECT \(unsafeSQL: Self.tokenColumns) FROM api_tokens WHERE tenant_id = \(principal.tenantID)"
      query.append(unsafeSQL: captureKeys ? " AND capture_channel IS NOT NULL" : " AND capture_channel IS NULL")
      if let userID { query.append(" AND user_id = \(userID)") }
      query.append(unsafeSQL: " ORDER BY created_at DESC, id DESC LIMIT 1000")
      return try connection.query(query).rows.map(Self.token(from:))
    }
  }

  /// Revokes a token or capture key (admins only); revoking twice keeps the first time. With
  /// `captureKey`, only a capture key is found by `id`.
  public func revokeToken(_ id: UUID, captureKey: Bool = false, principal: Principal) async throws -> APIToken {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = """
        UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
        WHERE tenant_id = \(principal.tenantID) AND id = \(id)
        """
      if captureKey { query.append(unsafeSQL: " AND capture_channel IS NOT NULL") }
      query.append(" RETURNING \(unsafeSQL: Self.tokenColumns)")
      guard let row = try connection.query(query).first else {
        throw CRMError.notFound("\(captureKey ? "capture key" : "token") \(id.lowercasedString) not found")
      }
      return try Self.token(from: row)
    }
  }

  // MARK: - Rows

  static let userColumns = "id, email, display_name, role, team_id, is_active, created_at, out_of_office_until"
  static let tokenColumns =
    "id, user_id, name, created_at, expires_at, revoked_at, last_used_at, capture_channel, rate_per_minute"

  static func user(from row: PostgresRow) throws -> User {
    User(
      id: try row.decode("id"), email: try row.decode("email"), displayName: try row.decode("display_name"),
      role: Role(rawValue: try row.decode("role")) ?? .salesRep, teamID: try row.decode("team_id"),
      isActive: try row.decode("is_active"), createdAt: try row.decode("created_at"),
      outOfOfficeUntil: try row.decode("out_of_office_until"))
  }

  static func team(from row: PostgresRow) throws -> Team {
    Team(
      id: try row.decode("id"), name: try row.decode("name"), parentTeamID: try row.decode("parent_team_id"),
      managerID: try row.decode("manager_id"), createdAt: try row.decode("created_at"))
  }

  static func token(from row: PostgresRow) throws -> APIToken {
    APIToken(
      id: try row.decode("id"), userID: try row.decode("user_id"), name: try row.decode("name"),
      createdAt: try row.decode("created_at"), expiresAt: try row.decode("expires_at"),
      revokedAt: try row.decode("revoked_at"), lastUsedAt: try row.decode("last_used_at"),
      capture: try captureLimits(from: row))
  }

  /// A capture key's channel and rate from its row's `capture_channel` and `rate_per_minute`; `nil`
  /// for a full token.
  static func captureLimits(from row: PostgresRow) throws -> CaptureKeyLimits? {
    try row.decode("capture_channel", as: String?.self).map { channel in
      CaptureKeyLimits(
        channel: LeadSource(rawValue: channel) ?? .unspecified,
        ratePerMinute: Int(try row.decode("rate_per_minute", as: Int32?.self) ?? 1), support: channel == "support")
    }
  }

  static func tenant(_ connection: PostgresConnection, _ id: UUID) throws -> Tenant {
    guard
      let row = try connection.query(
        "SELECT id, name, is_system, sharing::text AS sharing, created_at FROM tenants WHERE id = \(id)"
      ).first
    else { throw CRMError.notFound("tenant not found") }
    return Tenant(
      id: try row.decode("id"), name: try row.decode("name"), isSystem: try row.decode("is_system"),
      sharing: sharing(fromJSON: try row.decode("sharing")), createdAt: try row.decode("created_at"))
  }

  static func sharing(fromJSON json: String) -> [RecordType: SharingMode] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] else { return [:] }
    var result: [RecordType: SharingMode] = [:]
    for (key, value) in object {
      if let type = RecordType(rawValue: key), let mode = SharingMode(rawValue: value) { result[type] = mode }
    }
    return result
  }

  private func translating<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as PostgresError {
      switch error.constraint {
      case "users_email": throw CRMError.alreadyExists(field: "email", message: "a user with this email exists")
      case "teams_name": throw CRMError.alreadyExists(field: "name", message: "a team with this name exists")
      case "users_tenant_id_team_id_fkey": throw CRMError.invalid("team_id", "no such team", reason: "NOT_FOUND")
      case "teams_tenant_id_parent_team_id_fkey": throw CRMError.invalid("parent_team_id", "no such team", reason: "NOT_FOUND")
      case "teams_tenant_id_manager_id_fkey": throw CRMError.invalid("manager_id", "no such user", reason: "NOT_FOUND")
      case "api_tokens_tenant_id_user_id_fkey": throw CRMError.invalid("user_id", "no such user", reason: "NOT_FOUND")
      default: throw error
      }
    }
  }
}
