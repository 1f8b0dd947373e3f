public import Foundation

/// Where a stage leaves a deal: still open, won or lost.
public enum StageCategory: String, Sendable, Hashable, CaseIterable, Codable {
  case open, won, lost

  /// True for won and lost.
  public var isClosed: Bool { self != .open }
}

/// How a deal counts in the forecast.
public enum ForecastCategory: String, Sendable, Hashable, CaseIterable, Codable {
  case pipeline
  case bestCase = "best_case"
  case commit
  case closed
  case omitted

  /// The categories an open deal may be put in by hand.
  public static let forOpenDeals: Set<ForecastCategory> = [.pipeline, .bestCase, .commit, .omitted]

  /// The category a closed stage forces: closed for won, omitted for lost.
  public static func forClosed(_ category: StageCategory) -> ForecastCategory? {
    switch category {
    case .open: nil
    case .won: .closed
    case .lost: .omitted
    }
  }
}

/// One stage of a pipeline.
public struct PipelineStage: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var name: String
  /// Order in the pipeline, from 0.
  public var position: Int
  public var category: StageCategory
  /// The probability (0–100) a deal in this stage gets unless its owner overrides it.
  public var probability: Int
  /// The forecast category a deal in this stage gets unless overridden (closed stages force theirs).
  public var forecastCategory: ForecastCategory
  /// Fields a deal must have to enter this stage (and, for open stages, any later open stage).
  public var requiredFields: [OpportunityField]

  /// A stage.
  public init(
    id: UUID, name: String, position: Int, category: StageCategory, probability: Int, forecastCategory: ForecastCategory,
    requiredFields: [OpportunityField]
  ) {
    self.id = id
    self.name = name
    self.position = position
    self.category = category
    self.probability = probability
    self.forecastCategory = forecastCategory
    self.requiredFields = requiredFields
  }
}

/// A sales process: ordered open stages, then the won and lost stages that end it.
public struct Pipeline: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var name: String
  public var description: String?
  /// Where opportunities go when a create names no pipeline; one per tenant.
  public var isDefault: Bool
  /// The current stages, in order.
  public var stages: [PipelineStage]
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var archivedAt: Timestamp?

  /// A pipeline value.
  public init(
    id: UUID, version: Int64, name: String, description: String?, isDefault: Bool, stages: [PipelineStage],
    createdAt: Timestamp, updatedAt: Timestamp, archivedAt: Timestamp?
  ) {
    self.id = id
    self.version = version
    self.name = name
    self.description = description
    self.isDefault = isDefault
    self.stages = stages
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// The stage with `id`, if it is one of this pipeline's current stages.
  public func stage(_ id: UUID) -> PipelineStage? { stages.first { $0.id == id } }

  /// Where new deals start: the first open stage.
  public var firstOpenStage: PipelineStage? { stages.first { $0.category == .open } }

  /// The first stage of a closed category (the stage CloseWon or CloseLost picks when none is named).
  public func firstStage(_ category: StageCategory) -> PipelineStage? { stages.first { $0.category == category } }

  /// The fields a deal needs to enter `stage`: for an open stage, the union of its requirements and
  /// those of every open stage before it (a deal that skips "Proposal" still needs what "Proposal"
  /// asks for); for a won stage, its own and every open stage's; for a lost stage, its own.
  public func requirements(for stage: PipelineStage) -> [OpportunityField] {
    let contributing: [PipelineStage]
    switch stage.category {
    case .open: contributing = stages.filter { $0.category == .open && $0.position <= stage.position }
    case .won: contributing = stages.filter { $0.category == .open } + [stage]
    case .lost: contributing = [stage]
    }
    var fields: [OpportunityField] = []
    for candidate in contributing {
      for field in candidate.requiredFields where !fields.contains(field) { fields.append(field) }
    }
    return fields
  }
}

