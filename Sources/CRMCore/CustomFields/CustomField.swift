public import Foundation

/// A tenant's own field on a record type (docs/custom-fields.md).
public struct CustomField: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var archivedAt: Timestamp?
  public var definition: CustomFieldDefinition

  /// A stored field.
  public init(
    id: UUID, version: Int64, createdAt: Timestamp, updatedAt: Timestamp, archivedAt: Timestamp?,
    definition: CustomFieldDefinition
  ) {
    self.id = id
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.archivedAt = archivedAt
    self.definition = definition
  }

  public var etag: String { String(version) }
}

/// The types a custom field may have.
public enum CustomFieldType: String, Sendable, Hashable, Codable, CaseIterable {
  case text
  case longText = "long_text"
  case integer
  case decimal
  case money
  case boolean
  case date
  case timestamp
  case singleChoice = "single_choice"
  case multiChoice = "multi_choice"
  case email
  case phone
  case url
  case reference

  /// Whether values of this type can be held unique in a tenant.
  public var canBeUnique: Bool { self != .longText && self != .boolean && self != .multiChoice }
  /// Whether the field chooses from `options`.
  public var hasOptions: Bool { self == .singleChoice || self == .multiChoice }
}

/// One choice of a single or multi choice field.
public struct CustomFieldOption: Sendable, Hashable, Codable {
  /// Stored in records; never changes.
  public var value: String
  public var label: String
  /// Kept for stored values; new writes may not choose it.
  public var retired: Bool

  public init(value: String, label: String, retired: Bool = false) {
    self.value = value
    self.label = label
    self.retired = retired
  }
}

/// A custom field's value.
public enum CustomFieldValue: Sendable, Hashable {
  case text(String)
  case integer(Int64)
  /// A decimal numeral, normalized ("12.50" at scale 2).
  case decimal(String)
  case money(Money)
  case boolean(Bool)
  case date(CalendarDate)
  case timestamp(Timestamp)
  case choice(String)
  case choices([String])
  case reference(UUID)
}

extension CustomFieldValue: Codable {
  enum CodingKeys: String, CodingKey {
    case text, integer, decimal, money, boolean, date, timestamp, choice, choices, reference
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    guard let key = container.allKeys.first, container.allKeys.count == 1 else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "one value kind expected"))
    }
    switch key {
    case .text: self = .text(try container.decode(String.self, forKey: key))
    case .integer:
      guard let value = Int64(try container.decode(String.self, forKey: key)) else {
        throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an integer")
      }
      self = .integer(value)
    case .decimal: self = .decimal(try container.decode(String.self, forKey: key))
    case .money: self = .money(try container.decode(Money.self, forKey: key))
    case .boolean: self = .boolean(try container.decode(Bool.self, forKey: key))
    case .date: self = .date(try container.decode(CalendarDate.self, forKey: key))
    case .timestamp: self = .timestamp(try container.decode(Timestamp.self, forKey: key))
    case .choice: self = .choice(try container.decode(String.self, forKey: key))
    case .choices: self = .choices(try container.decode([String].self, forKey: key))
    case .reference: self = .reference(try container.decode(UUID.self, forKey: key))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .text(let value): try container.encode(value, forKey: .text)
    // As a string: JSON numbers lose 64-bit integers in most readers.
    case .integer(let value): try container.encode(String(value), forKey: .integer)
    case .decimal(let value): try container.encode(value, forKey: .decimal)
    case .money(let value): try container.encode(value, forKey: .money)
    case .boolean(let value): try container.encode(value, forKey: .boolean)
    case .date(let value): try container.encode(value, forKey: .date)
    case .timestamp(let value): try container.encode(value, forKey: .timestamp)
    case .choice(let value): try container.encode(value, forKey: .choice)
    case .choices(let value): try container.encode(value, forKey: .choices)
    case .reference(let value): try container.encode(value, forKey: .reference)
    }
  }
}

