import Foundation

/// How an import reads records from rows: which column fills which field.
///
/// Columns map by the header's explicit `field_mapping`, else by their own name when it is a field
/// name or a common alias (`E-Mail`, `Company Name`, `Mobile`, …); other columns are ignored. Several
/// columns may fill `email`, `phone` and `tags` (values are appended; a tag cell may hold several tags
/// separated by `;` or `,`).
public struct ImportMapping<Fields: ImportableFields>: Sendable {
  /// The column names.
  public let columns: [String]
  /// The target of each column, `nil` for ignored columns.
  let targets: [ImportTarget<Fields>?]

  /// Builds the mapping; INVALID_ARGUMENT names bad header fields (`header.field_mapping["X"]`).
  public init(columns: [String], explicit: [String: String]) throws(CRMError) {
    var violations = Violations()
    if columns.isEmpty { violations.add("header.columns", "name the columns rows carry", reason: "REQUIRED") }
    if columns.count > 500 { violations.add("header.columns", "at most 500 columns", reason: "TOO_MANY") }
    let byName = Dictionary(Fields.importTargets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    for (column, field) in explicit where byName[field] == nil {
      violations.add(
        "header.field_mapping[\"\(column.prefix(64))\"]",
        "names no \(Fields.importNoun) field: use one of \(Fields.importTargets.map(\.name).joined(separator: ", "))",
        reason: "UNKNOWN_FIELD")
    }
    for column in explicit.keys where !columns.contains(column) {
      violations.add("header.field_mapping[\"\(column.prefix(64))\"]", "names no column of the header", reason: "UNKNOWN_COLUMN")
    }
    var targets: [ImportTarget<Fields>?] = []
    for column in columns {
      if let field = explicit[column] {
        targets.append(byName[field])
      } else {
        let key = column.trimmingWhitespace().lowercased().replacingOccurrences(of: "-", with: "_")
          .replacingOccurrences(of: " ", with: "_")
        targets.append(byName[key] ?? Fields.importAliases[key].flatMap { byName[$0] })
      }
    }
    if !targets.contains(where: { $0 != nil }), !columns.isEmpty {
      violations.add(
        "header.columns", "no column maps to a \(Fields.importNoun) field; map them with field_mapping", reason: "NO_FIELDS")
    }
    try violations.check()
    self.columns = columns
    self.targets = targets
  }

  /// Each mapped column and the record fields it fills (as the API names them), for checking them
  /// against field-level security.
  public var mappedColumns: [(column: String, fields: [String])] {
    zip(columns, targets).compactMap { column, target in target.map { (column, $0.paths) } }
  }

  /// The fields of one row, normalized, with the fields its non-empty cells set (an upsert changes
  /// those only: an empty cell never erases a value), or the row's problems (field, column, reason).
  public func fields(_ values: [String]) -> Result<ImportedRow<Fields>, ImportRowErrors> {
    var fields = Fields.importBlank
    var errors: [ImportFieldError] = []
    var columnOf: [String: String] = [:]
    var rowMask = Set<Fields.Field>()
    if values.count != columns.count {
      errors.append(
        ImportFieldError(
          field: "", column: "", reason: "WRONG_COLUMN_COUNT",
          description: "the row has \(values.count) values for \(columns.count) columns"))
      return .failure(ImportRowErrors(errors: errors))
    }
    for (index, target) in targets.enumerated() {
      guard let target else { continue }
      let value = values[index].trimmingWhitespace()
      if value.isEmpty { continue }
      for path in target.paths { columnOf[path] = columnOf[path] ?? columns[index] }
      rowMask.formUnion(target.mask)
      if let problem = target.apply(&fields, value) {
        errors.append(
          ImportFieldError(field: target.name, column: columns[index], reason: "INVALID_FORMAT", description: problem))
      }
    }
    var violations = Violations()
    let normalized = fields.importNormalized(only: rowMask, into: &violations)
    for violation in violations.all {
      // "row.emails[1].address" → "emails"
      let path = violation.field.dropFirst("row".count).drop { $0 == "." }
      let head = String(path.prefix { $0 != "." && $0 != "[" })
      let target = Fields.importTargets.first { $0.paths.contains(head) }
      errors.append(
        ImportFieldError(
          field: target?.name ?? head, column: columnOf[head] ?? "", reason: violation.reason,
          description: violation.description))
    }
    return errors.isEmpty ? .success(ImportedRow(fields: normalized, mask: rowMask)) : .failure(ImportRowErrors(errors: errors))
  }
}

/// A row's fields and the fields its cells set.
public struct ImportedRow<Fields: ImportableFields>: Sendable {
  public var fields: Fields
  public var mask: Set<Fields.Field>