/// A stage as an admin defines it on create or update; `id` names an existing stage to keep.
public struct StageSpec: Sendable, Hashable {
  public var id: UUID?
  public var name: String
  public var category: StageCategory
  public var probability: Int?
  public var forecastCategory: ForecastCategory?
  public var requiredFields: [OpportunityField]

  /// A stage spec.
  public init(
    id: UUID?, name: String, category: StageCategory, probability: Int?, forecastCategory: ForecastCategory?,
    requiredFields: [OpportunityField]
  ) {
    self.id = id
    self.name = name
    self.category = category
    self.probability = probability
    self.forecastCategory = forecastCategory
    self.requiredFields = requiredFields
  }

  /// The fields a stage may require.
  public static let requirableFields: Set<OpportunityField> = [
    .amount, .closeDate, .primaryContactID, .contactRoles, .nextStep, .competitors, .description,
  ]

  /// Most stages one pipeline may have.
  public static let maxStages = 30

  /// Validates a whole stage list: 2–30 stages with distinct names, open stages first, at least one
  /// open, one won and one lost stage; probabilities default by category (won 100, lost 0) and must
  /// be 0–100; closed stages take their forced forecast category. Returns stages with positions.
  public static func normalized(_ specs: [StageSpec], field: String, into violations: inout Violations) -> [StageSpec] {
    if specs.count < 3 || specs.count > maxStages {
      violations.add(field, "a pipeline has 3 to \(maxStages) stages: open ones, then at least one won and one lost", reason: "INVALID")
      return []
    }
    var names = Set<String>()
    var ids = Set<UUID>()
    var seenClosed = false
    var out: [StageSpec] = []
    for (index, spec) in specs.enumerated() {
      let path = "\(field)[\(index)]"
      var stage = spec
      stage.name = violations.text("\(path).name", spec.name, maxLength: 100, required: true) ?? ""
      if !stage.name.isEmpty, !names.insert(stage.name.lowercased()).inserted {
        violations.add("\(path).name", "names another stage of this pipeline", reason: "DUPLICATE")
      }
      if let id = spec.id, !ids.insert(id).inserted {
        violations.add("\(path).id", "names a stage twice", reason: "DUPLICATE")
      }
      if spec.category.isClosed {
        seenClosed = true
      } else if seenClosed {
        violations.add("\(path).category", "open stages come before the won and lost stages", reason: "INVALID")
      }
      let probability = spec.probability ?? (spec.category == .won ? 100 : 0)
      if !(0...100).contains(probability) {
        violations.add("\(path).probability", "must be 0 to 100", reason: "OUT_OF_RANGE")
      }
      stage.probability = probability
      if let forced = ForecastCategory.forClosed(spec.category) {
        if let given = spec.forecastCategory, given != forced {
          violations.add(
            "\(path).forecast_category", "a \(spec.category.rawValue) stage forecasts as \(forced.rawValue)", reason: "INVALID")
        }
        stage.forecastCategory = forced
      } else {
        let category = spec.forecastCategory ?? .pipeline
        if !ForecastCategory.forOpenDeals.contains(category) {
          violations.add("\(path).forecast_category", "an open stage cannot forecast as closed", reason: "INVALID")
        }
        stage.forecastCategory = category
      }
      var required: [OpportunityField] = []
      for (fieldIndex, requirement) in spec.requiredFields.enumerated() {
        guard requirableFields.contains(requirement) else {
          violations.add(
            "\(path).required_fields[\(fieldIndex)]",
            "must be one of \(requirableFields.map(\.rawValue).sorted().joined(separator: ", "))", reason: "INVALID")
          continue
        }
        if !required.contains(requirement) { required.append(requirement) }
      }
      stage.requiredFields = required
      out.append(stage)
    }
    for category in StageCategory.allCases where !specs.contains(where: { $0.category == category }) {
      violations.add(field, "a pipeline needs at least one \(category.rawValue) stage", reason: "INVALID")
    }
    return out
  }
}
