import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm tasks …`
struct Tasks: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Your follow-ups: list them (overdue first), add one, mark one done.",
    subcommands: [List.self, Create.self, Done.self])

  static func printTasks(_ tasks: [Crm_V1_Task], json: Bool) throws {
    if json { return try Output.printJSON(tasks) }
    Output.printTable(
      ["DUE", "", "PRIORITY", "STATUS", "SUBJECT", "RELATED", "ID"],
      tasks.map {
        [
          Output.time($0.dueTime), $0.overdue ? "OVERDUE" : "", Output.name($0.priority), Output.name($0.status), $0.subject,
          $0.hasRelated ? "\(Output.name($0.related.recordType)) \($0.related.recordID.prefix(8))" : "", $0.id,
        ]
      })
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Your open tasks by due time, overdue first.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Another user's tasks (managers, admins).") var user: String?
    @Flag(help: "Also done and cancelled tasks.") var all = false
    @Flag(help: "Also stale-deal tasks that flag you as the owner's manager.") var flagged = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let page = try await client.withClient { grpc, metadata in
          try await Crm_V1_TaskService.Client(wrapping: grpc).listMyTasks(
            .with {
              $0.userID = user ?? ""
              $0.includeClosed = all
              $0.includeFlagged = flagged
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        try Tasks.printTasks(page.tasks, json: client.json)
        Output.more(page.nextPageToken)
      }
    }
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add a task.",
      discussion: "Example: crm tasks create --subject \"Send the proposal\" --due 2027-03-01T09:00:00Z --deal DEAL_ID")
    @OptionGroup var client: ClientOptions
    @Option(help: "What to do.") var subject: String
    @Option(help: "Due time, ISO 8601 (e.g. 2027-03-01T09:00:00Z).") var due: String?
    @Option(help: "low, normal, high or urgent.") var priority: String = "normal"
    @Option(help: "The lead it is about.") var lead: String?
    @Option(help: "The account it is about.") var account: String?
    @Option(help: "The deal it is about.") var deal: String?
    @Option(help: "Assignee (default: you).") var owner: String?

    func run() async throws {
      try await runReportingErrors {
        var task = Crm_V1_Task()
        task.subject = subject
        task.ownerID = owner ?? ""
        if let due {
          guard let date = ISO8601DateFormatter().date(from: due) else {
            throw ValidationError("--due must be ISO 8601, e.g. 2027-03-01T09:00:00Z")
          }
          task.dueTime = .init(date: date)
        }
        let priorities: [String: Crm_V1_TaskPriority] = ["low": .low, "normal": .normal, "high": .high, "urgent": .urgent]
        guard let value = priorities[priority] else { throw ValidationError("--priority must be low, normal, high or urgent") }
        task.priority = value
        for (id, type) in [(lead, Crm_V1_RecordType.lead), (account, .account), (deal, .opportunity)] {
          guard let id else { continue }
          task.related = .with {
            $0.recordType = type
            $0.recordID = id
          }
        }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_TaskService.Client(wrapping: grpc).createTask(.with { $0.task = task }, metadata: metadata)
        }
        try Tasks.printTasks([created], json: client.json)
      }
    }
  }

  struct Done: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mark a task done.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The task id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let done = try await client.withClient { grpc, metadata in
          try await Crm_V1_TaskService.Client(wrapping: grpc).updateTask(
            .with {
              $0.task = .with {
                $0.id = id
                $0.status = .done
              }
              $0.updateMask = .with { $0.paths = ["status"] }
            }, metadata: metadata)
        }
        try Tasks.printTasks([done], json: client.json)
      }
    }
  }
}
