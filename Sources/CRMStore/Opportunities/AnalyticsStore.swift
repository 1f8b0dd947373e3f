public import CRMCore
public import Foundation
import LibPQ

/// Pipeline and funnel analytics (docs/analytics.md): aggregates over the deals' stage history and
/// the leads' funnel steps, for the forecast's subjects and periods — a user with everyone below
/// them, a team, or the company — and with the forecast's reach (``ForecastStore``).
public struct AnalyticsStore: Sendable {
  let database: Database
  let forecasts: ForecastStore

  /// A store over `database`; the forecast store resolves subjects and periods (its clock decides
  /// which period "today" is in).
  public init(database: Database, forecasts: ForecastStore) {
    self.database = database
    self.forecasts = forecasts
  }

  // MARK: - Pipeline

  /// The analytics of `pipeline` (default the tenant's default pipeline) for `subject` in `period`,
  /// counting only deals converted from leads of `sources` when any are named.
  public func pipeline(
    subject: ForecastSubject?, period: String?, pipeline: UUID?, sources: Set<LeadSource>, principal: Principal
  ) async throws -> PipelineAnalyticsReport {
    let tenant = principal.tenantID
    let scope = try await forecasts.resolve(subject: subject, period: period, principal: principal)
    let window = Window(scope.period)
    let pipelineID: PostgresQuery = """
      (SELECT id FROM pipelines WHERE tenant_id = \(tenant)
        AND CASE WHEN \(pipeline)::uuid IS NULL THEN is_default ELSE id = \(pipeline) END)
      """
    let deals = Self.dealFilter(tenant: tenant, pipeline: pipelineID, owners: Self.owners(scope), sources: sources)
    let report: PipelineAnalyticsReport? = try await database.read(
      tenant,
      [
        """
        SELECT p.id, p.name, s.id AS stage_id, s.name AS stage_name, s.position, s.category, s.archived_at IS NOT NULL AS archived
        FROM pipelines p JOIN pipeline_stages s ON s.tenant_id = p.tenant_id AND s.pipeline_id = p.id
        WHERE p.tenant_id = \(tenant) AND p.id = \(pipelineID)
        ORDER BY s.position, s.id
        """,
        Self.closedQuery(deals, window: window),
        Self.openQuery(deals),
        Self.enteredQuery(tenant: tenant, pipeline: pipelineID, deals: deals, window: window),
        Self.staysQuery(tenant: tenant, pipeline: pipelineID, deals: deals, window: window),
      ]
    ) { results in
      guard let first = results[0].rows.first else { return nil }
      var stages: [UUID: PipelineAnalyticsReport.Stage] = [:]
      var order: [UUID] = []
      var archived: Set<UUID> = []
      for row in results[0].rows {
        let id: UUID = try row.decode("stage_id")
        stages[id] = .init(
          id: id, name: try row.decode("stage_name"), position: try row.decode("position"),
          category: StageCategory(rawValue: try row.decode("category")) ?? .open)
        order.append(id)
        if try row.decode("archived") as Bool { archived.insert(id) }
      }
      var report = PipelineAnalyticsReport(
        period: scope.period, pipelineID: try first.decode("id"), pipelineName: try first.decode("name"),
        userID: scope.user, teamID: scope.team, stages: [], won: 0, lost: 0, averageCycleSeconds: nil,
        medianCycleSeconds: nil, currencies: [], openDeals: 0)
      var currencies: [String: PipelineAnalyticsReport.CurrencyFigures] = [:]
      try Self.readClosed(results[1], into: &report, currencies: &currencies)
      for row in results[2].rows {
        let deals: Int = try row.decode("deals")
        report.openDeals += deals
        if let id: UUID = try row.decode("stage_id"), stages[id] != nil {
          stages[id]!.currentDeals += deals
          let entry: Timestamp? = try row.decode("earliest_entry")
          stages[id]!.earliestCurrentEntry = [stages[id]!.earliestCurrentEntry, entry].compactMap { $0 }.min()
        }
        if let currency: String = try row.decode("amount_currency") {
          currencies[currency, default: .init(currency: currency)].openDeals += deals
          currencies[currency]!.openAmount = currencies[currency]!.openAmount.adding(
            try ForecastStore.nanos(row, "amount", currency: currency))
        }
      }
      for row in results[3].rows {
        let id: UUID = try row.decode("stage_id")
        guard stages[id] != nil else { continue }
        stages[id]!.entered = try row.decode("entered")
        stages[id]!.advanced = try row.decode("advanced")
        stages[id]!.won = try row.decode("won")
        stages[id]!.lost = try row.decode("lost")
      }
      for row in results[4].rows {
        let id: UUID = try row.decode("stage_id")
        guard stages[id] != nil else { continue }
        stages[id]!.completedStays = try row.decode("stays")
        stages[id]!.medianStaySeconds = try row.decode("median")
        stages[id]!.p90StaySeconds = try row.decode("p90")
      }
      // An archived stage is listed while deals still pass through or sit in it.
      report.stages = order.compactMap { stages[$0] }.filter {
        !archived.contains($0.id) || $0.entered + $0.currentDeals + $0.completedStays > 0
      }
      report.currencies = currencies.values.sorted { $0.currency < $1.currency }
      return report
    }
    guard let report else {
      throw CRMError.notFound(pipeline.map { "pipeline \($0.lowercasedString) not found" } ?? "the tenant has no pipeline")
    }
    return report
  }

