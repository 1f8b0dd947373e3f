import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// Whose numbers and which period: shared by `crm pipelines analytics` and `crm leads funnel`.
struct AnalyticsScope: ParsableArguments {
  @Option(help: "A fiscal year (2027), quarter (2027-Q1) or month (2027-03); default the current forecast period.")
  var period: String?
  @Option(help: "Whose numbers (default yours, with everyone below you).") var user: String?
  @Option(help: "A team's numbers instead.") var team: String?
  @Flag(help: "The whole company's (admins).") var company = false
  @Option(
    name: .customLong("source"), parsing: .singleValue,
    help: "Only leads (deals converted from leads) of this source; repeat for more.")
  var sources: [String] = []

  func validate() throws {
    if [user != nil, team != nil, company].filter({ $0 }).count > 1 {
      throw ValidationError("name one of --user, --team and --company")
    }
    _ = try leadSources()
  }

  func leadSources() throws -> [Crm_V1_LeadSource] {
    try sources.map { text in
      guard let source = text == "unspecified" ? .unspecified : Leads.sources[text] else {
        throw ValidationError("--source must be one of \(Leads.sources.keys.sorted().joined(separator: ", ")) or unspecified")
      }
      return source
    }
  }

  /// A rate as a whole percentage: "40%".
  static func percent(_ rate: Double) -> String { String(format: "%.0f%%", rate * 100) }

  /// A duration in days with one decimal ("12.5d"), or hours under a day ("5.0h"); "" when unset.
  static func span(_ duration: Google_Protobuf_Duration, present: Bool = true) -> String {
    guard present else { return "" }
    let seconds = Double(duration.seconds)
    return seconds < 86_400 ? String(format: "%.1fh", seconds / 3_600) : String(format: "%.1fd", seconds / 86_400)
  }

  /// An amount without its currency (the column names it).
  static func amount(_ money: Crm_V1_Money, present: Bool = true) -> String {
    guard present else { return "" }
    return Output.money(money).split(separator: " ").last.map(String.init) ?? ""
  }

  static func header(_ title: String, _ period: Crm_V1_ForecastPeriod, user: String, team: String) -> String {
    let whose = !team.isEmpty ? "team \(team)" : user.isEmpty ? "company" : "user \(user)"
    return "\(title), \(period.name) (\(Output.date(period.startDate)) – \(Output.date(period.endDate))), \(whose)"
  }
}

