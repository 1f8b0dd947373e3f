public import Foundation

/// The kind of relationship with an account.
public enum AccountType: String, Sendable, Hashable, CaseIterable, Codable {
  case unspecified, prospect, customer, partner, reseller, vendor, competitor, other
}

/// How important an account is.
public enum AccountTier: String, Sendable, Hashable, CaseIterable, Codable {
  case unspecified, strategic, key, standard
  case longTail = "long_tail"
}

/// The fields of an account that callers set (everything but identity, owner and timestamps).
public struct AccountFields: Sendable, Hashable {
  /// 1 to 255 characters.
  public var name: String
  /// The normalized URL.
  public var website: String?
  /// Derived from ``website``.
  public var domain: String?
  public var industry: String?
  public var type: AccountType
  public var tier: AccountTier
  public var employeeCount: Int32?
  public var annualRevenue: Money?
  /// E.164 when the billing country is known.
  public var phone: String?
  public var billingAddress: PostalAddress?
  public var shippingAddress: PostalAddress?
  public var parentID: UUID?
  public var description: String?
  /// Unique in the tenant when set.
  public var externalID: String?
  /// The registration id (unified social credit code, VAT id), normalized to letters and digits.
  public var registrationID: String?
  public var tags: [String]

  /// Fields with a name and nothing else.
  public init(name: String) {
    self.name = name
    type = .unspecified
    tier = .unspecified
    tags = []
  }

  /// Validates and normalizes every field, recording all violations under `prefix` (e.g. `account`).
  /// Only the fields in `only` are checked when it is given (an update's mask).
  public func normalized(prefix: String, only: Set<AccountField>? = nil, into violations: inout Violations) -> AccountFields {
    func checks(_ field: AccountField) -> Bool { only?.contains(field) ?? true }
    var out = self
    if checks(.name) {
      out.name = violations.text("\(prefix).name", name, maxLength: 255, required: true) ?? ""
    }
    if checks(.website) || checks(.domain) {
      if let text = website, !text.trimmingWhitespace().isEmpty {
        if text.count > 2048 {
          violations.add("\(prefix).website", "must be at most 2048 characters", reason: "TOO_LONG")
        } else if let parsed = Website(text) {
          out.website = parsed.url
          out.domain = parsed.domain
        } else {
          violations.add("\(prefix).website", "must be a URL or host name such as example.com", reason: "INVALID_FORMAT")
        }
      } else {
        out.website = nil
        out.domain = nil
      }
    }
    if checks(.industry) { out.industry = violations.text("\(prefix).industry", industry ?? "", maxLength: 100) }
    if checks(.employeeCount), let count = employeeCount, count < 0 {
      violations.add("\(prefix).employee_count", "must not be negative", reason: "OUT_OF_RANGE")
    }
    if checks(.annualRevenue), let money = annualRevenue {
      out.annualRevenue = Money.validated(
        currencyCode: money.currencyCode, units: money.units, nanos: money.nanos,
        field: "\(prefix).annual_revenue", into: &violations)
    }
    if checks(.billingAddress), let address = billingAddress {
      out.billingAddress = PostalAddress.validated(address, field: "\(prefix).billing_address", into: &violations)
    }
    if checks(.shippingAddress), let address = shippingAddress {
      out.shippingAddress = PostalAddress.validated(address, field: "\(prefix).shipping_address", into: &violations)
    }
    if checks(.phone) {
      if let text = phone, !text.trimmingWhitespace().isEmpty {
        let region = out.billingAddress?.regionCode ?? out.shippingAddress?.regionCode
        if text.count > 64 {
          violations.add("\(prefix).phone", "must be at most 64 characters", reason: "TOO_LONG")
        } else if let number = PhoneNumber(text, regionCode: region) {
          out.phone = number.value
        } else {
          violations.add("\(prefix).phone", "must be a phone number such as +1 415 555 0100", reason: "INVALID_FORMAT")
        }
      } else {
        out.phone = nil
      }
    }
    if checks(.description) {
      out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 10_000)
    }
    if checks(.externalID) { out.externalID = violations.text("\(prefix).external_id", externalID ?? "", maxLength: 255) }
    if checks(.registrationID) {
      out.registrationID = RegistrationID.normalized(registrationID, field: "\(prefix).registration_id", into: &violations)
    }
    if checks(.tags) { out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations) }
    return out
  }

  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: AccountFields, mask: Set<AccountField>) -> AccountFields {
    var out = self
    for field in mask {
      switch field {
      case .name: out.name = patch.name
      case .website, .domain:
        out.website = patch.website
        out.domain = patch.domain
      case .industry: out.industry = patch.industry
      case .type: out.type = patch.type
      case .tier: out.tier = patch.tier
      case .employeeCount: out.employeeCount = patch.employeeCount
      case .annualRevenue: out.annualRevenue = patch.annualRevenue
      case .phone: out.phone = patch.phone
      case .billingAddress: out.billingAddress = patch.billingAddress
      case .shippingAddress: out.shippingAddress = patch.shippingAddress
      case .parentID: out.parentID = patch.parentID
      case .description: out.description = patch.description
      case .externalID: out.externalID = patch.externalID
      case .registrationID: out.registrationID = patch.registrationID
      case .tags: out.tags = patch.tags
      case .ownerID: break
      }
    }
    return out
  }

  /// Every field as a JSON value keyed by its API name, for the change log.
  public var snapshot: [String: JSONValue] {
    [
      "name": .string(name),
      "website": .optional(website),
      "domain": .optional(domain),
      "industry": .optional(industry),
      "type": type == .unspecified ? .null : .string(type.rawValue),
      "tier": tier == .unspecified ? .null : .string(tier.rawValue),
      "employee_count": employeeCount.map { .int(Int64($0)) } ?? .null,
      "annual_revenue": annualRevenue.map(JSONValue.money) ?? .null,
      "phone": .optional(phone),
      "billing_address": billingAddress.map(JSONValue.address) ?? .null,
      "shipping_address": shippingAddress.map(JSONValue.address) ?? .null,
      "parent_id": parentID.map { .string($0.lowercasedString) } ?? .null,
      "description": .optional(description),
      "external_id": .optional(externalID), "registration_id": .optional(registrationID),
      "tags": .array(tags.map { .string($0) }),
    ]
  }
}

