import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

extension Crm_V1_Tenant {
  init(_ tenant: Tenant) {
    self.init()
    id = tenant.id.lowercasedString
    name = tenant.name
    createTime = .init(tenant.createdAt)
    system = tenant.isSystem
    sharingRules = RecordType.allCases.map { type in
      .with {
        $0.recordType = Crm_V1_RecordType(type)
        $0.mode = (tenant.sharing[type] ?? .standard(for: type)) == .private ? .private : .publicRead
      }
    }
  }
}

extension Crm_V1_User {
  init(_ user: User) {
    self.init()
    id = user.id.lowercasedString
    email = user.email
    displayName = user.displayName
    role = Crm_V1_Role(user.role)
    teamID = user.teamID?.lowercasedString ?? ""
    active = user.isActive
    createTime = .init(user.createdAt)
    if let away = user.outOfOfficeUntil { outOfOfficeUntil = .init(away) }
  }
}

extension Crm_V1_Team {
  init(_ team: Team) {
    self.init()
    id = team.id.lowercasedString
    name = team.name
    parentTeamID = team.parentTeamID?.lowercasedString ?? ""
    managerID = team.managerID?.lowercasedString ?? ""
    createTime = .init(team.createdAt)
  }
}

extension Crm_V1_Token {
  init(_ token: APIToken) {
    self.init()
    id = token.id.lowercasedString
    userID = token.userID.lowercasedString
    name = token.name
    createTime = .init(token.createdAt)
    if let expiresAt = token.expiresAt { expireTime = .init(expiresAt) }
    if let revokedAt = token.revokedAt { revokeTime = .init(revokedAt) }
    if let lastUsedAt = token.lastUsedAt { lastUseTime = .init(lastUsedAt) }
  }
}

extension Crm_V1_Role {
  init(_ role: Role) {
    switch role {
    case .admin: self = .admin
    case .manager: self = .manager
    case .salesRep: self = .salesRep
    case .serviceAgent: self = .serviceAgent
    case .integration: self = .integration
    case .collector: self = .collector
    }
  }
}

extension Role {
  init?(_ role: Crm_V1_Role, field: String, into violations: inout Violations) {
    switch role {
    case .admin: self = .admin
    case .manager: self = .manager
    case .salesRep: self = .salesRep
    case .serviceAgent: self = .serviceAgent
    case .integration: self = .integration
    case .collector: self = .collector
    case .unspecified, .UNRECOGNIZED:
      violations.add(
        field, "must be one of ROLE_ADMIN, ROLE_MANAGER, ROLE_SALES_REP, ROLE_SERVICE_AGENT, ROLE_INTEGRATION, ROLE_COLLECTOR",
        reason: "REQUIRED")
      return nil
    }
  }
}

extension Crm_V1_FieldSecurityRules {
  init(_ rules: [AccessStore.FieldRule]) {
    self.init()
    self.rules = rules.map { rule in
      .with {
        $0.role = Crm_V1_Role(rule.role)
        $0.recordType = Crm_V1_RecordType(rule.recordType)
        $0.field = rule.field
        $0.access =
          switch rule.access {
          case .editable: .editable
          case .readOnly: .readOnly
          case .hidden: .hidden
          }
      }
    }
  }
}
