import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm scoring …`: the learned lead-scoring model.
struct ScoringCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scoring",
    abstract: "Learned lead scoring: the model in force, training it, its settings.",
    discussion: """
      Examples:
        crm scoring model              # which score leads carry, the model's AUC and its strongest features
        crm scoring train              # admins: train now and score every lead
        crm scoring settings --window-days 60 --min-leads 500 --min-conversions 60
        crm leads list --order score   # the best leads first
      """,
    subcommands: [Model.self, Train.self, Settings.self],
    defaultSubcommand: Model.self)

  static func client(_ grpc: GRPCClient<HTTP2ClientTransport.Posix>) -> Crm_V1_ScoringService.Client<HTTP2ClientTransport.Posix> {
    Crm_V1_ScoringService.Client(wrapping: grpc)
  }

  /// A model's figures and its strongest weights, up and down.
  static func printModel(_ model: Crm_V1_ScoringModel, weights count: Int) {
    let status = Output.name(model.status).replacingOccurrences(of: "_", with: " ")
    Output.printRecord([
      ("version", String(model.version)), ("status", status), ("why", model.statusReason),
      ("trained", Output.time(model.trainTime) + (model.trainedBy.isEmpty ? " (by the job)" : " by \(model.trainedBy)")),
      ("window", "conversion within \(model.windowDays) days"),
      ("history", "\(model.historyLeads) leads, \(model.historyConversions) converted"),
      (
        "held out",
        model.holdoutLeads == 0
          ? "" : String(format: "%d leads, AUC %.3f ± %.3f", model.holdoutLeads, model.auc, model.aucStandardError)
      ),
      (
        "tiers",
        model.tierCutoffs.isEmpty
          ? "" : "low ≤ \(model.tierCutoffs[0]) < medium ≤ \(model.tierCutoffs[1]) < high ≤ \(model.tierCutoffs[2]) < very high"
      ),
      (
        "scored",
        model.scoredLeads == 0 ? "" : "\(model.scoredLeads) leads, last full pass \(Output.time(model.lastFullPassTime))"
      ),
    ])
    guard !model.weights.isEmpty else { return }
    let sorted = model.weights.sorted { $0.weight > $1.weight }
    let shown =
      Array(sorted.prefix(count)) + Array(sorted.suffix(count).filter { weight in !sorted.prefix(count).contains(weight) })
    print("")
    Output.printTable(
      ["FEATURE", "VALUE", "WEIGHT", "LEADS", "CONVERTED"],
      shown.map {
        [$0.feature, $0.value, String(format: "%+.2f", $0.weight), String($0.leads), String($0.conversions)]
      })
  }

  struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Which score leads carry and why: the model in force, its size, AUC and strongest features.")
    @OptionGroup var client: ClientOptions
    @Option(help: "How many of the strongest positive and negative weights to show.") var weights = 8

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await ScoringCommand.client(grpc).getScoringModel(.init(), metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        print(response.summary)
        if response.hasInForce {
          print("")
          ScoringCommand.printModel(response.inForce, weights: weights)
        }
        if response.hasLatest {
          print("")
          print("Newest run:")
          ScoringCommand.printModel(response.latest, weights: response.hasInForce ? 0 : weights)
        }
      }
    }
  }

  struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Train a model now (admins); when it beats chance it comes into force and every lead is scored.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await ScoringCommand.client(grpc).trainScoringModel(.init(), metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        ScoringCommand.printModel(response.model, weights: 5)
        print("")
        print(
          String(
            format: "trained in %.1f s; %lld leads scored in %.1f s",
            Double(response.trainingDuration.seconds)
              + Double(response.trainingDuration.nanos) / 1e9, response.scoredLeads,
            Double(response.scoringDuration.seconds) + Double(response.scoringDuration.nanos) / 1e9))
      }
    }
  }

  struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the scoring settings, or change them (admins): the window and the history a model needs.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Predict conversion within this many days of creation (7-365).") var windowDays: Int32?
    @Option(help: "Leads with a known outcome a model needs (at least 100).") var minLeads: Int32?
    @Option(help: "Conversions among them a model needs (at least 10).") var minConversions: Int32?

    func run() async throws {
      try await runReportingErrors {
        let settings = try await client.withClient { grpc, metadata in
          let service = ScoringCommand.client(grpc)
          var settings = try await service.getScoringSettings(.init(), metadata: metadata)
          guard windowDays != nil || minLeads != nil || minConversions != nil else { return settings }
          if let windowDays { settings.windowDays = windowDays }
          if let minLeads { settings.minimumLeads = minLeads }
          if let minConversions { settings.minimumConversions = minConversions }
          return try await service.updateScoringSettings(.with { $0.settings = settings }, metadata: metadata)
        }
        if client.json { return print(try Output.json(settings)) }
        Output.printRecord([
          ("window", "\(settings.windowDays) days"), ("minimum leads", String(settings.minimumLeads)),
          ("minimum conversions", String(settings.minimumConversions)),
        ])
      }
    }
  }
}
