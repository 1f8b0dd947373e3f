public import CRMCore
public import Foundation
import LibPQ

extension ForecastStore {
  // MARK: - Weekly snapshots

  /// The most changes ``changes(subject:period:currency:from:to:principal:)`` lists.
  public static let maxChanges = 10_000

  /// Takes this week's snapshot of every tenant with deals that has none yet (the job); returns how
  /// many were taken. Nodes racing for a tenant take turns on an advisory lock; the second finds the
  /// week's snapshot and leaves it.
  public func takeDueSnapshots() async throws -> Int {
    let week = now().utcDate.weekStart
    let tenants: [UUID] = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id FROM crm_forecast_snapshot_tenants(\(week))").rows.map { try $0.decode("tenant_id") }
    }
    for tenant in tenants { _ = try await takeSnapshot(tenant: tenant) }
    return tenants.count
  }

  /// This week's snapshot of the caller's tenant (admins): taken now unless it exists.
  public func takeSnapshot(principal: Principal) async throws -> ForecastSnapshot {
    try principal.requireAdmin()
    return try await takeSnapshot(tenant: principal.tenantID)
  }

  /// Copies every deal closing in the current or the next fiscal quarter, and every deal of the
  /// snapshot before, as it is now — once per tenant and week.
  func takeSnapshot(tenant: UUID) async throws -> ForecastSnapshot {
    let now = now()
    let week = now.utcDate.weekStart
    return try await database.withTenant(tenant) { connection in
      let results = try connection.pipeline([
        "SELECT pg_advisory_xact_lock(hashtext('crm.forecast_snapshot'), hashtext(\(tenant)::text))",
        Self.settingsQuery(tenant),
        "SELECT \(unsafeSQL: Self.snapshotColumns) FROM forecast_snapshots WHERE tenant_id = \(tenant) AND week_start = \(week)",
        """
        SELECT id FROM forecast_snapshots WHERE tenant_id = \(tenant) AND week_start < \(week)
        ORDER BY week_start DESC LIMIT 1
        """,
      ])
      if let existing = results[2].rows.first { return try Self.snapshot(existing) }
      let calendar = try Self.settings(row: results[1][0]).calendar
      let current = calendar.period(.quarter, containing: now.utcDate)!
      let next = calendar.period(.quarter, containing: current.end.adding(days: 1))!
      let previous: UUID? = try results[3].rows.first?.decode("id")
      let id = UUID.v7(at: now)
      // The deals first, the snapshot row after them in the same statement (its foreign key is
      // checked at the statement's end), so the row carries its count and is never updated.
      let row = try connection.query(
        """
        WITH deals AS (
          INSERT INTO forecast_snapshot_deals (tenant_id, snapshot_id, opportunity_id, owner_id, currency, amount, probability,
            forecast_category, state, close_date, archived)
          SELECT o.tenant_id, \(id), o.id, o.owner_id, o.amount_currency,
            ((o.amount_units::numeric * 1000000000 + coalesce(o.amount_nanos, 0)) / 1000000000)::numeric(38, 9),
            o.probability, o.forecast_category, o.state, o.close_date, o.archived_at IS NOT NULL
          FROM opportunities o
          WHERE o.tenant_id = \(tenant)
            AND ((o.archived_at IS NULL AND o.close_date BETWEEN \(current.start) AND \(next.end))
              OR o.id IN (SELECT opportunity_id FROM forecast_snapshot_deals WHERE tenant_id = \(tenant) AND snapshot_id = \(previous)))
          RETURNING 1
        )
        INSERT INTO forecast_snapshots (tenant_id, id, week_start, taken_at, window_start, window_end, deals)
        SELECT \(tenant), \(id), \(week), \(now), \(current.start), \(next.end), count(*) FROM deals
        RETURNING \(unsafeSQL: Self.snapshotColumns)
        """)[0]
      return try Self.snapshot(row)
    }
  }

  static let snapshotColumns = "id, week_start, taken_at, window_start, window_end, deals"

  static func snapshot(_ row: PostgresRow) throws -> ForecastSnapshot {
    ForecastSnapshot(
      id: try row.decode("id"), weekStart: try row.decode("week_start"), takenAt: try row.decode("taken_at"),
      windowStart: try row.decode("window_start"), windowEnd: try row.decode("window_end"), deals: try row.decode("deals"))
  }

  /// The tenant's snapshots, newest first (anyone may list them: they carry no deal).
  public func snapshots(limit: Int, principal: Principal) async throws -> [ForecastSnapshot] {
    let tenant = principal.tenantID
    return try await database.read(
      tenant,
      [
        """
        SELECT \(unsafeSQL: Self.snapshotColumns) FROM forecast_snapshots WHERE tenant_id = \(tenant)
        ORDER BY week_start DESC LIMIT \(limit)
        """
      ]
    ) { results in try results[0].rows.map(Self.snapshot) }
  }

  // MARK: - Forecast versus actual

  /// The subject's total as each snapshot covering the whole period saw it (with the adjustments in
  /// force at that moment, rolled up through today's hierarchy), and the total now.
  public func trend(
    subject: ForecastSubject?, period name: String?, currency: String, principal: Principal
  ) async throws -> ForecastTrend {
    let tenant = principal.tenantID
    let scope = try await resolve(subject: subject, period: name, principal: principal)
    let period = scope.period
    let snapshots = try await database.read(
      tenant,
      [
        """
        SELECT \(unsafeSQL: Self.snapshotColumns) FROM forecast_snapshots
        WHERE tenant_id = \(tenant) AND window_start <= \(period.start) AND window_end >= \(period.end)
        ORDER BY week_start LIMIT 520
        """
      ]
    ) { results in try results[0].rows.map(Self.snapshot) }
    // The snapshots' sums and the live ones in one statement each, with the same scope, adjustments
    // and quotas: the total now is the live forecast's, without reading the hierarchy again.
    let (totals, live, adjustments, quotas) = try await database.read(
      tenant,
      [
        Self.totalsQuery(
          tenant: tenant, currency: currency, period: period, owners: scope.owners, snapshots: snapshots.map(\.id)),
        Self.totalsQuery(tenant: tenant, currency: currency, period: period, owners: scope.owners, snapshots: nil),
        Self.adjustmentsQuery(tenant: tenant, currency: currency, period: period, history: true),
        Self.quotasQuery(tenant: tenant, currency: currency, period: period),
      ]
    ) { results in
      (
        try Self.totals(results[0], currency: currency, owners: scope.owners),
        try Self.totals(results[1], currency: currency, owners: scope.owners)[nil] ?? [:],
        try Self.adjustmentRows(results[2], currency: currency), try Self.quotas(results[3], currency: currency)
      )
    }
    let points = snapshots.map { snapshot in
      let report = Self.report(
        scope: scope, currency: currency, own: totals[snapshot.id] ?? [:],
        adjustments: Self.inForce(adjustments, at: snapshot.takenAt), quotas: quotas)
      return (snapshot: snapshot, total: report.total)
    }
    let actual = Self.report(
      scope: scope, currency: currency, own: live, adjustments: Self.inForce(adjustments, at: nil), quotas: quotas
    ).total
    return ForecastTrend(
      period: period, currency: currency, points: points, actual: actual, periodEnded: period.end < now().utcDate)
  }

  // MARK: - What moved

  /// The deals of the subject's forecast that moved between snapshot `from` (default the latest)
  /// and `to` (default now), by owner and deal, at most ``maxChanges``.
  public func changes(
    subject: ForecastSubject?, period name: String?, currency: String, from: UUID?, to: UUID?, principal: Principal
  ) async throws -> ForecastChanges {
    let tenant = principal.tenantID
    let scope = try await resolve(subject: subject, period: name, principal: principal)
    let period = scope.period
    let owners = Self.sorted(scope.owners)
    let chosen = try await database.read(
      tenant,
      [
        """
        SELECT \(unsafeSQL: Self.snapshotColumns) FROM forecast_snapshots
        WHERE tenant_id = \(tenant) AND (id = ANY(\([from, to].compactMap { $0 })::uuid[]) OR (\(from)::uuid IS NULL AND id = (
          SELECT id FROM forecast_snapshots WHERE tenant_id = \(tenant) ORDER BY week_start DESC LIMIT 1)))
        """
      ]
    ) { results in Dictionary(uniqueKeysWithValues: try results[0].rows.map(Self.snapshot).map { ($0.id, $0) }) }
    let earlier: ForecastSnapshot
    if let from {
      guard let found = chosen[from] else { throw CRMError.notFound("snapshot \(from.lowercasedString) not found") }
      earlier = found
    } else {
      guard let latest = chosen.values.max(by: { $0.weekStart < $1.weekStart }) else {
        throw CRMError.failedPrecondition("no forecast snapshot has been taken yet; the weekly job takes the first")
      }
      earlier = latest
    }
    let later = try to.map { id in
      guard let found = chosen[id] else { throw CRMError.notFound("snapshot \(id.lowercasedString) not found") }
      return found
    }
    func source(_ snapshot: ForecastSnapshot?) -> PostgresQuery {
      guard let snapshot else {
        return """
          SELECT id AS opportunity_id, owner_id, amount_currency AS currency,
            ((amount_units::numeric * 1000000000 + coalesce(amount_nanos, 0)) / 1000000000)::numeric(38, 9)::text AS amount,
            probability, forecast_category, state, close_date, archived_at IS NOT NULL AS archived
          FROM opportunities WHERE tenant_id = \(tenant)
          """
      }
      return """
        SELECT opportunity_id, owner_id, currency, amount::text AS amount, probability, forecast_category, state, close_date,
          archived
        FROM forecast_snapshot_deals WHERE tenant_id = \(tenant) AND snapshot_id = \(snapshot.id)
        """
    }
    func inPeriod(_ snapshot: ForecastSnapshot?) -> PostgresQuery {
      "\(source(snapshot)) AND owner_id IN (SELECT unnest(\(owners)::uuid[])) AND close_date BETWEEN \(period.start) AND \(period.end)"
    }
    // First the deals in the period on either side, then the other side of those found on one only.
    var (before, after) = try await database.read(tenant, [inPeriod(earlier), inPeriod(later)]) { results in
      (try Self.dealStates(results[0]), try Self.dealStates(results[1]))
    }
    let missingBefore = after.keys.filter { before[$0] == nil }
    let missingAfter = before.keys.filter { after[$0] == nil }
    let ids = Set(before.keys).union(after.keys)
    let (otherBefore, otherAfter, names) = try await database.read(
      tenant,
      [
        "\(source(earlier)) AND opportunity_id = ANY(\(missingBefore)::uuid[])",
        "\(source(later)) AND \(unsafeSQL: later == nil ? "id" : "opportunity_id") = ANY(\(missingAfter)::uuid[])",
        "SELECT id, name FROM opportunities WHERE tenant_id = \(tenant) AND id = ANY(\(Array(ids))::uuid[])",
      ]
    ) { results in
      (
        try Self.dealStates(results[0]), try Self.dealStates(results[1]),
        Dictionary(
          uniqueKeysWithValues: try results[2].rows.map {
            (try $0.decode("id", as: UUID.self), try $0.decode("name", as: String.self))
          })
      )
    }
    before.merge(otherBefore) { first, _ in first }
    after.merge(otherAfter) { first, _ in first }
    var changes: [ForecastChange] = []
    for id in ids {
      let moves = ForecastMove.between(before[id], after[id], period: period, currency: currency)
      guard !moves.isEmpty else { continue }
      changes.append(ForecastChange(opportunityID: id, name: names[id] ?? "", moves: moves, before: before[id], after: after[id]))
    }
    changes = changes.map { (($0.after ?? $0.before)!.ownerID.lowercasedString, $0.opportunityID.lowercasedString, $0) }
      .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
    let truncated = changes.count > Self.maxChanges
    return ForecastChanges(from: earlier, to: later, changes: Array(changes.prefix(Self.maxChanges)), truncated: truncated)
  }

  static func dealStates(_ result: PostgresResult) throws -> [UUID: ForecastDealState] {
    var states: [UUID: ForecastDealState] = [:]
    for row in result.rows {
      let currency: String? = try row.decode("currency")
      states[try row.decode("opportunity_id")] = ForecastDealState(
        ownerID: try row.decode("owner_id"),
        amount: try currency.flatMap { try BillingRow.optionalMoney(row, "amount", currency: $0) },
        category: ForecastCategory(rawValue: try row.decode("forecast_category")) ?? .pipeline,
        state: StageCategory(rawValue: try row.decode("state")) ?? .open, closeDate: try row.decode("close_date"),
        probability: try row.decode("probability"), archived: try row.decode("archived"))
    }
    return states
  }
}
