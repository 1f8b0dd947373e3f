import CRMCore
import CRMProto
import Foundation
import SwiftProtobuf

extension Crm_V1_Lead {
  /// The API form of a lead.
  init(_ lead: Lead) {
    self.init()
    let f = lead.fields
    id = lead.id.lowercasedString
    etag = lead.etag
    if let conversion = lead.conversion {
      convertedAccountID = conversion.accountID.lowercasedString
      convertedContactID = conversion.contactID.lowercasedString
      convertedOpportunityID = conversion.opportunityID?.lowercasedString ?? ""
      convertTime = .init(conversion.convertedAt)
    }
    createTime = .init(lead.createdAt)
    updateTime = .init(lead.updatedAt)
    if let archivedAt = lead.archivedAt { archiveTime = .init(archivedAt) }
    mergedIntoID = lead.mergedIntoID?.lowercasedString ?? ""
    ownerID = lead.ownerID?.lowercasedString ?? ""
    poolID = lead.poolID?.lowercasedString ?? ""
    claimedFromPoolID = lead.claimedFromPoolID?.lowercasedString ?? ""
    if let claimedAt = lead.claimedAt { claimTime = .init(claimedAt) }
    firstName = f.firstName ?? ""
    lastName = f.lastName ?? ""
    company = f.company ?? ""
    title = f.title ?? ""
    emails = f.emails.map { email in
      .with {
        $0.address = email.address; $0.label = email.label; $0.primary = email.isPrimary
      }
    }
    phones = f.phones.map { phone in
      .with {
        $0.number = phone.number; $0.label = phone.label; $0.primary = phone.isPrimary
      }
    }
    website = f.website ?? ""
    domain = f.domain ?? ""
    regionCode = f.regionCode ?? ""
    industry = f.industry ?? ""
    if let size = f.companySize { companySize = size }
    if let value = f.score { score = value }
    if let learned = lead.learnedScore { predictiveScore = .init(learned) }
    source = Crm_V1_LeadSource(f.source)
    sourceDetail = f.sourceDetail ?? ""
    campaign = f.campaign ?? ""
    if let parameters = f.utm {
      utm = .with {
        $0.source = parameters.source
        $0.medium = parameters.medium
        $0.campaign = parameters.campaign
        $0.term = parameters.term
        $0.content = parameters.content
      }
    }
    status = Crm_V1_LeadStatus(lead.status)
    disqualifiedReason = lead.disqualifiedReason ?? ""
    externalID = f.externalID ?? ""
    registrationID = f.registrationID ?? ""
    tags = f.tags
    description_p = f.description ?? ""
    if let activity = lead.lastActivityAt { lastActivityTime = .init(activity) }
    createUserID = lead.createdBy?.lowercasedString ?? ""
    updateUserID = lead.updatedBy?.lowercasedString ?? ""
  }

  /// The caller-settable fields, validated and normalized under `prefix`.
  func fields(prefix: String, requiringIdentity: Bool, into violations: inout Violations) -> LeadFields {
    var fields = LeadFields()
    fields.firstName = firstName
    fields.lastName = lastName
    fields.company = company
    fields.title = title
    fields.emails = emails.map { ContactEmail(address: $0.address, label: $0.label, isPrimary: $0.primary) }
    fields.phones = phones.map { ContactPhone(number: $0.number, label: $0.label, isPrimary: $0.primary) }
    fields.website = website
    fields.regionCode = regionCode
    fields.industry = industry
    fields.companySize = hasCompanySize ? companySize : nil
    fields.score = hasScore ? score : nil
    fields.source = LeadSource(source, field: "\(prefix).source", into: &violations)
    fields.sourceDetail = sourceDetail
    fields.campaign = campaign
    if hasUtm {
      fields.utm = UTMParameters(
        source: utm.source, medium: utm.medium, campaign: utm.campaign, term: utm.term, content: utm.content)
    }
    fields.externalID = externalID
    fields.registrationID = registrationID
    fields.tags = tags
    fields.description = description_p
    return fields.normalized(prefix: prefix, requiringIdentity: requiringIdentity, into: &violations)
  }
}

extension Crm_V1_LeadStatus {
  init(_ status: LeadStatus) {
    switch status {
    case .new: self = .new
    case .working: self = .working
    case .nurturing: self = .nurturing
    case .qualified: self = .qualified
    case .converted: self = .converted
    case .disqualified: self = .disqualified
    }
  }
}

extension LeadStatus {
  init?(_ status: Crm_V1_LeadStatus, field: String, into violations: inout Violations) {
    switch status {
    case .new: self = .new
    case .working: self = .working
    case .nurturing: self = .nurturing
    case .qualified: self = .qualified
    case .converted: self = .converted
    case .disqualified: self = .disqualified
    case .unspecified, .UNRECOGNIZED:
      violations.add(field, "must be a lead status such as LEAD_STATUS_WORKING", reason: "REQUIRED")
      return nil
    }
  }
}

extension Crm_V1_LeadSource {
  init(_ source: LeadSource) {
    switch source {
    case .unspecified: self = .unspecified
    case .webForm: self = .webForm
    case .email: self = .email
    case .phone: self = .phone
    case .chat: self = .chat
    case .event: self = .event
    case .partner: self = .partner
    case .import: self = .import
    case .api: self = .api
    }
  }
}

extension LeadSource {
  init(_ source: Crm_V1_LeadSource, field: String, into violations: inout Violations) {
    switch source {
    case .unspecified: self = .unspecified
    case .webForm: self = .webForm
    case .email: self = .email
    case .phone: self = .phone
    case .chat: self = .chat
    case .event: self = .event
    case .partner: self = .partner
    case .import: self = .import
    case .api: self = .api
    case .UNRECOGNIZED:
      violations.add(field, "unknown lead source", reason: "INVALID")
      self = .unspecified
    }
  }
}

extension Crm_V1_PredictiveScore {
  init(_ learned: LeadScore) {
    self.init()
    score = Int32(learned.prediction.score)
    tier = .init(learned.prediction.tier)
    reasons = learned.prediction.reasons.map { reason in
      .with {
        $0.feature = reason.feature
        $0.value = reason.value
        $0.points = Int32(reason.points)
        $0.text = reason.text
      }
    }
    modelVersion = Int32(learned.modelVersion)
    scoreTime = .init(learned.scoredAt)
  }
}

extension Crm_V1_ScoreTier {
  init(_ tier: ScoreTier) {
    switch tier {
    case .veryHigh: self = .veryHigh
    case .high: self = .high
    case .medium: self = .medium
    case .low: self = .low
    }
  }
}
