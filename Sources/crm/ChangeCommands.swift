import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm changes`: the tenant's change feed.
struct Changes: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "changes", abstract: "Follow the change feed: every committed change, in commit order.",
    subcommands: [Tail.self])

  struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print changes after a cursor, then each new one as it commits (like tail -f).",
      discussion: """
        Each change prints with its cursor; pass the last one to --from to resume (on any crmd node).
        With --once, prints what is there now and the cursor to resume from, then exits.

        Example: crm changes tail --type lead --type contact
        """)
    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("from"), help: "Resume after this cursor (default: the oldest change kept).") var cursor = ""
    @Option(
      name: .customLong("type"),
      help: "Only this record type (repeatable): lead, contact, account, opportunity, interaction, task, ticket.")
    var types: [String] = []
    @Flag(help: "Print the changes there are now and the next cursor, then exit.") var once = false

    func run() async throws {
      try await runReportingErrors {
        let recordTypes = try types.map(RecordTypeName.parse)
        if once {
          let page = try await client.withClient { grpc, metadata in
            try await Crm_V1_ChangeService.Client(wrapping: grpc).listChanges(
              .with {
                $0.cursor = cursor
                $0.recordTypes = recordTypes
                $0.pageSize = 1000
              }, metadata: metadata)
          }
          if client.json {
            try Output.printJSON(page.events)
          } else {
            page.events.forEach(Self.print)
          }
          FileHandle.standardError.write(Data("next cursor: \(page.nextCursor)\n".utf8))
          return
        }
        let json = client.json
        try await client.withClient { grpc, metadata in
          try await Crm_V1_ChangeService.Client(wrapping: grpc).streamChanges(
            .with {
              $0.cursor = cursor
              $0.recordTypes = recordTypes
            }, metadata: metadata
          ) { response in
            for try await event in response.messages {
              if json { Swift.print(try Output.json(event)) } else { Self.print(event) }
              // Each change as it comes, also into a pipe (`| jq`).
              fflush(nil)
            }
          }
        }
      }
    }

    static func print(_ event: Crm_V1_ChangeEvent) {
      let change = event.change
      var line = "\(event.cursor)  \(Output.time(event.commitTime))  \(Output.name(change.recordType)) \(change.recordID)"
      line += "  \(Output.name(change.operation))  by \(change.actorID.prefix(8))" + HistoryPrinter.cause(change)
      if !change.origin.isEmpty { line += "  from \(change.origin)" }
      Swift.print(line)
      HistoryPrinter.printChanges(change.changes)
    }
  }
}

/// Record types as the CLI spells them.
enum RecordTypeName {
  static let all: [String: Crm_V1_RecordType] = [
    "account": .account, "contact": .contact, "lead": .lead, "opportunity": .opportunity, "interaction": .interaction,
    "task": .task, "ticket": .ticket, "invoice": .invoice, "payment": .payment, "credit_note": .creditNote,
    "dispute": .dispute, "collection": .collection,
  ]

  static func parse(_ text: String) throws -> Crm_V1_RecordType {
    guard let type = all[text] else {
      throw ValidationError("record type must be one of \(all.keys.sorted().joined(separator: ", "))")
    }
    return type
  }
}
