import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm assignment …`
struct Assignment: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Assignment rules: list them, dry-run them on a record, hand a rep's records over.",
    subcommands: [List.self, Test.self, Reassign.self])

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
            let criteria = [
              c.sources.isEmpty ? nil : "source " + c.sources.map { Output.name($0) }.joined(separator: "|"),
              c.regionCodes.isEmpty ? nil : "region " + c.regionCodes.joined(separator: "|"),
              c.industries.isEmpty ? nil : "industry " + c.industries.joined(separator: "|"),
              c.hasCompanySizeMin || c.hasCompanySizeMax
                ? "size \(c.hasCompanySizeMin ? String(c.companySizeMin) : "")–\(c.hasCompanySizeMax ? String(c.companySizeMax) : "")" : nil,
              c.tags.isEmpty ? nil : "tag " + c.tags.joined(separator: "|"),
            ].compactMap { $0 }.joined(separator: ", ")
            return [
              String(rule.position), rule.recordType == .lead ? "lead" : "account", rule.name, rule.inactive ? "no" : "yes",
              criteria.isEmpty ? "(all)" : criteria, Assignment.describe(rule),
            ]
          })
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
      discussion: "Example: crm assignment reassign --type leads --from USER_ID --to-user USER_ID --reason \"Territory handover\"")
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