/// What an admin defines: everything about a field but its identity and times.
public struct CustomFieldDefinition: Sendable, Hashable {
  public var recordType: RecordType
  public var apiName: String
  public var label: String
  public var type: CustomFieldType
  /// Text only.
  public var maxLength: Int?
  /// Decimal only.
  public var scale: Int?
  /// Choices only.
  public var options: [CustomFieldOption]
  /// Reference only.
  public var referenceType: RecordType?
  public var required: Bool
  public var defaultValue: CustomFieldValue?
  public var helpText: String?
  public var unique: Bool
  public var filterable: Bool

  public init(
    recordType: RecordType, apiName: String, label: String, type: CustomFieldType, maxLength: Int? = nil,
    scale: Int? = nil, options: [CustomFieldOption] = [], referenceType: RecordType? = nil, required: Bool = false,
    defaultValue: CustomFieldValue? = nil, helpText: String? = nil, unique: Bool = false, filterable: Bool = false
  ) {
    self.recordType = recordType
    self.apiName = apiName
    self.label = label
    self.type = type
    self.maxLength = maxLength
    self.scale = scale
    self.options = options
    self.referenceType = referenceType
    self.required = required
    self.defaultValue = defaultValue
    self.helpText = helpText
    self.unique = unique
    self.filterable = filterable
  }

  /// The record types that carry custom fields.
  public static let recordTypes: [RecordType] = [.lead, .contact, .account, .opportunity, .ticket, .invoice]
  /// What a violation says of a record type that carries no custom fields.
  public static let recordTypesRule = "must be one of " + recordTypes.map { $0.rawValue.uppercased() }.joined(separator: ", ")
  /// Live and archived fields of one record type in a tenant, at most.
  public static let maxFieldsPerType = 500
  public static let defaultMaxLength = 255
  public static let maxTextLength = 10_000
  public static let maxLongTextLength = 100_000
  public static let defaultScale = 2
  public static let maxScale = 10
  public static let maxOptions = 1_000

  /// Names every record's API already uses, whatever its type.
  static let reservedNames: Set<String> = [
    "id", "etag", "create_time", "update_time", "archive_time", "custom_fields", "tenant_id", "version", "created_at",
    "updated_at", "created_by", "updated_by", "archived_at", "request_id",
  ]

  /// The standard fields of a record type, which a custom field may not shadow.
  public static func standardFields(_ type: RecordType) -> Set<String> {
    switch type {
    case .lead: Set(LeadField.changeLogOrder)
    case .contact: Set(ContactField.changeLogOrder)
    case .account: Set(AccountField.changeLogOrder)
    case .opportunity: Set(Opportunity.changeLogOrder)
    case .ticket: Set(Ticket.changeLogOrder)
    case .invoice: Set(Invoice.changeLogOrder)
    default: []
    }
  }

  /// Whether `name` is a well-formed API name: a lower-case letter, then lower-case letters, digits
  /// and single underscores, 2 to 63 characters, not ending in an underscore.
  public static func isValidAPIName(_ name: String) -> Bool {
    let scalars = Array(name.unicodeScalars)
    guard (2...63).contains(scalars.count), let first = scalars.first, ("a"..."z").contains(first),
      scalars.last != "_"
    else { return false }
    var previous: Unicode.Scalar = first
    for scalar in scalars.dropFirst() {
      guard ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_" else { return false }
      if scalar == "_" && previous == "_" { return false }
      previous = scalar
    }
    return true
  }

