public import CRMCore
public import Foundation
import LibPQ

/// Learned lead scoring (docs/scoring.md): trains a tenant's ``LeadScoringModel`` on its own
/// history, keeps every training run, and scores the tenant's leads with the model in force into
/// `lead_scores` — all of them after a training, then the leads that change, and a rolling sweep
/// that catches what changed without an update (new interactions).
public struct ScoringStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp

  /// A store over `database`; `now` is the clock windows and schedules go by.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// The most training leads one run reads (the newest whose outcome is known).
  public static let maxTrainingLeads = 200_000
  /// Leads read, scored and written per transaction of a scoring pass.
  public static let batchSize = 5_000

  // MARK: - Settings

  public func settings(principal: Principal) async throws -> ScoringSettings {
    try await database.read(principal.tenantID, [Self.settingsQuery(principal.tenantID)]) { results in
      try Self.settings(results[0][0])
    }
  }

  /// Replaces the settings (admins).
  public func updateSettings(_ settings: ScoringSettings, principal: Principal) async throws -> ScoringSettings {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try Self.settings(
        try connection.query(
          """
          UPDATE tenants SET scoring_window_days = \(settings.windowDays), scoring_min_leads = \(settings.minimumLeads),
            scoring_min_conversions = \(settings.minimumConversions)
          WHERE id = \(principal.tenantID)
          RETURNING scoring_window_days, scoring_min_leads, scoring_min_conversions
          """)[0])
    }
  }

  static func settingsQuery(_ tenant: UUID) -> PostgresQuery {
    "SELECT scoring_window_days, scoring_min_leads, scoring_min_conversions FROM tenants WHERE id = \(tenant)"
  }

  static func settings(_ row: PostgresRow) throws -> ScoringSettings {
    ScoringSettings(
      windowDays: try row.decode("scoring_window_days"), minimumLeads: try row.decode("scoring_min_leads"),
      minimumConversions: try row.decode("scoring_min_conversions"))
  }

  // MARK: - Models

  /// The newest training run and the model in force (the same run, or an older one when the newest
  /// found no signal); nil before the first run.
  public func models(principal: Principal) async throws -> (latest: ScoringModelRun?, inForce: ScoringModelRun?) {
    let tenant = principal.tenantID
    return try await database.read(
      tenant,
      [
        "SELECT \(unsafeSQL: Self.runColumns) FROM scoring_models WHERE tenant_id = \(tenant) ORDER BY version DESC LIMIT 1",
        """
        SELECT \(unsafeSQL: Self.runColumns) FROM scoring_models WHERE tenant_id = \(tenant) AND status = 'active'
        ORDER BY version DESC LIMIT 1
        """,
      ]
    ) { results in (try results[0].rows.first.map(Self.run), try results[1].rows.first.map(Self.run)) }
  }

  /// Trains a model now (admins), and when it is put in force, scores every lead before answering.
  public func train(principal: Principal) async throws -> (run: ScoringModelRun, scored: Int, trainingTime: Duration) {
    try principal.requireAdmin()
    let clock = ContinuousClock()
    let started = clock.now
    var run = try await train(tenant: principal.tenantID, by: principal.userID)
    let trainingTime = clock.now - started
    guard run.status == .active else { return (run, 0, trainingTime) }
    run.scoredLeads = try await scoreAll(tenant: principal.tenantID, version: run.version)
    run.lastFullPassAt = now()
    return (run, run.scoredLeads, trainingTime)
  }

  /// One training run for `tenant`: reads the history, fits a model when there is enough of it, and
  /// records the run — in force when the model ranks held-out leads better than chance.
  func train(tenant: UUID, by user: UUID?) async throws -> ScoringModelRun {
    let now = now()
    let (settings, examples) = try await database.read(
      tenant, [Self.settingsQuery(tenant), Self.historyQuery(tenant: tenant, now: now)]
    ) { results in
      let settings = try Self.settings(results[0][0])
      return (settings, try results[1].rows.map { try Self.example($0, now: now) })
    }
    let conversions = examples.filter(\.converted).count
    var status = ScoringModelRun.Status.insufficientHistory
    var reason: String?
    var model: LeadScoringModel?
    if examples.count < settings.minimumLeads || conversions < settings.minimumConversions {
      reason =
        "the history holds \(examples.count) leads with a known outcome and \(conversions) conversions within "
        + "\(settings.windowDays) days; a model needs \(settings.minimumLeads) and \(settings.minimumConversions). "
        + "Leads keep their rule-based score."
    } else {
      let fitted = LeadScoringTrainer(windowDays: settings.windowDays).train(examples)
      model = fitted
      if fitted.hasSignal {
        status = .active
      } else {
        status = .noSignal
        reason = String(
          format: "held-out AUC %.3f ± %.3f is no better than chance; the model in force (if any) stays, and leads "
            + "without one keep their rule-based score", fitted.auc, fitted.aucStandardError)
      }
    }
    let json = try model.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
    let (finalStatus, finalReason, auc) = (status, reason, model?.auc)
    return try await database.withTenant(tenant) { connection in
      try Self.run(
        try connection.query(
          """
          INSERT INTO scoring_models (tenant_id, version, status, status_reason, trained_at, trained_by, window_days,
            history_leads, history_conversions, model, auc)
          SELECT \(tenant), coalesce(max(version), 0) + 1, \(finalStatus.rawValue), \(finalReason), \(now), \(user),
            \(settings.windowDays), \(examples.count), \(conversions), \(json)::jsonb, \(auc)
          FROM scoring_models WHERE tenant_id = \(tenant)
          RETURNING \(unsafeSQL: Self.runColumns)
          """)[0])
    }
  }

  /// The newest leads whose outcome is known — converted or disqualified, or older than the window —
  /// with their features as of their conversion or the window's end, and whether they converted
  /// within the window.
  static func historyQuery(tenant: UUID, now: Timestamp) -> PostgresQuery {
    """
    SELECT l.id, l.source, l.campaign, l.region_code, l.industry, l.company_size, l.title,
      split_part(l.email_addresses[1], '@', 2) AS email_domain, a.as_of, a.converted,
      e.interactions, e.last_interaction_at
    FROM tenants t
    JOIN leads l ON l.tenant_id = t.id
    CROSS JOIN LATERAL (
      SELECT coalesce(l.converted_at <= l.created_at + make_interval(days => t.scoring_window_days), false) AS converted,
        CASE WHEN l.converted_at <= l.created_at + make_interval(days => t.scoring_window_days) THEN l.converted_at
          ELSE least(l.created_at + make_interval(days => t.scoring_window_days), \(now)::timestamptz) END AS as_of) a
    CROSS JOIN LATERAL (\(Self.engagement("l", asOf: "a.as_of"))) e
    WHERE t.id = \(tenant) AND l.tenant_id = \(tenant) AND l.archived_at IS NULL
      AND (l.status IN ('converted', 'disqualified')
        OR l.created_at <= \(now)::timestamptz - make_interval(days => t.scoring_window_days))
    ORDER BY l.created_at DESC
    LIMIT \(maxTrainingLeads)
    """
  }

  /// A lead's interactions before `asOf`: how many, and the last one's time.
  static func engagement(_ lead: String, asOf: PostgresQuery) -> PostgresQuery {
    """
    SELECT count(*)::int AS interactions, max(il.occurred_at) AS last_interaction_at FROM interaction_links il
    WHERE il.tenant_id = \(unsafeSQL: lead).tenant_id AND il.record_type = 'lead' AND il.record_id = \(unsafeSQL: lead).id
      AND il.occurred_at < \(asOf)
    """
  }

  static func input(_ row: PostgresRow, asOf: Timestamp) throws -> LeadScoringInput {
    let last: Timestamp? = try row.decode("last_interaction_at")
    let domain: String? = try row.decode("email_domain")
    return LeadScoringInput(
      source: LeadSource(rawValue: try row.decode("source")) ?? .unspecified, campaign: try row.decode("campaign"),
      regionCode: try row.decode("region_code"), industry: try row.decode("industry"),
      companySize: try row.decode("company_size"), title: try row.decode("title"),
      emailDomain: domain?.isEmpty == false ? domain : nil, interactions: try row.decode("interactions"),
      daysSinceLastInteraction: last.map { Int((asOf.microsecondsSinceEpoch - $0.microsecondsSinceEpoch) / 86_400_000_000) })
  }

  static func example(_ row: PostgresRow, now: Timestamp) throws -> LeadScoringTrainer.Example {
    let id: UUID = try row.decode("id")
    // One lead in five is held out, by the last byte of its (random) id: the same split on every run.
    return .init(
      input: try input(row, asOf: try row.decode("as_of")), converted: try row.decode("converted"),
      heldOut: id.uuid.15 % 5 == 0)
  }

  static let runColumns = """
    version, status, status_reason, trained_at, trained_by, window_days, history_leads, history_conversions, model,
    scored_leads, last_full_pass_at
    """

  static func run(_ row: PostgresRow) throws -> ScoringModelRun {
    let json: String? = try row.decode("model")
    return ScoringModelRun(
      version: try row.decode("version"),
      status: ScoringModelRun.Status(rawValue: try row.decode("status")) ?? .insufficientHistory,
      statusReason: try row.decode("status_reason"), trainedAt: try row.decode("trained_at"),
      trainedBy: try row.decode("trained_by"), windowDays: try row.decode("window_days"),
      historyLeads: try row.decode("history_leads"), historyConversions: try row.decode("history_conversions"),
      model: try json.map { try JSONDecoder().decode(LeadScoringModel.self, from: Data($0.utf8)) },
      scoredLeads: try row.decode("scored_leads"), lastFullPassAt: try row.decode("last_full_pass_at"))
  }

  // MARK: - Scoring

  /// Scores every live lead of `tenant` with model `version`, batch by batch; returns how many.
  func scoreAll(tenant: UUID, version: Int) async throws -> Int {
    guard let scorer = try await scorer(tenant: tenant, version: version) else { return 0 }
    var after: UUID?
    var scored = 0
    repeat {
      let (count, last) = try await scoreBatch(tenant: tenant, scorer: scorer, version: version, after: after)
      scored += count
      after = last
    } while after != nil
    let total = scored
    try await database.withTenant(tenant) { connection in
      try connection.query(
        """
        UPDATE scoring_models SET scored_leads = \(total), last_full_pass_at = \(now())
        WHERE tenant_id = \(tenant) AND version = \(version)
        """)
      try connection.query(
        """
        INSERT INTO scoring_progress (tenant_id, model_version, sweep_after, changed_through)
        VALUES (\(tenant), \(version), NULL, \(now()))
        ON CONFLICT (tenant_id) DO UPDATE SET model_version = excluded.model_version, sweep_after = NULL,
          changed_through = excluded.changed_through
        """)
    }
    return scored
  }

  /// The scorer of model `version`.
  func scorer(tenant: UUID, version: Int) async throws -> LeadScorer? {
    let run = try await database.read(
      tenant,
      ["SELECT \(unsafeSQL: Self.runColumns) FROM scoring_models WHERE tenant_id = \(tenant) AND version = \(version)"]
    ) { results in try results[0].rows.first.map(Self.run) }
    return run?.model.map(LeadScorer.init)
  }

  /// Scores up to ``batchSize`` leads after `after` in id order (or `ids`), writing the scores that
  /// changed. Returns how many were read, and the last id when more may follow.
  func scoreBatch(
    tenant: UUID, scorer: LeadScorer, version: Int, after: UUID? = nil, ids: [UUID]? = nil
  ) async throws -> (count: Int, last: UUID?) {
    let now = now()
    let selection: PostgresQuery =
      if let ids {
        "l.id = ANY(\(ids)::uuid[])"
      } else if let after {
        "l.id > \(after)"
      } else {
        "true"
      }
    return try await database.withTenant(tenant) { connection in
      let rows = try connection.query(
        """
        SELECT l.id, l.source, l.campaign, l.region_code, l.industry, l.company_size, l.title,
          split_part(l.email_addresses[1], '@', 2) AS email_domain, e.interactions, e.last_interaction_at
        FROM leads l CROSS JOIN LATERAL (\(Self.engagement("l", asOf: "\(now)::timestamptz"))) e
        WHERE l.tenant_id = \(tenant) AND l.archived_at IS NULL AND \(selection)
        ORDER BY l.id LIMIT \(Self.batchSize)
        """)
      var leads: [UUID] = []
      var scores: [Int] = []
      var tiers: [String] = []
      var reasons: [String] = []
      leads.reserveCapacity(rows.count)
      for row in rows.rows {
        let prediction = scorer.predict(try Self.input(row, asOf: now))
        leads.append(try row.decode("id"))
        scores.append(prediction.score)
        tiers.append(prediction.tier.rawValue)
        reasons.append(Self.reasonsJSON(prediction.reasons))
      }
      if !leads.isEmpty {
        try connection.query(
          """
          INSERT INTO lead_scores AS s (tenant_id, lead_id, model_version, score, tier, reasons, scored_at)
          SELECT \(tenant), u.lead_id, \(version), u.score, u.tier, u.reasons, \(now)
          FROM unnest(\(leads)::uuid[], \(scores)::smallint[], \(tiers)::text[], \(reasons)::jsonb[])
            AS u (lead_id, score, tier, reasons)
          ON CONFLICT (tenant_id, lead_id) DO UPDATE SET model_version = excluded.model_version, score = excluded.score,
            tier = excluded.tier, reasons = excluded.reasons, scored_at = excluded.scored_at
          WHERE (s.model_version, s.score, s.tier, s.reasons)
            IS DISTINCT FROM (excluded.model_version, excluded.score, excluded.tier, excluded.reasons)
          """)
      }
      return (leads.count, ids == nil && leads.count == Self.batchSize ? leads.last : nil)
    }
  }

  /// The reasons as stored: `[{"feature": …, "value": …, "points": …}]`.
  static func reasonsJSON(_ reasons: [LeadPrediction.Reason]) -> String {
    JSONValue.array(
      reasons.map {
        .object([("feature", .string($0.feature)), ("value", .string($0.value)), ("points", .int(Int64($0.points)))])
      }
    ).rendered
  }

  // MARK: - The job

  /// One pass of the scoring job: retrains tenants whose last run is a week old (scoring all their
  /// leads when a new model comes into force), rescoring the leads changed since the last pass and
  /// the next slice of the rolling sweep. Returns (models trained, leads scored).
  public func runJob(sweepSlice: Int = 20_000) async throws -> (trained: Int, scored: Int) {
    var total = (trained: 0, scored: 0)
    for state in try await tenantStates(nil) {
      let report = try await refresh(state, sweepSlice: sweepSlice)
      total = (total.trained + report.trained, total.scored + report.scored)
    }
    return total
  }

  /// The scoring job for one tenant (what ``runJob(sweepSlice:)`` does for each).
  public func refresh(tenant: UUID, sweepSlice: Int = 20_000) async throws -> (trained: Int, scored: Int) {
    guard let state = try await tenantStates(tenant).first else { return (0, 0) }
    return try await refresh(state, sweepSlice: sweepSlice)
  }

  /// Each tenant with leads (or just `tenant`): whether it is due for training, and its model in force.
  func tenantStates(_ tenant: UUID?) async throws -> [(tenant: UUID, retrain: Bool, active: Int?)] {
    let now = now()
    return try await database.pool.withTransaction { connection in
      try connection.query(
        """
        SELECT tenant_id, retrain, active_version FROM crm_scoring_tenants(\(now))
        WHERE \(tenant)::uuid IS NULL OR tenant_id = \(tenant)
        """
      ).rows.map { (try $0.decode("tenant_id"), try $0.decode("retrain"), try $0.decode("active_version")) }
    }
  }

  func refresh(_ state: (tenant: UUID, retrain: Bool, active: Int?), sweepSlice: Int) async throws -> (
    trained: Int, scored: Int
  ) {
    if state.retrain {
      let run = try await train(tenant: state.tenant, by: nil)
      if run.status == .active { return (1, try await scoreAll(tenant: state.tenant, version: run.version)) }
      guard let active = state.active else { return (1, 0) }
      return (1, try await rescore(tenant: state.tenant, version: active, sweepSlice: sweepSlice))
    }
    guard let active = state.active else { return (0, 0) }
    return (0, try await rescore(tenant: state.tenant, version: active, sweepSlice: sweepSlice))
  }

  /// Rescoring the tenant's changed leads (updated since the last pass) and the sweep's next slice.
  func rescore(tenant: UUID, version: Int, sweepSlice: Int) async throws -> Int {
    let progress = try await database.read(
      tenant,
      ["SELECT model_version, sweep_after, changed_through FROM scoring_progress WHERE tenant_id = \(tenant)"]
    ) { results -> (Int, UUID?, Timestamp)? in
      guard let row = results[0].rows.first else { return nil }
      return (try row.decode("model_version"), try row.decode("sweep_after"), try row.decode("changed_through"))
    }
    guard let (progressVersion, sweepAfter, changedThrough) = progress, progressVersion == version else {
      // A model in force whose full pass never finished: do it now.
      return try await scoreAll(tenant: tenant, version: version)
    }
    guard let scorer = try await scorer(tenant: tenant, version: version) else { return 0 }
    var scored = 0
    // Leads updated since the last pass, oldest change first.
    var through = changedThrough
    while true {
      let changed: [(UUID, Timestamp)] = try await database.read(
        tenant,
        [
          """
          SELECT id, updated_at FROM leads WHERE tenant_id = \(tenant) AND updated_at > \(through)
          ORDER BY updated_at, id LIMIT \(Self.batchSize)
          """
        ]
      ) { results in try results[0].rows.map { (try $0.decode("id"), try $0.decode("updated_at")) } }
      guard !changed.isEmpty else { break }
      scored += try await scoreBatch(tenant: tenant, scorer: scorer, version: version, ids: changed.map(\.0)).count
      through = changed.last!.1
      if changed.count < Self.batchSize { break }
    }
    // The sweep's next slice: what changed without an update (new interactions) is rescored within a
    // full turn of the sweep.
    var after = sweepAfter
    var slice = 0
    var finished = false
    while slice < sweepSlice {
      let (count, last) = try await scoreBatch(tenant: tenant, scorer: scorer, version: version, after: after)
      slice += count
      after = last
      if last == nil {
        finished = true
        break
      }
    }
    scored += slice
    let (sweptThrough, changedUpTo, turned) = (after, through, finished)
    try await database.withTenant(tenant) { connection in
      try connection.query(
        """
        UPDATE scoring_progress SET sweep_after = \(sweptThrough), changed_through = \(changedUpTo)
        WHERE tenant_id = \(tenant)
        """)
      if turned {
        try connection.query(
          "UPDATE scoring_models SET last_full_pass_at = \(now()) WHERE tenant_id = \(tenant) AND version = \(version)")
      }
    }
    return scored
  }
}

/// A tenant's scoring settings.
public struct ScoringSettings: Sendable, Hashable {
  /// The conversion window the model predicts, in days.
  public var windowDays: Int
  /// The history a model needs: leads with a known outcome, and conversions among them.
  public var minimumLeads: Int
  public var minimumConversions: Int

  public init(windowDays: Int, minimumLeads: Int, minimumConversions: Int) {
    self.windowDays = windowDays
    self.minimumLeads = minimumLeads
    self.minimumConversions = minimumConversions
  }
}

/// One training run.
public struct ScoringModelRun: Sendable, Hashable {
  public enum Status: String, Sendable, Hashable {
    /// In force: leads are scored with it.
    case active
    /// Fitted, but no better than chance on held-out leads.
    case noSignal = "no_signal"
    /// Too little history to fit a model.
    case insufficientHistory = "insufficient_history"
  }

  public var version: Int
  public var status: Status
  public var statusReason: String?
  public var trainedAt: Timestamp
  public var trainedBy: UUID?
  public var windowDays: Int
  public var historyLeads: Int
  public var historyConversions: Int
  public var model: LeadScoringModel?
  public var scoredLeads: Int
  public var lastFullPassAt: Timestamp?
}
