import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ScoringService`: learned lead scoring (docs/scoring.md).
public struct ScoringService: Crm_V1_ScoringService.SimpleServiceProtocol {
  let scoring: ScoringStore

  /// A service over the scoring store.
  public init(scoring: ScoringStore) {
    self.scoring = scoring
  }

  public func getScoringModel(request: Crm_V1_GetScoringModelRequest, context: ServerContext) async throws
    -> Crm_V1_GetScoringModelResponse
  {
    let call = try RequestContext.require()
    let (latest, inForce) = try await scoring.models(principal: call.principal)
    let settings = try await scoring.settings(principal: call.principal)
    return .with {
      $0.learned = inForce != nil
      if let inForce { $0.inForce = .init(inForce) }
      if let latest, latest.version != inForce?.version { $0.latest = .init(latest) }
      $0.settings = .init(settings)
      $0.summary = Self.summary(latest: latest, inForce: inForce, settings: settings)
    }
  }

  public func trainScoringModel(request: Crm_V1_TrainScoringModelRequest, context: ServerContext) async throws
    -> Crm_V1_TrainScoringModelResponse
  {
    let call = try RequestContext.require()
    let clock = ContinuousClock()
    let started = clock.now
    let (run, scored, trainingTime) = try await scoring.train(principal: call.principal)
    let total = clock.now - started
    return .with {
      $0.model = .init(run)
      $0.scoredLeads = Int64(scored)
      $0.trainingDuration = .init(trainingTime)
      $0.scoringDuration = .init(total - trainingTime)
    }
  }

  public func getScoringSettings(request: Crm_V1_GetScoringSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ScoringSettings
  {
    let call = try RequestContext.require()
    return .init(try await scoring.settings(principal: call.principal))
  }

  public func updateScoringSettings(request: Crm_V1_UpdateScoringSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ScoringSettings
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let given = request.settings
    let window = given.windowDays == 0 ? 90 : Int(given.windowDays)
    let leads = given.minimumLeads == 0 ? 1_000 : Int(given.minimumLeads)
    let conversions = given.minimumConversions == 0 ? 120 : Int(given.minimumConversions)
    if !(7...365).contains(window) { violations.add("settings.window_days", "must be 7 to 365", reason: "OUT_OF_RANGE") }
    if !(100...1_000_000).contains(leads) {
      violations.add("settings.minimum_leads", "must be 100 to 1,000,000", reason: "OUT_OF_RANGE")
    }
    if !(10...1_000_000).contains(conversions) {
      violations.add("settings.minimum_conversions", "must be 10 to 1,000,000", reason: "OUT_OF_RANGE")
    } else if conversions > leads {
      violations.add("settings.minimum_conversions", "cannot exceed minimum_leads", reason: "INVALID")
    }
    try violations.check()
    return .init(
      try await scoring.updateSettings(
        ScoringSettings(windowDays: window, minimumLeads: leads, minimumConversions: conversions), principal: call.principal))
  }

  /// Which score the tenant's leads carry, and why, in a sentence.
  static func summary(latest: ScoringModelRun?, inForce: ScoringModelRun?, settings: ScoringSettings) -> String {
    var text: String
    if let inForce, let model = inForce.model {
      text = String(
        format: "Scores are learned: model %d, held-out AUC %.3f on %d leads, trained on %d.", inForce.version, model.auc,
        model.holdoutSize, model.trainingSize)
      if let latest, latest.version != inForce.version, let reason = latest.statusReason {
        text += " The newest run (\(latest.version)) is not in force: \(sentence(reason))"
      }
    } else if let latest {
      text = "Scores come from rules only: \(sentence(latest.statusReason ?? "no model is in force"))"
    } else {
      text =
        "Scores come from rules only: no model trained yet (the job trains weekly; a model needs \(settings.minimumLeads) "
        + "leads with a known outcome and \(settings.minimumConversions) conversions within \(settings.windowDays) days)."
    }
    return text
  }

  /// `reason` ending in exactly one full stop (stored reasons may or may not end in one).
  static func sentence(_ reason: String) -> String { reason.hasSuffix(".") ? reason : reason + "." }
}

extension Crm_V1_ScoringSettings {
  init(_ settings: ScoringSettings) {
    self.init()
    windowDays = Int32(settings.windowDays)
    minimumLeads = Int32(settings.minimumLeads)
    minimumConversions = Int32(settings.minimumConversions)
  }
}

extension Crm_V1_ScoringModel {
  init(_ run: ScoringModelRun) {
    self.init()
    version = Int32(run.version)
    status =
      switch run.status {
      case .active: .active
      case .noSignal: .noSignal
      case .insufficientHistory: .insufficientHistory
      }
    statusReason = run.statusReason ?? ""
    trainTime = .init(run.trainedAt)
    trainedBy = run.trainedBy?.lowercasedString ?? ""
    windowDays = Int32(run.windowDays)
    historyLeads = Int32(clamping: run.historyLeads)
    historyConversions = Int32(clamping: run.historyConversions)
    if let model = run.model {
      trainingLeads = Int32(clamping: model.trainingSize)
      trainingConversions = Int32(clamping: model.trainingConversions)
      holdoutLeads = Int32(clamping: model.holdoutSize)
      holdoutConversions = Int32(clamping: model.holdoutConversions)
      auc = model.auc
      aucStandardError = model.aucStandardError
      intercept = model.intercept
      weights = model.weights.map { weight in
        .with {
          $0.feature = weight.feature
          $0.value = weight.value
          $0.weight = weight.weight
          $0.leads = Int32(clamping: weight.support)
          $0.conversions = Int32(clamping: weight.conversions)
        }
      }
      tierCutoffs = model.tierCutoffs.map { Int32($0) }
      regularization = model.regularization
    }
    scoredLeads = Int64(run.scoredLeads)
    if let pass = run.lastFullPassAt { lastFullPassTime = .init(pass) }
  }
}
