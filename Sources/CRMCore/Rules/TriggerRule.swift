public import Foundation

/// A tenant's trigger rule: when a record of `recordType` is created or updated and every condition
/// holds, its actions run in the same transaction (docs/rules.md).
public struct TriggerRule: Sendable, Hashable {
  public var id: UUID
  public var version: Int64
  public var definition: TriggerRuleDefinition
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A stored rule.
  public init(id: UUID, version: Int64, definition: TriggerRuleDefinition, createdAt: Timestamp, updatedAt: Timestamp) {
    self.id = id
    self.version = version
    self.definition = definition
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }
}

/// What an admin sends: everything about a rule but its identity.
public struct TriggerRuleDefinition: Sendable, Hashable {
  public var recordType: RecordType
  public var name: String
  public var position: Int
  public var isActive: Bool
  public var onCreate: Bool
  public var onUpdate: Bool
  public var conditions: [RuleCondition]
  public var actions: [RuleAction]

  /// A definition.
  public init(
    recordType: RecordType, name: String, position: Int, isActive: Bool, onCreate: Bool, onUpdate: Bool,
    conditions: [RuleCondition], actions: [RuleAction]
  ) {
    self.recordType = recordType
    self.name = name
    self.position = position
    self.isActive = isActive
    self.onCreate = onCreate
    self.onUpdate = onUpdate
    self.conditions = conditions
    self.actions = actions
  }

  /// The most conditions and actions one rule has, and the most live rules per record type.
  public static let maxConditions = 20
  public static let maxActions = 10
  public static let maxRulesPerType = 100
  /// The record types rules act on.
  public static let recordTypes: [RecordType] = [.lead, .contact, .account, .opportunity, .ticket]
}

/// How a condition compares a field.
public enum RuleOperator: String, Sendable, Hashable, CaseIterable {
  /// The field's value now is `value`.
  case equals
  /// The field's value now is not `value` (an empty field is not equal to anything).
  case notEquals = "not_equals"
  /// The change set the field (on create: gave it a value).
  case changed
  /// The change set the field to `value`.
  case changedTo = "changed_to"
  /// The change moved the field away from `value`.
  case changedFrom = "changed_from"
  /// The field's value now is greater than `value` (numbers, dates).
  case greaterThan = "greater_than"
  /// The field's value now is less than `value` (numbers, dates).
  case lessThan = "less_than"
  /// The record's tags now include `value`.
  case containsTag = "contains_tag"
}

/// One condition: a field, an operator and (for all but `changed`) a value.
public struct RuleCondition: Sendable, Hashable {
  public var field: String
  public var op: RuleOperator
  /// `.null` for `changed`.
  public var value: JSONValue

  /// A condition.
  public init(field: String, op: RuleOperator, value: JSONValue = .null) {
    self.field = field
    self.op = op
    self.value = value
  }
}

/// A task a rule creates on each matching record, related to it.
public struct RuleTask: Sendable, Hashable {
  public var subject: String
  public var description: String?
  public var priority: TaskPriority
  /// Due this many hours after the change; `nil`: no due time.
  public var dueInHours: Int?
  /// The assignee; `nil`: the record's owner (a ticket's assignee), else whoever made the change.
  public var assigneeID: UUID?

  /// A task template.
  public init(subject: String, description: String?, priority: TaskPriority, dueInHours: Int?, assigneeID: UUID?) {
    self.subject = subject
    self.description = description
    self.priority = priority
    self.dueInHours = dueInHours
    self.assigneeID = assigneeID
  }
}

/// What a rule does to each matching record, in order.
public enum RuleAction: Sendable, Hashable {
  /// Sets a settable field (``RuleField/settable``) to a value.
  case setField(String, JSONValue)
  /// Adds a tag (a no-op when the record has it).
  case addTag(String)
  /// Creates a task related to the record.
  case createTask(RuleTask)
  /// Appends an `event` entry with this name to the feed (and webhooks), carrying the triggering change.
  case emitEvent(String)
  /// Submits the record for approval through this process, or (`nil`) the first whose entry
  /// conditions hold; a record with an open request, or that no process takes, is left as it is.
  case submitForApproval(processID: UUID?)
  /// Routes the record through the tenant's assignment rules for its type, as a create without an
  /// owner is routed (leads, accounts, tickets); a record no rule places is left as it is.
  case assign

  /// The record types ``assign`` routes: those assignment rules exist for.
  public static let assignableTypes: [RecordType] = [.lead, .account, .ticket]
}

