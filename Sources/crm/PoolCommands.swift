import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm pools …`
struct Pools: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Shared pools (公海): list them, see what sits in one, claim, release, and what returns soon.",
    subcommands: [List.self, Records.self, Claim.self, Release.self, Expiring.self, Recycle.self])

  static func service(_ client: GRPCClient<HTTP2ClientTransport.Posix>) -> Crm_V1_PoolService.Client<HTTP2ClientTransport.Posix> {
    Crm_V1_PoolService.Client(wrapping: client)
  }

  static func printRecord(_ record: Crm_V1_PoolRecord, json: Bool) throws {
    switch record.record {
    case .lead(let lead): try Leads.printLead(lead, json: json)
    case .account(let account): try Accounts.printAccount(account, json: json)
    case nil: break
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tenant's pools and their rules.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let pools = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).listPools(.init(), metadata: metadata).pools
        }
        if client.json { return try Output.printJSON(pools) }
        Output.printTable(
          ["ID", "NAME", "HOLDS", "LIMIT", "COOLDOWN", "RECYCLE AFTER", "PROTECTED", "WARN"],
          pools.map {
            [
              $0.id, $0.name, $0.recordType == .lead ? "leads" : "accounts", $0.hasHoldLimit ? String($0.holdLimit) : "-",
              "\($0.reclaimCooldownDays)d", $0.hasRecycleAfterDays ? "\($0.recycleAfterDays)d idle" : "never",
              "\($0.protectionDays)d", "\($0.warningDays)d",
            ]
          })
      }
    }
  }

  struct Records: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What sits in a pool, most recently returned first.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The pool id.") var pool: String
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).listPoolRecords(
            .with {
              $0.poolID = pool
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(response.nextPageToken)
        if client.json { return try Output.printJSON(response.records) }
        Output.printTable(
          ["TYPE", "ID", "NAME", "UPDATED"],
          response.records.map { record in
            switch record.record {
            case .lead(let lead):
              [
                "lead", lead.id, [lead.firstName, lead.lastName, lead.company].filter { !$0.isEmpty }.joined(separator: " "),
                Output.time(lead.updateTime),
              ]
            case .account(let account): ["account", account.id, account.name, Output.time(account.updateTime)]
            case nil: ["", "", "", ""]
            }
          })
      }
    }
  }

  /// `--lead ID` or `--account ID`.
  struct RecordOption: ParsableArguments {
    @Option(help: "A lead id.") var lead: String?
    @Option(help: "An account id.") var account: String?

    func validate() throws {
      if (lead == nil) == (account == nil) { throw ValidationError("pass exactly one of --lead and --account") }
    }

    var ref: Crm_V1_RecordRef {
      .with {
        $0.recordType = lead != nil ? .lead : .account
        $0.recordID = lead ?? account ?? ""
      }
    }
  }

  struct Claim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Claim a pooled lead or account (exit 6 if someone was faster).")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordOption

    func run() async throws {
      try await runReportingErrors {
        let claimed = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).claim(.with { $0.record = record.ref }, metadata: metadata)
        }
        try Pools.printRecord(claimed, json: client.json)
      }
    }
  }

  struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Return a record you hold to its pool, with a reason.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var record: RecordOption
    @Option(help: "Reason code, e.g. not_reachable, no_budget.") var reason: String
    @Option(help: "A note for whoever claims it next.") var note: String?
    @Option(help: "Another pool than the one it came from.") var pool: String?

    func run() async throws {
      try await runReportingErrors {
        let released = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).release(
            .with {
              $0.record = record.ref
              $0.reasonCode = reason
              $0.note = note ?? ""
              $0.poolID = pool ?? ""
            }, metadata: metadata)
        }
        try Pools.printRecord(released, json: client.json)
      }
    }
  }

  struct Expiring: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What you hold from pools and when it returns unless worked.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Another user's id (managers, admins).") var user: String?
    @Flag(help: "Every holding, not only those within the warning days.") var all = false

    func run() async throws {
      try await runReportingErrors {
        let holdings = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).listExpiringHoldings(
            .with {
              $0.userID = user ?? ""
              $0.all = all
            }, metadata: metadata
          ).holdings
        }
        if client.json { return try Output.printJSON(holdings) }
        Output.printTable(
          ["RETURNS", "WHY", "TYPE", "ID", "NAME", "CLAIMED", "LAST WORKED"],
          holdings.map {
            [
              Output.time($0.returnTime), $0.returnReason, $0.record.recordType == .lead ? "lead" : "account",
              $0.record.recordID, $0.displayName, Output.time($0.claimTime), Output.time($0.lastWorkedTime),
            ]
          })
      }
    }
  }

  struct Recycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run the recycling job for your tenant now (admins); crmd also runs it in the background.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let report = try await client.withClient { grpc, metadata in
          try await Pools.service(grpc).recyclePools(.init(), metadata: metadata)
        }
        if client.json { return print(try Output.json(report)) }
        print("returned \(report.returned) records from \(report.pools) pools")
      }
    }
  }
}
