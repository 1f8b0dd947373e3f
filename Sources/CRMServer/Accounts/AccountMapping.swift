import CRMCore
import CRMProto
import Foundation
import SwiftProtobuf

extension Crm_V1_Account {
  /// The API form of an account.
  init(_ account: Account) {
    self.init()
    let f = account.fields
    id = account.id.lowercasedString
    etag = account.etag
    createTime = .init(account.createdAt)
    updateTime = .init(account.updatedAt)
    if let archivedAt = account.archivedAt { archiveTime = .init(archivedAt) }
    mergedIntoID = account.mergedIntoID?.lowercasedString ?? ""
    if let activity = account.lastActivityAt { lastActivityTime = .init(activity) }
    ownerID = account.ownerID?.lowercasedString ?? ""
    poolID = account.poolID?.lowercasedString ?? ""
    claimedFromPoolID = account.claimedFromPoolID?.lowercasedString ?? ""
    if let claimedAt = account.claimedAt { claimTime = .init(claimedAt) }
    name = f.name
    website = f.website ?? ""
    domain = f.domain ?? ""
    industry = f.industry ?? ""
    type = Crm_V1_AccountType(f.type)
    tier = Crm_V1_AccountTier(f.tier)
    if let count = f.employeeCount { employeeCount = count }
    if let revenue = f.annualRevenue { annualRevenue = .init(revenue) }
    phone = f.phone ?? ""
    if let address = f.billingAddress { billingAddress = .init(address) }
    if let address = f.shippingAddress { shippingAddress = .init(address) }
    parentID = f.parentID?.lowercasedString ?? ""
    description_p = f.description ?? ""
    externalID = f.externalID ?? ""
    registrationID = f.registrationID ?? ""
    tags = f.tags
    createUserID = account.createdBy?.lowercasedString ?? ""
    updateUserID = account.updatedBy?.lowercasedString ?? ""
  }

  /// The caller-settable fields, validated and normalized; every violation is recorded under `prefix`.
  /// Only the fields in `only` are read when given (an update's mask).
  func fields(prefix: String, only: Set<AccountField>?, into violations: inout Violations) -> AccountFields {
    var fields = AccountFields(name: name)
    fields.website = website
    fields.industry = industry
    fields.type = AccountType(type, field: "\(prefix).type", into: &violations)
    fields.tier = AccountTier(tier, field: "\(prefix).tier", into: &violations)
    fields.employeeCount = hasEmployeeCount ? employeeCount : nil
    fields.annualRevenue = hasAnnualRevenue ? annualRevenue.domain : nil
    fields.phone = phone
    fields.billingAddress = hasBillingAddress ? billingAddress.domain : nil
    fields.shippingAddress = hasShippingAddress ? shippingAddress.domain : nil
    fields.parentID = RequestFields.optionalID(parentID, field: "\(prefix).parent_id", into: &violations)
    fields.description = description_p
    fields.externalID = externalID
    fields.registrationID = registrationID
    fields.tags = tags
    return fields.normalized(prefix: prefix, only: only, into: &violations)
  }
}

extension Crm_V1_AccountType {
  init(_ type: AccountType) {
    switch type {
    case .unspecified: self = .unspecified
    case .prospect: self = .prospect
    case .customer: self = .customer
    case .partner: self = .partner
    case .reseller: self = .reseller
    case .vendor: self = .vendor
    case .competitor: self = .competitor
    case .other: self = .other
    }
  }
}

extension AccountType {
  init(_ type: Crm_V1_AccountType, field: String, into violations: inout Violations) {
    switch type {
    case .unspecified: self = .unspecified
    case .prospect: self = .prospect
    case .customer: self = .customer
    case .partner: self = .partner
    case .reseller: self = .reseller
    case .vendor: self = .vendor
    case .competitor: self = .competitor
    case .other: self = .other
    case .UNRECOGNIZED:
      violations.add(field, "unknown account type", reason: "INVALID")
      self = .unspecified
    }
  }
}

extension Crm_V1_AccountTier {
  init(_ tier: AccountTier) {
    switch tier {
    case .unspecified: self = .unspecified
    case .strategic: self = .strategic
    case .key: self = .key
    case .standard: self = .standard
    case .longTail: self = .longTail
    }
  }
}

extension AccountTier {
  init(_ tier: Crm_V1_AccountTier, field: String, into violations: inout Violations) {
    switch tier {
    case .unspecified: self = .unspecified
    case .strategic: self = .strategic
    case .key: self = .key
    case .standard: self = .standard
    case .longTail: self = .longTail
    case .UNRECOGNIZED:
      violations.add(field, "unknown account tier", reason: "INVALID")
      self = .unspecified
    }
  }
}
