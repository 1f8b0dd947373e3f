import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm forecast`: the sales forecast, quotas and adjustments.
struct ForecastCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "forecast",
    abstract: "The sales forecast: your number and your reports', against quota, with adjustments.",
    subcommands: [
      Show.self, Deals.self, Adjust.self, Adjustments.self, Changes.self, Trend.self, Snapshots.self, Quotas.self, Settings.self,
    ],
    defaultSubcommand: Show.self)

  static func client(_ grpc: GRPCClient<HTTP2ClientTransport.Posix>) -> Crm_V1_ForecastService.Client<HTTP2ClientTransport.Posix>
  {
    Crm_V1_ForecastService.Client(wrapping: grpc)
  }

  /// Whose number, which period, which currency: shared by the reading commands.
  struct Scope: ParsableArguments {
    @Option(help: "A fiscal year (2027), quarter (2027-Q1) or month (2027-03); default the current quarter.") var period: String?
    @Option(help: "Whose forecast (default yours).") var user: String?
    @Option(help: "A team's forecast instead (its manager's).") var team: String?
    @Flag(help: "The whole company's forecast (admins).") var company = false
    @Option(help: "The currency deals are counted in.") var currency = "USD"

    /// Sets a reading request's period, subject and currency from the options.
    func fill(_ request: inout some ForecastScopedRequest) {
      request.period = period ?? ""
      request.userID = user ?? ""
      request.teamID = team ?? ""
      request.company = company
      request.currencyCode = currency
    }

    func validate() throws {
      if [user != nil, team != nil, company].filter({ $0 }).count > 1 {
        throw ValidationError("name one of --user, --team and --company")
      }
    }
  }

  static let columns: [(String, Crm_V1_ForecastColumn)] = [
    ("closed", .closed), ("commit", .commit), ("best-case", .bestCase), ("pipeline", .pipeline), ("weighted", .weighted),
  ]

  static func column(_ text: String) throws -> Crm_V1_ForecastColumn {
    guard let column = columns.first(where: { $0.0 == text.lowercased().replacingOccurrences(of: "_", with: "-") }) else {
      throw ValidationError("--column must be one of \(columns.map(\.0).joined(separator: ", "))")
    }
    return column.1
  }

  /// An amount without its currency (the table's header names it); "*" marks an adjusted number.
  static func cell(_ value: Crm_V1_ForecastValue) -> String {
    let text = Output.money(value.amount).split(separator: " ").last.map(String.init) ?? ""
    return text + (value.ownerAdjusted || value.managerAdjusted ? "*" : "")
  }

  /// Attainment as a bar of 20 cells and a percentage.
  static func bar(_ row: Crm_V1_ForecastRow) -> String {
    guard row.hasAttainment else { return row.hasQuota ? "no quota" : "" }
    let filled = max(0, min(20, Int((row.attainment * 20).rounded(.down))))
    return String(repeating: "█", count: filled) + String(repeating: "░", count: 20 - filled)
      + String(format: " %3.0f%%", row.attainment * 100)
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "show",
      abstract: "Your forecast (or a report's, or a team's): a row for your own deals, one per direct report, the total.",
      discussion: """
        Numbers are cumulative: commit includes closed, best case includes commit. "*" marks a number
        someone adjusted; --json shows the unadjusted and submitted figures beside it.

        Examples:
          crm forecast
          crm forecast --period 2027-Q1 --team TEAM_ID --currency EUR
        """)

    @OptionGroup var client: ClientOptions
    @OptionGroup var scope: Scope

    func run() async throws {
      try await runReportingErrors {
        let forecast = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).getForecast(
            .with {
              scope.fill(&$0)
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([forecast]) }
        let p = forecast.period
        print("Forecast \(p.name) (\(Output.date(p.startDate)) – \(Output.date(p.endDate))), \(forecast.currencyCode)")
        func label(_ row: Crm_V1_ForecastRow) -> String {
          switch row.kind {
          case .ownDeals: "\(row.displayName) (own deals)"
          case .total: forecast.teamID.isEmpty && forecast.userID.isEmpty ? "Company" : "Total"
          default: row.teamName.isEmpty ? row.displayName : "\(row.displayName) (\(row.teamName))"
          }
        }
        let rows = (forecast.rows + [forecast.total]).map { row in
          [label(row)] + [row.closed, row.commit, row.bestCase, row.pipeline, row.weighted].map(ForecastCommand.cell)
            + [row.hasQuota ? ForecastCommand.cell(.with { $0.amount = row.quota }) : "", ForecastCommand.bar(row)]
        }
        Output.printTable(["", "Closed", "Commit", "Best case", "Pipeline", "Weighted", "Quota", "Attainment"], rows)
      }
    }
  }

  struct Deals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The deals behind one number of a forecast.",
      discussion: "Example: crm forecast deals --column commit --user USER_ID --period 2027-Q1")

    @OptionGroup var client: ClientOptions
    @OptionGroup var scope: Scope
    @Option(help: "closed, commit, best-case, pipeline or weighted.") var column: String
    @Flag(help: "Only the user's own deals, not their reports'.") var own = false
    @Option(help: "Page size (1-500).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let column = try ForecastCommand.column(column)
        let page = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).listForecastDeals(
            .with {
              scope.fill(&$0)
              $0.column = column
              $0.ownDealsOnly = own
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(page.nextPageToken)
        if client.json { return try Output.printJSON(page.opportunities) }
        Output.printTable(
          ["ID", "Name", "Owner", "Amount", "Prob.", "Category", "Close"],
          page.opportunities.map {
            [
              $0.id, $0.name, $0.ownerID, Output.money($0.amount), "\($0.probability)%", Output.name($0.forecastCategory),
              Output.date($0.closeDate),
            ]
          })
      }
    }
  }

  struct Adjust: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set your own number, or a direct report's, without touching a deal.",
      discussion: """
        Each adjustment is kept; a new one supersedes the one before. --remove takes yours away.

        Examples:
          crm forecast adjust --column commit --amount "USD 400000" --note "Acme slips to Q2"
          crm forecast adjust --user REPORT_ID --column best-case --amount "USD 250000"
          crm forecast adjust --column commit --remove --currency USD
        """)

    @OptionGroup var client: ClientOptions
    @Option(help: "The period (default the current one).") var period: String?
    @Option(help: "A direct report whose number you adjust (default your own).") var user: String?
    @Option(help: "commit, best-case or pipeline.") var column: String
    @Option(help: "The number, e.g. \"USD 400000\".") var amount: String?
    @Flag(help: "Remove your adjustment of this number.") var remove = false
    @Option(help: "The currency (with --remove).") var currency: String?
    @Option(help: "Why (up to 255 characters).") var note: String?

    func validate() throws {
      if (amount == nil) == !remove { throw ValidationError("give --amount, or --remove with --currency") }
    }

    func run() async throws {
      try await runReportingErrors {
        let column = try ForecastCommand.column(column)
        let money = try amount.map { try AccountFieldOptions.money($0, option: "--amount") }
        let adjustment = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).adjustForecast(
            .with {
              $0.period = period ?? ""
              $0.userID = user ?? ""
              $0.column = column
              if let money { $0.amount = money }
              $0.currencyCode = currency ?? money?.currencyCode ?? ""
              $0.note = note ?? ""
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([adjustment]) }
        ForecastCommand.printAdjustments([adjustment])
      }
    }
  }

  static func printAdjustments(_ adjustments: [Crm_V1_ForecastAdjustment]) {
    Output.printTable(
      ["When", "Period", "User", "By", "Column", "Amount", "Note"],
      adjustments.map {
        [
          Output.time($0.createTime) + ($0.hasSupersedeTime ? " (superseded)" : ""), $0.period.name, $0.userID,
          $0.managerAdjustment ? $0.adjusterID : "themselves", Output.name($0.column),
          $0.hasAmount ? Output.money($0.amount) : "removed", $0.note,
        ]
      })
  }

  struct Adjustments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The adjustments of a period you may see: owners' and managers', newest first.",
      discussion: "Example: crm forecast adjustments --period 2027-Q1 --history")

    @OptionGroup var client: ClientOptions
    @Option(help: "The period (default the current one).") var period: String?
    @Option(help: "Only adjustments of this user's number.") var user: String?
    @Flag(help: "Include superseded and removed adjustments.") var history = false

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).listForecastAdjustments(
            .with {
              $0.period = period ?? ""
              $0.userID = user ?? ""
              $0.includeHistory = history
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON(response.adjustments) }
        ForecastCommand.printAdjustments(response.adjustments)
      }
    }
  }

  struct Quotas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Quotas: set them in bulk, list them.", subcommands: [Set.self, List.self])

    struct Set: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Set quotas (admins; managers for the users below them): all or nothing.",
        discussion: """
          Each entry is USER_ID=PERIOD=AMOUNT; an amount of "-" removes the quota (give --currency).
          --file reads the same from a CSV with the columns user_id, period, amount (e.g. "USD 120000").

          Examples:
            crm forecast quotas set USER_ID=2027-Q1="USD 120000" USER_ID=2027-Q2="USD 150000"
            crm forecast quotas set --file quotas.csv
          """)

      @OptionGroup var client: ClientOptions
      @Argument(help: "USER_ID=PERIOD=AMOUNT entries.") var entries: [String] = []
      @Option(help: "A CSV of user_id,period,amount rows (a header row is skipped).") var file: String?
      @Option(help: "The currency of removals (\"-\" amounts).") var currency: String?

      func run() async throws {
        try await runReportingErrors {
          var lines = entries.map { $0.split(separator: "=", maxSplits: 2).map(String.init) }
          if let file {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for line in text.split(whereSeparator: \.isNewline) {
              let cells = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\"")))
              }
              if cells.first?.lowercased() == "user_id" { continue }
              lines.append(cells)
            }
          }
          guard !lines.isEmpty else { throw ValidationError("give USER_ID=PERIOD=AMOUNT entries or --file") }
          let quotas = try lines.map { cells -> Crm_V1_Quota in
            guard cells.count == 3 else {
              throw ValidationError("\(cells.joined(separator: "=")): expected USER_ID=PERIOD=AMOUNT")
            }
            var quota = Crm_V1_Quota.with {
              $0.userID = cells[0]
              $0.period = cells[1]
            }
            if cells[2] == "-" {
              guard let currency else { throw ValidationError("removing a quota (\"-\") needs --currency") }
              quota.currencyCode = currency
            } else {
              quota.amount = try AccountFieldOptions.money(cells[2], option: "an amount")
            }
            return quota
          }
          let response = try await client.withClient { grpc, metadata in
            try await ForecastCommand.client(grpc).setQuotas(.with { $0.quotas = quotas }, metadata: metadata)
          }
          if client.json { return try Output.printJSON(response.quotas) }
          print("\(response.quotas.count) quota(s) set, \(quotas.count - response.quotas.count) removed")
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Quotas of the users you may see.")

      @OptionGroup var client: ClientOptions
      @Option(help: "Only periods overlapping this one.") var period: String?
      @Option(help: "Only this user's.") var user: String?

      func run() async throws {
        try await runReportingErrors {
          let response = try await client.withClient { grpc, metadata in
            try await ForecastCommand.client(grpc).listQuotas(
              .with {
                $0.period = period ?? ""
                $0.userID = user ?? ""
              }, metadata: metadata)
          }
          if client.json { return try Output.printJSON(response.quotas) }
          Output.printTable(
            ["User", "Period", "From", "To", "Quota"],
            response.quotas.map {
              [
                $0.userID, $0.period, Output.date($0.periodRange.startDate), Output.date($0.periodRange.endDate),
                Output.money($0.amount),
              ]
            })
        }
      }
    }
  }

  struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show or change the fiscal calendar (admins change it).",
      discussion: "Example: crm forecast settings --fiscal-start-month 4 --default-period quarter")

    @OptionGroup var client: ClientOptions
    @Option(help: "The fiscal year's first month, 1-12.") var fiscalStartMonth: Int32?
    @Option(help: "month or quarter: what `crm forecast` shows by default.") var defaultPeriod: String?

    static let months = [
      "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
      "December",
    ]

    func run() async throws {
      try await runReportingErrors {
        let kind: Crm_V1_PeriodKind? =
          switch defaultPeriod?.lowercased() {
          case nil: nil
          case "month": .month
          case "quarter": .quarter
          default: throw ValidationError("--default-period must be month or quarter")
          }
        let settings = try await client.withClient { grpc, metadata in
          let service = ForecastCommand.client(grpc)
          var settings = try await service.getForecastSettings(.init(), metadata: metadata)
          guard fiscalStartMonth != nil || kind != nil else { return settings }
          if let fiscalStartMonth { settings.fiscalYearStartMonth = fiscalStartMonth }
          if let kind { settings.defaultPeriod = kind }
          return try await service.updateForecastSettings(.with { $0.settings = settings }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([settings]) }
        Output.printRecord([
          ("fiscal year starts", Self.months[max(0, min(11, Int(settings.fiscalYearStartMonth) - 1))]),
          ("default period", Output.name(settings.defaultPeriod)),
        ])
      }
    }
  }

  struct Snapshots: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The weekly forecast snapshots, newest first; --take takes this week's now (admins).")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Take this week's snapshot now unless the job has.") var take = false
    @Option(help: "How many (1-520).") var limit: Int32 = 52

    func run() async throws {
      try await runReportingErrors {
        let snapshots = try await client.withClient { grpc, metadata in
          let service = ForecastCommand.client(grpc)
          if take { _ = try await service.takeForecastSnapshot(.init(), metadata: metadata) }
          return try await service.listForecastSnapshots(.with { $0.limit = limit }, metadata: metadata).snapshots
        }
        if client.json { return try Output.printJSON(snapshots) }
        Output.printTable(
          ["ID", "Week of", "Taken", "Covers", "Deals"],
          snapshots.map {
            [
              $0.id, Output.date($0.weekStart), Output.time($0.takeTime),
              "\(Output.date($0.windowStart)) – \(Output.date($0.windowEnd))", "\($0.dealCount)",
            ]
          })
      }
    }
  }

  struct Changes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "What moved since the last snapshot (or between two): commit in and out, amounts, dates, won, lost.",
      discussion: "Example: crm forecast changes --period 2027-Q1 --team TEAM_ID")

    @OptionGroup var client: ClientOptions
    @OptionGroup var scope: Scope
    @Option(help: "The earlier snapshot (default the latest).") var from: String?
    @Option(help: "The later snapshot (default now).") var to: String?

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).listForecastChanges(
            .with {
              scope.fill(&$0)
              $0.fromSnapshotID = from ?? ""
              $0.toSnapshotID = to ?? ""
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        print(
          "Since the snapshot of \(Output.date(response.from.weekStart)), until \(response.hasTo ? "that of \(Output.date(response.to.weekStart))" : "now")"
        )
        func state(_ s: Crm_V1_ForecastDealState) -> String {
          "\(Output.money(s.amount)) \(Output.name(s.forecastCategory)) \(Output.date(s.closeDate))"
        }
        Output.printTable(
          ["Deal", "Owner", "Moves", "Before", "After"],
          response.changes.map {
            [
              $0.name, $0.ownerID, $0.moves.map(Output.name).joined(separator: ", "), $0.hasBefore ? state($0.before) : "",
              $0.hasAfter ? state($0.after) : "",
            ]
          })
        if response.truncated { print("(the first \(response.changes.count) of more)") }
      }
    }
  }

  struct Trend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Forecast versus actual: the total at each weekly snapshot of the period, and now.",
      discussion: "Example: crm forecast trend --period 2026-Q4")

    @OptionGroup var client: ClientOptions
    @OptionGroup var scope: Scope

    func run() async throws {
      try await runReportingErrors {
        let trend = try await client.withClient { grpc, metadata in
          try await ForecastCommand.client(grpc).getForecastTrend(
            .with {
              scope.fill(&$0)
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([trend]) }
        print("Forecast \(trend.period.name), \(trend.currencyCode)")
        let rows =
          trend.points.map { ("week of \(Output.date($0.snapshot.weekStart))", $0.total) } + [
            (trend.periodEnded ? "actual" : "now", trend.actual)
          ]
        Output.printTable(
          ["", "Closed", "Commit", "Best case", "Pipeline", "Weighted"],
          rows.map { label, row in
            [label] + [row.closed, row.commit, row.bestCase, row.pipeline, row.weighted].map(ForecastCommand.cell)
          })
      }
    }
  }
}

/// The requests that read a forecast of a user, a team or the company for a period and currency.
protocol ForecastScopedRequest {
  var period: String { get set }
  var userID: String { get set }
  var teamID: String { get set }
  var company: Bool { get set }
  var currencyCode: String { get set }
}

extension Crm_V1_GetForecastRequest: ForecastScopedRequest {}
extension Crm_V1_ListForecastDealsRequest: ForecastScopedRequest {}
extension Crm_V1_GetForecastTrendRequest: ForecastScopedRequest {}
extension Crm_V1_ListForecastChangesRequest: ForecastScopedRequest {}
