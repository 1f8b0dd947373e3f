import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm pipelines …`
struct Pipelines: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List and show pipelines and their stages (admins edit them over the API); their analytics.",
    subcommands: [List.self, Get.self, PipelineAnalyticsCommand.self],
    aliases: ["pipeline"])

  static func printPipeline(_ pipeline: Crm_V1_Pipeline, json: Bool) throws {
    if json { return print(try Output.json(pipeline)) }
    print("\(pipeline.name)\(pipeline.isDefault ? " (default)" : "")  \(pipeline.id)  etag \(pipeline.etag)")
    Output.printTable(
      ["#", "STAGE", "CATEGORY", "PROB", "FORECAST", "REQUIRES", "ID"],
      pipeline.stages.map {
        [
          String($0.position), $0.name, Output.name($0.category), "\($0.probability)%", Output.name($0.forecastCategory),
          $0.requiredFields.joined(separator: ","), $0.id,
        ]
      })
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tenant's pipelines with their stages.")
    @OptionGroup var client: ClientOptions
    @Flag(help: "Include archived pipelines.") var archived = false

    func run() async throws {
      try await runReportingErrors {
        let pipelines = try await client.withClient { client, metadata in
          try await Crm_V1_OpportunityService.Client(wrapping: client).listPipelines(
            .with { $0.includeArchived = archived }, metadata: metadata)
        }.pipelines
        if client.json { return try Output.printJSON(pipelines) }
        for (index, pipeline) in pipelines.enumerated() {
          if index > 0 { print("") }
          try Pipelines.printPipeline(pipeline, json: false)
        }
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one pipeline.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The pipeline id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let pipeline = try await client.withClient { client, metadata in
          try await Crm_V1_OpportunityService.Client(wrapping: client).getPipeline(.with { $0.id = id }, metadata: metadata)
        }
        try Pipelines.printPipeline(pipeline, json: client.json)
      }
    }
  }
}

/// `crm opportunities …`
struct Opportunities: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "opportunities",
    abstract: "Create, change, list and move deals through their pipeline's stages.",
    discussion: """
      Examples:
        crm opportunities create --name "Acme — 200 seats" --account ID --amount "USD 48000" --close-date 2027-03-31
        crm opportunities move ID --stage STAGE_ID
        crm opportunities win ID
        crm opportunities lose ID --reason "Went with a competitor"
        crm opportunities history ID
      """,
    subcommands: [Create.self, Get.self, List.self, Update.self, Move.self, Win.self, Lose.self, Reopen.self, History.self],
    aliases: ["deals"])

  static func service(_ client: GRPCClient<some ClientTransport>) -> Crm_V1_OpportunityService.Client<some ClientTransport> {
    Crm_V1_OpportunityService.Client(wrapping: client)
  }

  /// A stage id, or the id of the one stage named `text` (case-insensitive) in the tenant's pipelines.
  static func stageID(
    _ text: String?, service: Crm_V1_OpportunityService.Client<some ClientTransport>, metadata: Metadata
  ) async throws -> String {
    guard let text, !text.isEmpty else { return "" }
    if UUID(uuidString: text) != nil { return text }
    let pipelines = try await service.listPipelines(.init(), metadata: metadata).pipelines
    let matches = pipelines.flatMap { pipeline in
      pipeline.stages.filter { $0.name.lowercased() == text.lowercased() }.map { (pipeline.name, $0.id) }
    }
    switch matches.count {
    case 1: return matches[0].1
    case 0: throw CLIError(message: "no stage is named \"\(text)\"; see crm pipelines list", code: 3)
    default:
      throw CLIError(
        message: "several pipelines have a stage \"\(text)\" (\(matches.map(\.0).joined(separator: ", "))); pass its id",
        code: 2)
    }
  }

  /// Runs one stage verb with the stage resolved (see ``stageID(_:service:metadata:)``) and prints the deal.
  static func changeStage(
    _ client: ClientOptions, stage: String?,
    _ call: (Crm_V1_OpportunityService.Client<HTTP2ClientTransport.Posix>, String, Metadata) async throws -> Crm_V1_Opportunity
  ) async throws {
    try await runReportingErrors {
      let deal = try await client.withClient { grpc, metadata in
        let service = Crm_V1_OpportunityService.Client(wrapping: grpc)
        return try await call(service, try await stageID(stage, service: service, metadata: metadata), metadata)
      }
      try printDeal(deal, json: client.json)
    }
  }

  static func printDeals(_ deals: [Crm_V1_Opportunity], json: Bool) throws {
    if json { return try Output.printJSON(deals) }
    Output.printTable(
      ["ID", "NAME", "AMOUNT", "CLOSE", "STAGE", "PROB", "FORECAST", "OWNER", "ETAG"],
      deals.map {
        [
          $0.id, $0.name, Output.money($0.amount), Output.date($0.closeDate), $0.stageName, "\($0.probability)%",
          Output.name($0.forecastCategory), String($0.ownerID.prefix(8)), $0.etag,
        ]
      })
  }

  static func printDeal(_ deal: Crm_V1_Opportunity, json: Bool) throws {
    if json { return print(try Output.json(deal)) }
    Output.printRecord([
      ("id", deal.id), ("name", deal.name), ("account", deal.accountID), ("primary contact", deal.primaryContactID),
      ("contact roles", deal.contactRoles.map { "\($0.contactID) (\(Output.name($0.role)))" }.joined(separator: ", ")),
      ("amount", Output.money(deal.amount)), ("close date", Output.date(deal.closeDate)), ("pipeline", deal.pipelineID),
      ("stage", "\(deal.stageName) (\(deal.stageID))"), ("state", Output.name(deal.state)),
      ("probability", "\(deal.probability)%\(deal.probabilityOverridden ? " (set by owner)" : "")"),
      ("forecast", Output.name(deal.forecastCategory)), ("next step", deal.nextStep), ("lost reason", deal.lostReason),
      ("competitors", deal.competitors.joined(separator: ", ")), ("source lead", deal.sourceLeadID),
      ("tags", deal.tags.joined(separator: ", ")), ("owner", deal.ownerID), ("etag", deal.etag),
      ("in stage since", Output.time(deal.stageEnterTime)), ("closed", Output.time(deal.closeTime)),
      ("last activity", Output.time(deal.lastActivityTime)), ("created", Output.time(deal.createTime)),
      ("updated", Output.time(deal.updateTime)),
    ])
  }
}

/// The deal fields a command may set; only those given are sent (and named in the update mask).
struct OpportunityFieldOptions: ParsableArguments {
  @Option(help: "Name.") var name: String?
  @Option(help: "Account id.") var account: String?
  @Option(help: "Primary contact id.") var primaryContact: String?
  @Option(help: "Amount, e.g. \"USD 48000\".") var amount: String?
  @Option(help: "Close date, YYYY-MM-DD.") var closeDate: String?
  @Option(help: "Probability 0-100 (overrides the stage's).") var probability: Int32?
  @Option(help: "pipeline, best_case, commit or omitted (overrides the stage's).") var forecast: String?
  @Option(help: "Next step.") var nextStep: String?
  @Option(help: "Competitor; repeat for several.") var competitor: [String] = []
  @Option(help: "Source lead id.") var sourceLead: String?
  @Option(help: "Description.") var description: String?
  @Option(help: "External id.") var externalID: String?
  @Option(help: "Tag; repeat for several (replaces all tags on update).") var tag: [String] = []
  @Option(help: "Owner's user id.") var owner: String?

  /// Writes the given options into `deal` and returns their field-mask paths.
  func apply(to deal: inout Crm_V1_Opportunity) throws -> [String] {
    var paths: [String] = []
    if let name { deal.name = name; paths.append("name") }
    if let account { deal.accountID = account; paths.append("account_id") }
    if let primaryContact { deal.primaryContactID = primaryContact; paths.append("primary_contact_id") }
    if let amount { deal.amount = try AccountFieldOptions.money(amount); paths.append("amount") }
    if let closeDate { deal.closeDate = try Self.date(closeDate, option: "--close-date"); paths.append("close_date") }
    if let probability { deal.probability = probability; paths.append("probability") }
    if let forecast {
      deal.forecastCategory = try Self.forecast(forecast, allowed: ["pipeline", "best_case", "commit", "omitted", "stage"])
      paths.append("forecast_category")
    }
    if let nextStep { deal.nextStep = nextStep; paths.append("next_step") }
    if !competitor.isEmpty { deal.competitors = competitor; paths.append("competitors") }
    if let sourceLead { deal.sourceLeadID = sourceLead; paths.append("source_lead_id") }
    if let description { deal.description_p = description; paths.append("description") }
    if let externalID { deal.externalID = externalID; paths.append("external_id") }
    if !tag.isEmpty { deal.tags = tag; paths.append("tags") }
    if let owner { deal.ownerID = owner; paths.append("owner_id") }
    return paths
  }

  /// Parses `YYYY-MM-DD` (the server checks the day exists).
  static func date(_ text: String, option: String) throws -> Crm_V1_Date {
    let parts = text.split(separator: "-").compactMap { Int32($0) }
    guard parts.count == 3 else { throw ValidationError("\(option) must look like 2027-03-31") }
    return .with {
      $0.year = parts[0]
      $0.month = parts[1]
      $0.day = parts[2]
    }
  }

  /// A forecast category by name ("stage" is UNSPECIFIED: follow the stage).
  static func forecast(_ text: String, allowed: [String]) throws -> Crm_V1_ForecastCategory {
    let categories: [String: Crm_V1_ForecastCategory] = [
      "pipeline": .pipeline, "best_case": .bestCase, "commit": .commit, "closed": .closed, "omitted": .omitted,
      "stage": .unspecified,
    ]
    guard allowed.contains(text.lowercased()), let value = categories[text.lowercased()] else {
      throw ValidationError("--forecast must be one of \(allowed.joined(separator: ", "))")
    }
    return value
  }
}

extension Opportunities {
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a deal (in the default pipeline's first stage unless told otherwise).")
    @OptionGroup var client: ClientOptions
    @OptionGroup var fields: OpportunityFieldOptions
    @Option(help: "Pipeline id (default: the tenant's default pipeline).") var pipeline: String?
    @Option(help: "Stage id or name (default: the pipeline's first open stage).") var stage: String?
    @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?

    func run() async throws {
      try await runReportingErrors {
        var deal = Crm_V1_Opportunity()
        _ = try fields.apply(to: &deal)
        deal.pipelineID = pipeline ?? ""
        let created = try await client.withClient { client, metadata in
          let service = Opportunities.service(client)
          deal.stageID = try await Opportunities.stageID(stage, service: service, metadata: metadata)
          return try await service.createOpportunity(
            .with {
              $0.opportunity = deal
              $0.requestID = requestID ?? ""
            }, metadata: metadata)
        }
        try Opportunities.printDeal(created, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one deal.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let deal = try await client.withClient { client, metadata in
          try await Opportunities.service(client).getOpportunity(.with { $0.id = id }, metadata: metadata)
        }
        try Opportunities.printDeal(deal, json: client.json)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List deals, one page at a time.",
      discussion:
        "Example: crm opportunities list --state open --close-from 2027-01-01 --close-to 2027-03-31 --min-amount \"USD 10000\"")
    @OptionGroup var client: ClientOptions
    @Option(help: "Owner's user id.") var owner: String?
    @Option(help: "Team id (and the teams below it).") var team: String?
    @Option(help: "Account id.") var account: String?
    @Option(help: "Pipeline id.") var pipeline: String?
    @Option(help: "Stage id or name.") var stage: String?
    @Option(help: "open, won or lost.") var state: String?
    @Option(help: "pipeline, best_case, commit, closed or omitted.") var forecast: String?
    @Option(help: "Close date on or after, YYYY-MM-DD.") var closeFrom: String?
    @Option(help: "Close date on or before, YYYY-MM-DD.") var closeTo: String?
    @Option(help: "Amount at least, e.g. \"USD 10000\".") var minAmount: String?
    @Option(help: "Amount at most, e.g. \"USD 50000\".") var maxAmount: String?
    @Option(help: "Name prefix (case-insensitive).") var namePrefix: String?
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ListOpportunitiesRequest()
        request.ownerID = owner ?? ""
        request.teamID = team ?? ""
        request.accountID = account ?? ""
        request.pipelineID = pipeline ?? ""
        if let state {
          let states: [String: Crm_V1_StageCategory] = ["open": .open, "won": .won, "lost": .lost]
          guard let value = states[state] else { throw ValidationError("--state must be open, won or lost") }
          request.state = value
        }
        if let forecast {
          request.forecastCategory = try OpportunityFieldOptions.forecast(
            forecast, allowed: ["pipeline", "best_case", "commit", "closed", "omitted"])
        }
        if let closeFrom { request.closeDateFrom = try OpportunityFieldOptions.date(closeFrom, option: "--close-from") }
        if let closeTo { request.closeDateTo = try OpportunityFieldOptions.date(closeTo, option: "--close-to") }
        if let minAmount { request.minAmount = try AccountFieldOptions.money(minAmount) }
        if let maxAmount { request.maxAmount = try AccountFieldOptions.money(maxAmount) }
        request.namePrefix = namePrefix ?? ""
        request.pageSize = limit
        request.pageToken = paging.pageToken
        let response = try await client.withClient { client, metadata in
          let service = Opportunities.service(client)
          request.stageID = try await Opportunities.stageID(stage, service: service, metadata: metadata)
          return try await service.listOpportunities(request, metadata: metadata)
        }
        try Opportunities.printDeals(response.opportunities, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change the given fields of a deal (the stage moves with move, win, lose and reopen).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String
    @OptionGroup var fields: OpportunityFieldOptions
    @Option(help: "The etag you read; the update fails if the deal changed since.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        var deal = Crm_V1_Opportunity()
        deal.id = id
        deal.etag = etag ?? ""
        let paths = try fields.apply(to: &deal)
        guard !paths.isEmpty else { throw CLIError(message: "nothing to change: pass at least one field option", code: 2) }
        let updated = try await client.withClient { client, metadata in
          try await Opportunities.service(client).updateOpportunity(
            .with {
              $0.opportunity = deal
              $0.updateMask = .with { $0.paths = paths }
            }, metadata: metadata)
        }
        try Opportunities.printDeal(updated, json: client.json)
      }
    }
  }

  struct Move: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move an open deal to another stage (see crm pipelines list).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String
    @Option(help: "The stage: its id or its name, e.g. Proposal.") var stage: String
    @Option(help: "Probability 0-100 in the new stage (default: the stage's).") var probability: Int32?
    @Option(help: "Why it was lost (for a lost stage).") var reason: String?
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await Opportunities.changeStage(client, stage: stage) { service, stageID, metadata in
        try await service.moveOpportunityStage(
          .with {
            $0.id = id
            $0.stageID = stageID
            $0.etag = etag ?? ""
            if let probability { $0.probability = probability }
            $0.lostReason = reason ?? ""
          }, metadata: metadata)
      }
    }
  }

  struct Win: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Close a deal as won.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String
    @Option(help: "A won stage (default: the pipeline's first).") var stage: String?
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await Opportunities.changeStage(client, stage: stage) { service, stageID, metadata in
        try await service.closeOpportunityWon(
          .with {
            $0.id = id
            $0.stageID = stageID
            $0.etag = etag ?? ""
          }, metadata: metadata)
      }
    }
  }

  struct Lose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Close a deal as lost, with the reason.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String
    @Option(help: "Why it was lost.") var reason: String
    @Option(help: "A lost stage (default: the pipeline's first).") var stage: String?
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await Opportunities.changeStage(client, stage: stage) { service, stageID, metadata in
        try await service.closeOpportunityLost(
          .with {
            $0.id = id
            $0.lostReason = reason
            $0.stageID = stageID
            $0.etag = etag ?? ""
          }, metadata: metadata)
      }
    }
  }

  struct Reopen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reopen a won or lost deal.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String
    @Option(help: "An open stage (default: the last open stage it was in).") var stage: String?
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await Opportunities.changeStage(client, stage: stage) { service, stageID, metadata in
        try await service.reopenOpportunity(
          .with {
            $0.id = id
            $0.stageID = stageID
            $0.etag = etag ?? ""
          }, metadata: metadata)
      }
    }
  }

  struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The stages a deal went through and the time spent in each.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The opportunity id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { client, metadata in
          try await Opportunities.service(client).getStageHistory(.with { $0.opportunityID = id }, metadata: metadata)
        }
        if client.json { return print(try Output.json(response)) }
        func span(_ duration: Google_Protobuf_Duration) -> String {
          let minutes = duration.seconds / 60
          return minutes >= 1440 ? "\(minutes / 1440)d \(minutes % 1440 / 60)h" : "\(minutes / 60)h \(minutes % 60)m"
        }
        Output.printTable(
          ["WHEN", "FROM", "TO", "AMOUNT", "PROB", "STAYED", "BY"],
          response.changes.map {
            [
              Output.time($0.changeTime), $0.fromStageName, $0.toStageName, Output.money($0.amount), "\($0.probability)%",
              span($0.duration), String($0.changeUserID.prefix(8)),
            ]
          })
      }
    }
  }
}
