import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.TriggerRuleService`: trigger rules' definitions (admins). The rules run in the database
/// (``TriggerRuleStore``, docs/rules.md).
public struct TriggerRuleService: Crm_V1_TriggerRuleService.SimpleServiceProtocol {
  let rules: TriggerRuleStore

  /// A service over the store.
  public init(rules: TriggerRuleStore) { self.rules = rules }

  public func createTriggerRule(request: Crm_V1_CreateTriggerRuleRequest, context: ServerContext) async throws
    -> Crm_V1_TriggerRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRule { violations.add("rule", "is required", reason: "REQUIRED") }
    let definition = request.rule.definition(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_TriggerRule(
      try await rules.create(definition!, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getTriggerRule(request: Crm_V1_GetTriggerRuleRequest, context: ServerContext) async throws -> Crm_V1_TriggerRule {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_TriggerRule(try await rules.get(id!, principal: call.principal))
  }

  public func updateTriggerRule(request: Crm_V1_UpdateTriggerRuleRequest, context: ServerContext) async throws
    -> Crm_V1_TriggerRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.rule.id, field: "rule.id", into: &violations)
    let expected = RequestFields.etag(request.rule.etag, field: "rule.etag", into: &violations)
    let definition = request.rule.definition(into: &violations)
    try violations.check()
    return Crm_V1_TriggerRule(
      try await rules.update(
        id!, definition!, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteTriggerRule(request: Crm_V1_DeleteTriggerRuleRequest, context: ServerContext) async throws
    -> Crm_V1_DeleteTriggerRuleResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    try await rules.archive(id!, context: .init(principal: call.principal, requestID: nil))
    return .init()
  }

  public func listTriggerRules(request: Crm_V1_ListTriggerRulesRequest, context: ServerContext) async throws
    -> Crm_V1_ListTriggerRulesResponse
  {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    var violations = Violations()
    let type: RecordType? =
      request.recordType == .unspecified ? nil : RecordType(request.recordType, field: "record_type", into: &violations)
    try violations.check()
    let rules = try await rules.list(recordType: type, principal: call.principal)
    return .with { $0.rules = rules.map(Crm_V1_TriggerRule.init) }
  }
}

extension Crm_V1_TriggerRule {
  init(_ rule: TriggerRule) {
    self.init()
    id = rule.id.lowercasedString
    etag = rule.etag
    createTime = .init(rule.createdAt)
    updateTime = .init(rule.updatedAt)
    let d = rule.definition
    recordType = Crm_V1_RecordType(d.recordType)
    name = d.name
    position = Int32(clamping: d.position)
    inactive = !d.isActive
    onCreate = d.onCreate
    onUpdate = d.onUpdate
    conditions = d.conditions.map(Crm_V1_RuleCondition.init)
    actions = d.actions.map { action in
      .with {
        switch action {
        case .setField(let field, let value):
          $0.setField = .with {
            $0.field = field
            $0.value = Google_Protobuf_Value(value)
          }
        case .addTag(let tag): $0.addTag = .with { $0.tag = tag }
        case .createTask(let task):
          $0.createTask = .with {
            $0.subject = task.subject
            $0.description_p = task.description ?? ""
            $0.priority = Crm_V1_TaskPriority(task.priority)
            if let hours = task.dueInHours { $0.dueInHours = Int32(hours) }
            $0.assigneeID = task.assigneeID?.lowercasedString ?? ""
          }
        case .emitEvent(let name): $0.emitEvent = .with { $0.name = name }
        case .submitForApproval(let process):
          $0.submitForApproval = .with { $0.processID = process?.lowercasedString ?? "" }
        case .assign: $0.assign = Crm_V1_AssignAction()
        }
      }
    }
  }

  /// The definition sent, validated against the record type's fields; `nil` only with violations.
  func definition(into violations: inout Violations) -> TriggerRuleDefinition? {
    let type = RecordType(recordType, field: "rule.record_type", into: &violations)
    let parsedConditions = conditions.enumerated().compactMap { index, condition in
      condition.parsed(field: "rule.conditions[\(index)]", into: &violations)
    }
    var parsedActions: [RuleAction] = []
    for (index, action) in actions.enumerated() {
      let at = "rule.actions[\(index)]"
      switch action.action {
      case .setField(let set): parsedActions.append(.setField(set.field, JSONValue(set.value)))
      case .addTag(let add): parsedActions.append(.addTag(add.tag))
      case .emitEvent(let emit): parsedActions.append(.emitEvent(emit.name))
      case .assign: parsedActions.append(.assign)
      case .submitForApproval(let submit):
        let process = RequestFields.optionalID(submit.processID, field: "\(at).submit_for_approval.process_id", into: &violations)
        parsedActions.append(.submitForApproval(processID: process))
      case .createTask(let task):
        let assignee = RequestFields.optionalID(task.assigneeID, field: "\(at).create_task.assignee_id", into: &violations)
        let priority: TaskPriority
        switch task.priority {
        case .unspecified, .normal: priority = .normal
        case .low: priority = .low
        case .high: priority = .high
        case .urgent: priority = .urgent
        case .UNRECOGNIZED:
          violations.add("\(at).create_task.priority", "unknown priority", reason: "INVALID")
          priority = .normal
        }
        parsedActions.append(
          .createTask(
            RuleTask(
              subject: task.subject, description: task.description_p.isEmpty ? nil : task.description_p, priority: priority,
              dueInHours: task.hasDueInHours ? Int(task.dueInHours) : nil, assigneeID: assignee)))
      case nil:
        violations.add(at, "name set_field, add_tag, create_task, emit_event, submit_for_approval or assign", reason: "REQUIRED")
      }
    }
    guard let type else { return nil }
    let definition = TriggerRuleDefinition(
      recordType: type, name: name, position: Int(position), isActive: !inactive, onCreate: onCreate, onUpdate: onUpdate,
      conditions: parsedConditions, actions: parsedActions)
    return definition.validated(path: "rule", into: &violations)
  }
}

extension Crm_V1_RuleCondition {
  init(_ condition: RuleCondition) {
    self.init()
    field = condition.field
    `operator` = Crm_V1_RuleOperator(condition.op)
    if condition.op != .changed { value = Google_Protobuf_Value(condition.value) }
  }

  /// The condition sent (its field and value are checked against the record type later); `nil` with a
  /// violation when it names no operator.
  func parsed(field path: String, into violations: inout Violations) -> RuleCondition? {
    guard let op = RuleOperator(`operator`) else {
      violations.add("\(path).operator", "is required", reason: "REQUIRED")
      return nil
    }
    return RuleCondition(field: field, op: op, value: JSONValue(value))
  }
}

extension RuleOperator {
  init?(_ op: Crm_V1_RuleOperator) {
    switch op {
    case .equals: self = .equals
    case .notEquals: self = .notEquals
    case .changed: self = .changed
    case .changedTo: self = .changedTo
    case .changedFrom: self = .changedFrom
    case .greaterThan: self = .greaterThan
    case .lessThan: self = .lessThan
    case .containsTag: self = .containsTag
    case .unspecified, .UNRECOGNIZED: return nil
    }
  }
}

extension Crm_V1_RuleOperator {
  init(_ op: RuleOperator) {
    switch op {
    case .equals: self = .equals
    case .notEquals: self = .notEquals
    case .changed: self = .changed
    case .changedTo: self = .changedTo
    case .changedFrom: self = .changedFrom
    case .greaterThan: self = .greaterThan
    case .lessThan: self = .lessThan
    case .containsTag: self = .containsTag
    }
  }
}

extension JSONValue {
  /// A protobuf `Value` as JSON; numbers stay doubles (a rule's field check makes whole ones integers).
  init(_ value: Google_Protobuf_Value) {
    switch value.kind {
    case .nullValue, nil: self = .null
    case .boolValue(let flag): self = .bool(flag)
    case .numberValue(let number): self = .double(number)
    case .stringValue(let text): self = .string(text)
    case .listValue(let list): self = .array(list.values.map(JSONValue.init))
    case .structValue(let object): self = .object(object.fields.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) })
    }
  }
}

extension Google_Protobuf_Value {
  /// A JSON value as a protobuf `Value`.
  init(_ value: JSONValue) {
    switch value {
    case .null: self.init(nilLiteral: ())
    case .bool(let flag): self.init(booleanLiteral: flag)
    case .int(let number): self.init(floatLiteral: Double(number))
    case .double(let number): self.init(floatLiteral: number)
    case .string(let text): self.init(stringLiteral: text)
    case .array(let values): self.init(listValue: Google_Protobuf_ListValue(values: values.map(Google_Protobuf_Value.init)))
    case .object(let members):
      var object = Google_Protobuf_Struct()
      for (key, member) in members { object.fields[key] = Google_Protobuf_Value(member) }
      self.init(structValue: object)
    }
  }
}
