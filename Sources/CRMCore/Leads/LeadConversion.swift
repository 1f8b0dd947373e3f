public import Foundation

/// What converting a lead should produce: an account and a contact (new, existing or matched) and
/// optionally a deal.
public struct LeadConversion: Sendable {
  /// Where one of the records comes from.
  public enum Target<Fields: Sendable>: Sendable {
    /// Created from the lead; the given fields (those set) win over the lead's.
    case new(Fields)
    /// The record with this id.
    case existing(UUID)
    /// The best match of the tenant's duplicate rule, or created as with ``new(_:)`` when none.
    case matched(Fields)
  }

  /// The deal to create with the conversion.
  public struct Deal: Sendable {
    /// Name (empty: the account's), amount, close date and any other field; the account, primary
    /// contact and source lead are set by the conversion.
    public var fields: OpportunityFields
    public var pipelineID: UUID?
    public var stageID: UUID?

    /// A deal request.
    public init(fields: OpportunityFields, pipelineID: UUID?, stageID: UUID?) {
      self.fields = fields
      self.pipelineID = pipelineID
      self.stageID = stageID
    }
  }

  public var leadID: UUID
  public var expectedVersion: Int64?
  public var account: Target<AccountFields>
  public var contact: Target<ContactFields>
  public var deal: Deal?
  /// Owner of what is created; the lead's owner when `nil`.
  public var ownerID: UUID?

  /// A conversion request.
  public init(
    leadID: UUID, expectedVersion: Int64?, account: Target<AccountFields>, contact: Target<ContactFields>, deal: Deal?,
    ownerID: UUID?
  ) {
    self.leadID = leadID
    self.expectedVersion = expectedVersion
    self.account = account
    self.contact = contact
    self.deal = deal
    self.ownerID = ownerID
  }

  /// A new account's fields: the lead's company data, then whatever `override` sets.
  public static func accountFields(from lead: Lead, overriding override: AccountFields) -> AccountFields {
    let f = lead.fields
    var out = AccountFields(name: pick(override.name, f.company) ?? "")
    out.website = pick(override.website, f.website)
    out.industry = pick(override.industry, f.industry)
    out.type = override.type == .unspecified ? .prospect : override.type
    out.tier = override.tier
    out.employeeCount = override.employeeCount ?? f.companySize
    out.annualRevenue = override.annualRevenue
    out.phone = pick(override.phone, nil)
    out.billingAddress = override.billingAddress ?? f.regionCode.map { PostalAddress(regionCode: $0) }
    out.shippingAddress = override.shippingAddress
    out.parentID = override.parentID
    out.description = pick(override.description, nil)
    out.externalID = pick(override.externalID, nil)
    out.registrationID = pick(override.registrationID, f.registrationID)
    out.tags = override.tags.isEmpty ? f.tags : override.tags
    return out
  }

  /// A new contact's fields: the lead's person data at `accountID`, then whatever `override` sets.
  public static func contactFields(from lead: Lead, accountID: UUID, overriding override: ContactFields) -> ContactFields {
    let f = lead.fields
    var out = override
    out.accountID = accountID
    out.firstName = pick(override.firstName, f.firstName)
    out.lastName = pick(override.lastName, f.lastName)
    out.title = pick(override.title, f.title)
    out.department = pick(override.department, nil)
    out.description = pick(override.description, nil)
    out.externalID = pick(override.externalID, nil)
    if override.emails.isEmpty { out.emails = f.emails }
    if override.phones.isEmpty { out.phones = f.phones }
    if override.address == nil, let region = f.regionCode { out.address = PostalAddress(regionCode: region) }
    if override.tags.isEmpty { out.tags = f.tags }
    return out
  }

  /// The override when it has text, else the lead's value.
  static func pick(_ override: String?, _ fromLead: String?) -> String? {
    if let override, !override.trimmingWhitespace().isEmpty { return override }
    return fromLead
  }

  /// Checks the lead can be converted.
  ///
  /// - Throws: ``CRMError/failedPrecondition(_:)`` for an archived, converted or disqualified lead.
  public static func checkConvertible(_ lead: Lead) throws(CRMError) {
    if lead.archivedAt != nil {
      throw .failedPrecondition("lead \(lead.id.lowercasedString) is archived; undelete it first")
    }
    switch lead.status {
    case .converted: throw .failedPrecondition("the lead is already converted")
    case .disqualified: throw .failedPrecondition("a disqualified lead cannot be converted; reopen it (status working) first")
    case .new, .working, .nurturing, .qualified: break
    }
  }
}

/// What a conversion produced.
public struct LeadConversionResult: Sendable {
  public var lead: Lead
  public var account: Account
  public var contact: Contact
  public var opportunity: Opportunity?
  /// True when the conversion created the account (rather than using an existing or matched one).
  public var accountCreated: Bool
  public var contactCreated: Bool

  /// A result.
  public init(
    lead: Lead, account: Account, contact: Contact, opportunity: Opportunity?, accountCreated: Bool, contactCreated: Bool
  ) {
    self.lead = lead
    self.account = account
    self.contact = contact
    self.opportunity = opportunity
    self.accountCreated = accountCreated
    self.contactCreated = contactCreated
  }
}
