import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

extension Crm_V1_Date {
  init(_ date: CalendarDate) {
    self.init()
    year = Int32(date.year)
    month = Int32(date.month)
    day = Int32(date.day)
  }

  /// The day, or a violation under `field` for one that does not exist.
  func domain(field: String, into violations: inout Violations) -> CalendarDate? {
    guard let date = CalendarDate(year: Int(year), month: Int(month), day: Int(day)) else {
      violations.add(field, "must be a real day, e.g. {year: 2026, month: 12, day: 31}", reason: "INVALID")
      return nil
    }
    return date
  }
}

extension Google_Protobuf_Duration {
  init(microseconds: Int64) {
    self.init(seconds: microseconds / 1_000_000, nanos: Int32(microseconds % 1_000_000) * 1000)
  }
}

extension Crm_V1_Pipeline {
  /// The API form of a pipeline.
  init(_ pipeline: Pipeline) {
    self.init()
    id = pipeline.id.lowercasedString
    etag = pipeline.etag
    createTime = .init(pipeline.createdAt)
    updateTime = .init(pipeline.updatedAt)
    if let archivedAt = pipeline.archivedAt { archiveTime = .init(archivedAt) }
    name = pipeline.name
    description_p = pipeline.description ?? ""
    isDefault = pipeline.isDefault
    stages = pipeline.stages.map { stage in
      .with {
        $0.id = stage.id.lowercasedString
        $0.name = stage.name
        $0.category = Crm_V1_StageCategory(stage.category)
        $0.probability = Int32(stage.probability)
        $0.forecastCategory = Crm_V1_ForecastCategory(stage.forecastCategory)
        $0.requiredFields = stage.requiredFields.map(\.rawValue)
        $0.position = Int32(stage.position)
      }
    }
  }

  /// The definition an admin sent, validated.
  func definition(into violations: inout Violations) -> PipelineStore.Definition {
    var specs: [StageSpec] = []
    for (index, stage) in stages.prefix(StageSpec.maxStages + 1).enumerated() {
      let path = "pipeline.stages[\(index)]"
      let category = StageCategory(stage.category, field: "\(path).category", required: true, into: &violations) ?? .open
      let forecast = ForecastCategory(stage.forecastCategory, field: "\(path).forecast_category", into: &violations)
      var required: [OpportunityField] = []
      for (fieldIndex, name) in stage.requiredFields.prefix(21).enumerated() {
        if let field = OpportunityField(rawValue: name) {
          required.append(field)
        } else {
          violations.add("\(path).required_fields[\(fieldIndex)]", "unknown field \"\(name.prefix(64))\"", reason: "INVALID")
        }
      }
      specs.append(
        StageSpec(
          id: RequestFields.optionalID(stage.id, field: "\(path).id", into: &violations), name: stage.name, category: category,
          probability: stage.hasProbability ? Int(stage.probability) : nil, forecastCategory: forecast,
          requiredFields: required))
    }
    return PipelineStore.Definition(
      name: violations.text("pipeline.name", name, maxLength: 100, required: true) ?? "",
      description: violations.multilineText("pipeline.description", description_p, maxLength: 1000),
      isDefault: isDefault, stages: StageSpec.normalized(specs, field: "pipeline.stages", into: &violations))
  }
}

extension Crm_V1_Opportunity {
  /// The API form of a deal.
  init(_ deal: Opportunity) {
    self.init()
    let f = deal.fields
    id = deal.id.lowercasedString
    etag = deal.etag
    createTime = .init(deal.createdAt)
    updateTime = .init(deal.updatedAt)
    if let archivedAt = deal.archivedAt { archiveTime = .init(archivedAt) }
    ownerID = deal.ownerID.lowercasedString
    name = f.name
    accountID = f.accountID.lowercasedString
    primaryContactID = f.primaryContactID?.lowercasedString ?? ""
    contactRoles = f.contactRoles.map { role in
      .with {
        $0.contactID = role.contactID.lowercasedString
        $0.role = Crm_V1_ContactRoleKind(role.role)
      }
    }
    if let amount = f.amount { self.amount = .init(amount) }
    if let date = f.closeDate { closeDate = .init(date) }
    pipelineID = deal.pipelineID.lowercasedString
    stageID = deal.stageID.lowercasedString
    stageName = deal.stageName
    state = Crm_V1_StageCategory(deal.state)
    probability = Int32(deal.probability)
    probabilityOverridden = f.probability != nil
    forecastCategory = Crm_V1_ForecastCategory(deal.forecastCategory)
    sourceLeadID = f.sourceLeadID?.lowercasedString ?? ""
    nextStep = f.nextStep ?? ""
    lostReason = deal.lostReason ?? ""
    competitors = f.competitors
    description_p = f.description ?? ""
    externalID = f.externalID ?? ""
    tags = f.tags
    stageEnterTime = .init(deal.stageEnteredAt)
    if let closedAt = deal.closedAt { closeTime = .init(closedAt) }
    if let activity = deal.lastActivityAt { lastActivityTime = .init(activity) }
    createUserID = deal.createdBy?.lowercasedString ?? ""
    updateUserID = deal.updatedBy?.lowercasedString ?? ""
  }

  /// Stands in for the account in an update whose mask leaves `account_id` out (it is not read).
  static let noAccount = UUID(uuidString: "00000000-0000-0000-0000-000000000000")!