extension RuleCondition {
  /// `conditions` checked against `recordType`'s fields (``RuleField/catalogue(_:)``), with values
  /// normalized; `operators` narrows what is allowed (approval entry conditions read state, not changes).
  public static func validated(
    _ conditions: [RuleCondition], recordType: RecordType, path: String, operators allowed: Set<RuleOperator>?,
    into violations: inout Violations
  ) -> [RuleCondition] {
    let catalogue = RuleField.catalogue(recordType)
    let fields = Dictionary(uniqueKeysWithValues: catalogue.map { ($0.name, $0) })
    if conditions.count > TriggerRuleDefinition.maxConditions {
      violations.add(path, "at most \(TriggerRuleDefinition.maxConditions) conditions", reason: "TOO_MANY")
    }
    return conditions.prefix(TriggerRuleDefinition.maxConditions).enumerated().compactMap { index, condition in
      let at = "\(path)[\(index)]"
      guard let field = fields[condition.field] else {
        violations.add(
          "\(at).field", "\(recordType.rawValue) fields are " + catalogue.map(\.name).joined(separator: ", "), reason: "INVALID")
        return nil
      }
      let operators = field.operators.filter { allowed?.contains($0) ?? true }
      guard operators.contains(condition.op) else {
        violations.add(
          "\(at).operator", "\(field.name) takes " + operators.map(\.rawValue).joined(separator: ", "), reason: "INVALID")
        return nil
      }
      if condition.op == .changed { return RuleCondition(field: field.name, op: .changed) }
      guard let value = field.check(condition.value, forSetting: false, path: "\(at).value", into: &violations) else {
        return nil
      }
      return RuleCondition(field: field.name, op: condition.op, value: value)
    }
  }
}

/// A field rules may read (conditions) and perhaps write (``RuleAction/setField(_:_:)``).
public struct RuleField: Sendable, Hashable {
  /// What values the field holds.
  public enum Kind: Sendable, Hashable {
    case text(maxLength: Int)
    /// One of these values (for set_field, one of `settableValues` when given).
    case choice([String])
    case integer
    /// A number with a fraction (an opportunity's amount, in its own currency).
    case decimal
    /// `YYYY-MM-DD`.
    case date
    case boolean
    /// A record id (a user, a stage, an account).
    case id
    /// The record's tags: `contains_tag` and `changed`.
    case tags
  }

  /// The API name, as in the record's message and its change-log entries.
  public var name: String
  /// The stored column the rules engine reads and writes.
  public var column: String
  public var kind: Kind
  /// Whether set_field may write it; `settableValues` narrows a choice.
  public var settable: Bool
  public var settableValues: [String]?
  /// set_field writes the field only on records whose value is one of these now (a lead's status moves
  /// only between the open statuses: never out of converted or disqualified, never back to new).
  public var settableFrom: [String]?

  init(
    _ name: String, column: String? = nil, _ kind: Kind, settable: Bool = false, settableValues: [String]? = nil,
    settableFrom: [String]? = nil
  ) {
    self.name = name
    self.column = column ?? name
    self.kind = kind
    self.settable = settable
    self.settableValues = settableValues
    self.settableFrom = settableFrom
  }

  /// The operators the field's kind supports.
  public var operators: [RuleOperator] {
    switch kind {
    case .tags: [.containsTag, .changed]
    case .integer, .decimal, .date: [.equals, .notEquals, .changed, .changedTo, .changedFrom, .greaterThan, .lessThan]
    case .text, .choice, .boolean, .id: [.equals, .notEquals, .changed, .changedTo, .changedFrom]
    }
  }

