public import Foundation

/// The part a contact plays in a deal.
public enum ContactRoleKind: String, Sendable, Hashable, CaseIterable, Codable {
  case unspecified
  case decisionMaker = "decision_maker"
  case economicBuyer = "economic_buyer"
  case technicalBuyer = "technical_buyer"
  case influencer
  case evaluator
  case executiveSponsor = "executive_sponsor"
  case user
  case other
}

/// A contact involved in a deal, and how.
public struct ContactRole: Sendable, Hashable {
  public var contactID: UUID
  public var role: ContactRoleKind

  /// A role.
  public init(contactID: UUID, role: ContactRoleKind) {
    self.contactID = contactID
    self.role = role
  }
}

/// The fields of an opportunity that callers set directly (stage, pipeline and the lost reason move
/// only through the stage verbs).
public struct OpportunityFields: Sendable, Hashable {
  /// 1 to 255 characters.
  public var name: String
  public var accountID: UUID
  public var primaryContactID: UUID?
  public var contactRoles: [ContactRole]
  public var amount: Money?
  public var closeDate: CalendarDate?
  /// The owner's probability (0–100); `nil` follows the stage.
  public var probability: Int?
  /// The owner's forecast category for an open deal; `nil` follows the stage.
  public var forecastCategory: ForecastCategory?
  public var sourceLeadID: UUID?
  public var nextStep: String?
  public var competitors: [String]
  public var description: String?
  public var externalID: String?
  public var tags: [String]

  /// Fields with a name and an account and nothing else.
  public init(name: String, accountID: UUID) {
    self.name = name
    self.accountID = accountID
    contactRoles = []
    competitors = []
    tags = []
  }

  /// The most contact roles one deal carries.
  public static let maxContactRoles = 50

  /// Validates and normalizes the fields (those in `only` when given), recording violations under `prefix`.
  public func normalized(prefix: String, only: Set<OpportunityField>? = nil, into violations: inout Violations)
    -> OpportunityFields
  {
    func checks(_ field: OpportunityField) -> Bool { only?.contains(field) ?? true }
    var out = self
    if checks(.name) { out.name = violations.text("\(prefix).name", name, maxLength: 255, required: true) ?? "" }
    if checks(.contactRoles) {
      if contactRoles.count > Self.maxContactRoles {
        violations.add("\(prefix).contact_roles", "at most \(Self.maxContactRoles) contact roles", reason: "TOO_MANY")
      }
      var seen = Set<UUID>()
      for (index, role) in contactRoles.enumerated() where !seen.insert(role.contactID).inserted {
        violations.add("\(prefix).contact_roles[\(index)].contact_id", "names a contact twice", reason: "DUPLICATE")
      }
    }
    if checks(.amount), let money = amount {
      out.amount = Money.validated(
        currencyCode: money.currencyCode, units: money.units, nanos: money.nanos, field: "\(prefix).amount", into: &violations)
      if let money = out.amount, money.units < 0 || money.nanos < 0 {
        violations.add("\(prefix).amount", "must not be negative", reason: "OUT_OF_RANGE")
      }
    }
    if checks(.probability), let probability, !(0...100).contains(probability) {
      violations.add("\(prefix).probability", "must be 0 to 100", reason: "OUT_OF_RANGE")
    }
    if checks(.forecastCategory), let category = forecastCategory, !ForecastCategory.forOpenDeals.contains(category) {
      violations.add("\(prefix).forecast_category", "closed is set by winning the deal, not by hand", reason: "INVALID")
    }
    if checks(.nextStep) { out.nextStep = violations.text("\(prefix).next_step", nextStep ?? "", maxLength: 255) }
    if checks(.competitors) {
      if competitors.count > 20 {
        violations.add("\(prefix).competitors", "at most 20 competitors", reason: "TOO_MANY")
        out.competitors = []
      } else {
        var seen = Set<String>()
        out.competitors = competitors.enumerated().compactMap { index, name in
          guard let clean = violations.text("\(prefix).competitors[\(index)]", name, maxLength: 100, required: true),
            seen.insert(clean.lowercased()).inserted
          else { return nil }
          return clean
        }
      }
    }
    if checks(.description) {
      out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 10_000)
    }
    if checks(.externalID) { out.externalID = violations.text("\(prefix).external_id", externalID ?? "", maxLength: 255) }
    if checks(.tags) { out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations) }
    return out
  }

  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: OpportunityFields, mask: Set<OpportunityField>) -> OpportunityFields {
    var out = self
    for field in mask {
      switch field {
      case .name: out.name = patch.name
      case .accountID: out.accountID = patch.accountID
      case .primaryContactID: out.primaryContactID = patch.primaryContactID
      case .contactRoles: out.contactRoles = patch.contactRoles
      case .amount: out.amount = patch.amount
      case .closeDate: out.closeDate = patch.closeDate
      case .probability: out.probability = patch.probability
      case .forecastCategory: out.forecastCategory = patch.forecastCategory
      case .sourceLeadID: out.sourceLeadID = patch.sourceLeadID
      case .nextStep: out.nextStep = patch.nextStep
      case .competitors: out.competitors = patch.competitors
      case .description: out.description = patch.description
      case .externalID: out.externalID = patch.externalID
      case .tags: out.tags = patch.tags
      case .ownerID: break
      }
    }
    return out
  }

  /// Which of `required` are empty.
  public func missing(_ required: [OpportunityField]) -> [OpportunityField] {
    required.filter { field in
      switch field {
      case .amount: amount == nil
      case .closeDate: closeDate == nil
      case .primaryContactID: primaryContactID == nil
      case .contactRoles: contactRoles.isEmpty
      case .nextStep: nextStep == nil
      case .competitors: competitors.isEmpty
      case .description: description == nil
      default: false
      }
    }
  }

  /// Every contact the deal names: the primary contact, then those with roles.
  public var contactIDs: [UUID] {
    var ids: [UUID] = []
    for id in [primaryContactID].compactMap({ $0 }) + contactRoles.map(\.contactID) where !ids.contains(id) {
      ids.append(id)
    }
    return ids
  }
}