/// `crm pipelines analytics`
struct PipelineAnalyticsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "analytics",
    abstract: "How deals moved through a pipeline: conversion and time per stage, win rate, cycle, velocity.",
    discussion: """
      Stage figures follow the deals that entered each stage in the period (CONV: share that moved on
      to a later stage or were won); times in stage are the stays that ended in the period. Win rate,
      won amounts and the sales cycle follow the deals closed in the period; velocity is open deals ×
      win rate × average won amount ÷ average cycle, per day.

      Examples:
        crm pipelines analytics
        crm pipeline analytics --period 2027-Q1 --team TEAM_ID --source partner
      """)

  @OptionGroup var client: ClientOptions
  @OptionGroup var scope: AnalyticsScope
  @Option(help: "The pipeline (default the tenant's default pipeline).") var pipeline: String?

  func run() async throws {
    try await runReportingErrors {
      let sources = try scope.leadSources()
      let report = try await client.withClient { grpc, metadata in
        try await Crm_V1_AnalyticsService.Client(wrapping: grpc).getPipelineAnalytics(
          .with {
            $0.period = scope.period ?? ""
            $0.userID = scope.user ?? ""
            $0.teamID = scope.team ?? ""
            $0.company = scope.company
            $0.pipelineID = pipeline ?? ""
            $0.sources = sources
          }, metadata: metadata)
      }
      if client.json { return try Output.printJSON([report]) }
      print(AnalyticsScope.header("Pipeline \(report.pipelineName)", report.period, user: report.userID, team: report.teamID))
      var summary = "Won \(report.wonDeals), lost \(report.lostDeals)"
      if report.wonDeals + report.lostDeals > 0 { summary += ": win rate \(AnalyticsScope.percent(report.winRate))" }
      if report.hasAverageSalesCycle {
        summary +=
          "; sales cycle \(AnalyticsScope.span(report.averageSalesCycle)) average, "
          + "\(AnalyticsScope.span(report.medianSalesCycle)) median"
      }
      print(summary + "; \(report.openDeals) open deal\(report.openDeals == 1 ? "" : "s")")
      print("")
      Output.printTable(
        ["STAGE", "ENTERED", "ADVANCED", "CONV", "WON", "LOST", "MEDIAN", "P90", "NOW", "LONGEST"],
        report.stages.map { stage in
          let open = stage.category == .open
          return [
            stage.name, String(stage.entered), open ? String(stage.advanced) : "",
            open && stage.entered > 0 ? AnalyticsScope.percent(stage.conversionRate) : "", String(stage.won),
            String(stage.lost), AnalyticsScope.span(stage.medianTimeInStage, present: stage.hasMedianTimeInStage),
            AnalyticsScope.span(stage.p90TimeInStage, present: stage.hasP90TimeInStage), open ? String(stage.currentDeals) : "",
            AnalyticsScope.span(stage.longestCurrentStay, present: stage.hasLongestCurrentStay),
          ]
        })
      guard !report.currencies.isEmpty else { return }
      print("")
      Output.printTable(
        ["CURRENCY", "WON", "WON AMOUNT", "AVERAGE WON", "OPEN", "OPEN AMOUNT", "VELOCITY/DAY"],
        report.currencies.map {
          [
            $0.currencyCode, String($0.wonDeals), AnalyticsScope.amount($0.wonAmount),
            AnalyticsScope.amount($0.averageWonAmount, present: $0.hasAverageWonAmount), String($0.openDeals),
            AnalyticsScope.amount($0.openAmount), AnalyticsScope.amount($0.velocityPerDay, present: $0.hasVelocityPerDay),
          ]
        })
    }
  }
}

/// `crm leads funnel`
struct LeadFunnelCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "funnel",
    abstract: "Leads created in a period and how far they got: working, qualified, converted, by source and campaign.",
    discussion: """
      Each step shows the leads that reached it, the share of the step before, and the median time
      from creation.

      Examples:
        crm leads funnel
        crm leads funnel --period 2027-Q1 --source web_form --campaign spring-launch
      """)

  @OptionGroup var client: ClientOptions
  @OptionGroup var scope: AnalyticsScope
  @Option(name: .customLong("campaign"), parsing: .singleValue, help: "Only leads of this campaign; repeat for more.")
  var campaigns: [String] = []

  func run() async throws {
    try await runReportingErrors {
      let sources = try scope.leadSources()
      let funnel = try await client.withClient { grpc, metadata in
        try await Crm_V1_AnalyticsService.Client(wrapping: grpc).getLeadFunnel(
          .with {
            $0.period = scope.period ?? ""
            $0.userID = scope.user ?? ""
            $0.teamID = scope.team ?? ""
            $0.company = scope.company
            $0.sources = sources
            $0.campaigns = campaigns
          }, metadata: metadata)
      }
      if client.json { return try Output.printJSON([funnel]) }
      print(AnalyticsScope.header("Lead funnel", funnel.period, user: funnel.userID, team: funnel.teamID))
      print("")
      func row(_ label: String, _ row: Crm_V1_LeadFunnelRow) -> [String] {
        [label]
          + row.stages.map { stage in
            stage.step == .created
              ? String(stage.leads)
              : "\(stage.leads) (\(AnalyticsScope.percent(stage.rateFromPrevious)))"
                + (stage.hasMedianTime ? " \(AnalyticsScope.span(stage.medianTime))" : "")
          } + [String(row.disqualified), String(row.open)]
      }
      let rows =
        [row("Total", funnel.total)] + funnel.bySource.map { row("source \(Output.name($0.source))", $0) }
        + funnel.byCampaign.map { row($0.campaign.isEmpty ? "no campaign" : "campaign \($0.campaign)", $0) }
      Output.printTable(["", "CREATED", "WORKING", "QUALIFIED", "CONVERTED", "DISQUALIFIED", "OPEN"], rows)
      if funnel.campaignsTruncated { print("(more campaigns than listed: filter with --campaign)") }
    }
  }
}
