import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

struct Collections: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Collections: the worklist, an account's collection, promises to pay, write-offs, dunning levels.",
    subcommands: [List.self, Show.self, Assign.self, Escalate.self, Promise.self, CancelPromise.self, WriteOff.self, Levels.self])

  static func client(_ grpc: GRPCClient<HTTP2ClientTransport.Posix>)
    -> Crm_V1_CollectionService.Client<
      HTTP2ClientTransport.Posix
    >
  {
    Crm_V1_CollectionService.Client(wrapping: grpc)
  }

  /// UpdateCollection of the `paths` that `set` fills on the account's collection, printed.
  static func update(
    _ client: ClientOptions, account: String, paths: [String], set: @escaping @Sendable (inout Crm_V1_AccountCollection) -> Void
  ) async throws {
    let collection = try await client.withClient { grpc, metadata in
      try await Collections.client(grpc).updateCollection(
        .with {
          $0.collection.accountID = account
          set(&$0.collection)
          $0.updateMask.paths = paths
        }, metadata: metadata)
    }
    try printCollection(collection, json: client.json)
  }

  static func printCollection(_ c: Crm_V1_AccountCollection, json: Bool) throws {
    if json { return try Output.printJSON([c]) }
    print("\(Output.name(c.status)): \(c.statusReason)")
    if !c.collectorID.isEmpty { print("collector: \(c.collectorID)") }
    if c.escalation != .unspecified { print("escalated: \(Output.name(c.escalation))") }
    if c.creditHold { print("credit hold: set by collections") }
    if c.hasPromise {
      let p = c.promise
      print(
        "promise: \(Output.money(p.amount)) by \(Output.date(p.payByDate)) (made \(Output.date(p.madeOnDate)), "
          + "\(Output.name(p.state)), paid \(Output.money(p.paid)))\(p.note.isEmpty ? "" : ": \(p.note)")")
    }
    if !c.lastDunningLevel.isEmpty { print("last dunning level: \(c.lastDunningLevel) at \(Output.time(c.lastDunningTime))") }
    if c.hasWriteOffTime { print("written off: \(Output.time(c.writeOffTime))") }
    print("etag: \(c.etag)")
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The collections worklist: accounts owing something past due, most overdue first, with their status.",
      discussion: "Example: crm collections list --collector USER_ID --currency USD")
    @OptionGroup var client: ClientOptions
    @Option(help: "Only the accounts this user collects.") var collector: String?
    @Option(help: "Only this currency.") var currency: String?
    @Flag(help: "Also accounts owing nothing past due.") var all = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).listReceivables(
            .with {
              $0.collectorID = collector ?? ""
              $0.currencyCode = currency ?? ""
              $0.overdueOnly = !all
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(response.nextPageToken)
        if client.json { return try Output.printJSON(response.receivables) }
        guard !response.receivables.isEmpty else { return print("nothing past due") }
        Output.printTable(
          ["ACCOUNT", "STATUS", "OVERDUE", "DUE", "OLDEST", "COLLECTOR", "ID"],
          response.receivables.map { r in
            [
              r.accountName, Output.name(r.collectionStatus), Output.money(r.overdue), Output.money(r.totalDue),
              r.oldestDaysOverdue > 0 ? "\(r.oldestDaysOverdue)d" : "", String(r.collectorID.prefix(8)), r.accountID,
            ]
          })
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "An account's collection: status, collector, promise, dunning.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String

    func run() async throws {
      try await runReportingErrors {
        let collection = try await client.withClient { grpc, metadata in
          try await Collections.client(grpc).getCollection(.with { $0.accountID = account }, metadata: metadata)
        }
        try Collections.printCollection(collection, json: client.json)
      }
    }
  }

  struct Assign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Assign an account's collector (admins): a user with the collector or admin role.",
      discussion: "Example: crm collections assign ACCOUNT_ID USER_ID   (--none unassigns)")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Argument(help: "The collector's user id.") var collector: String?
    @Flag(help: "Unassign.") var none = false

    func run() async throws {
      try await runReportingErrors {
        guard (collector != nil) != none else { throw ValidationError("name the collector, or pass --none") }
        try await Collections.update(client, account: account, paths: ["collector_id"]) { $0.collectorID = collector ?? "" }
      }
    }
  }

  struct Escalate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Escalate an account (needs_action, in_collections, none) and hold or release its credit.",
      discussion: "Example: crm collections escalate ACCOUNT_ID in_collections --hold")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Argument(help: "needs_action, in_collections or none.") var escalation: String?
    @Flag(help: "Put the account on credit hold until nothing is past due.") var hold = false
    @Flag(help: "Release a hold collections set.") var release = false

    func run() async throws {
      try await runReportingErrors {
        let levels: [String: Crm_V1_CollectionStatus] = [
          "needs_action": .needsAction, "in_collections": .inCollections, "none": .unspecified,
        ]
        let target = try escalation.map {
          guard let level = levels[$0] else {
            throw ValidationError("the escalation must be needs_action, in_collections or none")
          }
          return level
        }
        guard !(hold && release) else { throw ValidationError("--hold or --release, not both") }
        var paths: [String] = []
        if target != nil { paths.append("escalation") }
        if hold || release { paths.append("credit_hold") }
        guard !paths.isEmpty else { throw ValidationError("name an escalation, or pass --hold or --release") }
        try await Collections.update(client, account: account, paths: paths) {
          $0.escalation = target ?? .unspecified
          $0.creditHold = hold
        }
      }
    }
  }

  struct Promise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Record a customer's promise to pay: dunning pauses until the day promised.",
      discussion: "Example: crm collections promise ACCOUNT_ID --amount \"USD 1200\" --by 2027-01-15 --note \"CFO on the phone\"")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Option(help: "The amount promised, e.g. \"USD 1200\".") var amount: String
    @Option(help: "The day promised, YYYY-MM-DD.") var by: String
    @Option(help: "What was said.") var note: String?

    func run() async throws {
      try await runReportingErrors {
        let money = try AccountFieldOptions.money(amount)
        let day = try OpportunityFieldOptions.date(by, option: "--by")
        let collection = try await client.withClient { grpc, metadata in
          try await Collections.client(grpc).promiseToPay(
            .with {
              $0.accountID = account
              $0.amount = money
              $0.payByDate = day
              $0.note = note ?? ""
            }, metadata: metadata)
        }
        try Collections.printCollection(collection, json: client.json)
      }
    }
  }

  struct CancelPromise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Withdraw an account's open promise to pay: dunning resumes.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Option(help: "Why.") var note: String?

    func run() async throws {
      try await runReportingErrors {
        let collection = try await client.withClient { grpc, metadata in
          try await Collections.client(grpc).cancelPromise(
            .with {
              $0.accountID = account
              $0.note = note ?? ""
            }, metadata: metadata)
        }
        try Collections.printCollection(collection, json: client.json)
      }
    }
  }

  struct WriteOff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write off what invoices still owe (admins and the assigned collector): a credit note per invoice.",
      discussion: "Example: crm collections write-off ACCOUNT_ID --invoice INVOICE_ID --note \"Customer insolvent\"")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Option(help: "An invoice to write off (repeatable; default: every one past due).") var invoice: [String] = []
    @Option(help: "Why.") var note: String?

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await Collections.client(grpc).writeOff(
            .with {
              $0.accountID = account
              $0.invoiceIds = invoice
              $0.note = note ?? ""
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        for note in response.creditNotes {
          print("credit note \(note.id) \(note.number): \(Output.money(note.amount)) written off")
        }
        try Collections.printCollection(response.collection, json: false)
      }
    }
  }

  struct Levels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the tenant's dunning levels, or replace them (admins).",
      discussion: """
        Each --level is comma-separated key=value pairs: name, days (after the due date; negative: before), task (none, \
        owner, collector), subject, tag, escalate (needs_action, in_collections), and the flag hold.
        Example: crm collections levels --level name=reminder,days=7,task=owner \
        --level name=final_notice,days=30,task=collector,tag=dunning,hold,escalate=in_collections
        crm collections levels --clear removes them all.
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "A level (repeatable); replaces all levels.") var level: [String] = []
    @Flag(help: "Remove every level.") var clear = false

    static func parse(_ text: String) throws -> Crm_V1_DunningLevel {
      var level = Crm_V1_DunningLevel()
      level.taskFor = .none
      for part in text.split(separator: ",") {
        let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        switch (pair[0], pair.count == 2 ? pair[1] : nil) {
        case ("name", let value?): level.name = value
        case ("days", let value?):
          guard let days = Int32(value) else { throw ValidationError("days=\(value): a whole number of days") }
          level.daysAfterDue = days
        case ("task", let value?):
          let kinds: [String: Crm_V1_DunningTaskFor] = ["none": .none, "owner": .owner, "collector": .collector]
          guard let kind = kinds[value] else { throw ValidationError("task=\(value): none, owner or collector") }
          level.taskFor = kind
        case ("subject", let value?): level.taskSubject = value
        case ("tag", let value?): level.addTag = value
        case ("escalate", let value?):
          let kinds: [String: Crm_V1_CollectionStatus] = ["needs_action": .needsAction, "in_collections": .inCollections]
          guard let kind = kinds[value] else { throw ValidationError("escalate=\(value): needs_action or in_collections") }
          level.escalateTo = kind
        case ("hold", nil): level.creditHold = true
        default: throw ValidationError("unknown level part \"\(part)\"; see --help")
        }
      }
      guard !level.name.isEmpty else { throw ValidationError("each --level needs name=…") }
      return level
    }

    func run() async throws {
      try await runReportingErrors {
        guard level.isEmpty || !clear else { throw ValidationError("--level or --clear, not both") }
        let levels = try level.map(Levels.parse)
        let response = try await client.withClient { grpc, metadata in
          level.isEmpty && !clear
            ? try await Collections.client(grpc).getDunningLevels(.init(), metadata: metadata)
            : try await Collections.client(grpc).setDunningLevels(.with { $0.levels = levels }, metadata: metadata)
        }
        if client.json { return try Output.printJSON(response.levels) }
        guard !response.levels.isEmpty else { return print("no dunning levels") }
        Output.printTable(
          ["NAME", "DAYS", "TASK FOR", "TAG", "HOLD", "ESCALATE", "SUBJECT"],
          response.levels.map {
            [
              $0.name, String($0.daysAfterDue), Output.name($0.taskFor), $0.addTag, $0.creditHold ? "yes" : "",
              $0.escalateTo == .unspecified ? "" : Output.name($0.escalateTo), $0.taskSubject,
            ]
          })
      }
    }
  }
}