/// The fields an opportunity update may name in its mask, by their API paths.
public enum OpportunityField: String, Sendable, Hashable, CaseIterable, Codable {
  case name
  case accountID = "account_id"
  case primaryContactID = "primary_contact_id"
  case contactRoles = "contact_roles"
  case amount
  case closeDate = "close_date"
  case probability
  case forecastCategory = "forecast_category"
  case sourceLeadID = "source_lead_id"
  case nextStep = "next_step"
  case competitors, description
  case externalID = "external_id"
  case tags
  case ownerID = "owner_id"
}

/// An opportunity as stored: a deal with one account, moving through one pipeline's stages.
public struct Opportunity: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var ownerID: UUID
  public var fields: OpportunityFields
  public var pipelineID: UUID
  public var stageID: UUID
  /// The stage's name as it is now (read with the deal; not written).
  public var stageName: String
  /// The stage's category: open, won or lost.
  public var state: StageCategory
  /// The probability in effect: the owner's when set (``OpportunityFields/probability``), else the stage's.
  public var probability: Int
  /// The forecast category in effect.
  public var forecastCategory: ForecastCategory
  /// Why it was lost (lost deals only).
  public var lostReason: String?
  public var stageEnteredAt: Timestamp
  public var closedAt: Timestamp?
  public var lastActivityAt: Timestamp?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?

  /// An opportunity value.
  public init(
    id: UUID, version: Int64, ownerID: UUID, fields: OpportunityFields, pipelineID: UUID, stageID: UUID,
    state: StageCategory, probability: Int, forecastCategory: ForecastCategory, lostReason: String?,
    stageEnteredAt: Timestamp, closedAt: Timestamp?, lastActivityAt: Timestamp?, createdAt: Timestamp,
    updatedAt: Timestamp, createdBy: UUID?, updatedBy: UUID?, archivedAt: Timestamp?, stageName: String = ""
  ) {
    self.id = id
    self.stageName = stageName
    self.version = version
    self.ownerID = ownerID
    self.fields = fields
    self.pipelineID = pipelineID
    self.stageID = stageID
    self.state = state
    self.probability = probability
    self.forecastCategory = forecastCategory
    self.lostReason = lostReason
    self.stageEnteredAt = stageEnteredAt
    self.closedAt = closedAt
    self.lastActivityAt = lastActivityAt
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.createdBy = createdBy
    self.updatedBy = updatedBy
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// Puts the deal in `stage`: state, probability and forecast follow the stage unless the owner's
  /// overrides apply (open stages only; a move clears a probability override the request did not set).
  public mutating func enter(_ stage: PipelineStage, of pipeline: Pipeline) {
    pipelineID = pipeline.id
    stageID = stage.id
    stageName = stage.name
    state = stage.category
    if stage.category.isClosed {
      fields.probability = nil
      fields.forecastCategory = nil
    }
    probability = fields.probability ?? stage.probability
    forecastCategory = ForecastCategory.forClosed(stage.category) ?? fields.forecastCategory ?? stage.forecastCategory
    if stage.category != .lost { lostReason = nil }
  }

  /// Checks the deal may enter `stage`: its required fields are set, a lost stage has a reason.
  ///
  /// - Throws: ``CRMError/failedPrecondition(_:)`` naming the missing fields.
  public func checkCanEnter(_ stage: PipelineStage, of pipeline: Pipeline) throws(CRMError) {
    let missing = fields.missing(pipeline.requirements(for: stage))
    if !missing.isEmpty {
      throw .failedPrecondition(
        "stage \"\(stage.name)\" requires \(missing.map(\.rawValue).joined(separator: ", ")); set them first")
    }
    if stage.category == .lost, lostReason == nil {
      throw .invalid("lost_reason", "is required to lose a deal", reason: "REQUIRED")
    }
  }

  /// Fields, stage and owner as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    let f = fields
    return [
      "name": .string(f.name),
      "account_id": .string(f.accountID.lowercasedString),
      "primary_contact_id": f.primaryContactID.map { .string($0.lowercasedString) } ?? .null,
      "contact_roles": .array(
        f.contactRoles.map {
          .object([("contact_id", .string($0.contactID.lowercasedString)), ("role", .string($0.role.rawValue))])
        }
      ),
      "amount": f.amount.map(JSONValue.money) ?? .null,
      "close_date": f.closeDate.map { .string($0.description) } ?? .null,
      "pipeline_id": .string(pipelineID.lowercasedString),
      "stage_id": .string(stageID.lowercasedString),
      "state": .string(state.rawValue),
      "probability": .int(Int64(probability)),
      "forecast_category": .string(forecastCategory.rawValue),
      "lost_reason": .optional(lostReason),
      "source_lead_id": f.sourceLeadID.map { .string($0.lowercasedString) } ?? .null,
      "next_step": .optional(f.nextStep),
      "competitors": .array(f.competitors.map { .string($0) }),
      "description": .optional(f.description),
      "external_id": .optional(f.externalID),
      "tags": .array(f.tags.map { .string($0) }),
      "owner_id": .string(ownerID.lowercasedString),
    ]
  }

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "name", "account_id", "primary_contact_id", "contact_roles", "amount", "close_date", "pipeline_id", "stage_id",
    "state", "probability", "forecast_category", "lost_reason", "source_lead_id", "next_step", "competitors",
    "description", "external_id", "tags", "owner_id",
  ]
}