  /// The fields of each record type rules may use. Fields whose writes carry logic of their own (a
  /// lead's conversion, a deal's stage, a ticket's status and priority, which move SLA clocks) are
  /// conditions only: rules change them through that logic's RPCs, not behind it.
  public static func catalogue(_ type: RecordType) -> [RuleField] {
    let owner = RuleField("owner_id", .id)
    let tags = RuleField("tags", .tags)
    let description = RuleField("description", .text(maxLength: 10_000), settable: true)
    switch type {
    case .lead:
      let open = [LeadStatus.new, .working, .nurturing, .qualified].map(\.rawValue)
      return [
        RuleField(
          "status", .choice(LeadStatus.allCases.map(\.rawValue)), settable: true, settableValues: Array(open.dropFirst()),
          settableFrom: open),
        RuleField("source", .choice(LeadSource.allCases.filter { $0 != .unspecified }.map(\.rawValue)), settable: true),
        RuleField("industry", .text(maxLength: 100), settable: true),
        RuleField("title", .text(maxLength: 128), settable: true),
        RuleField("campaign", .text(maxLength: 255), settable: true),
        RuleField("source_detail", .text(maxLength: 255), settable: true),
        description,
        RuleField("company", .text(maxLength: 255)),
        RuleField("region_code", .text(maxLength: 2)),
        RuleField("company_size", .integer),
        RuleField("score", .integer),
        owner, RuleField("pool_id", .id), tags,
      ]
    case .contact:
      return [
        RuleField("title", .text(maxLength: 128), settable: true),
        RuleField("department", .text(maxLength: 128), settable: true),
        RuleField("email_opt_out", .boolean, settable: true),
        RuleField("phone_opt_out", .boolean, settable: true),
        description,
        RuleField("account_id", .id), owner, tags,
      ]
    case .account:
      return [
        RuleField("industry", .text(maxLength: 100), settable: true),
        RuleField(
          "type", column: "account_type", .choice(AccountType.allCases.filter { $0 != .unspecified }.map(\.rawValue)),
          settable: true),
        RuleField("tier", .choice(AccountTier.allCases.filter { $0 != .unspecified }.map(\.rawValue)), settable: true),
        description,
        RuleField("employee_count", .integer),
        RuleField("parent_id", .id), owner, RuleField("pool_id", .id), tags,
      ]
    case .opportunity:
      return [
        RuleField("next_step", .text(maxLength: 255), settable: true),
        description,
        RuleField("amount", .decimal),
        RuleField("close_date", .date),
        RuleField("stage_id", .id),
        RuleField("state", .choice(StageCategory.allCases.map(\.rawValue))),
        RuleField("probability", .integer),
        RuleField("forecast_category", .choice(ForecastCategory.allCases.map(\.rawValue))),
        RuleField("account_id", .id), owner, tags,
      ]
    case .ticket:
      return [
        RuleField("status", .choice(TicketStatus.allCases.map(\.rawValue))),
        RuleField("priority", .choice(TicketPriority.allCases.map(\.rawValue))),
        RuleField("type", .choice(TicketType.allCases.map(\.rawValue))),
        RuleField("channel", .choice(TicketChannel.allCases.map(\.rawValue))),
        RuleField("assignee_id", .id), RuleField("group_id", .id), RuleField("account_id", .id), tags,
      ]
    case .interaction, .task, .invoice, .payment, .creditNote, .dispute, .collection:
      return []
    }
  }

  /// Checks that `name` is a field of `recordType` a rule or an approval may set and `value` one it may
  /// set it to; violations go under `path` (`.field`, `.value`). Returns the value normalized.
  public static func checkSetting(
    _ name: String, to value: JSONValue, recordType: RecordType, path: String, into violations: inout Violations
  ) -> JSONValue? {
    let catalogue = catalogue(recordType)
    guard let field = catalogue.first(where: { $0.name == name }), field.settable else {
      let settable = catalogue.filter(\.settable).map(\.name)
      violations.add(
        "\(path).field",
        settable.isEmpty
          ? "no \(recordType.rawValue) field is settable"
          : "settable \(recordType.rawValue) fields are " + settable.joined(separator: ", "),
        reason: "INVALID")
      return nil
    }
    return field.check(value, forSetting: true, path: "\(path).value", into: &violations)
  }

