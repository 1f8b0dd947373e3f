import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm rules …`: trigger rules (admins).
struct Rules: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Trigger rules: when a record is created or updated and conditions hold, set fields, tag, create tasks, emit events.",
    subcommands: [List.self, Show.self, Create.self, Enable.self, Disable.self, Delete.self])

  /// A condition as the CLI prints and reads it: `source = web_form`, `amount > 50000`, `status changed to
  /// qualified`, `industry changed`, `tags has vip`.
  static func describe(_ condition: Crm_V1_RuleCondition) -> String {
    let value = Output.value(condition.value)
    switch condition.operator {
    case .equals: return "\(condition.field) = \(value)"
    case .notEquals: return "\(condition.field) != \(value)"
    case .changed: return "\(condition.field) changed"
    case .changedTo: return "\(condition.field) changed to \(value)"
    case .changedFrom: return "\(condition.field) changed from \(value)"
    case .greaterThan: return "\(condition.field) > \(value)"
    case .lessThan: return "\(condition.field) < \(value)"
    case .containsTag: return "tags has \(value)"
    case .unspecified, .UNRECOGNIZED: return condition.field
    }
  }

  static func describe(_ action: Crm_V1_RuleAction) -> String {
    switch action.action {
    case .setField(let set): "set \(set.field)=\(Output.value(set.value))"
    case .addTag(let add): "tag \(add.tag)"
    case .createTask(let task): "task \"\(task.subject)\"" + (task.hasDueInHours ? " due +\(task.dueInHours)h" : "")
    case .emitEvent(let emit): "event \(emit.name)"
    case .assign: "assign by the assignment rules"
    case .submitForApproval(let submit):
      "submit for approval" + (submit.processID.isEmpty ? "" : " (\(submit.processID.prefix(8)))")
    case nil: ""
    }
  }

  /// Parses `--when` text (see ``describe(_:)-condition``).
  static func condition(_ text: String) throws -> Crm_V1_RuleCondition {
    let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    guard words.count >= 2 else { throw ValidationError("--when '\(text)': write FIELD OP [VALUE], e.g. 'source = web_form'") }
    var condition = Crm_V1_RuleCondition()
    condition.field = words[0]
    var rest = Array(words.dropFirst())
    if words[0] == "tags", rest.first == "has" {
      condition.operator = .containsTag
      rest.removeFirst()
    } else {
      let phrases: [([String], Crm_V1_RuleOperator)] = [
        (["changed", "to"], .changedTo), (["changed", "from"], .changedFrom), (["changed"], .changed), (["="], .equals),
        (["!="], .notEquals), ([">"], .greaterThan), (["<"], .lessThan),
      ]
      guard let (phrase, op) = phrases.first(where: { Array(rest.prefix($0.0.count)) == $0.0 }) else {
        throw ValidationError("--when '\(text)': the operator is one of =, !=, >, <, changed, changed to, changed from, has")
      }
      condition.operator = op
      rest.removeFirst(phrase.count)
    }
    if condition.operator != .changed {
      guard !rest.isEmpty else { throw ValidationError("--when '\(text)': name a value") }
      condition.value = value(rest.joined(separator: " "))
    }
    return condition
  }

  /// A value typed on the command line: a number, true or false as such, anything else (or anything
  /// in double quotes) as text.
  static func value(_ text: String) -> Google_Protobuf_Value {
    if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") {
      return .init(stringLiteral: String(text.dropFirst().dropLast()))
    }
    if text == "true" || text == "false" { return .init(booleanLiteral: text == "true") }
    if let number = Double(text), number.isFinite { return .init(floatLiteral: number) }
    return .init(stringLiteral: text)
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The live rules, in the order they run.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Only this record type (lead, contact, account, opportunity, ticket).") var type: String?

    func run() async throws {
      try await runReportingErrors {
        let recordType = try type.map(RecordTypeName.parse) ?? .unspecified
        let rules = try await client.withClient { grpc, metadata in
          try await Crm_V1_TriggerRuleService.Client(wrapping: grpc).listTriggerRules(
            .with { $0.recordType = recordType }, metadata: metadata
          ).rules
        }
        if client.json { return try Output.printJSON(rules) }
        Output.printTable(
          ["ID", "POS", "TYPE", "NAME", "ON", "ACTIVE", "WHEN", "THEN"],
          rules.map { rule in
            [
              rule.id, String(rule.position), Output.name(rule.recordType), rule.name,
              [rule.onCreate ? "create" : nil, rule.onUpdate ? "update" : nil].compactMap { $0 }.joined(separator: ","),
              rule.inactive ? "no" : "yes",
              rule.conditions.isEmpty ? "(always)" : rule.conditions.map(Rules.describe).joined(separator: " and "),
              rule.actions.map(Rules.describe).joined(separator: "; "),
            ]
          })
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One rule (deleted ones too).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let rule = try await client.withClient { grpc, metadata in
          try await Crm_V1_TriggerRuleService.Client(wrapping: grpc).getTriggerRule(.with { $0.id = id }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(rule)) }
        Rules.show(rule)
      }
    }
  }

  static func show(_ rule: Crm_V1_TriggerRule) {
    Output.printRecord(
      [
        ("id", rule.id), ("etag", rule.etag), ("name", rule.name), ("type", Output.name(rule.recordType)),
        ("position", String(rule.position)),
        ("on", [rule.onCreate ? "create" : nil, rule.onUpdate ? "update" : nil].compactMap { $0 }.joined(separator: ", ")),
        ("active", rule.inactive ? "no" : "yes"),
      ] + rule.conditions.map { ("when", describe($0)) } + rule.actions.map { ("then", describe($0)) })
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Define a rule (admins).",
      discussion: """
        Conditions (--when, repeatable, all must hold): 'FIELD = VALUE', 'FIELD != VALUE', 'FIELD > VALUE',
        'FIELD < VALUE', 'FIELD changed', 'FIELD changed to VALUE', 'FIELD changed from VALUE', 'tags has TAG'.
        Numbers, true and false are typed as such; quote a value in "…" to keep it text.
        Actions run in this order: --set FIELD=VALUE (repeatable), --tag, --assign, --task, --event,
        --submit. --assign routes the record through the assignment rules (leads, accounts, tickets), so a
        task created after it goes to the new owner.
        An invalid field or value is refused naming it (exit 4); docs/rules.md lists each type's fields.

        Example:
          crm rules create --type lead --name "Hot web leads" --on create \\
            --when 'source = web_form' --when 'company_size > 500' \\
            --set status=working --tag hot --task "Call within the hour" --task-due-hours 1 --event hot_lead
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "lead, contact, account, opportunity or ticket.") var type: String
    @Option(help: "The rule's name.") var name: String
    @Option(help: "create, update, or create,update (default).") var on = "create,update"
    @Option(help: "Rules run in ascending position.") var position: Int32 = 0
    @Option(name: .customLong("when"), help: "A condition (repeatable).") var conditions: [String] = []
    @Option(name: .customLong("set"), help: "FIELD=VALUE to set (repeatable).") var sets: [String] = []
    @Option(help: "A tag to add.") var tag: String?
    @Flag(help: "Route the record through the tenant's assignment rules (leads, accounts, tickets).") var assign = false
    @Option(help: "Create a task with this subject, related to the record.") var task: String?
    @Option(help: "The task is due this many hours after the change.") var taskDueHours: Int32?
    @Option(help: "The task's priority: low, normal, high, urgent.") var taskPriority: String?
    @Option(help: "The task's assignee (default: the record's owner).") var taskAssignee: String?
    @Option(help: "Emit a custom event with this name to the change feed and webhooks.") var event: String?
    @Flag(help: "Submit the record for approval (the first process whose entry conditions hold).") var submit = false
    @Option(help: "Submit through this approval process.") var submitProcess: String?
    @Flag(help: "Create it switched off.") var inactive = false

    func run() async throws {
      try await runReportingErrors {
        let events = Set(on.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard !events.isEmpty, events.isSubset(of: ["create", "update"]) else {
          throw ValidationError("--on is create, update or create,update")
        }
        let priorities: [String: Crm_V1_TaskPriority] = ["low": .low, "normal": .normal, "high": .high, "urgent": .urgent]
        let priority = try taskPriority.map { text in
          guard let priority = priorities[text] else { throw ValidationError("--task-priority is low, normal, high or urgent") }
          return priority
        }
        var actions: [Crm_V1_RuleAction] = []
        for item in sets {
          guard let equals = item.firstIndex(of: "=") else { throw ValidationError("--set '\(item)': write FIELD=VALUE") }
          actions.append(
            .with {
              $0.setField = .with {
                $0.field = String(item[..<equals])
                $0.value = Rules.value(String(item[item.index(after: equals)...]))
              }
            })
        }
        if let tag { actions.append(.with { $0.addTag = .with { $0.tag = tag } }) }
        if assign { actions.append(.with { $0.assign = Crm_V1_AssignAction() }) }
        if let task {
          actions.append(
            .with {
              $0.createTask = .with {
                $0.subject = task
                if let taskDueHours { $0.dueInHours = taskDueHours }
                if let priority { $0.priority = priority }
                $0.assigneeID = taskAssignee ?? ""
              }
            })
        }
        if let event { actions.append(.with { $0.emitEvent = .with { $0.name = event } }) }
        if submit || submitProcess != nil {
          actions.append(.with { $0.submitForApproval = .with { $0.processID = submitProcess ?? "" } })
        }
        let request = Crm_V1_CreateTriggerRuleRequest.with {
          $0.rule = .with {
            $0.recordType = (try? RecordTypeName.parse(type)) ?? .unspecified
            $0.name = name
            $0.position = position
            $0.onCreate = events.contains("create")
            $0.onUpdate = events.contains("update")
            $0.inactive = inactive
            $0.actions = actions
          }
        }
        var withConditions = request
        withConditions.rule.conditions = try conditions.map(Rules.condition)
        let sent = withConditions
        let rule = try await client.withClient { grpc, metadata in
          try await Crm_V1_TriggerRuleService.Client(wrapping: grpc).createTriggerRule(sent, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(rule)) }
        Rules.show(rule)
      }
    }
  }

  /// Switches a rule on or off: reads it, then writes it back with its etag (a concurrent edit is a
  /// conflict, exit 6, not lost).
  static func setActive(_ id: String, _ active: Bool, client: ClientOptions) async throws {
    try await runReportingErrors {
      let rule = try await client.withClient { grpc, metadata in
        let service = Crm_V1_TriggerRuleService.Client(wrapping: grpc)
        var rule = try await service.getTriggerRule(.with { $0.id = id }, metadata: metadata)
        rule.inactive = !active
        return try await service.updateTriggerRule(.with { $0.rule = rule }, metadata: metadata)
      }
      if client.json { return Swift.print(try Output.json(rule)) }
      show(rule)
    }
  }

  struct Enable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Switch a rule on.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws { try await Rules.setActive(id, true, client: client) }
  }

  struct Disable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Switch a rule off (it stays listed; enable brings it back).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws { try await Rules.setActive(id, false, client: client) }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop a rule (its history entries keep naming it).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        _ = try await client.withClient { grpc, metadata in
          try await Crm_V1_TriggerRuleService.Client(wrapping: grpc).deleteTriggerRule(.with { $0.id = id }, metadata: metadata)
        }
      }
    }
  }
}
