public import Foundation

/// A lead as stored.
public struct Lead: Sendable, Hashable, Identifiable {
  public var id: UUID
  /// The etag's version.
  public var version: Int64
  /// The owner; `nil` while the lead sits in a shared pool (``poolID``).
  public var ownerID: UUID?
  /// The shared pool the lead sits in, unowned.
  public var poolID: UUID?
  /// The pool a held lead was claimed (or assigned) from, and when: hold limits and recycling read them.
  public var claimedFromPoolID: UUID?
  public var claimedAt: Timestamp?
  public var fields: LeadFields
  public var status: LeadStatus
  /// Set while disqualified.
  public var disqualifiedReason: String?
  public var lastActivityAt: Timestamp?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?
  /// Set on a record merged into another: the survivor (this one is archived).
  public var mergedIntoID: UUID?
  /// What the lead became, once converted.
  public var conversion: LeadConversionLinks?
  /// The score learned from the tenant's history (docs/scoring.md); nil while it has no model.
  public var learnedScore: LeadScore?

  /// Makes a lead value.
  public init(
    id: UUID, version: Int64, ownerID: UUID?, fields: LeadFields, status: LeadStatus, disqualifiedReason: String?,
    lastActivityAt: Timestamp?, createdAt: Timestamp, updatedAt: Timestamp, createdBy: UUID?, updatedBy: UUID?,
    archivedAt: Timestamp?, mergedIntoID: UUID? = nil, poolID: UUID? = nil, claimedFromPoolID: UUID? = nil,
    claimedAt: Timestamp? = nil
  ) {
    self.poolID = poolID
    self.claimedFromPoolID = claimedFromPoolID
    self.claimedAt = claimedAt
    self.id = id
    self.version = version
    self.ownerID = ownerID
    self.fields = fields
    self.status = status
    self.disqualifiedReason = disqualifiedReason
    self.lastActivityAt = lastActivityAt
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.createdBy = createdBy
    self.updatedBy = updatedBy
    self.archivedAt = archivedAt
    self.mergedIntoID = mergedIntoID
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// Fields, status and owner as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    let f = fields
    return [
      "first_name": .optional(f.firstName), "last_name": .optional(f.lastName), "company": .optional(f.company),
      "title": .optional(f.title),
      "emails": .array(
        f.emails.map {
          .object([("address", .string($0.address)), ("label", .string($0.label)), ("primary", .bool($0.isPrimary))])
        }),
      "phones": .array(
        f.phones.map {
          .object([("number", .string($0.number)), ("label", .string($0.label)), ("primary", .bool($0.isPrimary))])
        }),
      "website": .optional(f.website), "domain": .optional(f.domain), "region_code": .optional(f.regionCode),
      "industry": .optional(f.industry), "company_size": f.companySize.map { .int(Int64($0)) } ?? .null,
      "score": f.score.map { .int(Int64($0)) } ?? .null,
      "source": f.source == .unspecified ? .null : .string(f.source.rawValue), "source_detail": .optional(f.sourceDetail),
      "campaign": .optional(f.campaign),
      "utm": f.utm.map {
        .object([
          ("source", .string($0.source)), ("medium", .string($0.medium)), ("campaign", .string($0.campaign)),
          ("term", .string($0.term)), ("content", .string($0.content)),
        ])
      } ?? .null,
      "status": .string(status.rawValue), "disqualified_reason": .optional(disqualifiedReason),
      "external_id": .optional(f.externalID), "registration_id": .optional(f.registrationID),
      "tags": .array(f.tags.map { .string($0) }), "description": .optional(f.description),
      "owner_id": ownerID.map { .string($0.lowercasedString) } ?? .null,
      "pool_id": poolID.map { .string($0.lowercasedString) } ?? .null,
      "converted_account_id": conversion.map { .string($0.accountID.lowercasedString) } ?? .null,
      "converted_contact_id": conversion.map { .string($0.contactID.lowercasedString) } ?? .null,
      "converted_opportunity_id": conversion?.opportunityID.map { .string($0.lowercasedString) } ?? .null,
    ]
  }
}