  /// Checks `value` is one this field holds (`forSetting`: one set_field may write), recording a
  /// violation under `path`; returns it in the form the rules engine compares and stores.
  func check(_ value: JSONValue, forSetting: Bool, path: String, into violations: inout Violations) -> JSONValue? {
    func fail(_ expected: String) -> JSONValue? {
      violations.add(path, "\(name) takes \(expected)", reason: "INVALID")
      return nil
    }
    switch kind {
    case .text(let maxLength):
      guard case .string(let text) = value else { return fail("text") }
      return violations.text(path, text, maxLength: maxLength, required: true).map { .string($0) }
    case .choice(let values):
      let allowed = forSetting ? (settableValues ?? values) : values
      guard case .string(let text) = value, allowed.contains(text) else {
        return fail("one of " + allowed.joined(separator: ", "))
      }
      return value
    case .integer:
      switch value {
      case .int: return value
      case .double(let number) where number.rounded() == number && abs(number) < 1e15: return .int(Int64(number))
      default: return fail("a whole number")
      }
    case .decimal:
      switch value {
      case .int: return value
      case .double(let number) where number.isFinite: return value
      default: return fail("a number")
      }
    case .date:
      guard case .string(let text) = value, CalendarDate(text) != nil else { return fail("a date, YYYY-MM-DD") }
      return value
    case .boolean:
      guard case .bool = value else { return fail("true or false") }
      return value
    case .id:
      guard case .string(let text) = value, let id = UUID(uuidString: text) else { return fail("an id") }
      return .string(id.lowercasedString)
    case .tags:
      guard case .string(let text) = value else { return fail("a tag") }
      var tagViolations = Violations()
      let tag = Tags.normalize([text], field: path, into: &tagViolations).first
      guard let tag, tagViolations.isEmpty else { return fail("a tag of 1 to \(Tags.maxLength) characters") }
      return .string(tag)
    }
  }
}

extension TriggerRuleDefinition {
  /// The definition with its fields, operators and values checked against ``RuleField/catalogue(_:)``
  /// and normalized; violations are recorded under `path` (`rule.conditions[0].value`).
  public func validated(path: String, into violations: inout Violations) -> TriggerRuleDefinition {
    var result = self
    if !Self.recordTypes.contains(recordType) {
      violations.add(
        "\(path).record_type", "rules act on " + Self.recordTypes.map(\.rawValue).joined(separator: ", "), reason: "INVALID")
      return result
    }
    result.name = violations.text("\(path).name", name, maxLength: 100, required: true) ?? name
    if !onCreate && !onUpdate {
      violations.add("\(path).on_create", "a rule runs on create, on update or both", reason: "REQUIRED")
    }
    result.conditions = RuleCondition.validated(
      conditions, recordType: recordType, path: "\(path).conditions", operators: nil, into: &violations)
    if actions.isEmpty { violations.add("\(path).actions", "name at least one action", reason: "REQUIRED") }
    if actions.count > Self.maxActions {
      violations.add("\(path).actions", "at most \(Self.maxActions) actions", reason: "TOO_MANY")
    }
    result.actions = actions.prefix(Self.maxActions).enumerated().compactMap { index, action in
      let at = "\(path).actions[\(index)]"
      switch action {
      case .setField(let name, let value):
        return RuleField.checkSetting(name, to: value, recordType: recordType, path: "\(at).set_field", into: &violations)
          .map { .setField(name, $0) }
      case .addTag(let tag):
        var tagViolations = Violations()
        guard let tag = Tags.normalize([tag], field: "\(at).add_tag.tag", into: &tagViolations).first, tagViolations.isEmpty
        else {
          violations.add("\(at).add_tag.tag", "a tag of 1 to \(Tags.maxLength) characters", reason: "INVALID")
          return nil
        }
        return .addTag(tag)
      case .createTask(var task):
        guard let subject = violations.text("\(at).create_task.subject", task.subject, maxLength: 255, required: true) else {
          return nil
        }
        task.subject = subject
        task.description = task.description.flatMap {
          violations.multilineText("\(at).create_task.description", $0, maxLength: 10_000)
        }
        if let hours = task.dueInHours, !(0...8_760).contains(hours) {
          violations.add("\(at).create_task.due_in_hours", "0 to 8760 hours (a year)", reason: "OUT_OF_RANGE")
        }
        return .createTask(task)
      case .submitForApproval:
        return action
      case .assign:
        guard RuleAction.assignableTypes.contains(recordType) else {
          violations.add("\(at).assign", "assignment rules route leads, accounts and tickets", reason: "INVALID")
          return nil
        }
        return action
      case .emitEvent(let name):
        if name.hasPrefix("approval_") {
          violations.add("\(at).emit_event.name", "names starting approval_ are the approvals' own", reason: "INVALID")
          return nil
        }
        guard Self.isEventName(name) else {
          violations.add(
            "\(at).emit_event.name", "1 to 64 characters: a lower-case letter, then letters, digits or _", reason: "INVALID")
          return nil
        }
        return .emitEvent(name)
      }
    }
    return result
  }

  /// `[a-z][a-z0-9_]{0,63}`.
  static func isEventName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...64).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else { return false }
    return bytes.allSatisfy {
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
        || $0 == UInt8(ascii: "_")
    }
  }
}
