import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm approvals …`: what waits for you, and deciding it.
struct Approvals: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Approvals: your queue, submit a record, approve, reject or recall a request, the processes.",
    discussion: """
      Examples:
        crm approvals list                                   # what waits for your decision
        crm approvals submit opportunity DEAL_ID --comment "20% discount to close this quarter"
        crm approvals approve REQUEST_ID --comment "OK by me"
        crm approvals reject REQUEST_ID --comment "Not at this price"
        crm approvals history opportunity DEAL_ID            # the record's requests and every decision
      Processes are defined with ApprovalService.CreateApprovalProcess (docs/approvals.md).
      """,
    subcommands: [
      List.self, Show.self, History.self, Submit.self, Approve.self, Reject.self, Recall.self, Processes.self, Define.self,
    ])

  static func print(_ requests: [Crm_V1_ApprovalRequest], json: Bool) throws {
    if json { return try Output.printJSON(requests) }
    Output.printTable(
      ["ID", "RECORD", "PROCESS", "STEP", "STATUS", "SUBMITTED", "BY"],
      requests.map { request in
        [
          request.id, "\(Output.name(request.record.recordType)) \(request.record.recordID.prefix(8))", request.processName,
          "\(request.step)/\(request.stepCount) \(request.stepName)", Output.name(request.status),
          Output.time(request.submitTime),
          String(request.submittedBy.prefix(8)),
        ]
      })
  }

  static func show(_ request: Crm_V1_ApprovalRequest) {
    Output.printRecord(
      [
        ("id", request.id), ("record", "\(Output.name(request.record.recordType)) \(request.record.recordID)"),
        ("process", request.processName), ("status", Output.name(request.status)),
        ("step", "\(request.step) of \(request.stepCount): \(request.stepName)"), ("submitted", Output.time(request.submitTime)),
        ("by", request.submittedBy), ("comment", request.comment),
      ]
        + request.decisions.map { decision in
          (
            "step \(decision.step)",
            "\(decision.approverID.prefix(8)) \(Output.name(decision.outcome))"
              + (decision.comment.isEmpty ? "" : ": \(decision.comment)")
          )
        })
  }

  /// A record named on the command line: TYPE ID.
  struct RecordArguments: ParsableArguments {
    @Argument(help: "lead, contact, account, opportunity or ticket.") var type: String
    @Argument(help: "The record's id.") var id: String

    func ref() throws -> Crm_V1_RecordRef {
      let type = try RecordTypeName.parse(type)
      return .with {
        $0.recordType = type
        $0.recordID = id
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pending requests whose current step waits for you.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Admins: another user's queue.") var user: String?

    func run() async throws {
      try await runReportingErrors {
        var all: [Crm_V1_ApprovalRequest] = []
        var token = ""
        repeat {
          let page = try await client.withClient { [token] grpc, metadata in
            try await Crm_V1_ApprovalService.Client(wrapping: grpc).listMyApprovals(
              .with {
                $0.userID = user ?? ""
                $0.pageToken = token
                $0.pageSize = 200
              }, metadata: metadata)
          }
          all += page.requests
          token = page.nextPageToken
        } while !token.isEmpty
        try Approvals.print(all, json: client.json)
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One request with every decision.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let request = try await client.withClient { grpc, metadata in
          try await Crm_V1_ApprovalService.Client(wrapping: grpc).getApprovalRequest(.with { $0.id = id }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(request)) }
        Approvals.show(request)
      }
    }
  }

  struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A record's requests, newest first.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordArguments

    func run() async throws {
      try await runReportingErrors {
        let ref = try record.ref()
        let requests = try await client.withClient { grpc, metadata in
          try await Crm_V1_ApprovalService.Client(wrapping: grpc).listApprovalRequests(
            .with { $0.record = ref }, metadata: metadata
          )
          .requests
        }
        try Approvals.print(requests, json: client.json)
      }
    }
  }

  struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Submit a record for approval (exit 6 when no process takes it or one is already pending).")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordArguments
    @Option(help: "The process (default: the first whose entry conditions the record meets).") var process: String?
    @Option(help: "Why.") var comment: String?

    func run() async throws {
      try await runReportingErrors {
        let ref = try record.ref()
        let request = Crm_V1_SubmitForApprovalRequest.with {
          $0.record = ref
          $0.processID = process ?? ""
          $0.comment = comment ?? ""
        }
        let answer = try await client.withClient { grpc, metadata in
          try await Crm_V1_ApprovalService.Client(wrapping: grpc).submitForApproval(request, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(answer)) }
        Approvals.show(answer)
      }
    }
  }

  enum Verb { case approve, reject, recall }

  /// Approve, reject or recall, then show the request.
  static func decide(_ verb: Verb, _ decision: Decision, client: ClientOptions) async throws {
    try await runReportingErrors {
      let answer = try await client.withClient { grpc, metadata in
        let service = Crm_V1_ApprovalService.Client(wrapping: grpc)
        switch verb {
        case .approve: return try await service.approveRequest(decision.request, metadata: metadata)
        case .reject: return try await service.rejectRequest(decision.request, metadata: metadata)
        case .recall: return try await service.recallRequest(decision.request, metadata: metadata)
        }
      }
      if client.json { return Swift.print(try Output.json(answer)) }
      show(answer)
    }
  }

  /// Approve, reject and recall share their arguments.
  struct Decision: ParsableArguments {
    @Argument(help: "The request's id.") var id: String
    @Option(help: "A comment for the record's history.") var comment: String?

    var request: Crm_V1_DecideRequest {
      .with {
        $0.id = id
        $0.comment = comment ?? ""
      }
    }
  }

  struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Approve the current step of a request you decide.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var decision: Decision

    func run() async throws { try await Approvals.decide(.approve, decision, client: client) }
  }

  struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reject a request you decide; it ends.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var decision: Decision

    func run() async throws { try await Approvals.decide(.reject, decision, client: client) }
  }

  struct Recall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Withdraw a request you submitted; the record unlocks.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var decision: Decision

    func run() async throws { try await Approvals.decide(.recall, decision, client: client) }
  }

  struct Define: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create an approval process from a JSON file (admins).",
      discussion: """
        The file is a crm.v1.ApprovalProcess in protobuf JSON, e.g.:
          {"recordType": "RECORD_TYPE_OPPORTUNITY", "name": "Deals over 100k",
           "entryConditions": [{"field": "amount", "operator": "RULE_OPERATOR_GREATER_THAN", "value": 100000}],
           "steps": [{"name": "Sales manager", "managerLevel": 1},
                     {"name": "Finance", "team": {"teamId": "TEAM_ID"}}],
           "onApprove": [{"setField": {"field": "next_step", "value": "Send the contract"}}]}
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "The process as JSON; - for standard input.") var file: String

    func run() async throws {
      try await runReportingErrors {
        let data =
          file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        let process: Crm_V1_ApprovalProcess
        do {
          process = try Crm_V1_ApprovalProcess(jsonUTF8Data: data)
        } catch {
          throw ValidationError("--file is not a crm.v1.ApprovalProcess in protobuf JSON: \(error)")
        }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_ApprovalService.Client(wrapping: grpc).createApprovalProcess(
            .with { $0.process = process }, metadata: metadata)
        }
        Swift.print(client.json ? try Output.json(created) : "created approval process \(created.id)")
      }
    }
  }

  struct Processes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The approval processes, in the order submission tries them.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let processes = try await client.withClient { grpc, metadata in
          try await Crm_V1_ApprovalService.Client(wrapping: grpc).listApprovalProcesses(.init(), metadata: metadata).processes
        }
        if client.json { return try Output.printJSON(processes) }
        Output.printTable(
          ["ID", "POS", "TYPE", "NAME", "WHEN", "STEPS"],
          processes.map { process in
            [
              process.id, String(process.position), Output.name(process.recordType), process.name,
              process.entryConditions.isEmpty
                ? "(always)" : process.entryConditions.map(Rules.describe).joined(separator: " and "),
              process.steps.map(\.name).joined(separator: " → "),
            ]
          })
      }
    }
  }
}