/// One stage a deal entered: from where, when and by whom, and what it looked like then.
public struct StageChange: Sendable, Hashable {
  public var sequence: Int64
  public var fromStageID: UUID?
  public var toStageID: UUID
  /// The stages' names as they are now.
  public var fromStageName: String?
  public var toStageName: String
  public var pipelineID: UUID
  public var amount: Money?
  public var probability: Int
  public var forecastCategory: ForecastCategory
  public var closeDate: CalendarDate?
  public var changedAt: Timestamp
  public var changedBy: UUID?
  /// How long the deal stayed in `toStageID`: until the next change, or until now for the current stage.
  public var durationMicroseconds: Int64

  /// A stage change.
  public init(
    sequence: Int64, fromStageID: UUID?, toStageID: UUID, fromStageName: String?, toStageName: String, pipelineID: UUID,
    amount: Money?, probability: Int,
    forecastCategory: ForecastCategory, closeDate: CalendarDate?, changedAt: Timestamp, changedBy: UUID?,
    durationMicroseconds: Int64
  ) {
    self.sequence = sequence
    self.fromStageID = fromStageID
    self.toStageID = toStageID
    self.fromStageName = fromStageName
    self.toStageName = toStageName
    self.pipelineID = pipelineID
    self.amount = amount
    self.probability = probability
    self.forecastCategory = forecastCategory
    self.closeDate = closeDate
    self.changedAt = changedAt
    self.changedBy = changedBy
    self.durationMicroseconds = durationMicroseconds
  }
}

