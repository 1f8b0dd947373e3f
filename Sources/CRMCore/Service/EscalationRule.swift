public import Foundation

/// When an escalation rule fires on a ticket.
public enum EscalationTrigger: Sendable, Hashable {
  /// A metric's clock passed its warning time.
  case warning(SLAMetric)
  /// A metric's clock breached, `afterMinutes` ago or more: levels 1–4 escalate the same breach
  /// further as time goes on (e.g. level 1 at the breach, level 2 four hours later).
  case breach(SLAMetric, level: Int, afterMinutes: Int)
  /// The ticket has been in `status` for `minutes` or more.
  case age(TicketStatus, minutes: Int)

  /// Checks the trigger, recording violations under `prefix`.
  public func validate(prefix: String, into violations: inout Violations) {
    switch self {
    case .warning: break
    case .breach(_, let level, let after):
      if !(1...4).contains(level) { violations.add("\(prefix).level", "must be 1 to 4", reason: "OUT_OF_RANGE") }
      if !(0...525_600).contains(after) {
        violations.add("\(prefix).after_minutes", "must be 0 to 525,600 (a year)", reason: "OUT_OF_RANGE")
      }
    case .age(let status, let minutes):
      if status.isResolved {
        violations.add("\(prefix).status", "age in solved or closed is not escalated", reason: "INVALID")
      }
      if !(1...525_600).contains(minutes) {
        violations.add("\(prefix).minutes", "must be 1 to 525,600 (a year)", reason: "OUT_OF_RANGE")
      }
    }
  }
}

/// What an escalation rule does; every action set is applied, in this order.
public struct EscalationActions: Sendable, Hashable {
  /// Reassign to this agent.
  public var assigneeID: UUID?
  /// Move to this group (team).
  public var groupID: UUID?
  /// Raise the priority to this (never lowers it).
  public var raisePriorityTo: TicketPriority?
  /// Add this tag.
  public var addTag: String?
  /// Create a task for the assignee's manager (the manager of the assignee's team).
  public var taskForManager: Bool

  /// No actions.
  public init(
    assigneeID: UUID? = nil, groupID: UUID? = nil, raisePriorityTo: TicketPriority? = nil, addTag: String? = nil,
    taskForManager: Bool = false
  ) {
    self.assigneeID = assigneeID
    self.groupID = groupID
    self.raisePriorityTo = raisePriorityTo
    self.addTag = addTag
    self.taskForManager = taskForManager
  }

  /// True when the rule would do nothing.
  public var isEmpty: Bool {
    assigneeID == nil && groupID == nil && raisePriorityTo == nil && addTag == nil && !taskForManager
  }

  /// Applies the field actions to `fields` (the manager task is the store's).
  public func apply(to fields: inout TicketFields) {
    if let assigneeID { fields.assigneeID = assigneeID }
    if let groupID { fields.groupID = groupID }
    if let raisePriorityTo, raisePriorityTo > fields.priority { fields.priority = raisePriorityTo }
    if let addTag, !fields.tags.contains(addTag), fields.tags.count < Tags.maxCount { fields.tags.append(addTag) }
  }
}

/// An ordered, per-tenant escalation rule: on a trigger, for tickets matching its conditions, apply
/// its actions — once per rule and clock instance (warning, breach) or status spell (age).
public struct EscalationRule: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var name: String
  public var position: Int
  public var isActive: Bool
  public var trigger: EscalationTrigger
  /// The same conditions SLA policies match on; none matches every ticket.
  public var conditions: SLAPolicy.Conditions
  public var actions: EscalationActions
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A rule.
  public init(
    id: UUID, version: Int64, name: String, position: Int, isActive: Bool, trigger: EscalationTrigger,
    conditions: SLAPolicy.Conditions, actions: EscalationActions, createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.version = version
    self.name = name
    self.position = position
    self.isActive = isActive
    self.trigger = trigger
    self.conditions = conditions
    self.actions = actions
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }
}
