import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// Which record a command is about: exactly one of --lead, --contact, --account.
struct RecordOption: ParsableArguments {
  @Option(help: "A lead id.") var lead: String?
  @Option(help: "A contact id.") var contact: String?
  @Option(help: "An account id.") var account: String?

  func validate() throws {
    if [lead, contact, account].compactMap({ $0 }).count != 1 {
      throw ValidationError("name exactly one record: --lead, --contact or --account")
    }
  }

  var reference: Crm_V1_RecordRef {
    .with {
      if let lead {
        $0.recordType = .lead; $0.recordID = lead
      } else if let contact {
        $0.recordType = .contact; $0.recordID = contact
      } else if let account {
        $0.recordType = .account; $0.recordID = account
      }
    }
  }
}

/// `crm interactions …`
struct Interactions: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Log calls, emails, meetings, visits, notes, chats and SMS; list them per record.",
    subcommands: [Log.self, List.self])

  static let kinds: [String: Crm_V1_InteractionKind] = [
    "call": .call, "email": .email, "meeting": .meeting, "visit": .visit, "note": .note, "chat": .chat, "sms": .sms,
  ]

  static func printInteractions(_ interactions: [Crm_V1_Interaction], json: Bool) throws {
    if json { return try Output.printJSON(interactions) }
    Output.printTable(
      ["ID", "WHEN", "KIND", "DIRECTION", "SUBJECT", "OUTCOME"],
      interactions.map {
        [
          $0.id, Output.time($0.startTime), Output.name($0.kind),
          $0.direction == .unspecified ? "" : Output.name($0.direction), $0.subject, $0.outcome,
        ]
      })
  }

  struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Log an interaction on a lead, contact or account.",
      discussion:
        "Example: crm interactions log --lead LEAD_ID --kind call --subject \"Intro\" --minutes 15 --outcome \"demo booked\""
    )
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordOption
    @Option(help: "call, email, meeting, visit, note, chat or sms.") var kind: String
    @Option(help: "inbound or outbound.") var direction: String?
    @Option(help: "Subject.") var subject: String?
    @Option(help: "Body or notes.") var body: String?
    @Option(help: "How long, in minutes.") var minutes: Int64?
    @Option(help: "Outcome, e.g. \"left voicemail\".") var outcome: String?
    @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?

    func validate() throws {
      guard Interactions.kinds[kind] != nil else {
        throw ValidationError("--kind must be one of \(Interactions.kinds.keys.sorted().joined(separator: ", "))")
      }
      if let direction, !["inbound", "outbound"].contains(direction) {
        throw ValidationError("--direction must be inbound or outbound")
      }
    }

    func run() async throws {
      try await runReportingErrors {
        let request = Crm_V1_LogInteractionRequest.with {
          $0.interaction = .with {
            $0.kind = Interactions.kinds[kind]!
            if let direction { $0.direction = direction == "inbound" ? .inbound : .outbound }
            $0.subject = subject ?? ""
            $0.body = body ?? ""
            if let minutes { $0.duration = .init(seconds: minutes * 60, nanos: 0) }
            $0.outcome = outcome ?? ""
            $0.links = [record.reference]
          }
          $0.requestID = requestID ?? ""
        }
        let logged = try await client.withClient { grpc, metadata in
          try await Crm_V1_InteractionService.Client(wrapping: grpc).logInteraction(request, metadata: metadata)
        }
        try Interactions.printInteractions([logged], json: client.json)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a record's interactions, newest first.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordOption
    @Option(help: "Only this kind; repeat for several.") var kind: [String] = []
    @Option(help: "Entries to show.") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let kinds = try kind.map { name in
          guard let kind = Interactions.kinds[name] else { throw CLIError(message: "unknown --kind \(name)", code: 2) }
          return kind
        }
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_InteractionService.Client(wrapping: grpc).listInteractions(
            .with {
              $0.record = record.reference; $0.kinds = kinds; $0.pageSize = limit; $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        try Interactions.printInteractions(response.interactions, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }
}

/// `crm timeline --account ID`
struct Timeline: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A lead's, contact's or account's timeline: interactions and changes, newest first.")
  @OptionGroup var client: ClientOptions
  @OptionGroup var record: RecordOption
  @Option(help: "Entries to show.") var limit: Int32 = 50
  @OptionGroup var paging: PageOption

  func run() async throws {
    try await runReportingErrors {
      let response = try await client.withClient { grpc, metadata in
        try await Crm_V1_InteractionService.Client(wrapping: grpc).getTimeline(
          .with {
            $0.record = record.reference; $0.pageSize = limit; $0.pageToken = paging.pageToken
          }, metadata: metadata)
      }
      Output.more(response.nextPageToken)
      if client.json { return try Output.printJSON(response.entries) }
      for entry in response.entries {
        let from =
          entry.record.recordID == record.reference.recordID
          ? "" : "  (on \(Output.name(entry.record.recordType)) \(entry.record.recordID))"
        switch entry.entry {
        case .interaction(let interaction):
          let what = [interaction.subject, interaction.outcome].filter { !$0.isEmpty }.joined(separator: " — ")
          print("\(Output.time(entry.time))  \(Output.name(interaction.kind))  \(what)\(from)")
        case .change(let change):
          print("\(Output.time(entry.time))  \(Output.name(entry.type))  by \(change.actorID.prefix(8))\(from)")
          for field in change.changes {
            print("    \(field.field): \(Output.value(field.oldValue)) → \(Output.value(field.newValue))")
          }
        case nil:
          break
        }
      }
    }
  }
}
