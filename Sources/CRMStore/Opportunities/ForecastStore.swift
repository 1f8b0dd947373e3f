public import CRMCore
public import Foundation
import LibPQ

/// The sales forecast: the tenant's fiscal calendar, quotas, adjustments, and the rollup of each
/// owner's deals through the team hierarchy (``ForecastRollup``). Forecasts follow the hierarchy as
/// visibility does: a caller reaches their own forecast and those of the users below them; admins
/// reach every one.
public struct ForecastStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp

  /// A store over `database`; `now` decides which period "today" is in.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// The most quota entries one `SetQuotas` takes.
  public static let maxQuotaEntries = 1_000

  // MARK: - Settings

  /// The tenant's fiscal calendar and default period.
  public func settings(principal: Principal) async throws -> ForecastSettings {
    try await database.read(principal.tenantID, [Self.settingsQuery(principal.tenantID)]) { results in
      try Self.settings(row: results[0][0])
    }
  }

  /// Replaces the settings (admins). Moving the fiscal year's start is refused while quarter or year
  /// quotas or adjustments exist: they would no longer line up with the quarters.
  public func updateSettings(_ settings: ForecastSettings, principal: Principal) async throws -> ForecastSettings {
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.settings(row: try connection.query(Self.settingsQuery(tenant, lock: "FOR UPDATE"))[0])
      if current.calendar.startMonth != settings.calendar.startMonth {
        let row = try connection.query(
          """
          SELECT (SELECT count(*) FROM quotas WHERE tenant_id = \(tenant) AND period_kind <> 'month') AS quotas,
            (SELECT count(*) FROM forecast_adjustments WHERE tenant_id = \(tenant) AND period_kind <> 'month'
              AND superseded_at IS NULL AND amount IS NOT NULL) AS adjustments
          """)[0]
        let quotas: Int = try row.decode("quotas")
        let adjustments: Int = try row.decode("adjustments")
        if quotas + adjustments > 0 {
          throw CRMError.failedPrecondition(
            "\(quotas) quarter or year quotas and \(adjustments) adjustments in force follow the current fiscal year; "
              + "remove them before moving its first month (month quotas stay)")
        }
      }
      try connection.query(
        """
        UPDATE tenants SET fiscal_year_start_month = \(settings.calendar.startMonth),
          forecast_period = \(settings.defaultPeriod.rawValue)
        WHERE id = \(tenant)
        """)
      return settings
    }
  }

  static func settingsQuery(_ tenant: UUID, lock: String = "") -> PostgresQuery {
    "SELECT fiscal_year_start_month, forecast_period FROM tenants WHERE id = \(tenant) \(unsafeSQL: lock)"
  }

  static func settings(row: PostgresRow) throws -> ForecastSettings {
    let month: Int = try row.decode("fiscal_year_start_month")
    return ForecastSettings(
      calendar: FiscalCalendar(startMonth: month),
      defaultPeriod: PeriodKind(rawValue: try row.decode("forecast_period")) ?? .quarter)
  }

  // MARK: - The forecast

  /// A forecast's subject resolved against the hierarchy: whose number, and everyone it rolls up.
  struct Scope {
    var settings: ForecastSettings
    var hierarchy: ForecastHierarchy
    var period: ForecastPeriod
    /// The subject user; `nil` for a team without a manager.
    var user: UUID?
    var team: UUID?
    /// Everyone below the subject whose deals roll up into its number.
    var below: Set<UUID>

    /// Every owner whose deals count: the subject and everyone below.
    var owners: Set<UUID> { below.union(user.map { [$0] } ?? []) }
  }

  /// The forecast of `subject` (default the caller) for the named period (default today's) in `currency`.
  public func forecast(
    subject: ForecastSubject?, period: String?, currency: String, principal: Principal
  ) async throws -> ForecastReport {
    let tenant = principal.tenantID
    let scope = try await resolve(subject: subject, period: period, principal: principal)
    let (own, adjustments, quotas) = try await database.read(
      tenant,
      [
        Self.totalsQuery(tenant: tenant, currency: currency, period: scope.period, owners: scope.owners, snapshots: nil),
        Self.adjustmentsQuery(tenant: tenant, currency: currency, period: scope.period, history: false),
        Self.quotasQuery(tenant: tenant, currency: currency, period: scope.period),
      ]
    ) { results in
      (
        try Self.totals(results[0], currency: currency, owners: scope.owners)[nil] ?? [:],
        Self.inForce(try Self.adjustmentRows(results[1], currency: currency), at: nil),
        try Self.quotas(results[2], currency: currency)
      )
    }
    return Self.report(scope: scope, currency: currency, own: own, adjustments: adjustments, quotas: quotas)
  }

  /// The report of one reading: the rollup of `own` through the scope's tree with `adjustments`,
  /// each row with its quota.
  static func report(
    scope: Scope, currency: String, own: [UUID: [ForecastCategory: CategoryTotals]], adjustments: ForecastAdjustments,
    quotas: [UUID: [PeriodKind: Money]]
  ) -> ForecastReport {
    let tree = scope.hierarchy.reports(subject: scope.user, scope: scope.below)
    let rollup = ForecastRollup(subject: scope.user, currency: currency, tree: tree, own: own, adjustments: adjustments)
    func quota(_ user: UUID?) -> Money? {
      guard let user, let entries = quotas[user] else { return nil }
      // The period's own quota, else the sum of its quarters', else of its months'.
      let kinds: [PeriodKind] =
        switch scope.period.kind {
        case .year: [.year, .quarter, .month]
        case .quarter: [.quarter, .month]
        case .month: [.month]
        }
      return kinds.lazy.compactMap { entries[$0] }.first
    }
    func row(_ kind: ForecastReport.RowKind, _ source: ForecastRollup.Row, team: Team?) -> ForecastReport.Row {
      ForecastReport.Row(
        kind: kind, user: source.user.flatMap { scope.hierarchy.members[$0] }, team: team, figures: source.figures,
        quota: kind == .ownDeals ? nil : quota(source.user))
    }
    var rows: [ForecastReport.Row] = []
    if let own = rollup.ownDeals { rows.append(row(.ownDeals, own, team: nil)) }
    for report in rollup.reports {
      rows.append(row(.report, report, team: report.user.flatMap(scope.hierarchy.managedTeam)))
    }
    let team = (scope.team ?? scope.user.flatMap { scope.hierarchy.managedTeam(of: $0)?.id }).flatMap {
      scope.hierarchy.teams[$0]
    }
    var total = row(.total, rollup.total, team: team)
    if scope.user == nil {
      let quotas = rows.compactMap(\.quota)
      total.quota = quotas.isEmpty ? nil : quotas.dropFirst().reduce(quotas[0]) { $0.adding($1) }
    }
    return ForecastReport(
      period: scope.period, currency: currency, userID: scope.user, teamID: scope.team, rows: rows, total: total)
  }

  /// Per owner and category, the sums of the deals of `period` in `currency`: live from
  /// `opportunities` (`snapshots` nil, under the `nil` key), or as each snapshot saw them.
  ///
  /// Amounts are summed in whole nanos: live, from the integer columns with integer arithmetic (a
  /// deal's weighted amount is units × probability × 10⁷ nanos plus its nanos × probability ÷ 100,
  /// rounded half away from zero — exactly ``Money/scaled(byPercent:)``), which costs a third of
  /// `numeric` arithmetic per row. A large set of owners (a VP's, the company's) is not filtered in
  /// SQL — the period's deals are read anyway, and `= ANY($owners)` on a generic plan searches the
  /// array linearly for every row — but dropped by ``totals(_:currency:owners:)``.
  static func totalsQuery(
    tenant: UUID, currency: String, period: ForecastPeriod, owners: Set<UUID>, snapshots: [UUID]?
  ) -> PostgresQuery {
    let source: PostgresQuery
    if snapshots == nil {
      source = """
        sum(amount_units) * 1000000000 + sum(coalesce(amount_nanos, 0)) AS amount,
        (coalesce(sum(amount_units * probability) FILTER (WHERE abs(amount_units) < 10000000000000000), 0)
          + coalesce(sum(amount_units::numeric * probability) FILTER (WHERE abs(amount_units) >= 10000000000000000), 0))
          * 10000000
          + sum((coalesce(amount_nanos, 0)::bigint * probability + CASE WHEN amount_nanos < 0 THEN -50 ELSE 50 END) / 100)
          AS weighted,
        NULL::uuid AS snapshot_id
        FROM opportunities WHERE tenant_id = \(tenant) AND archived_at IS NULL AND amount_currency = \(currency)
        """
    } else {
      source = """
        sum(amount * 1000000000) AS amount, sum(round(amount * 1000000000 * probability / 100)) AS weighted, snapshot_id
        FROM forecast_snapshot_deals
        WHERE tenant_id = \(tenant) AND snapshot_id = ANY(\(snapshots ?? [])::uuid[]) AND NOT archived AND currency = \(currency)
        """
    }
    let ownerFilter: PostgresQuery =
      owners.count <= Self.ownerFilterLimit ? " AND owner_id = ANY(\(Self.sorted(owners))::uuid[])" : ""
    return """
      SELECT owner_id, forecast_category, count(*) AS deals, \(source)
        AND close_date BETWEEN \(period.start) AND \(period.end) AND forecast_category <> 'omitted'\(ownerFilter)
      GROUP BY owner_id, forecast_category, snapshot_id
      """
  }

  /// Up to this many owners the sums filter them in SQL (an index on the owner helps a rep's).
  static let ownerFilterLimit = 200

  /// Reads ``totalsQuery(tenant:currency:period:owners:snapshots:)``, by snapshot (`nil`: live),
  /// keeping `owners` only.
  static func totals(_ result: PostgresResult, currency: String, owners: Set<UUID>) throws
    -> [UUID?: [UUID: [ForecastCategory: CategoryTotals]]]
  {
    var totals: [UUID?: [UUID: [ForecastCategory: CategoryTotals]]] = [:]
    for row in result.rows {
      let owner: UUID = try row.decode("owner_id")
      guard owners.contains(owner), let category = ForecastCategory(rawValue: try row.decode("forecast_category")) else {
        continue
      }
      let snapshot: UUID? = try row.decode("snapshot_id")
      totals[snapshot, default: [:]][owner, default: [:]][category] = CategoryTotals(
        amount: try Self.nanos(row, "amount", currency: currency),
        weighted: try Self.nanos(row, "weighted", currency: currency), deals: try row.decode("deals"))
    }
    return totals
  }

  /// An amount summed in whole nanos (a `numeric` with no fraction, or a zero one).
  static func nanos(_ row: PostgresRow, _ column: String, currency: String) throws -> Money {
    let text: String = try row.decode(column)
    let whole = text.split(separator: ".", maxSplits: 1).first.map(String.init) ?? text
    guard let total = Int128(whole) else {
      throw PostgresError(kind: .decoding, serverMessage: "\(column) is no whole number of nanos: \(text.prefix(40))")
    }
    let (units, nanos) = total.quotientAndRemainder(dividingBy: 1_000_000_000)
    guard let units = Int64(exactly: units) else {
      throw PostgresError(kind: .decoding, serverMessage: "\(column) is beyond an amount's range")
    }
    return Money(currencyCode: currency, units: units, nanos: Int32(nanos))
  }

  /// One recorded adjustment, as the rollup needs it.
  struct AdjustmentRow {
    var subject: UUID
    var adjuster: UUID
    var column: ForecastColumn
    var amount: Money?
    var createdAt: Timestamp
    var supersededAt: Timestamp?
  }

  /// The adjustments of `period` in `currency`: those in force, or (`history`) every record.
  static func adjustmentsQuery(tenant: UUID, currency: String, period: ForecastPeriod, history: Bool) -> PostgresQuery {
    """
    SELECT subject_id, adjuster_id, column_name, amount::text AS amount, created_at, superseded_at FROM forecast_adjustments
    WHERE tenant_id = \(tenant) AND period_kind = \(period.kind.rawValue) AND period_start = \(period.start)
      AND currency = \(currency) AND (\(history) OR (superseded_at IS NULL AND amount IS NOT NULL))
    """
  }

  static func adjustmentRows(_ result: PostgresResult, currency: String) throws -> [AdjustmentRow] {
    try result.rows.compactMap { row in
      guard let column = ForecastColumn(rawValue: try row.decode("column_name")) else { return nil }
      return AdjustmentRow(
        subject: try row.decode("subject_id"), adjuster: try row.decode("adjuster_id"), column: column,
        amount: try BillingRow.optionalMoney(row, "amount", currency: currency), createdAt: try row.decode("created_at"),
        supersededAt: try row.decode("superseded_at"))
    }
  }

  /// The adjustments in force at `time` (`nil`: now).
  static func inForce(_ rows: [AdjustmentRow], at time: Timestamp?) -> ForecastAdjustments {
    var adjustments = ForecastAdjustments()
    for row in rows {
      if let time, row.createdAt > time || row.supersededAt.map({ $0 <= time }) == true { continue }
      if time == nil, row.supersededAt != nil { continue }
      guard let amount = row.amount else { continue }
      if row.subject == row.adjuster {
        adjustments.owner[row.subject, default: [:]][row.column] = amount
      } else {
        adjustments.manager[row.subject, default: [:]][row.adjuster, default: [:]][row.column] = amount
      }
    }
    return adjustments
  }

  static func quotasQuery(tenant: UUID, currency: String, period: ForecastPeriod) -> PostgresQuery {
    """
    SELECT user_id, period_kind, amount::text AS amount FROM quotas
    WHERE tenant_id = \(tenant) AND currency = \(currency) AND period_start >= \(period.start) AND period_end <= \(period.end)
    """
  }

  /// Each user's quotas inside the period, summed by kind.
  static func quotas(_ result: PostgresResult, currency: String) throws -> [UUID: [PeriodKind: Money]] {
    var quotas: [UUID: [PeriodKind: Money]] = [:]
    for row in result.rows {
      guard let kind = PeriodKind(rawValue: try row.decode("period_kind")) else { continue }
      let amount = try BillingRow.money(row, "amount", currency: currency)
      let user: UUID = try row.decode("user_id")
      quotas[user, default: [:]][kind] = (quotas[user]?[kind] ?? .zero(currency)).adding(amount)
    }
    return quotas
  }

  /// What a forecast number is made of, as a filter of ``OpportunityStore/list``: the deals of the
  /// subject (and everyone below it unless `ownDealsOnly`) in the period and currency, of the column's
  /// categories.
  public func dealFilter(
    subject: ForecastSubject?, period: String?, currency: String, ownDealsOnly: Bool, column: ForecastColumn,
    principal: Principal
  ) async throws -> OpportunityFilter {
    let scope = try await resolve(subject: subject, period: period, principal: principal)
    var filter = OpportunityFilter()
    let own: Set<UUID> = scope.user.map { [$0] } ?? []
    filter.ownerIDs = ownDealsOnly ? own : own.union(scope.below)
    filter.forecastCategories = column.categories
    filter.currencyCode = currency
    filter.closeDateFrom = scope.period.start
    filter.closeDateTo = scope.period.end
    return filter
  }

  /// Reads the settings and the hierarchy and checks the caller reaches the subject.
  func resolve(subject: ForecastSubject?, period name: String?, principal: Principal) async throws -> Scope {
    let tenant = principal.tenantID
    let (settings, hierarchy) = try await database.read(
      tenant,
      [Self.settingsQuery(tenant)] + Self.hierarchyQueries(tenant)
    ) { results in
      (try Self.settings(row: results[0][0]), try Self.hierarchy(users: results[1], teams: results[2]))
    }
    let period = try Self.period(name, settings: settings, today: now().utcDate, field: "period")
    switch subject ?? .user(principal.userID) {
    case .user(let id):
      guard hierarchy.members[id] != nil else { throw CRMError.notFound("user \(id.lowercasedString) not found") }
      try Self.requireReach([id], principal: principal)
      return Scope(settings: settings, hierarchy: hierarchy, period: period, user: id, team: nil, below: hierarchy.below(id))
    case .team(let id):
      guard let team = hierarchy.teams[id] else { throw CRMError.notFound("team \(id.lowercasedString) not found") }
      if let manager = team.managerID {
        try Self.requireReach([manager], principal: principal)
        return Scope(
          settings: settings, hierarchy: hierarchy, period: period, user: manager, team: id, below: hierarchy.below(manager))
      }
      let members = hierarchy.users(inTeamTree: id)
      try Self.requireReach(members, principal: principal)
      return Scope(settings: settings, hierarchy: hierarchy, period: period, user: nil, team: id, below: members)
    case .company:
      guard principal.isAdmin else { throw CRMError.permissionDenied("the company's forecast is for admins") }
      return Scope(
        settings: settings, hierarchy: hierarchy, period: period, user: nil, team: nil, below: Set(hierarchy.members.keys))
    }
  }

  static func hierarchyQueries(_ tenant: UUID) -> [PostgresQuery] {
    [
      "SELECT id, display_name, team_id FROM users WHERE tenant_id = \(tenant)",
      "SELECT id, name, parent_team_id, manager_id, created_at FROM teams WHERE tenant_id = \(tenant)",
    ]
  }

  static func hierarchy(users: PostgresResult, teams: PostgresResult) throws -> ForecastHierarchy {
    ForecastHierarchy(
      members: try users.rows.map {
        ForecastMember(id: try $0.decode("id"), displayName: try $0.decode("display_name"), teamID: try $0.decode("team_id"))
      },
      teams: try teams.rows.map {
        Team(
          id: try $0.decode("id"), name: try $0.decode("name"), parentTeamID: try $0.decode("parent_team_id"),
          managerID: try $0.decode("manager_id"), createdAt: try $0.decode("created_at"))
      })
  }

  /// Throws PERMISSION_DENIED unless the caller reaches every one of `users`' forecasts.
  static func requireReach(_ users: Set<UUID>, principal: Principal) throws {
    guard principal.isAdmin || users.isSubset(of: principal.ownersInHierarchy) else {
      throw CRMError.permissionDenied("a forecast is seen by its owner, the managers above them, and admins")
    }
  }

  /// The named period, or the default period holding `today`; INVALID_ARGUMENT on `field` otherwise.
  static func period(_ name: String?, settings: ForecastSettings, today: CalendarDate, field: String) throws -> ForecastPeriod {
    guard let name, !name.isEmpty else { return settings.calendar.period(settings.defaultPeriod, containing: today)! }
    guard let period = settings.calendar.period(named: name) else {
      throw CRMError.invalid(
        field, "must name a fiscal year (2027), quarter (2027-Q1) or month (2027-03)", reason: "INVALID_FORMAT")
    }
    return period
  }

  /// The ids in a stable order (their text, each formatted once), so equal sets give equal statements.
  static func sorted(_ ids: Set<UUID>) -> [UUID] { ids.map { ($0.lowercasedString, $0) }.sorted { $0.0 < $1.0 }.map(\.1) }

  // MARK: - Adjustments

  /// Sets (or, with `amount` nil, removes) an adjustment of `subject`'s number (default the caller's
  /// own): an owner adjustment when it is the caller's, else a manager adjustment, which only the
  /// subject's manager in the forecast may make. The one in force before is superseded, not changed.
  public func adjust(
    subject: UUID?, period name: String?, currency: String, column: ForecastColumn, amount: Money?, note: String,
    principal: Principal
  ) async throws -> ForecastAdjustmentRecord {
    let tenant = principal.tenantID
    let target = subject ?? principal.userID
    let now = now()
    return try await database.withTenant(tenant) { connection in
      let results = try connection.pipeline([Self.settingsQuery(tenant, lock: "FOR SHARE")] + Self.hierarchyQueries(tenant))
      let settings = try Self.settings(row: results[0][0])
      let hierarchy = try Self.hierarchy(users: results[1], teams: results[2])
      let period = try Self.period(name, settings: settings, today: now.utcDate, field: "period")
      guard hierarchy.members[target] != nil else { throw CRMError.notFound("user \(target.lowercasedString) not found") }
      if target != principal.userID {
        let below = hierarchy.below(principal.userID)
        guard below.contains(target) else {
          throw CRMError.permissionDenied("you adjust your own forecast and those of your direct reports")
        }
        let direct = hierarchy.reports(subject: principal.userID, scope: below)[nil] ?? []
        guard direct.contains(target) else {
          throw CRMError.failedPrecondition(
            "\(hierarchy.members[target]!.displayName) does not report to you directly; their manager adjusts their number")
        }
      }
      // One adjuster's changes to one person's numbers go one at a time.
      try connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenant) AND id = \(target) FOR NO KEY UPDATE")
      let superseded = try connection.query(
        """
        UPDATE forecast_adjustments SET superseded_at = \(now)
        WHERE tenant_id = \(tenant) AND subject_id = \(target) AND adjuster_id = \(principal.userID)
          AND period_kind = \(period.kind.rawValue) AND period_start = \(period.start) AND currency = \(currency)
          AND column_name = \(column.rawValue) AND superseded_at IS NULL
        RETURNING amount IS NOT NULL AS in_force
        """)
      if amount == nil, try superseded.rows.first?.decode("in_force", as: Bool.self) != true {
        throw CRMError.notFound("no adjustment of that number is in force")
      }
      let id = UUID.v7(at: now)
      try connection.query(
        """
        INSERT INTO forecast_adjustments (tenant_id, id, subject_id, adjuster_id, period_kind, period_start, period_end,
          currency, column_name, amount, note, created_at)
        VALUES (\(tenant), \(id), \(target), \(principal.userID), \(period.kind.rawValue), \(period.start), \(period.end),
          \(currency), \(column.rawValue), \(amount?.numeral)::numeric, \(note), \(now))
        """)
      return ForecastAdjustmentRecord(
        id: id, subjectID: target, adjusterID: principal.userID, period: period, currency: currency, column: column,
        amount: amount, note: note, createdAt: now, supersededAt: nil)
    }
  }

  /// The adjustments of a period the caller may see, newest first: owner adjustments of the users in
  /// their reach, manager adjustments made by them or by managers below them (admins: all); with
  /// `history`, superseded and removing records too.
  public func adjustments(
    period name: String?, subject: UUID?, history: Bool, principal: Principal
  ) async throws -> [ForecastAdjustmentRecord] {
    let tenant = principal.tenantID
    let settings = try await settings(principal: principal)
    let period = try Self.period(name, settings: settings, today: now().utcDate, field: "period")
    if let subject { try Self.requireReach([subject], principal: principal) }
    return try await database.read(
      tenant,
      [
        """
        SELECT id, subject_id, adjuster_id, currency, column_name, amount::text AS amount, note, created_at, superseded_at
        FROM forecast_adjustments
        WHERE tenant_id = \(tenant) AND period_kind = \(period.kind.rawValue) AND period_start = \(period.start)
          AND (\(subject)::uuid IS NULL OR subject_id = \(subject))
          AND (\(history) OR (superseded_at IS NULL AND amount IS NOT NULL))
          AND (\(principal.isAdmin)
            OR (CASE WHEN subject_id = adjuster_id THEN subject_id ELSE adjuster_id END) = ANY(\(Self.reach(principal))::uuid[]))
        ORDER BY created_at DESC, id DESC
        LIMIT 10000
        """
      ]
    ) { results in
      try results[0].rows.map { row in
        let currency: String = try row.decode("currency")
        return ForecastAdjustmentRecord(
          id: try row.decode("id"), subjectID: try row.decode("subject_id"), adjusterID: try row.decode("adjuster_id"),
          period: period, currency: currency, column: ForecastColumn(rawValue: try row.decode("column_name")) ?? .commit,
          amount: try BillingRow.optionalMoney(row, "amount", currency: currency), note: try row.decode("note"),
          createdAt: try row.decode("created_at"), supersededAt: try row.decode("superseded_at"))
      }
    }
  }

  /// The users whose numbers a caller reaches (themselves and everyone below), for SQL.
  static func reach(_ principal: Principal) -> [UUID] { sorted(principal.ownersInHierarchy) }

  // MARK: - Quotas

  /// One entry of ``setQuotas(_:principal:)``: a quota to set, or with `amount` nil to remove.
  public struct QuotaEntry: Sendable {
    public var userID: UUID
    public var period: String
    public var currency: String
    public var amount: Money?

    /// An entry.
    public init(userID: UUID, period: String, currency: String, amount: Money?) {
      self.userID = userID
      self.period = period
      self.currency = currency
      self.amount = amount
    }
  }

  /// Sets and removes quotas, all or nothing: admins for anyone, managers for the users below them.
  /// Violations name the entry (`quotas[3].period`).
  public func setQuotas(_ entries: [QuotaEntry], principal: Principal) async throws -> [QuotaRecord] {
    let tenant = principal.tenantID
    let now = now()
    return try await database.withTenant(tenant) { connection in
      let results = try connection.pipeline([
        Self.settingsQuery(tenant, lock: "FOR SHARE"),
        "SELECT id FROM users WHERE tenant_id = \(tenant) AND id = ANY(\(Self.sorted(Set(entries.map(\.userID))))::uuid[])",
      ])
      let settings = try Self.settings(row: results[0][0])
      let known = Set(try results[1].rows.map { try $0.decode("id", as: UUID.self) })
      var violations = Violations()
      var periods: [ForecastPeriod?] = []
      var seen: Set<String> = []
      for (index, entry) in entries.enumerated() {
        let path = "quotas[\(index)]"
        let period = settings.calendar.period(named: entry.period)
        periods.append(period)
        if period == nil {
          violations.add(
            "\(path).period", "must name a fiscal year (2027), quarter (2027-Q1) or month (2027-03)", reason: "INVALID_FORMAT")
        }
        if !known.contains(entry.userID) {
          violations.add("\(path).user_id", "no such user", reason: "NOT_FOUND")
        } else if !principal.isAdmin && (entry.userID == principal.userID || !principal.ownersInHierarchy.contains(entry.userID))
        {
          violations.add("\(path).user_id", "you set the quotas of the users below you", reason: "PERMISSION_DENIED")
        }
        if let period, !seen.insert("\(entry.userID)|\(period.kind)|\(period.start)|\(entry.currency)").inserted {
          violations.add("\(path)", "names the same user, period and currency as an earlier entry", reason: "DUPLICATE")
        }
      }
      try violations.check()
      let sets = entries.indices.filter { entries[$0].amount != nil }
      let removals = entries.indices.filter { entries[$0].amount == nil }
      if !removals.isEmpty {
        try connection.query(
          """
          DELETE FROM quotas q USING unnest(\(removals.map { entries[$0].userID })::uuid[],
            \(removals.map { periods[$0]!.kind.rawValue })::text[], \(removals.map { periods[$0]!.start })::date[],
            \(removals.map { entries[$0].currency })::text[]) AS r(user_id, period_kind, period_start, currency)
          WHERE q.tenant_id = \(tenant) AND q.user_id = r.user_id AND q.period_kind = r.period_kind
            AND q.period_start = r.period_start AND q.currency = r.currency
          """)
      }
      if !sets.isEmpty {
        try connection.query(
          """
          INSERT INTO quotas (tenant_id, user_id, period_kind, period_start, period_end, currency, amount, updated_at, updated_by)
          SELECT \(tenant), r.* , \(now), \(principal.userID)
          FROM unnest(\(sets.map { entries[$0].userID })::uuid[], \(sets.map { periods[$0]!.kind.rawValue })::text[],
            \(sets.map { periods[$0]!.start })::date[], \(sets.map { periods[$0]!.end })::date[],
            \(sets.map { entries[$0].currency })::text[], \(sets.map { entries[$0].amount!.numeral })::numeric[])
            AS r(user_id, period_kind, period_start, period_end, currency, amount)
          ON CONFLICT (tenant_id, user_id, period_kind, period_start, currency) DO UPDATE
            SET amount = excluded.amount, period_end = excluded.period_end, updated_at = excluded.updated_at,
              updated_by = excluded.updated_by
          """)
      }
      return sets.map {
        QuotaRecord(userID: entries[$0].userID, period: periods[$0]!, amount: entries[$0].amount!, updatedAt: now)
      }
    }
  }

  /// The quotas of the users the caller reaches (admins: everyone), of periods overlapping `period`
  /// (default all), by user and period start.
  public func quotas(period name: String?, user: UUID?, principal: Principal) async throws -> [QuotaRecord] {
    let tenant = principal.tenantID
    let settings = try await settings(principal: principal)
    let period = try name.flatMap { $0.isEmpty ? nil : $0 }.map {
      try Self.period($0, settings: settings, today: now().utcDate, field: "period")
    }
    if let user { try Self.requireReach([user], principal: principal) }
    return try await database.read(
      tenant,
      [
        """
        SELECT user_id, period_kind, period_start, currency, amount::text AS amount, updated_at FROM quotas
        WHERE tenant_id = \(tenant) AND (\(user)::uuid IS NULL OR user_id = \(user))
          AND (\(principal.isAdmin) OR user_id = ANY(\(Self.reach(principal))::uuid[]))
          AND (\(period?.end)::date IS NULL OR (period_start <= \(period?.end)::date AND period_end >= \(period?.start)::date))
        ORDER BY user_id, period_start, period_kind DESC, currency
        LIMIT 100000
        """
      ]
    ) { results in
      try results[0].rows.compactMap { row -> QuotaRecord? in
        guard let kind = PeriodKind(rawValue: try row.decode("period_kind")),
          let period = settings.calendar.period(kind, containing: try row.decode("period_start"))
        else { return nil }
        return QuotaRecord(
          userID: try row.decode("user_id"), period: period,
          amount: try BillingRow.money(row, "amount", currency: try row.decode("currency")),
          updatedAt: try row.decode("updated_at"))
      }
    }
  }
}
