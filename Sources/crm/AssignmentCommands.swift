import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm assignment …`
struct Assignment: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Assignment rules: define, list and delete them, dry-run them on a record, hand a rep's records over.",
    subcommands: [Create.self, List.self, Delete.self, Test.self, Reassign.self])

  static func describe(_ rule: Crm_V1_AssignmentRule) -> String {
    switch rule.action {
    case .userID(let user): "user \(user)"
    case .poolID(let pool): "pool \(pool)"
    case .team(let team):
      "team " + team.members.map { "\($0.userID.prefix(8))×\($0.weight) (\($0.assigned))" }.joined(separator: ", ")
    case nil: ""
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The rules, in the order they are tried.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let rules = try await client.withClient { grpc, metadata in
          try await Crm_V1_AssignmentService.Client(wrapping: grpc).listAssignmentRules(.init(), metadata: metadata).rules
        }
        if client.json { return try Output.printJSON(rules) }
        Output.printTable(
          ["POS", "TYPE", "NAME", "ACTIVE", "CRITERIA", "ACTION"],
          rules.map { rule in
            let c = rule.criteria
            func range(_ name: String, _ low: Int32?, _ high: Int32?) -> String? {
              low == nil && high == nil ? nil : "\(name) \(low.map(String.init) ?? "")–\(high.map(String.init) ?? "")"
            }
            let criteria = [
              c.sources.isEmpty ? nil : "source " + c.sources.map { Output.name($0) }.joined(separator: "|"),
              c.regionCodes.isEmpty ? nil : "region " + c.regionCodes.joined(separator: "|"),
              c.industries.isEmpty ? nil : "industry " + c.industries.joined(separator: "|"),
              range("size", c.hasCompanySizeMin ? c.companySizeMin : nil, c.hasCompanySizeMax ? c.companySizeMax : nil),
              range("score", c.hasScoreMin ? c.scoreMin : nil, c.hasScoreMax ? c.scoreMax : nil),
              c.tags.isEmpty ? nil : "tag " + c.tags.joined(separator: "|"),
              c.channels.isEmpty ? nil : "channel " + c.channels.map { Output.name($0) }.joined(separator: "|"),
              c.ticketTypes.isEmpty ? nil : "type " + c.ticketTypes.map { Output.name($0) }.joined(separator: "|"),
              c.priorities.isEmpty ? nil : "priority " + c.priorities.map { Output.name($0) }.joined(separator: "|"),
            ].compactMap { $0 }.joined(separator: ", ")
            return [
              String(rule.position), Output.name(rule.recordType), rule.name, rule.inactive ? "no" : "yes",
              criteria.isEmpty ? "(all)" : criteria, Assignment.describe(rule),
            ]
          })
      }
    }
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Define a rule (admins): criteria, then a user, a team rotation or a pool.",
      discussion: """
        Every criterion given must hold (repeat an option for "any of"); none: the rule takes every record.
        Rules are tried in ascending --position; the first that matches and can place the record fires.

        Examples:
          crm assignment create --type lead --name "Web software leads" --source web_form --industry software --user USER_ID
          crm assignment create --type lead --name "Everyone else" --position 9 --member USER_A:2 --member USER_B --cap 50
          crm assignment create --type lead --name "China inbound" --region CN --pool POOL_ID
          crm assignment create --type ticket --name "Urgent to Tier 2" --priority urgent --member USER_A --member USER_B
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "lead, account or ticket.") var type: String
    @Option(help: "The rule's name.") var name: String
    @Option(help: "Rules are tried in ascending position.") var position: Int32 = 0
    @Option(help: "Lead source (repeatable): web_form, email, phone, chat, event, partner, import, api.") var source: [String] =
      []
    @Option(help: "ISO 3166 country code (repeatable).") var region: [String] = []
    @Option(help: "Industry, any case (repeatable).") var industry: [String] = []
    @Option(help: "Company size (leads) or employee count (accounts), at least.") var sizeMin: Int32?
    @Option(help: "Company size or employee count, at most.") var sizeMax: Int32?
    @Option(help: "Lead score (0-100), at least.") var scoreMin: Int32?
    @Option(help: "Lead score, at most.") var scoreMax: Int32?
    @Option(help: "Any of these tags (repeatable).") var tag: [String] = []
    @Option(help: "Ticket channel (repeatable): email, web_form, phone, chat, api.") var channel: [String] = []
    @Option(help: "Ticket type (repeatable): question, incident, problem, task, dispute.") var ticketType: [String] = []
    @Option(help: "Ticket priority (repeatable): low, normal, high, urgent.") var priority: [String] = []
    @Option(help: "Give matching records to this user.") var user: String?
    @Option(help: "A team member, USER_ID or USER_ID:WEIGHT (repeatable): weighted round-robin.") var member: [String] = []
    @Option(help: "Skip team members with this many open records.") var cap: Int32?
    @Option(help: "Put matching records, unowned, in this pool (leads, accounts).") var pool: String?
    @Flag(help: "Create it switched off.") var inactive = false

    func validate() throws {
      if [user != nil, !member.isEmpty, pool != nil].filter({ $0 }).count != 1 {
        throw ValidationError("pass exactly one of --user, --member (repeatable) and --pool")
      }
      if cap != nil && member.isEmpty { throw ValidationError("--cap applies to a team (--member)") }
    }

    func run() async throws {
      try await runReportingErrors {
        let type = try RecordTypeName.parse(type)
        var criteria = Crm_V1_AssignmentCriteria()
        criteria.sources = try source.map { try Tickets.pick($0, Leads.sources, option: "--source") }
        criteria.regionCodes = region
        criteria.industries = industry
        if let sizeMin { criteria.companySizeMin = sizeMin }
        if let sizeMax { criteria.companySizeMax = sizeMax }
        if let scoreMin { criteria.scoreMin = scoreMin }
        if let scoreMax { criteria.scoreMax = scoreMax }
        criteria.tags = tag
        criteria.channels = try channel.map { try Tickets.pick($0, Tickets.channels, option: "--channel") }
        criteria.ticketTypes = try ticketType.map { try Tickets.pick($0, Tickets.types, option: "--ticket-type") }
        criteria.priorities = try priority.map { try Tickets.pick($0, Tickets.priorities, option: "--priority") }
        var rule = Crm_V1_AssignmentRule()
        rule.recordType = type
        rule.name = name
        rule.position = position
        rule.inactive = inactive
        rule.criteria = criteria
        if let user { rule.userID = user }
        if let pool { rule.poolID = pool }
        if !member.isEmpty {
          rule.team = try .with {
            $0.members = try member.map { text in
              let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
              guard let weight = parts.count == 2 ? Int32(parts[1]) : 1 else {
                throw ValidationError("--member '\(text)': write USER_ID or USER_ID:WEIGHT")
              }
              return .with {
                $0.userID = parts[0]
                $0.weight = weight
              }
            }
            if let cap { $0.openRecordCap = cap }
          }
        }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_AssignmentService.Client(wrapping: grpc).createAssignmentRule(
            .with { $0.rule = rule }, metadata: metadata)
        }
        if client.json { return print(try Output.json(created)) }
        print("\(created.id)  \(created.name): \(Assignment.describe(created))")
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a rule (admins); records it placed keep their owners.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The rule's id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        _ = try await client.withClient { grpc, metadata in
          try await Crm_V1_AssignmentService.Client(wrapping: grpc).deleteAssignmentRule(.with { $0.id = id }, metadata: metadata)
        }
        print("deleted \(id)")
      }
    }
  }

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Which rule would fire for a record, and why (takes no turn).")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: Pools.RecordOption

    func run() async throws {
      try await runReportingErrors {
        let answer = try await client.withClient { grpc, metadata in
          try await Crm_V1_AssignmentService.Client(wrapping: grpc).testAssignment(
            .with { $0.record = record.ref }, metadata: metadata)
        }
        if client.json { return print(try Output.json(answer)) }
        for skipped in answer.skipped { print("skipped  \(skipped.name): \(skipped.reason)") }
        guard answer.hasRule else { return print("no rule fires: the record stays with its creator") }
        print("fires    \(answer.rule.name) → \(answer.userID.isEmpty ? "pool \(answer.poolID)" : "user \(answer.userID)")")
        for reason in answer.reasons { print("         \(reason)") }
      }
    }
  }

  struct Reassign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Give a rep's open records (or named ones) to another user or to a pool (managers, admins).",
      discussion: "Example: crm assignment reassign --type leads --from USER_ID --to-user USER_ID --reason \"Territory handover\""
    )
    @OptionGroup var client: ClientOptions
    @Option(help: "leads or accounts.") var type: String
    @Option(help: "Every open record this user owns.") var from: String?
    @Option(help: "A record id; repeat for several.") var id: [String] = []
    @Option(help: "The new owner.") var toUser: String?
    @Option(help: "A pool to put them in.") var toPool: String?
    @Option(help: "Why (in each record's history).") var reason: String?

    func validate() throws {
      if (toUser == nil) == (toPool == nil) { throw ValidationError("pass exactly one of --to-user and --to-pool") }
      if (from == nil) == id.isEmpty { throw ValidationError("pass --from or --id, not both") }
      if !["leads", "accounts"].contains(type) { throw ValidationError("--type must be leads or accounts") }
    }

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ReassignRecordsRequest()
        request.recordType = type == "leads" ? .lead : .account
        request.ids = id
        request.fromOwnerID = from ?? ""
        if let toUser { request.toUserID = toUser }
        if let toPool { request.toPoolID = toPool }
        request.reason = reason ?? ""
        var total = 0
        while true {
          let page = request
          let response = try await client.withClient { grpc, metadata in
            try await Crm_V1_AssignmentService.Client(wrapping: grpc).reassignRecords(page, metadata: metadata)
          }
          total += response.ids.count
          if client.json { print(try Output.json(response)) }
          if !response.more || response.ids.isEmpty { break }
        }
        if !client.json { print("reassigned \(total) \(type)") }
      }
    }
  }
}