/// The records a converted lead became.
public struct LeadConversionLinks: Sendable, Hashable {
  public var accountID: UUID
  public var contactID: UUID
  public var opportunityID: UUID?
  public var convertedAt: Timestamp

  /// Links.
  public init(accountID: UUID, contactID: UUID, opportunityID: UUID?, convertedAt: Timestamp) {
    self.accountID = accountID
    self.contactID = contactID
    self.opportunityID = opportunityID
    self.convertedAt = convertedAt
  }
}

/// The fields a lead update may name in its mask, by their API paths (status has its own verb).
public enum LeadField: String, Sendable, Hashable, CaseIterable {
  case firstName = "first_name"
  case lastName = "last_name"
  case company, title, emails, phones, website
  case regionCode = "region_code"
  case industry
  case companySize = "company_size"
  case score
  case source
  case sourceDetail = "source_detail"
  case campaign, utm
  case externalID = "external_id"
  case registrationID = "registration_id"
  case tags, description
  case ownerID = "owner_id"

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "first_name", "last_name", "company", "title", "emails", "phones", "website", "domain", "region_code", "industry",
    "company_size", "score", "source", "source_detail", "campaign", "utm", "status", "disqualified_reason", "external_id",
    "registration_id", "tags",
    "description", "owner_id", "pool_id", "converted_account_id", "converted_contact_id", "converted_opportunity_id",
  ]
}

extension LeadFields {
  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: LeadFields, mask: Set<LeadField>) -> LeadFields {
    var out = self
    for field in mask {
      switch field {
      case .firstName: out.firstName = patch.firstName
      case .lastName: out.lastName = patch.lastName
      case .company: out.company = patch.company
      case .title: out.title = patch.title
      case .emails: out.emails = patch.emails
      case .phones: out.phones = patch.phones
      case .website:
        out.website = patch.website
        out.domain = patch.domain
      case .regionCode: out.regionCode = patch.regionCode
      case .industry: out.industry = patch.industry
      case .companySize: out.companySize = patch.companySize
      case .score: out.score = patch.score
      case .source: out.source = patch.source
      case .sourceDetail: out.sourceDetail = patch.sourceDetail
      case .campaign: out.campaign = patch.campaign
      case .utm: out.utm = patch.utm
      case .externalID: out.externalID = patch.externalID
      case .registrationID: out.registrationID = patch.registrationID
      case .tags: out.tags = patch.tags
      case .description: out.description = patch.description
      case .ownerID: break
      }
    }
    return out
  }
}

/// The filters of `ListLeads`, already validated.
public struct LeadFilter: Sendable, Hashable {
  public var statuses: [LeadStatus] = []
  public var ownerID: UUID?
  public var source: LeadSource?
  public var campaign: String?
  public var tag: String?
  public var email: String?
  public var phone: String?
  public var companyPrefix: String?
  public var createdAfter: Timestamp?
  public var createdBefore: Timestamp?
  public var updatedSince: Timestamp?
  public var updatedBefore: Timestamp?
  /// Only leads converted into this account.
  public var convertedAccountID: UUID?
  public var archive: ArchiveFilter = .active
  public var order: ListOrder = .name

  /// No filters: active leads by name.
  public init() {}

  /// A fingerprint binding page tokens to these filters.
  public var fingerprint: String {
    let times = [createdAfter, createdBefore, updatedSince, updatedBefore].map {
      $0.map { String($0.microsecondsSinceEpoch) } ?? ""
    }
    return
      ([
        statuses.map(\.rawValue).sorted().joined(separator: ","), ownerID?.lowercasedString ?? "", source?.rawValue ?? "",
        campaign ?? "", tag ?? "", email ?? "", phone ?? "", companyPrefix ?? "", archive.rawValue, order.rawValue,
        convertedAccountID?.lowercasedString ?? "",
      ] + times)
      .joined(separator: "|")
  }
}
