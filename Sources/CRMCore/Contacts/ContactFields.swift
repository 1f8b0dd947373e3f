public import Foundation

/// One email address of a contact.
public struct ContactEmail: Sendable, Hashable {
  /// Normalized (lower case).
  public var address: String
  /// A free label such as "work".
  public var label: String
  /// At most one per contact.
  public var isPrimary: Bool

  /// Makes an entry.
  public init(address: String, label: String = "", isPrimary: Bool = false) {
    self.address = address
    self.label = label
    self.isPrimary = isPrimary
  }
}

/// One phone number of a contact.
public struct ContactPhone: Sendable, Hashable {
  /// E.164 when the country is known.
  public var number: String
  public var label: String
  public var isPrimary: Bool

  /// Makes an entry.
  public init(number: String, label: String = "", isPrimary: Bool = false) {
    self.number = number
    self.label = label
    self.isPrimary = isPrimary
  }
}

/// The fields of a contact that callers set.
public struct ContactFields: Sendable, Hashable {
  public var accountID: UUID?
  public var firstName: String?
  public var lastName: String?
  public var title: String?
  public var department: String?
  public var emails: [ContactEmail]
  public var phones: [ContactPhone]
  public var address: PostalAddress?
  public var emailOptOut: Bool
  public var phoneOptOut: Bool
  public var description: String?
  public var externalID: String?
  public var tags: [String]

  /// Empty fields.
  public init() {
    emails = []
    phones = []
    emailOptOut = false
    phoneOptOut = false
    tags = []
  }

  /// The most emails or phones one contact may have.
  public static let maxChannels = 20

  /// The primary email, if any.
  public var primaryEmail: String? { emails.first(where: \.isPrimary)?.address }
  /// The primary phone, if any.
  public var primaryPhone: String? { phones.first(where: \.isPrimary)?.number }

