import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.AdminService`: tenants, users, teams, tokens and sharing (admins only; the store checks).
public struct AdminService: Crm_V1_AdminService.SimpleServiceProtocol {
  let access: AccessStore
  let authenticator: Authenticator

  /// A service over `access`; `authenticator`'s cache is cleared when users or tokens change.
  public init(access: AccessStore, authenticator: Authenticator) {
    self.access = access
    self.authenticator = authenticator
  }

  /// Creates a tenant with its first admin (system tenant admins only).
  public func createTenant(request: Crm_V1_CreateTenantRequest, context: ServerContext) async throws
    -> Crm_V1_CreateTenantResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let name = violations.text("name", request.name, maxLength: 200, required: true)
    let email = Self.email(request.adminEmail, field: "admin_email", into: &violations)
    let displayName = violations.text("admin_display_name", request.adminDisplayName, maxLength: 200) ?? ""
    try violations.check()
    let (tenant, admin, secret) = try await access.createTenant(
      name: name!, adminEmail: email!, adminName: displayName, principal: call.principal)
    return .with {
      $0.tenant = Crm_V1_Tenant(tenant)
      $0.admin = Crm_V1_User(admin)
      $0.adminToken = secret
    }
  }

  /// The caller's tenant.
  public func getTenant(request: Crm_V1_GetTenantRequest, context: ServerContext) async throws -> Crm_V1_Tenant {
    let call = try RequestContext.require()
    return Crm_V1_Tenant(try await access.tenant(principal: call.principal))
  }

  /// Sets how one record type is shared.
  public func setSharingRule(request: Crm_V1_SetSharingRuleRequest, context: ServerContext) async throws -> Crm_V1_Tenant {
    let call = try RequestContext.require()
    var violations = Violations()
    let type = RecordType(request.rule.recordType, field: "rule.record_type", into: &violations)
    var mode = SharingMode.publicRead
    switch request.rule.mode {
    case .publicRead: mode = .publicRead
    case .private: mode = .private
    case .unspecified: violations.add("rule.mode", "required: public_read or private", reason: "REQUIRED")
    case .UNRECOGNIZED: violations.add("rule.mode", "unknown sharing mode", reason: "INVALID")
    }
    try violations.check()
    let tenant = try await access.setSharing(mode, for: type!, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_Tenant(tenant)
  }

  /// Sets how a role may treat one field of a record type.
  public func setFieldSecurity(request: Crm_V1_SetFieldSecurityRequest, context: ServerContext) async throws
    -> Crm_V1_FieldSecurityRules
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let rule = request.rule
    let role = Role(rule.role, field: "rule.role", into: &violations)
    if role == .admin { violations.add("rule.role", "admins are never restricted (they set field security)", reason: "INVALID") }
    let type = RecordType(rule.recordType, field: "rule.record_type", into: &violations)
    if let type {
      let fields = FieldGuard.shared.fields(of: type)
      if !fields.contains(rule.field) {
        violations.add(
          "rule.field",
          "\(type.rawValue) has no field \"\(rule.field.prefix(64))\" (use the API's field name, e.g. \"description\")",
          reason: "UNKNOWN_FIELD")
      } else if FieldGuard.unrestrictable.contains(rule.field) {
        violations.add("rule.field", "\(rule.field) identifies the record and cannot be restricted", reason: "INVALID")
      }
    }
    let level: FieldAccess? =
      switch rule.access {
      case .editable: .editable
      case .readOnly: .readOnly
      case .hidden: .hidden
      case .unspecified, .UNRECOGNIZED: nil
      }
    if level == nil { violations.add("rule.access", "must be EDITABLE, READ_ONLY or HIDDEN", reason: "REQUIRED") }
    try violations.check()
    let rules = try await access.setFieldAccess(
      .init(role: role!, recordType: type!, field: rule.field, access: level!), principal: call.principal)
    // Principals carry their field security: this node's cached ones are stale now.
    authenticator.invalidateAll()
    return Crm_V1_FieldSecurityRules(rules)
  }

  /// The tenant's field-level security.
  public func listFieldSecurity(request: Crm_V1_ListFieldSecurityRequest, context: ServerContext) async throws
    -> Crm_V1_FieldSecurityRules
  {
    let call = try RequestContext.require()
    return Crm_V1_FieldSecurityRules(try await access.fieldRules(principal: call.principal))
  }

  /// Creates a user.
  public func createUser(request: Crm_V1_CreateUserRequest, context: ServerContext) async throws -> Crm_V1_User {
    let call = try RequestContext.require()
    var violations = Violations()
    let email = Self.email(request.email, field: "email", into: &violations)
    let displayName = violations.text("display_name", request.displayName, maxLength: 200) ?? ""
    let role = Role(request.role, field: "role", into: &violations)
    let team = RequestFields.optionalID(request.teamID, field: "team_id", into: &violations)
    try violations.check()
    let user = try await access.createUser(
      email: email!, displayName: displayName, role: role!, teamID: team, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_User(user)
  }

  /// Changes a user's role, team, name or active flag.
  public func updateUser(request: Crm_V1_UpdateUserRequest, context: ServerContext) async throws -> Crm_V1_User {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let role = request.hasRole ? Role(request.role, field: "role", into: &violations) : nil
    let team: UUID?? =
      request.hasTeamID ? .some(RequestFields.optionalID(request.teamID, field: "team_id", into: &violations)) : nil
    let displayName =
      request.hasDisplayName
      ? violations.text("display_name", request.displayName, maxLength: 200) ?? "" : nil
    // A time in the past clears it: nobody is out of office until then.
    let away: Timestamp?? =
      request.hasOutOfOfficeUntil
      ? .some(request.outOfOfficeUntil.domain > .now ? request.outOfOfficeUntil.domain : nil) : nil
    try violations.check()
    let user = try await access.updateUser(
      id!, role: role, teamID: team, isActive: request.hasActive ? request.active : nil, displayName: displayName,
      outOfOfficeUntil: away, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_User(user)
  }

  /// A page of users.
  public func listUsers(request: Crm_V1_ListUsersRequest, context: ServerContext) async throws -> Crm_V1_ListUsersResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await access.listUsers(pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.users = page.items.map(Crm_V1_User.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  /// Creates a team.
  public func createTeam(request: Crm_V1_CreateTeamRequest, context: ServerContext) async throws -> Crm_V1_Team {
    let call = try RequestContext.require()
    var violations = Violations()
    let name = violations.text("name", request.name, maxLength: 200, required: true)
    let parent = RequestFields.optionalID(request.parentTeamID, field: "parent_team_id", into: &violations)
    let manager = RequestFields.optionalID(request.managerID, field: "manager_id", into: &violations)
    try violations.check()
    let team = try await access.createTeam(name: name!, parentTeamID: parent, managerID: manager, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_Team(team)
  }

  /// Every team.
  public func listTeams(request: Crm_V1_ListTeamsRequest, context: ServerContext) async throws -> Crm_V1_ListTeamsResponse {
    let call = try RequestContext.require()
    let teams = try await access.listTeams(principal: call.principal)
    return .with { $0.teams = teams.map(Crm_V1_Team.init) }
  }

  /// Mints a token; the secret is in this response only.
  public func createToken(request: Crm_V1_CreateTokenRequest, context: ServerContext) async throws -> Crm_V1_CreateTokenResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let user = RequestFields.id(request.userID, field: "user_id", into: &violations)
    let name = violations.text("name", request.name, maxLength: 200) ?? ""
    var expiry: Timestamp?
    if request.hasExpireTime {
      expiry = request.expireTime.domain
      if expiry! <= .now { violations.add("expire_time", "must be in the future", reason: "OUT_OF_RANGE") }
    }
    try violations.check()
    let (token, secret) = try await access.createToken(userID: user!, name: name, expiresAt: expiry, principal: call.principal)
    return .with {
      $0.token = Crm_V1_Token(token)
      $0.secret = secret
    }
  }

  /// The tenant's tokens (metadata only).
  public func listTokens(request: Crm_V1_ListTokensRequest, context: ServerContext) async throws -> Crm_V1_ListTokensResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    try violations.check()
    let tokens = try await access.listTokens(userID: user, principal: call.principal)
    return .with { $0.tokens = tokens.map(Crm_V1_Token.init) }
  }

  /// Revokes a token; it stops working at once on this node.
  public func revokeToken(request: Crm_V1_RevokeTokenRequest, context: ServerContext) async throws -> Crm_V1_Token {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    let token = try await access.revokeToken(id!, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_Token(token)
  }

  private static func email(_ text: String, field: String, into violations: inout Violations) -> EmailAddress? {
    if text.isEmpty {
      violations.add(field, "is required", reason: "REQUIRED")
      return nil
    }
    guard let email = EmailAddress(text) else {
      violations.add(field, "must be an email address", reason: "INVALID_FORMAT")
      return nil
    }
    return email
  }
}