/// The time a deal spent in one stage, summed over its visits.
public struct StageTime: Sendable, Hashable {
  public var stageID: UUID
  public var stageName: String
  public var durationMicroseconds: Int64
  public var visits: Int

  /// Sums `changes` (oldest first) per stage, in the order stages were first entered.
  public static func totals(_ changes: [StageChange]) -> [StageTime] {
    var totals: [StageTime] = []
    var index: [UUID: Int] = [:]
    for change in changes {
      if let at = index[change.toStageID] {
        totals[at].durationMicroseconds += change.durationMicroseconds
        totals[at].visits += 1
      } else {
        index[change.toStageID] = totals.count
        totals.append(
          StageTime(
            stageID: change.toStageID, stageName: change.toStageName, durationMicroseconds: change.durationMicroseconds,
            visits: 1))
      }
    }
    return totals
  }
}

/// What a list of opportunities is narrowed to.
public struct OpportunityFilter: Sendable, Hashable {
  public var ownerID: UUID?
  /// Deals owned by members of this team or any team below it.
  public var teamID: UUID?
  public var accountID: UUID?
  public var pipelineID: UUID?
  public var stageID: UUID?
  public var state: StageCategory?
  public var forecastCategory: ForecastCategory?
  /// Deals owned by any of these users (a forecast number's deals).
  public var ownerIDs: Set<UUID>?
  /// Deals in any of these forecast categories.
  public var forecastCategories: Set<ForecastCategory>?
  /// Deals with an amount in this currency.
  public var currencyCode: String?
  public var closeDateFrom: CalendarDate?
  public var closeDateTo: CalendarDate?
  /// Amounts at least this (same currency only).
  public var minAmount: Money?
  /// Amounts at most this (same currency only).
  public var maxAmount: Money?
  public var namePrefix: String?
  public var tag: String?
  public var updatedSince: Timestamp?
  public var archive: ArchiveFilter = .active
  public var order: ListOrder = .name

  /// No narrowing.
  public init() {}

  /// The page token's binding to this filter.
  public var fingerprint: String {
    let parts: [String] = [
      "opportunities", ownerID?.lowercasedString ?? "", teamID?.lowercasedString ?? "", accountID?.lowercasedString ?? "",
      pipelineID?.lowercasedString ?? "", stageID?.lowercasedString ?? "", state?.rawValue ?? "",
      forecastCategory?.rawValue ?? "", ownerIDs.map { $0.map(\.lowercasedString).sorted().joined(separator: ",") } ?? "",
      forecastCategories.map { $0.map(\.rawValue).sorted().joined(separator: ",") } ?? "", currencyCode ?? "",
      closeDateFrom?.description ?? "", closeDateTo?.description ?? "",
      minAmount.map { "\($0.currencyCode)\($0.units).\($0.nanos)" } ?? "",
      maxAmount.map { "\($0.currencyCode)\($0.units).\($0.nanos)" } ?? "", namePrefix ?? "", tag ?? "",
      updatedSince.map { String($0.microsecondsSinceEpoch) } ?? "", archive.rawValue, order.rawValue,
    ]
    return parts.joined(separator: "|")
  }
}