  /// The period's closed deals: per state and currency, and per state over all currencies (the
  /// sales cycle's average and median).
  static func closedQuery(_ deals: PostgresQuery, window: Window) -> PostgresQuery {
    """
    SELECT state, amount_currency, GROUPING(amount_currency) = 1 AS all_currencies, count(*) AS deals,
      sum(amount_units) * 1000000000 + sum(coalesce(amount_nanos, 0)) AS amount,
      avg(extract(epoch FROM closed_at - created_at))::float8 AS average_cycle,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - created_at)::float8) AS median_cycle
    FROM opportunities o
    WHERE \(deals) AND state <> 'open' AND closed_at >= \(window.start) AND closed_at < \(window.end)
    GROUP BY GROUPING SETS ((state, amount_currency), (state))
    """
  }

  static func readClosed(
    _ result: PostgresResult, into report: inout PipelineAnalyticsReport,
    currencies: inout [String: PipelineAnalyticsReport.CurrencyFigures]
  ) throws {
    for row in result.rows {
      let won = try row.decode("state") as String == StageCategory.won.rawValue
      let deals: Int = try row.decode("deals")
      if try row.decode("all_currencies") as Bool {
        if won {
          report.won = deals
          report.averageCycleSeconds = try row.decode("average_cycle")
          report.medianCycleSeconds = try row.decode("median_cycle")
        } else {
          report.lost = deals
        }
      } else if won, let currency: String = try row.decode("amount_currency") {
        currencies[currency, default: .init(currency: currency)].wonDeals = deals
        currencies[currency]!.wonAmount = try ForecastStore.nanos(row, "amount", currency: currency)
      }
    }
  }

  /// The deals open now, per stage and currency.
  static func openQuery(_ deals: PostgresQuery) -> PostgresQuery {
    """
    SELECT stage_id, amount_currency, count(*) AS deals, min(stage_entered_at) AS earliest_entry,
      sum(amount_units) * 1000000000 + sum(coalesce(amount_nanos, 0)) AS amount
    FROM opportunities o WHERE \(deals) AND state = 'open'
    GROUP BY stage_id, amount_currency
    """
  }