  /// The caller-settable fields, validated; only those in `only` are read when given (an update's mask).
  /// The account is required on create (`only == nil`).
  func fields(prefix: String, only: Set<OpportunityField>?, into violations: inout Violations) -> OpportunityFields {
    func reads(_ field: OpportunityField) -> Bool { only?.contains(field) ?? true }
    let account =
      reads(.accountID) ? RequestFields.id(accountID, field: "\(prefix).account_id", into: &violations) : nil
    var fields = OpportunityFields(name: name, accountID: account ?? Self.noAccount)
    if reads(.primaryContactID) {
      fields.primaryContactID = RequestFields.optionalID(primaryContactID, field: "\(prefix).primary_contact_id", into: &violations)
    }
    if reads(.contactRoles) {
      fields.contactRoles = contactRoles.prefix(OpportunityFields.maxContactRoles + 1).enumerated().compactMap { index, role in
        let path = "\(prefix).contact_roles[\(index)]"
        guard let contact = RequestFields.id(role.contactID, field: "\(path).contact_id", into: &violations) else { return nil }
        return ContactRole(contactID: contact, role: ContactRoleKind(role.role, field: "\(path).role", into: &violations))
      }
    }
    fields.amount = hasAmount ? amount.domain : nil
    if reads(.closeDate), hasCloseDate { fields.closeDate = closeDate.domain(field: "\(prefix).close_date", into: &violations) }
    fields.probability = hasProbability ? Int(probability) : nil
    if reads(.forecastCategory) {
      fields.forecastCategory = ForecastCategory(forecastCategory, field: "\(prefix).forecast_category", into: &violations)
    }
    if reads(.sourceLeadID) {
      fields.sourceLeadID = RequestFields.optionalID(sourceLeadID, field: "\(prefix).source_lead_id", into: &violations)
    }
    fields.nextStep = nextStep
    fields.competitors = competitors
    fields.description = description_p
    fields.externalID = externalID
    fields.tags = tags
    return fields.normalized(prefix: prefix, only: only, into: &violations)
  }
}

extension Crm_V1_StageChange {
  init(_ change: StageChange) {
    self.init()
    sequence = change.sequence
    fromStageID = change.fromStageID?.lowercasedString ?? ""
    toStageID = change.toStageID.lowercasedString
    fromStageName = change.fromStageName ?? ""
    toStageName = change.toStageName
    pipelineID = change.pipelineID.lowercasedString
    changeTime = .init(change.changedAt)
    changeUserID = change.changedBy?.lowercasedString ?? ""
    duration = .init(microseconds: change.durationMicroseconds)
    if let amount = change.amount { self.amount = .init(amount) }
    probability = Int32(change.probability)
    forecastCategory = Crm_V1_ForecastCategory(change.forecastCategory)
    if let date = change.closeDate { closeDate = .init(date) }
  }
}

extension Crm_V1_StageCategory {
  init(_ category: StageCategory) {
    switch category {
    case .open: self = .open
    case .won: self = .won
    case .lost: self = .lost
    }
  }
}

extension StageCategory {
  /// The category, `nil` for UNSPECIFIED (a violation when `required`).
  init?(_ category: Crm_V1_StageCategory, field: String, required: Bool = false, into violations: inout Violations) {
    switch category {
    case .open: self = .open
    case .won: self = .won
    case .lost: self = .lost
    case .unspecified:
      if required { violations.add(field, "is required: OPEN, WON or LOST", reason: "REQUIRED") }
      return nil
    case .UNRECOGNIZED:
      violations.add(field, "unknown stage category", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_ForecastCategory {
  init(_ category: ForecastCategory) {
    switch category {
    case .pipeline: self = .pipeline
    case .bestCase: self = .bestCase
    case .commit: self = .commit
    case .closed: self = .closed
    case .omitted: self = .omitted
    }
  }
}

extension ForecastCategory {
  /// The category, `nil` for UNSPECIFIED.
  init?(_ category: Crm_V1_ForecastCategory, field: String, into violations: inout Violations) {
    switch category {
    case .unspecified: return nil
    case .pipeline: self = .pipeline
    case .bestCase: self = .bestCase
    case .commit: self = .commit
    case .closed: self = .closed
    case .omitted: self = .omitted
    case .UNRECOGNIZED:
      violations.add(field, "unknown forecast category", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_ContactRoleKind {
  init(_ kind: ContactRoleKind) {
    switch kind {
    case .unspecified: self = .unspecified
    case .decisionMaker: self = .decisionMaker
    case .economicBuyer: self = .economicBuyer
    case .technicalBuyer: self = .technicalBuyer
    case .influencer: self = .influencer
    case .evaluator: self = .evaluator
    case .executiveSponsor: self = .executiveSponsor
    case .user: self = .user
    case .other: self = .other
    }
  }
}

extension ContactRoleKind {
  init(_ kind: Crm_V1_ContactRoleKind, field: String, into violations: inout Violations) {
    switch kind {
    case .unspecified: self = .unspecified
    case .decisionMaker: self = .decisionMaker
    case .economicBuyer: self = .economicBuyer
    case .technicalBuyer: self = .technicalBuyer
    case .influencer: self = .influencer
    case .evaluator: self = .evaluator
    case .executiveSponsor: self = .executiveSponsor
    case .user: self = .user
    case .other: self = .other
    case .UNRECOGNIZED:
      violations.add(field, "unknown contact role", reason: "INVALID")
      self = .unspecified
    }
  }
}