  public init(fields: Fields, mask: Set<Fields.Field>) {
    self.fields = fields
    self.mask = mask
  }
}

/// One field an import fills.
public struct ImportTarget<Fields: ImportableFields>: Sendable {
  /// The name in a header's field mapping.
  public let name: String
  /// The paths under which validation reports this field (`emails`, `first_name`).
  let paths: [String]
  /// The fields an upsert updates when this one is mapped.
  let mask: [Fields.Field]
  /// Sets the value; returns a problem description when it cannot be read.
  let apply: @Sendable (inout Fields, String) -> String?

  init(_ name: String, paths: [String]? = nil, mask: [Fields.Field], apply: @escaping @Sendable (inout Fields, String) -> String?)
  {
    self.name = name
    self.paths = paths ?? [name]
    self.mask = mask
    self.apply = apply
  }
}

/// Why a row failed.
public struct ImportFieldError: Sendable, Hashable, Codable {
  public var field: String
  public var column: String
  public var reason: String
  public var description: String

  public init(field: String, column: String, reason: String, description: String) {
    self.field = field
    self.column = column
    self.reason = reason
    self.description = description
  }
}

/// A row's problems.
public struct ImportRowErrors: Error, Sendable, Hashable {
  public var errors: [ImportFieldError]

  public init(errors: [ImportFieldError]) { self.errors = errors }
}

/// Fields an import can fill: leads', contacts' and accounts'.
public protocol ImportableFields: MergeableFields {
  static var importNoun: String { get }
  static var importBlank: Self { get }
  static var importTargets: [ImportTarget<Self>] { get }
  static var importAliases: [String: String] { get }
  /// The keys duplicate detection compares.
  var matchSubject: MatchSubject { get }
  /// Validated and normalized under the prefix `row`, the fields in `mask` only (a row may update a
  /// record, so what a create needs is checked by ``importCreationProblem`` when it creates one).
  func importNormalized(only mask: Set<Field>, into violations: inout Violations) -> Self
  /// Why these fields cannot make a new record (no name, say), or `nil`.
  var importCreationProblem: ImportFieldError? { get }
}

/// The fields a lead and a contact share: a person's names, title, ids and notes.
public protocol PersonFields: ReachableFields {
  var firstName: String? { get set }
  var lastName: String? { get set }
  var title: String? { get set }
  var externalID: String? { get set }
  var description: String? { get set }
}

extension LeadFields: PersonFields {}
extension ContactFields: PersonFields {}

extension ImportTarget where Fields: PersonFields {
  /// Targets of a person (leads and contacts; their field enums use the same names).
  static var person: [ImportTarget<Fields>] {
    func field(_ name: String) -> Fields.Field { Fields.Field(rawValue: name)! }
    return [
      .init("first_name", mask: [field("first_name")]) {
        $0.firstName = $1; return nil
      },
      .init("last_name", mask: [field("last_name")]) {
        $0.lastName = $1; return nil
      },
      .init("name", paths: ["first_name", "last_name"], mask: [field("first_name"), field("last_name")]) { fields, value in
        let words = value.split(whereSeparator: \.isWhitespace)
        fields.firstName = words.count > 1 ? String(words[0]) : nil
        fields.lastName = words.count > 1 ? words.dropFirst().joined(separator: " ") : value
        return nil
      },
      .init("title", mask: [field("title")]) {
        $0.title = $1; return nil
      },
      .init("email", paths: ["emails"], mask: [field("emails")]) {
        $0.emails.append(ContactEmail(address: $1, isPrimary: $0.emails.isEmpty)); return nil
      },
      .init("phone", paths: ["phones"], mask: [field("phones")]) {
        $0.phones.append(ContactPhone(number: $1, isPrimary: $0.phones.isEmpty)); return nil
      },
      .init("external_id", mask: [field("external_id")]) {
        $0.externalID = $1; return nil
      },
      .init("tags", mask: [field("tags")]) {
        $0.tags += ImportValues.tags($1); return nil
      },
      .init("description", mask: [field("description")]) {
        $0.description = $1; return nil
      },
    ]
  }
}

enum ImportValues {
  static func tags(_ value: String) -> [String] {
    value.split(whereSeparator: { $0 == ";" || $0 == "," }).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
  }

