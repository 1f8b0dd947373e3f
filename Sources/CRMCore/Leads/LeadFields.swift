/// Campaign tracking parameters as web forms pass them (`utm_source=…`).
public struct UTMParameters: Sendable, Hashable, Codable {
  public var source: String
  public var medium: String
  public var campaign: String
  public var term: String
  public var content: String

  /// Parameters; empty strings for the ones not given.
  public init(source: String = "", medium: String = "", campaign: String = "", term: String = "", content: String = "") {
    self.source = source
    self.medium = medium
    self.campaign = campaign
    self.term = term
    self.content = content
  }

  /// True when no parameter is set.
  public var isEmpty: Bool { [source, medium, campaign, term, content].allSatisfy(\.isEmpty) }
}

/// The fields of a lead that callers set (status moves through ``LeadStatus`` transitions instead).
public struct LeadFields: Sendable, Hashable {
  public var firstName: String?
  public var lastName: String?
  public var company: String?
  public var title: String?
  /// Normalized like a contact's; at most one primary.
  public var emails: [ContactEmail]
  public var phones: [ContactPhone]
  public var website: String?
  public var domain: String?
  /// ISO 3166-1 alpha-2; also the country for phone normalization.
  public var regionCode: String?
  public var industry: String?
  public var companySize: Int32?
  /// 0–100: how promising the lead is (set by callers, imports, or scoring).
  public var score: Int32?
  public var source: LeadSource
  public var sourceDetail: String?
  public var campaign: String?
  public var utm: UTMParameters?
  public var externalID: String?
  /// The company's registration id (unified social credit code, VAT id), normalized to letters and
  /// digits in upper case.
  public var registrationID: String?
  public var tags: [String]
  public var description: String?

  /// Empty fields.
  public init() {
    emails = []
    phones = []
    source = .unspecified
    tags = []
  }

  /// True when the lead names someone or something: a person, a company, an email or a phone.
  public var hasIdentity: Bool {
    firstName != nil || lastName != nil || company != nil || !emails.isEmpty || !phones.isEmpty
  }

  /// Validates and normalizes, recording every violation under `prefix`. With `requiringIdentity` (a
  /// create), a lead needs a person's name, a company, an email or a phone to be worth keeping; an
  /// update's patch is checked for that after it is merged.
  public func normalized(prefix: String, requiringIdentity: Bool = true, into violations: inout Violations) -> LeadFields {
    var out = self
    out.firstName = violations.text("\(prefix).first_name", firstName ?? "", maxLength: 100)
    out.lastName = violations.text("\(prefix).last_name", lastName ?? "", maxLength: 100)
    out.company = violations.text("\(prefix).company", company ?? "", maxLength: 255)
    out.title = violations.text("\(prefix).title", title ?? "", maxLength: 128)
    if let text = regionCode?.trimmingWhitespace(), !text.isEmpty {
      let upper = text.uppercased()
      if upper.count == 2, upper.allSatisfy({ $0.isASCII && $0.isLetter }) {
        out.regionCode = upper
      } else {
        violations.add("\(prefix).region_code", "must be an ISO 3166-1 alpha-2 code such as US or CN", reason: "INVALID_FORMAT")
        out.regionCode = nil
      }
    } else {
      out.regionCode = nil
    }
    out.emails = ContactFields.normalizedEmails(emails, prefix: prefix, into: &violations)
    out.phones = ContactFields.normalizedPhones(phones, prefix: prefix, region: out.regionCode, into: &violations)
    if let text = website, !text.trimmingWhitespace().isEmpty {
      if let parsed = Website(text), text.count <= 2048 {
        out.website = parsed.url
        out.domain = parsed.domain
      } else {
        violations.add("\(prefix).website", "must be a URL or host name such as example.com", reason: "INVALID_FORMAT")
      }
    } else {
      out.website = nil
      out.domain = nil
    }
    out.industry = violations.text("\(prefix).industry", industry ?? "", maxLength: 100)
    if let size = companySize, size < 0 {
      violations.add("\(prefix).company_size", "must not be negative", reason: "OUT_OF_RANGE")
    }
    if let score, !(0...100).contains(score) {
      violations.add("\(prefix).score", "must be 0 to 100", reason: "OUT_OF_RANGE")
    }
    out.sourceDetail = violations.text("\(prefix).source_detail", sourceDetail ?? "", maxLength: 255)
    out.campaign = violations.text("\(prefix).campaign", campaign ?? "", maxLength: 255)
    if let utm {
      var clean = UTMParameters()
      clean.source = violations.text("\(prefix).utm.source", utm.source, maxLength: 255) ?? ""
      clean.medium = violations.text("\(prefix).utm.medium", utm.medium, maxLength: 255) ?? ""
      clean.campaign = violations.text("\(prefix).utm.campaign", utm.campaign, maxLength: 255) ?? ""
      clean.term = violations.text("\(prefix).utm.term", utm.term, maxLength: 255) ?? ""
      clean.content = violations.text("\(prefix).utm.content", utm.content, maxLength: 255) ?? ""
      out.utm = clean.isEmpty ? nil : clean
    }
    out.externalID = violations.text("\(prefix).external_id", externalID ?? "", maxLength: 255)
    out.registrationID = RegistrationID.normalized(registrationID, field: "\(prefix).registration_id", into: &violations)
    out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations)
    out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 10_000)
    if requiringIdentity, !out.hasIdentity,
      violations.all.allSatisfy({ !$0.field.hasPrefix("\(prefix).emails") && !$0.field.hasPrefix("\(prefix).phones") })
    {
      violations.add(prefix, "a lead needs a name, a company, an email or a phone", reason: "REQUIRED")
    }
    return out
  }

  /// The keys duplicate detection compares for this lead.
  public var matchSubject: MatchSubject {
    MatchSubject(
      emails: emails.map(\.address), phones: phones.map(\.number), domain: domain,
      companyKey: company.flatMap(MatchKeys.companyName), personKey: MatchKeys.personName(first: firstName, last: lastName),
      registrationID: registrationID)
  }
}