  /// Checks everything a definition must satisfy on its own, reporting each problem under `prefix`
  /// (`field.api_name`, `field.options[2].value`, …), and normalizes what has a default (max length,
  /// scale) and the default value (a decimal at the field's scale).
  public mutating func validate(prefix: String, into violations: inout Violations) {
    if !Self.recordTypes.contains(recordType) {
      violations.add(
        "\(prefix).record_type", Self.recordTypesRule, reason: "INVALID")
    }
    if !Self.isValidAPIName(apiName) {
      violations.add(
        "\(prefix).api_name",
        "must be 2 to 63 characters: a lower-case letter, then lower-case letters, digits and single underscores",
        reason: apiName.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
    } else if Self.reservedNames.contains(apiName) || Self.standardFields(recordType).contains(apiName) {
      violations.add("\(prefix).api_name", "\"\(apiName)\" is a standard field of \(recordType.rawValue)", reason: "RESERVED")
    }
    label = label.trimmingWhitespace()
    if label.isEmpty || label.count > 255 {
      violations.add("\(prefix).label", "must be 1 to 255 characters", reason: label.isEmpty ? "REQUIRED" : "OUT_OF_RANGE")
    }
    if let text = helpText?.trimmingWhitespace() {
      helpText = text.isEmpty ? nil : text
      if text.count > 1_000 { violations.add("\(prefix).help_text", "must be at most 1,000 characters", reason: "OUT_OF_RANGE") }
    }
    switch type {
    case .text:
      let length = maxLength ?? Self.defaultMaxLength
      if !(1...Self.maxTextLength).contains(length) {
        violations.add("\(prefix).max_length", "must be 1 to \(Self.maxTextLength)", reason: "OUT_OF_RANGE")
      }
      maxLength = length
    default:
      if maxLength != nil { violations.add("\(prefix).max_length", "applies to TEXT fields only", reason: "INVALID") }
    }
    switch type {
    case .decimal:
      let digits = scale ?? Self.defaultScale
      if !(0...Self.maxScale).contains(digits) {
        violations.add("\(prefix).scale", "must be 0 to \(Self.maxScale)", reason: "OUT_OF_RANGE")
      }
      scale = digits
    default:
      if scale != nil { violations.add("\(prefix).scale", "applies to DECIMAL fields only", reason: "INVALID") }
    }
    if type.hasOptions {
      validateOptions(prefix: prefix, into: &violations)
    } else if !options.isEmpty {
      violations.add("\(prefix).options", "apply to SINGLE_CHOICE and MULTI_CHOICE fields only", reason: "INVALID")
    }
    if type == .reference {
      if let target = referenceType, !Self.recordTypes.contains(target) {
        violations.add(
          "\(prefix).reference_type", Self.recordTypesRule,
          reason: "INVALID")
      } else if referenceType == nil {
        violations.add("\(prefix).reference_type", "is required for a REFERENCE field", reason: "REQUIRED")
      }
    } else if referenceType != nil {
      violations.add("\(prefix).reference_type", "applies to REFERENCE fields only", reason: "INVALID")
    }
    if unique && !type.canBeUnique {
      violations.add("\(prefix).unique", "a \(type.rawValue) field cannot be unique", reason: "INVALID")
    }
    if unique && defaultValue != nil {
      violations.add("\(prefix).default_value", "a unique field has no default (every record would share it)", reason: "INVALID")
    }
    if let value = defaultValue {
      switch check(value) {
      case .success(let normalized): defaultValue = normalized
      case .failure(let problem): violations.add("\(prefix).default_value", problem.description, reason: "INVALID")
      }
    }
  }

  mutating func validateOptions(prefix: String, into violations: inout Violations) {
    if options.isEmpty || options.count > Self.maxOptions {
      violations.add(
        "\(prefix).options", "must hold 1 to \(Self.maxOptions) options", reason: options.isEmpty ? "REQUIRED" : "OUT_OF_RANGE")
    }
    var seen = Set<String>()
    for index in options.indices {
      let value = options[index].value.trimmingWhitespace()
      let label = options[index].label.trimmingWhitespace()
      if value.isEmpty || value.count > 100 {
        violations.add(
          "\(prefix).options[\(index)].value", "must be 1 to 100 characters", reason: value.isEmpty ? "REQUIRED" : "OUT_OF_RANGE")
      } else if !seen.insert(value).inserted {
        violations.add("\(prefix).options[\(index)].value", "\"\(value)\" is listed twice", reason: "DUPLICATE")
      }
      options[index].value = value
      options[index].label = label.isEmpty ? value : label
      if options[index].label.count > 255 {
        violations.add("\(prefix).options[\(index)].label", "must be at most 255 characters", reason: "OUT_OF_RANGE")
      }
    }
    if !options.isEmpty && options.allSatisfy(\.retired) {
      violations.add("\(prefix).options", "at least one option must not be retired", reason: "INVALID")
    }
  }

  /// `value` as this field stores it, or why it does not suit the field.
  public func check(_ value: CustomFieldValue) -> Result<CustomFieldValue, CustomFieldProblem> {
    func fail(_ text: String) -> Result<CustomFieldValue, CustomFieldProblem> { .failure(CustomFieldProblem(text)) }
    switch (type, value) {
    case (.text, .text(let text)):
      let limit = maxLength ?? Self.defaultMaxLength
      return text.count <= limit ? .success(value) : fail("must be at most \(limit) characters")
    case (.longText, .text(let text)):
      return text.count <= Self.maxLongTextLength
        ? .success(value) : fail("must be at most \(Self.maxLongTextLength) characters")
    case (.email, .text(let text)):
      guard let address = EmailAddress(text) else { return fail("is not an email address") }
      return .success(.text(address.value))
    case (.phone, .text(let text)):
      guard let number = PhoneNumber(text) else { return fail("is not a phone number") }
      return .success(.text(number.description))
    case (.url, .text(let text)):
      guard text.count <= 2_048, let url = URL(string: text), let scheme = url.scheme?.lowercased(),
        scheme == "http" || scheme == "https", url.host?.isEmpty == false
      else { return fail("is not an http or https URL") }
      return .success(value)
    case (.integer, .integer), (.boolean, .boolean), (.date, .date), (.timestamp, .timestamp), (.reference, .reference):
      return .success(value)
    case (.decimal, .decimal(let numeral)):
      guard let normalized = Self.decimal(numeral, scale: scale ?? Self.defaultScale) else {
        return fail("must be a decimal number with at most \(scale ?? Self.defaultScale) digits after the point")
      }
      return .success(.decimal(normalized))
    case (.money, .money):
      // Checked (currency, nanos, sign) where it was read: Money.validated.
      return .success(value)
    case (.singleChoice, .choice(let choice)):
      return options.contains { $0.value == choice && !$0.retired } ? .success(value) : fail("\"\(choice)\" is not an option")
    case (.multiChoice, .choices(let choices)):
      if let bad = choices.first(where: { choice in !options.contains { $0.value == choice && !$0.retired } }) {
        return fail("\"\(bad)\" is not an option")
      }
      var seen = Set<String>()
      return .success(.choices(choices.filter { seen.insert($0).inserted }))
    default:
      return fail("is not a value of a \(type.rawValue) field")
    }
  }

  /// A decimal numeral at `scale` digits after the point ("12.5" → "12.50"), or nil when it is not a
  /// plain decimal or has more digits after the point than the scale allows.
  static func decimal(_ numeral: String, scale: Int) -> String? {
    var text = numeral.trimmingWhitespace()
    var sign = ""
    if text.hasPrefix("-") || text.hasPrefix("+") {
      if text.hasPrefix("-") { sign = "-" }
      text.removeFirst()
    }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard (1...2).contains(parts.count), let whole = parts.first, !whole.isEmpty, whole.count <= 28,
      whole.allSatisfy({ $0.isASCII && $0.isNumber })
    else { return nil }
    let fraction = parts.count == 2 ? String(parts[1]) : ""
    guard fraction.count <= scale, fraction.allSatisfy({ $0.isASCII && $0.isNumber }), parts.count == 1 || !fraction.isEmpty
    else { return nil }
    let trimmedWhole = String(whole.drop { $0 == "0" })
    let padded = fraction + String(repeating: "0", count: scale - fraction.count)
    let body = (trimmedWhole.isEmpty ? "0" : trimmedWhole) + (scale > 0 ? "." + padded : "")
    let isZero = body.allSatisfy { $0 == "0" || $0 == "." }
    return (isZero ? "" : sign) + body
  }
}

/// Why a value does not suit a custom field.
public struct CustomFieldProblem: Error, Sendable, Hashable, CustomStringConvertible {
  public var description: String
  init(_ description: String) { self.description = description }
}
