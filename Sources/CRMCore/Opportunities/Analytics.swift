public import Foundation

/// How a pipeline's deals moved in a fiscal period (docs/analytics.md).
public struct PipelineAnalyticsReport: Sendable, Hashable {
  public var period: ForecastPeriod
  public var pipelineID: UUID
  public var pipelineName: String
  /// The subject: its user (nil for a team without a manager or the company) and team.
  public var userID: UUID?
  public var teamID: UUID?
  /// The pipeline's stages in order.
  public var stages: [Stage]
  /// Deals closed in the period.
  public var won: Int
  public var lost: Int
  /// Creation to close of the deals won in the period, in seconds; nil when none was won.
  public var averageCycleSeconds: Double?
  public var medianCycleSeconds: Double?
  /// One entry per currency met among the period's won deals and the open ones.
  public var currencies: [CurrencyFigures]
  /// Deals open now.
  public var openDeals: Int

  public init(
    period: ForecastPeriod, pipelineID: UUID, pipelineName: String, userID: UUID?, teamID: UUID?, stages: [Stage], won: Int,
    lost: Int, averageCycleSeconds: Double?, medianCycleSeconds: Double?, currencies: [CurrencyFigures], openDeals: Int
  ) {
    self.period = period
    self.pipelineID = pipelineID
    self.pipelineName = pipelineName
    self.userID = userID
    self.teamID = teamID
    self.stages = stages
    self.won = won
    self.lost = lost
    self.averageCycleSeconds = averageCycleSeconds
    self.medianCycleSeconds = medianCycleSeconds
    self.currencies = currencies
    self.openDeals = openDeals
  }

  /// won ÷ (won + lost); 0 when nothing closed.
  public var winRate: Double { Analytics.rate(won, of: won + lost) }

  /// One stage's movement.
  public struct Stage: Sendable, Hashable {
    public var id: UUID
    public var name: String
    public var position: Int
    public var category: StageCategory
    /// Deals that entered it in the period, and of those, how many went on to a later open stage or
    /// were won, were won, were lost — by now.
    public var entered = 0
    public var advanced = 0
    public var won = 0
    public var lost = 0
    /// Stays in it that ended in the period, with their median and 90th percentile in seconds.
    public var completedStays = 0
    public var medianStaySeconds: Double?
    public var p90StaySeconds: Double?
    /// Deals in it now, and when the one there longest entered.
    public var currentDeals = 0
    public var earliestCurrentEntry: Timestamp?

    public init(id: UUID, name: String, position: Int, category: StageCategory) {
      self.id = id
      self.name = name
      self.position = position
      self.category = category
    }

    /// advanced ÷ entered (open stages; 0 when none entered).
    public var conversionRate: Double { Analytics.rate(advanced, of: entered) }
  }

  /// The amounts in one currency.
  public struct CurrencyFigures: Sendable, Hashable {
    public var currency: String
    public var wonDeals: Int
    public var wonAmount: Money
    public var openDeals: Int
    public var openAmount: Money

    public init(currency: String, wonDeals: Int = 0, wonAmount: Money? = nil, openDeals: Int = 0, openAmount: Money? = nil) {
      self.currency = currency
      self.wonDeals = wonDeals
      self.wonAmount = wonAmount ?? .zero(currency)
      self.openDeals = openDeals
      self.openAmount = openAmount ?? .zero(currency)
    }

    /// The won amount ÷ the won deals, rounded half away from zero to the nano; nil when none.
    public var averageWonAmount: Money? {
      wonDeals == 0 ? nil : wonAmount.scaled(by: 1, over: Int128(wonDeals))
    }

    /// Sales velocity per day: open deals × win rate × average won amount ÷ average cycle in days,
    /// where the win rate is `won` of `closed` and a cycle shorter than a day counts as one. Computed
    /// on whole nanos and whole seconds; nil when nothing was won (no average, no cycle).
    public func velocityPerDay(won: Int, closed: Int, averageCycleSeconds: Double?) -> Money? {
      guard let average = averageWonAmount, won > 0, closed > 0, let cycle = averageCycleSeconds else { return nil }
      let seconds = Int128(max(Analytics.secondsPerDay, cycle.rounded()))
      return average.scaled(
        by: Int128(openDeals) * Int128(won) * Int128(Analytics.secondsPerDay), over: Int128(closed) * seconds)
    }
  }
}

/// Leads created in a period and how far they got (docs/analytics.md).
public struct LeadFunnelReport: Sendable, Hashable {
  public var period: ForecastPeriod
  public var userID: UUID?
  public var teamID: UUID?
  public var total: Row
  /// Most leads first.
  public var bySource: [Row]
  /// Most leads first, at most ``LeadFunnelReport/maxCampaigns``.
  public var byCampaign: [Row]
  public var campaignsTruncated: Bool

  public init(
    period: ForecastPeriod, userID: UUID?, teamID: UUID?, total: Row, bySource: [Row], byCampaign: [Row],
    campaignsTruncated: Bool
  ) {
    self.period = period
    self.userID = userID
    self.teamID = teamID
    self.total = total
    self.bySource = bySource
    self.byCampaign = byCampaign
    self.campaignsTruncated = campaignsTruncated
  }

  /// The most campaign rows a funnel lists.
  public static let maxCampaigns = 100

  /// The steps, in order.
  public enum Step: Int, Sendable, Hashable, CaseIterable {
    case created, working, qualified, converted
  }

  /// One funnel: the whole cohort, one source's or one campaign's.
  public struct Row: Sendable, Hashable {
    public var source: LeadSource?
    /// nil on total and source rows; "" for leads without a campaign.
    public var campaign: String?
    /// Leads that reached each step, and the median seconds from creation to it.
    public var reached: [Step: Int]
    public var medianSeconds: [Step: Double]
    public var disqualified: Int
    public var open: Int

    public init(
      source: LeadSource? = nil, campaign: String? = nil, reached: [Step: Int], medianSeconds: [Step: Double],
      disqualified: Int, open: Int
    ) {
      self.source = source
      self.campaign = campaign
      self.reached = reached
      self.medianSeconds = medianSeconds
      self.disqualified = disqualified
      self.open = open
    }

    public var created: Int { reached[.created] ?? 0 }

    /// The step's leads ÷ the previous step's (1 for created).
    public func rateFromPrevious(_ step: Step) -> Double {
      guard let previous = Step(rawValue: step.rawValue - 1) else { return created == 0 ? 0 : 1 }
      return Analytics.rate(reached[step] ?? 0, of: reached[previous] ?? 0)
    }

    /// The step's leads ÷ the leads created.
    public func rateFromCreated(_ step: Step) -> Double { Analytics.rate(reached[step] ?? 0, of: created) }
  }
}

/// Shared arithmetic of the analytics.
public enum Analytics {
  public static let secondsPerDay: Double = 86_400

  /// `part` ÷ `whole`, 0 when `whole` is 0.
  public static func rate(_ part: Int, of whole: Int) -> Double { whole == 0 ? 0 : Double(part) / Double(whole) }
}
