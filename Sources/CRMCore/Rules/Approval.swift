public import Foundation

/// Who decides one step of an approval.
public enum Approver: Sendable, Hashable {
  /// The record owner's manager `level` levels up (1: their manager; 2: the manager's manager).
  case manager(level: Int)
  case user(UUID)
  /// A team's active members: the first answer decides, or (`unanimous`) every member must approve.
  case team(UUID, unanimous: Bool)
}

/// One step of an approval process.
public struct ApprovalStep: Sendable, Hashable {
  public var name: String
  public var approver: Approver

  /// A step.
  public init(name: String, approver: Approver) {
    self.name = name
    self.approver = approver
  }
}

/// What happens to the record when a request is approved or rejected.
public enum ApprovalFinalAction: Sendable, Hashable {
  /// Sets a settable field (``RuleField/checkSetting(_:to:recordType:path:into:)``).
  case setField(String, JSONValue)
  /// Opportunities: moves the deal to this stage, as MoveOpportunityStage would.
  case moveStage(UUID)
}

/// What an admin sends: an approval process without its identity.
public struct ApprovalProcessDefinition: Sendable, Hashable {
  public var recordType: RecordType
  public var name: String
  public var position: Int
  public var isActive: Bool
  /// State conditions (no `changed…`) the record must meet for this process to take it.
  public var entryConditions: [RuleCondition]
  /// Opportunities: entering this stage needs this process's approval when the entry conditions hold.
  public var gatedStageID: UUID?
  public var steps: [ApprovalStep]
  public var onApprove: [ApprovalFinalAction]
  public var onReject: [ApprovalFinalAction]

  /// A definition.
  public init(
    recordType: RecordType, name: String, position: Int, isActive: Bool, entryConditions: [RuleCondition],
    gatedStageID: UUID?, steps: [ApprovalStep], onApprove: [ApprovalFinalAction], onReject: [ApprovalFinalAction]
  ) {
    self.recordType = recordType
    self.name = name
    self.position = position
    self.isActive = isActive
    self.entryConditions = entryConditions
    self.gatedStageID = gatedStageID
    self.steps = steps
    self.onApprove = onApprove
    self.onReject = onReject
  }

  /// The operators entry conditions may use: they read the record as it is, not a change.
  public static let entryOperators: Set<RuleOperator> = [.equals, .notEquals, .greaterThan, .lessThan, .containsTag]

  /// The definition checked and normalized; violations under `path` (`process.steps[0].level`).
  public func validated(path: String, into violations: inout Violations) -> ApprovalProcessDefinition {
    var result = self
    guard TriggerRuleDefinition.recordTypes.contains(recordType) else {
      violations.add(
        "\(path).record_type",
        "approvals cover " + TriggerRuleDefinition.recordTypes.map(\.rawValue).joined(separator: ", "), reason: "INVALID")
      return result
    }
    result.name = violations.text("\(path).name", name, maxLength: 100, required: true) ?? name
    result.entryConditions = RuleCondition.validated(
      entryConditions, recordType: recordType, path: "\(path).entry_conditions", operators: Self.entryOperators,
      into: &violations)
    if gatedStageID != nil, recordType != .opportunity {
      violations.add("\(path).gated_stage_id", "only opportunity processes gate a stage", reason: "INVALID")
    }
    if steps.isEmpty || steps.count > 10 { violations.add("\(path).steps", "1 to 10 steps", reason: "OUT_OF_RANGE") }
    for (index, step) in steps.enumerated() {
      let at = "\(path).steps[\(index)]"
      result.steps[index].name = violations.text("\(at).name", step.name, maxLength: 100, required: true) ?? step.name
      if case .manager(let level) = step.approver, !(1...10).contains(level) {
        violations.add("\(at).manager_level", "1 to 10 levels up", reason: "OUT_OF_RANGE")
      }
    }
    result.onApprove = Self.validated(onApprove, recordType: recordType, path: "\(path).on_approve", into: &violations)
    result.onReject = Self.validated(onReject, recordType: recordType, path: "\(path).on_reject", into: &violations)
    return result
  }

  static func validated(
    _ actions: [ApprovalFinalAction], recordType: RecordType, path: String, into violations: inout Violations
  ) -> [ApprovalFinalAction] {
    if actions.count > 10 { violations.add(path, "at most 10 actions", reason: "TOO_MANY") }
    return actions.prefix(10).enumerated().compactMap { index, action in
      switch action {
      case .setField(let name, let value):
        return RuleField.checkSetting(
          name, to: value, recordType: recordType, path: "\(path)[\(index)].set_field", into: &violations
        )
        .map { .setField(name, $0) }
      case .moveStage:
        if recordType != .opportunity {
          violations.add("\(path)[\(index)].move_stage_id", "only opportunities move between stages", reason: "INVALID")
          return nil
        }
        return action
      }
    }
  }
}

/// A stored approval process.
public struct ApprovalProcess: Sendable, Hashable {
  public var id: UUID
  public var version: Int64
  public var definition: ApprovalProcessDefinition
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A process.
  public init(id: UUID, version: Int64, definition: ApprovalProcessDefinition, createdAt: Timestamp, updatedAt: Timestamp) {
    self.id = id
    self.version = version
    self.definition = definition
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }
}

/// Where a request stands.
public enum ApprovalStatus: String, Sendable, Hashable, CaseIterable {
  case pending, approved, rejected, recalled
}

/// One approver's part in one step.
public struct ApprovalDecision: Sendable, Hashable {
  public enum Outcome: String, Sendable, Hashable {
    /// Waiting for them.
    case pending
    case approved, rejected
    /// The step was decided without them (first response, a rejection, a recall).
    case skipped
  }

  public var step: Int
  public var approverID: UUID
  public var outcome: Outcome
  public var comment: String?
  public var decidedAt: Timestamp?

  /// A decision.
  public init(step: Int, approverID: UUID, outcome: Outcome, comment: String?, decidedAt: Timestamp?) {
    self.step = step
    self.approverID = approverID
    self.outcome = outcome
    self.comment = comment
    self.decidedAt = decidedAt
  }
}

/// A record submitted for approval, with every decision so far.
public struct ApprovalRequest: Sendable, Hashable {
  public var id: UUID
  public var processID: UUID
  public var processName: String
  public var record: RecordLink
  public var status: ApprovalStatus
  /// The step waiting for decisions (from 1), or the last one decided.
  public var step: Int
  public var stepName: String
  public var stepCount: Int
  public var submittedBy: UUID
  public var submittedAt: Timestamp
  public var comment: String?
  public var decidedAt: Timestamp?
  /// The trigger rule that submitted it, if one did.
  public var ruleID: UUID?
  public var decisions: [ApprovalDecision]

  /// A request.
  public init(
    id: UUID, processID: UUID, processName: String, record: RecordLink, status: ApprovalStatus, step: Int, stepName: String,
    stepCount: Int, submittedBy: UUID, submittedAt: Timestamp, comment: String?, decidedAt: Timestamp?, ruleID: UUID?,
    decisions: [ApprovalDecision]
  ) {
    self.id = id
    self.processID = processID
    self.processName = processName
    self.record = record
    self.status = status
    self.step = step
    self.stepName = stepName
    self.stepCount = stepCount
    self.submittedBy = submittedBy
    self.submittedAt = submittedAt
    self.comment = comment
    self.decidedAt = decidedAt
    self.ruleID = ruleID
    self.decisions = decisions
  }
}
