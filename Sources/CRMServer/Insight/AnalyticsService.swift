import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.AnalyticsService`: pipeline and funnel analytics (docs/analytics.md).
public struct AnalyticsService: Crm_V1_AnalyticsService.SimpleServiceProtocol {
  let analytics: AnalyticsStore
  let now: @Sendable () -> Timestamp

  /// A service over the analytics store.
  public init(analytics: AnalyticsStore, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.analytics = analytics
    self.now = now
  }

  /// The most sources or campaigns a request may name.
  static let maxFilterValues = 100

  public func getPipelineAnalytics(request: Crm_V1_GetPipelineAnalyticsRequest, context: ServerContext) async throws
    -> Crm_V1_PipelineAnalytics
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let subject = ForecastService.subject(
      userID: request.userID, teamID: request.teamID, company: request.company, into: &violations)
    let period = violations.text("period", request.period, maxLength: 20)
    let pipeline = RequestFields.optionalID(request.pipelineID, field: "pipeline_id", into: &violations)
    let sources = Self.sources(request.sources, into: &violations)
    try violations.check()
    let report = try await analytics.pipeline(
      subject: subject, period: period, pipeline: pipeline, sources: sources, principal: call.principal)
    var analytics = Crm_V1_PipelineAnalytics(report, readTime: now())
    // The money sums deal amounts: not for a role that may not see them (a sum over one deal is its amount).
    if !call.principal.canRead(.opportunity, "amount") { analytics.currencies = [] }
    return analytics
  }

  public func getLeadFunnel(request: Crm_V1_GetLeadFunnelRequest, context: ServerContext) async throws -> Crm_V1_LeadFunnel {
    let call = try RequestContext.require()
    var violations = Violations()
    let subject = ForecastService.subject(
      userID: request.userID, teamID: request.teamID, company: request.company, into: &violations)
    let period = violations.text("period", request.period, maxLength: 20)
    let sources = Self.sources(request.sources, into: &violations)
    if request.campaigns.count > Self.maxFilterValues {
      violations.add("campaigns", "names at most \(Self.maxFilterValues) campaigns", reason: "OUT_OF_RANGE")
    }
    var campaigns: Set<String> = []
    for (index, campaign) in request.campaigns.prefix(Self.maxFilterValues).enumerated() {
      if campaign.isEmpty { violations.add("campaigns[\(index)]", "is empty", reason: "INVALID") }
      if let name = violations.text("campaigns[\(index)]", campaign, maxLength: 255) { campaigns.insert(name) }
    }
    try violations.check()
    let report = try await analytics.leadFunnel(
      subject: subject, period: period, sources: sources, campaigns: campaigns, principal: call.principal)
    return .init(report, readTime: now())
  }

  static func sources(_ sources: [Crm_V1_LeadSource], into violations: inout Violations) -> Set<LeadSource> {
    if sources.count > maxFilterValues {
      violations.add("sources", "names at most \(maxFilterValues) sources", reason: "OUT_OF_RANGE")
    }
    return Set(
      sources.prefix(maxFilterValues).enumerated().map { index, source in
        LeadSource(source, field: "sources[\(index)]", into: &violations)
      })
  }
}

extension Crm_V1_PipelineAnalytics {
  init(_ report: PipelineAnalyticsReport, readTime: Timestamp) {
    self.init()
    period = .init(report.period)
    pipelineID = report.pipelineID.lowercasedString
    pipelineName = report.pipelineName
    userID = report.userID?.lowercasedString ?? ""
    teamID = report.teamID?.lowercasedString ?? ""
    stages = report.stages.map { stage in
      .with {
        $0.stageID = stage.id.lowercasedString
        $0.name = stage.name
        $0.position = Int32(clamping: stage.position)
        $0.category = .init(stage.category)
        $0.entered = Int64(stage.entered)
        $0.advanced = Int64(stage.advanced)
        $0.won = Int64(stage.won)
        $0.lost = Int64(stage.lost)
        if stage.category == .open { $0.conversionRate = stage.conversionRate }
        $0.completedStays = Int64(stage.completedStays)
        if let median = stage.medianStaySeconds { $0.medianTimeInStage = .init(rounding: median, rule: .toNearestOrAwayFromZero) }
        if let p90 = stage.p90StaySeconds { $0.p90TimeInStage = .init(rounding: p90, rule: .toNearestOrAwayFromZero) }
        $0.currentDeals = Int64(stage.currentDeals)
        if let entry = stage.earliestCurrentEntry {
          $0.longestCurrentStay = .init(microseconds: max(0, readTime.microsecondsSinceEpoch - entry.microsecondsSinceEpoch))
        }
      }
    }
    wonDeals = Int64(report.won)
    lostDeals = Int64(report.lost)
    winRate = report.winRate
    if let average = report.averageCycleSeconds { averageSalesCycle = .init(rounding: average, rule: .toNearestOrAwayFromZero) }
    if let median = report.medianCycleSeconds { medianSalesCycle = .init(rounding: median, rule: .toNearestOrAwayFromZero) }
    currencies = report.currencies.map { figures in
      .with {
        $0.currencyCode = figures.currency
        $0.wonDeals = Int64(figures.wonDeals)
        $0.wonAmount = .init(figures.wonAmount)
        if let average = figures.averageWonAmount { $0.averageWonAmount = .init(average) }
        $0.openDeals = Int64(figures.openDeals)
        $0.openAmount = .init(figures.openAmount)
        if let velocity = figures.velocityPerDay(
          won: report.won, closed: report.won + report.lost, averageCycleSeconds: report.averageCycleSeconds)
        {
          $0.velocityPerDay = .init(velocity)
        }
      }
    }
    openDeals = Int64(report.openDeals)
    self.readTime = .init(readTime)
  }
}

extension Crm_V1_LeadFunnel {
  init(_ report: LeadFunnelReport, readTime: Timestamp) {
    self.init()
    period = .init(report.period)
    userID = report.userID?.lowercasedString ?? ""
    teamID = report.teamID?.lowercasedString ?? ""
    total = .init(report.total)
    bySource = report.bySource.map(Crm_V1_LeadFunnelRow.init)
    byCampaign = report.byCampaign.map(Crm_V1_LeadFunnelRow.init)
    campaignsTruncated = report.campaignsTruncated
    self.readTime = .init(readTime)
  }
}

extension Crm_V1_LeadFunnelRow {
  init(_ row: LeadFunnelReport.Row) {
    self.init()
    if let rowSource = row.source { source = .init(rowSource) }
    campaign = row.campaign ?? ""
    stages = LeadFunnelReport.Step.allCases.map { step in
      .with {
        $0.step = .init(step)
        $0.leads = Int64(row.reached[step] ?? 0)
        $0.rateFromPrevious = row.rateFromPrevious(step)
        $0.rateFromCreated = row.rateFromCreated(step)
        if let median = row.medianSeconds[step] { $0.medianTime = .init(rounding: median, rule: .toNearestOrAwayFromZero) }
      }
    }
    disqualified = Int64(row.disqualified)
    open = Int64(row.open)
  }
}

extension Crm_V1_FunnelStep {
  init(_ step: LeadFunnelReport.Step) {
    switch step {
    case .created: self = .created
    case .working: self = .working
    case .qualified: self = .qualified
    case .converted: self = .converted
    }
  }
}