  /// Validates and normalizes, recording all violations under `prefix`; only the fields in `only`
  /// when given. Emails are lower-cased and de-duplicated; the first becomes primary when none is.
  public func normalized(prefix: String, only: Set<ContactField>? = nil, into violations: inout Violations) -> ContactFields {
    func checks(_ field: ContactField) -> Bool { only?.contains(field) ?? true }
    var out = self
    if checks(.firstName) { out.firstName = violations.text("\(prefix).first_name", firstName ?? "", maxLength: 100) }
    if checks(.lastName) { out.lastName = violations.text("\(prefix).last_name", lastName ?? "", maxLength: 100) }
    if only == nil || checks(.firstName) && checks(.lastName), out.firstName == nil, out.lastName == nil,
      firstName?.trimmingWhitespace().isEmpty ?? true, lastName?.trimmingWhitespace().isEmpty ?? true
    {
      violations.add("\(prefix).last_name", "first_name or last_name is required", reason: "REQUIRED")
    }
    if checks(.title) { out.title = violations.text("\(prefix).title", title ?? "", maxLength: 128) }
    if checks(.department) { out.department = violations.text("\(prefix).department", department ?? "", maxLength: 128) }
    if checks(.address), let address {
      out.address = PostalAddress.validated(address, field: "\(prefix).address", into: &violations)
    }
    if checks(.emails) { out.emails = Self.normalizedEmails(emails, prefix: prefix, into: &violations) }
    if checks(.phones) {
      out.phones = Self.normalizedPhones(phones, prefix: prefix, region: out.address?.regionCode, into: &violations)
    }
    if checks(.description) {
      out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 10_000)
    }
    if checks(.externalID) { out.externalID = violations.text("\(prefix).external_id", externalID ?? "", maxLength: 255) }
    if checks(.tags) { out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations) }
    return out
  }

  /// A person's emails validated, lower-cased and de-duplicated, with exactly one primary (the first
  /// when none is); violations under `prefix.emails`. Contacts and leads share it.
  static func normalizedEmails(_ emails: [ContactEmail], prefix: String, into violations: inout Violations) -> [ContactEmail] {
    guard emails.count <= Self.maxChannels else {
      violations.add("\(prefix).emails", "at most \(Self.maxChannels) emails", reason: "TOO_MANY")
      return []
    }
    var result: [ContactEmail] = []
    var seen = Set<String>()
    for (index, email) in emails.enumerated() {
      let field = "\(prefix).emails[\(index)]"
      guard email.address.count <= 254, let address = EmailAddress(email.address) else {
        violations.add("\(field).address", "must be an email address such as ada@example.com", reason: "INVALID_FORMAT")
        continue
      }
      let label = violations.text("\(field).label", email.label, maxLength: 32) ?? ""
      if seen.insert(address.value).inserted {
        result.append(ContactEmail(address: address.value, label: label, isPrimary: email.isPrimary))
      }
    }
    return Self.settlePrimary(result, field: "\(prefix).emails", into: &violations)
  }

  /// A person's phones normalized (E.164 with `region`), de-duplicated, with one primary; violations
  /// under `prefix.phones`. Contacts and leads share it.
  static func normalizedPhones(
    _ phones: [ContactPhone], prefix: String, region: String?, into violations: inout Violations
  ) -> [ContactPhone] {
    guard phones.count <= Self.maxChannels else {
      violations.add("\(prefix).phones", "at most \(Self.maxChannels) phones", reason: "TOO_MANY")
      return []
    }
    var result: [ContactPhone] = []
    var seen = Set<String>()
    for (index, phone) in phones.enumerated() {
      let field = "\(prefix).phones[\(index)]"
      guard phone.number.count <= 64, let number = PhoneNumber(phone.number, regionCode: region) else {
        violations.add("\(field).number", "must be a phone number such as +1 415 555 0100", reason: "INVALID_FORMAT")
        continue
      }
      let label = violations.text("\(field).label", phone.label, maxLength: 32) ?? ""
      if seen.insert(number.value).inserted {
        result.append(ContactPhone(number: number.value, label: label, isPrimary: phone.isPrimary))
      }
    }
    return Self.settlePrimary(result, field: "\(prefix).phones", into: &violations)
  }

  private static func settlePrimary<T: PrimaryFlagged>(_ items: [T], field: String, into violations: inout Violations) -> [T] {
    let primaries = items.filter(\.isPrimary).count
    if primaries > 1 {
      violations.add(field, "at most one may be primary", reason: "MULTIPLE_PRIMARY")
      return items
    }
    guard primaries == 0, !items.isEmpty else { return items }
    var out = items
    out[0].isPrimary = true
    return out
  }

  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: ContactFields, mask: Set<ContactField>) -> ContactFields {
    var out = self
    for field in mask {
      switch field {
      case .accountID: out.accountID = patch.accountID
      case .firstName: out.firstName = patch.firstName
      case .lastName: out.lastName = patch.lastName
      case .title: out.title = patch.title
      case .department: out.department = patch.department
      case .emails: out.emails = patch.emails
      case .phones: out.phones = patch.phones
      case .address: out.address = patch.address
      case .emailOptOut: out.emailOptOut = patch.emailOptOut
      case .phoneOptOut: out.phoneOptOut = patch.phoneOptOut
      case .description: out.description = patch.description
      case .externalID: out.externalID = patch.externalID
      case .tags: out.tags = patch.tags
      case .ownerID: break
      }
    }
    return out
  }

  /// Every field as JSON keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    [
      "account_id": accountID.map { .string($0.lowercasedString) } ?? .null,
      "first_name": .optional(firstName),
      "last_name": .optional(lastName),
      "title": .optional(title),
      "department": .optional(department),
      "emails": .array(
        emails.map {
          .object([("address", .string($0.address)), ("label", .string($0.label)), ("primary", .bool($0.isPrimary))])
        }),
      "phones": .array(
        phones.map { .object([("number", .string($0.number)), ("label", .string($0.label)), ("primary", .bool($0.isPrimary))]) }),
      "address": address.map(JSONValue.address) ?? .null,
      "email_opt_out": .bool(emailOptOut),
      "phone_opt_out": .bool(phoneOptOut),
      "description": .optional(description),
      "external_id": .optional(externalID),
      "tags": .array(tags.map { .string($0) }),
    ]
  }
}

protocol PrimaryFlagged {
  var isPrimary: Bool { get set }
}

extension ContactEmail: PrimaryFlagged {}
extension ContactPhone: PrimaryFlagged {}

/// The fields a contact update may name in its mask, by their API paths.
public enum ContactField: String, Sendable, Hashable, CaseIterable {
  case accountID = "account_id"
  case firstName = "first_name"
  case lastName = "last_name"
  case title, department, emails, phones, address
  case emailOptOut = "email_opt_out"
  case phoneOptOut = "phone_opt_out"
  case description
  case externalID = "external_id"
  case tags
  case ownerID = "owner_id"

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "account_id", "first_name", "last_name", "title", "department", "emails", "phones", "address",
    "email_opt_out", "phone_opt_out", "description", "external_id", "tags", "owner_id",
  ]
}

extension ContactFields {
  /// The keys duplicate detection compares for this contact.
  public var matchSubject: MatchSubject {
    MatchSubject(
      emails: emails.map(\.address), phones: phones.map(\.number),
      personKey: MatchKeys.personName(first: firstName, last: lastName))
  }
}