  /// Per stage, the deals that entered it in the period (each once, at its first entry in the
  /// period), and how many of them later reached a later open stage or a won one (in this pipeline),
  /// or are won or lost now.
  static func enteredQuery(tenant: UUID, pipeline: PostgresQuery, deals: PostgresQuery, window: Window) -> PostgresQuery {
    """
    WITH entries AS (
      SELECT DISTINCT ON (h.to_stage_id, h.opportunity_id) h.to_stage_id, h.opportunity_id, h.sequence, o.state
      FROM opportunity_stage_history h
      JOIN opportunities o ON o.tenant_id = h.tenant_id AND o.id = h.opportunity_id
      WHERE h.tenant_id = \(tenant) AND h.pipeline_id = \(pipeline)
        AND h.changed_at >= \(window.start) AND h.changed_at < \(window.end) AND \(deals)
      ORDER BY h.to_stage_id, h.opportunity_id, h.sequence
    )
    SELECT e.to_stage_id AS stage_id, count(*) AS entered,
      count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM opportunity_stage_history n
        JOIN pipeline_stages ns ON ns.tenant_id = n.tenant_id AND ns.id = n.to_stage_id
        WHERE n.tenant_id = \(tenant) AND n.opportunity_id = e.opportunity_id AND n.sequence > e.sequence
          AND n.pipeline_id = \(pipeline)
          AND (ns.category = 'won' OR (ns.category = 'open' AND ns.position > s.position)))) AS advanced,
      count(*) FILTER (WHERE e.state = 'won') AS won,
      count(*) FILTER (WHERE e.state = 'lost') AS lost
    FROM entries e JOIN pipeline_stages s ON s.tenant_id = \(tenant) AND s.id = e.to_stage_id
    GROUP BY e.to_stage_id
    """
  }

  /// Per stage, the stays that ended in the period — a history entry leaving the stage, measured from
  /// the deal's entry before it — with their median and 90th percentile in seconds.
  static func staysQuery(tenant: UUID, pipeline: PostgresQuery, deals: PostgresQuery, window: Window) -> PostgresQuery {
    """
    SELECT h.from_stage_id AS stage_id, count(*) AS stays,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM h.changed_at - p.changed_at)::float8) AS median,
      percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM h.changed_at - p.changed_at)::float8) AS p90
    FROM opportunity_stage_history h
    JOIN opportunities o ON o.tenant_id = h.tenant_id AND o.id = h.opportunity_id
    CROSS JOIN LATERAL (
      SELECT changed_at FROM opportunity_stage_history p
      WHERE p.tenant_id = h.tenant_id AND p.opportunity_id = h.opportunity_id AND p.sequence < h.sequence
      ORDER BY p.sequence DESC LIMIT 1) p
    WHERE h.tenant_id = \(tenant) AND h.pipeline_id = \(pipeline) AND h.from_stage_id IS NOT NULL
      AND h.changed_at >= \(window.start) AND h.changed_at < \(window.end) AND \(deals)
    GROUP BY h.from_stage_id
    """
  }

  /// The deals (alias `o`) of the pipeline that count: not archived, owned by `owners` (nil: anyone),
  /// converted from a lead of `sources` (empty: any deal).
  static func dealFilter(tenant: UUID, pipeline: PostgresQuery, owners: [UUID]?, sources: Set<LeadSource>) -> PostgresQuery {
    var filter: PostgresQuery = "o.tenant_id = \(tenant) AND o.pipeline_id = \(pipeline) AND o.archived_at IS NULL"
    if let owners { filter = "\(filter) AND o.owner_id IN (SELECT unnest(\(owners)::uuid[]))" }
    if !sources.isEmpty {
      filter = """
        \(filter) AND EXISTS (SELECT 1 FROM leads l WHERE l.tenant_id = o.tenant_id AND l.id = o.source_lead_id
          AND l.source = ANY(\(sources.map(\.rawValue).sorted())::text[]))
        """
    }
    return filter
  }

  /// The owners whose records count: the subject and everyone below; nil for the company (everyone,
  /// and records nobody owns).
  static func owners(_ scope: ForecastStore.Scope) -> [UUID]? {
    scope.user == nil && scope.team == nil ? nil : ForecastStore.sorted(scope.owners)
  }

  /// A period's days as an instant range, midnight to midnight UTC.
  struct Window {
    var start: Timestamp
    var end: Timestamp

    init(_ period: ForecastPeriod) {
      start = Timestamp(midnightOf: period.start)
      end = Timestamp(midnightOf: period.end.adding(days: 1))
    }
  }