  static func integer(_ value: String) -> Int64? {
    Int64(value.filter { $0 != "," && $0 != "_" && $0 != " " })
  }

  static func bool(_ value: String) -> Bool? {
    switch value.lowercased() {
    case "true", "yes", "y", "1", "x": true
    case "false", "no", "n", "0", "": false
    default: nil
    }
  }

  static let personAliases: [String: String] = [
    "e_mail": "email", "email_address": "email", "mail": "email", "work_email": "email", "email2": "email",
    "phone_number": "phone", "mobile": "phone", "mobile_phone": "phone", "telephone": "phone", "tel": "phone",
    "work_phone": "phone", "firstname": "first_name", "given_name": "first_name", "lastname": "last_name",
    "surname": "last_name", "family_name": "last_name", "full_name": "name", "job_title": "title", "position": "title",
    "vat_id": "registration_id", "vat": "registration_id", "tax_id": "registration_id", "uscc": "registration_id",
    "统一社会信用代码": "registration_id",
    "notes": "description", "tag": "tags", "id": "external_id", "externalid": "external_id",
  ]
}

extension LeadFields: ImportableFields {
  public static let importNoun = "lead"
  public static var importBlank: LeadFields {
    var fields = LeadFields()
    fields.source = .import
    return fields
  }
  public static let importAliases: [String: String] = ImportValues.personAliases.merging([
    "company_name": "company", "organization": "company", "organisation": "company", "account": "company", "url": "website",
    "country": "region_code", "employees": "company_size", "source": "source_detail",
  ]) { first, _ in first }

  public static let importTargets: [ImportTarget<LeadFields>] =
    ImportTarget.person + [
      .init("company", mask: [.company]) {
        $0.company = $1; return nil
      },
      .init("website", mask: [.website]) {
        $0.website = $1; return nil
      },
      .init("region_code", mask: [.regionCode]) {
        $0.regionCode = $1; return nil
      },
      .init("industry", mask: [.industry]) {
        $0.industry = $1; return nil
      },
      .init("company_size", mask: [.companySize]) { fields, value in
        guard let size = ImportValues.integer(value), let small = Int32(exactly: size) else { return "is not a whole number" }
        fields.companySize = small
        return nil
      },
      .init("score", mask: [.score]) { fields, value in
        guard let score = ImportValues.integer(value), let small = Int32(exactly: score) else { return "is not a whole number" }
        fields.score = small
        return nil
      },
      .init("source_detail", mask: [.sourceDetail]) {
        $0.sourceDetail = $1; return nil
      },
      .init("campaign", mask: [.campaign]) {
        $0.campaign = $1; return nil
      },
      .init("utm_source", paths: ["utm"], mask: [.utm]) {
        $0.utm = ($0.utm ?? UTMParameters()).with(\.source, $1); return nil
      },
      .init("utm_medium", paths: ["utm"], mask: [.utm]) {
        $0.utm = ($0.utm ?? UTMParameters()).with(\.medium, $1); return nil
      },
      .init("utm_campaign", paths: ["utm"], mask: [.utm]) {
        $0.utm = ($0.utm ?? UTMParameters()).with(\.campaign, $1); return nil
      },
    ]

