import CRMCore
import Foundation
import LibPQ

extension Account: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static var pooled: Bool { true }
  static let table = "accounts"
  static let recordType = RecordType.account
  static let noun = "account"
  static let nameSortKey = #"lower(name) COLLATE "C""#
  static var changeLogOrder: [String] { AccountField.changeLogOrder }
  static let constraintErrors: [String: CRMError] = [
    "accounts_external_id": .alreadyExists(field: "account.external_id", message: "another account has this external_id"),
    "accounts_tenant_id_owner_id_fkey": .invalid("account.owner_id", "no such user", reason: "NOT_FOUND"),
    "accounts_tenant_id_parent_id_fkey": .invalid("account.parent_id", "no such account", reason: "NOT_FOUND"),
  ]
  static let columns = """
    id, owner_id, name, website, domain, industry, account_type, tier, employee_count, annual_revenue_currency,
    annual_revenue_units, annual_revenue_nanos, phone, billing_address, shipping_address, parent_id, description,
    external_id, registration_id, tags, version, created_at, updated_at, created_by, updated_by, archived_at, merged_into,
    last_activity_at, pool_id, claimed_from_pool_id, claimed_at
    """

  init(row: PostgresRow) throws {
    var fields = AccountFields(name: try row.decode("name"))
    fields.website = try row.decode("website")
    fields.domain = try row.decode("domain")
    fields.industry = try row.decode("industry")
    fields.type = AccountType(rawValue: try row.decode("account_type")) ?? .unspecified
    fields.tier = AccountTier(rawValue: try row.decode("tier")) ?? .unspecified
    fields.employeeCount = try row.decode("employee_count")
    if let currency = try row.decode("annual_revenue_currency", as: String?.self) {
      fields.annualRevenue = Money(
        currencyCode: currency, units: try row.decode("annual_revenue_units"), nanos: try row.decode("annual_revenue_nanos") ?? 0)
    }
    fields.phone = try row.decode("phone")
    fields.billingAddress = try StoredJSON.decode(PostalAddress.self, from: row.decode("billing_address"))
    fields.shippingAddress = try StoredJSON.decode(PostalAddress.self, from: row.decode("shipping_address"))
    fields.parentID = try row.decode("parent_id")
    fields.description = try row.decode("description")
    fields.externalID = try row.decode("external_id")
    fields.registrationID = try row.decode("registration_id")
    fields.tags = try row.decode("tags")
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
      createdBy: try row.decode("created_by"), updatedBy: try row.decode("updated_by"),
      archivedAt: try row.decode("archived_at"), mergedIntoID: try row.decode("merged_into"),
      lastActivityAt: try row.decode("last_activity_at"), poolID: try row.decode("pool_id"),
      claimedFromPoolID: try row.decode("claimed_from_pool_id"), claimedAt: try row.decode("claimed_at"))
  }

  /// The values of the writable columns, in ``writableColumns`` order.
  var matchSubject: MatchSubject { fields.matchSubject }

  var writableValues: PostgresQuery {
    let f = fields
    return """
      \(f.name), \(f.website), \(f.domain), \(f.industry), \(f.type.rawValue), \(f.tier.rawValue), \(f.employeeCount),
      \(f.annualRevenue?.currencyCode), \(f.annualRevenue?.units), \(f.annualRevenue?.nanos), \(f.phone),
      \(f.billingAddress?.storedJSON)::jsonb, \(f.shippingAddress?.storedJSON)::jsonb, \(f.parentID), \(f.description),
      \(f.externalID), \(f.tags)::text[], \(ownerID), \(MatchKeys.companyName(f.name)), \(f.registrationID), \(poolID),
      \(claimedFromPoolID), \(claimedAt)
      """
  }

  static let writableColumns = """
    name, website, domain, industry, account_type, tier, employee_count, annual_revenue_currency, annual_revenue_units,
    annual_revenue_nanos, phone, billing_address, shipping_address, parent_id, description, external_id, tags, owner_id,
    company_key, registration_id, pool_id, claimed_from_pool_id, claimed_at
    """
}