  // MARK: - Lead funnel

  /// The funnel of the leads `subject` owns (the company: every lead) created in `period`, of
  /// `sources` and `campaigns` when named.
  public func leadFunnel(
    subject: ForecastSubject?, period: String?, sources: Set<LeadSource>, campaigns: Set<String>, principal: Principal
  ) async throws -> LeadFunnelReport {
    let tenant = principal.tenantID
    let scope = try await forecasts.resolve(subject: subject, period: period, principal: principal)
    let window = Window(scope.period)
    var filter: PostgresQuery = """
      tenant_id = \(tenant) AND archived_at IS NULL AND created_at >= \(window.start) AND created_at < \(window.end)
      """
    if let owners = Self.owners(scope) { filter = "\(filter) AND owner_id IN (SELECT unnest(\(owners)::uuid[]))" }
    if !sources.isEmpty { filter = "\(filter) AND source = ANY(\(sources.map(\.rawValue).sorted())::text[])" }
    if !campaigns.isEmpty { filter = "\(filter) AND campaign = ANY(\(campaigns.sorted())::text[])" }
    func median(_ column: String) -> PostgresQuery {
      """
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM \(unsafeSQL: column) - created_at)::float8)
        AS \(unsafeSQL: column)_median
      """
    }
    let rows = try await database.read(
      tenant,
      [
        """
        SELECT source, coalesce(campaign, '') AS campaign, GROUPING(source) = 0 AS by_source,
          GROUPING(coalesce(campaign, '')) = 0 AS by_campaign,
          count(*) AS created, count(worked_at) AS worked, count(qualified_at) AS qualified,
          count(converted_at) AS converted, count(*) FILTER (WHERE status = 'disqualified') AS disqualified,
          count(*) FILTER (WHERE status NOT IN ('converted', 'disqualified')) AS open,
          \(median("worked_at")), \(median("qualified_at")), \(median("converted_at"))
        FROM leads WHERE \(filter)
        GROUP BY GROUPING SETS ((), (source), (coalesce(campaign, '')))
        """
      ]
    ) { results in try results[0].rows.map(Self.funnelRow) }
    let empty = LeadFunnelReport.Row(reached: [.created: 0], medianSeconds: [:], disqualified: 0, open: 0)
    let mostFirst: (LeadFunnelReport.Row, LeadFunnelReport.Row) -> Bool = {
      ($0.created, $1.source?.rawValue ?? $1.campaign ?? "") > ($1.created, $0.source?.rawValue ?? $0.campaign ?? "")
    }
    let campaignRows = rows.filter { $0.campaign != nil }.sorted(by: mostFirst)
    return LeadFunnelReport(
      period: scope.period, userID: scope.user, teamID: scope.team,
      total: rows.first { $0.source == nil && $0.campaign == nil } ?? empty,
      bySource: rows.filter { $0.source != nil }.sorted(by: mostFirst),
      byCampaign: Array(campaignRows.prefix(LeadFunnelReport.maxCampaigns)),
      campaignsTruncated: campaignRows.count > LeadFunnelReport.maxCampaigns)
  }

  static func funnelRow(_ row: PostgresRow) throws -> LeadFunnelReport.Row {
    var reached: [LeadFunnelReport.Step: Int] = [.created: try row.decode("created")]
    var medians: [LeadFunnelReport.Step: Double] = [:]
    for (step, column) in [(LeadFunnelReport.Step.working, "worked"), (.qualified, "qualified"), (.converted, "converted")] {
      reached[step] = try row.decode(column)
      medians[step] = try row.decode("\(column)_at_median")
    }
    return LeadFunnelReport.Row(
      source: try row.decode("by_source") ? LeadSource(rawValue: try row.decode("source")) : nil,
      campaign: try row.decode("by_campaign") ? try row.decode("campaign") as String : nil, reached: reached,
      medianSeconds: medians, disqualified: try row.decode("disqualified"), open: try row.decode("open"))
  }
}