  public func importNormalized(only mask: Set<LeadField>, into violations: inout Violations) -> LeadFields {
    normalized(prefix: "row", requiringIdentity: false, into: &violations)
  }

  public var importCreationProblem: ImportFieldError? {
    hasIdentity
      ? nil
      : ImportFieldError(
        field: "", column: "", reason: "REQUIRED", description: "a lead needs a name, a company, an email or a phone")
  }
}

extension UTMParameters {
  func with(_ keyPath: WritableKeyPath<UTMParameters, String>, _ value: String) -> UTMParameters {
    var copy = self
    copy[keyPath: keyPath] = value
    return copy
  }
}

extension ContactFields: ImportableFields {
  public static let importNoun = "contact"
  public static var importBlank: ContactFields { ContactFields() }
  public static let importAliases: [String: String] = ImportValues.personAliases.merging([
    "account": "account_id", "do_not_email": "email_opt_out", "unsubscribed": "email_opt_out",
    "do_not_call": "phone_opt_out",
  ]) { first, _ in first }

  public static let importTargets: [ImportTarget<ContactFields>] =
    ImportTarget.person + [
      .init("department", mask: [.department]) {
        $0.department = $1; return nil
      },
      .init("account_id", mask: [.accountID]) { fields, value in
        guard let id = UUID(canonical: value) else { return "is not an account id" }
        fields.accountID = id
        return nil
      },
      .init("email_opt_out", mask: [.emailOptOut]) { fields, value in
        guard let flag = ImportValues.bool(value) else { return "is not yes/no" }
        fields.emailOptOut = flag
        return nil
      },
      .init("phone_opt_out", mask: [.phoneOptOut]) { fields, value in
        guard let flag = ImportValues.bool(value) else { return "is not yes/no" }
        fields.phoneOptOut = flag
        return nil
      },
    ]

  public func importNormalized(only mask: Set<ContactField>, into violations: inout Violations) -> ContactFields {
    normalized(prefix: "row", only: mask, into: &violations)
  }

  public var importCreationProblem: ImportFieldError? {
    firstName == nil && lastName == nil
      ? ImportFieldError(field: "last_name", column: "", reason: "REQUIRED", description: "first_name or last_name is required")
      : nil
  }
}

extension AccountFields: ImportableFields {
  public static let importNoun = "account"
  public static var importBlank: AccountFields { AccountFields(name: "") }
  public static let importAliases: [String: String] = [
    "company": "name", "company_name": "name", "account_name": "name", "organization": "name", "url": "website",
    "domain": "website", "employees": "employee_count", "phone_number": "phone", "telephone": "phone", "tag": "tags",
    "notes": "description", "id": "external_id", "vat_id": "registration_id", "vat": "registration_id",
    "tax_id": "registration_id", "uscc": "registration_id", "统一社会信用代码": "registration_id",
  ]

  public static let importTargets: [ImportTarget<AccountFields>] = [
    .init("name", mask: [.name]) {
      $0.name = $1; return nil
    },
    .init("website", mask: [.website]) {
      $0.website = $1; return nil
    },
    .init("industry", mask: [.industry]) {
      $0.industry = $1; return nil
    },
    .init("employee_count", mask: [.employeeCount]) { fields, value in
      guard let count = ImportValues.integer(value), let small = Int32(exactly: count) else { return "is not a whole number" }
      fields.employeeCount = small
      return nil
    },
    .init("phone", mask: [.phone]) {
      $0.phone = $1; return nil
    },
    .init("external_id", mask: [.externalID]) {
      $0.externalID = $1; return nil
    },
    .init("tags", mask: [.tags]) {
      $0.tags += ImportValues.tags($1); return nil
    },
    .init("description", mask: [.description]) {
      $0.description = $1; return nil
    },
  ]

  public func importNormalized(only mask: Set<AccountField>, into violations: inout Violations) -> AccountFields {
    normalized(prefix: "row", only: mask, into: &violations)
  }

  public var importCreationProblem: ImportFieldError? {
    name.isEmpty ? ImportFieldError(field: "name", column: "", reason: "REQUIRED", description: "is required") : nil
  }
}