/// The fields an account update may name in its mask, by their API paths.
public enum AccountField: String, Sendable, Hashable, CaseIterable {
  case name, website, domain, industry, type, tier
  case employeeCount = "employee_count"
  case annualRevenue = "annual_revenue"
  case phone
  case billingAddress = "billing_address"
  case shippingAddress = "shipping_address"
  case parentID = "parent_id"
  case description
  case externalID = "external_id"
  case registrationID = "registration_id"
  case tags
  case ownerID = "owner_id"

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "name", "website", "domain", "industry", "type", "tier", "employee_count", "annual_revenue", "phone",
    "billing_address", "shipping_address", "parent_id", "description", "external_id",
    "registration_id", "tags", "owner_id", "pool_id",
  ]
}

extension JSONValue {
  /// Money as `{"currency_code":…,"units":…,"nanos":…}`.
  public static func money(_ money: Money) -> JSONValue {
    .object([("currency_code", .string(money.currencyCode)), ("units", .int(money.units)), ("nanos", .int(Int64(money.nanos)))])
  }

  /// An address as an object of its non-empty parts.
  public static func address(_ address: PostalAddress) -> JSONValue {
    var members: [(String, JSONValue)] = []
    if !address.addressLines.isEmpty { members.append(("address_lines", .array(address.addressLines.map { .string($0) }))) }
    if !address.locality.isEmpty { members.append(("locality", .string(address.locality))) }
    if !address.administrativeArea.isEmpty { members.append(("administrative_area", .string(address.administrativeArea))) }
    if !address.postalCode.isEmpty { members.append(("postal_code", .string(address.postalCode))) }
    if !address.regionCode.isEmpty { members.append(("region_code", .string(address.regionCode))) }
    return .object(members)
  }
}

extension AccountFields {
  /// The keys duplicate detection compares for this account.
  public var matchSubject: MatchSubject {
    MatchSubject(
      phones: phone.map { [$0] } ?? [], domain: domain, companyKey: MatchKeys.companyName(name), registrationID: registrationID)
  }
}
