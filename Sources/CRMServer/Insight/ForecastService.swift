import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ForecastService`: the sales forecast over the team hierarchy (docs/forecast.md).
public struct ForecastService: Crm_V1_ForecastService.SimpleServiceProtocol {
  let forecasts: ForecastStore
  let opportunities: OpportunityStore
  let now: @Sendable () -> Timestamp

  /// A service over the forecast's store and the deals it lists.
  public init(forecasts: ForecastStore, opportunities: OpportunityStore, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.forecasts = forecasts
    self.opportunities = opportunities
    self.now = now
  }

  public func getForecast(request: Crm_V1_GetForecastRequest, context: ServerContext) async throws -> Crm_V1_Forecast {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let (subject, period, currency) = Self.scope(request, into: &violations)
    try violations.check()
    let report = try await forecasts.forecast(subject: subject, period: period, currency: currency!, principal: call.principal)
    return .with {
      $0.period = .init(report.period)
      $0.currencyCode = report.currency
      $0.userID = report.userID?.lowercasedString ?? ""
      $0.teamID = report.teamID?.lowercasedString ?? ""
      $0.rows = report.rows.map(Crm_V1_ForecastRow.init)
      $0.total = .init(report.total)
      $0.readTime = .init(now())
    }
  }

  public func listForecastDeals(request: Crm_V1_ListForecastDealsRequest, context: ServerContext) async throws
    -> Crm_V1_ListForecastDealsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let (subject, period, currency) = Self.scope(request, into: &violations)
    let column = ForecastColumn(request.column, field: "column", adjustable: false, into: &violations)
    if request.ownDealsOnly, request.userID.isEmpty, !request.teamID.isEmpty || request.company {
      violations.add("own_deals_only", "applies to a user's number, not a team's or the company's", reason: "INVALID")
    }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let filter = try await forecasts.dealFilter(
      subject: subject, period: period, currency: currency!, ownDealsOnly: request.ownDealsOnly, column: column!,
      principal: call.principal)
    let page = try await opportunities.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: false, principal: call.principal)
    return .with {
      $0.opportunities = page.items.map(Crm_V1_Opportunity.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func adjustForecast(request: Crm_V1_AdjustForecastRequest, context: ServerContext) async throws
    -> Crm_V1_ForecastAdjustment
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    let column = ForecastColumn(request.column, field: "column", adjustable: true, into: &violations)
    let period = violations.text("period", request.period, maxLength: 20)
    let (amount, currency) = Self.amount(
      request.hasAmount ? request.amount : nil, currencyCode: request.currencyCode, prefix: "", into: &violations)
    let note = violations.text("note", request.note, maxLength: 255) ?? ""
    try violations.check()
    let record = try await forecasts.adjust(
      subject: user, period: period, currency: currency!, column: column!, amount: amount, note: note,
      principal: call.principal)
    return .init(record)
  }

  public func listForecastAdjustments(request: Crm_V1_ListForecastAdjustmentsRequest, context: ServerContext) async throws
    -> Crm_V1_ListForecastAdjustmentsResponse
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    let period = violations.text("period", request.period, maxLength: 20)
    try violations.check()
    let records = try await forecasts.adjustments(
      period: period, subject: user, history: request.includeHistory, principal: call.principal)
    return .with { $0.adjustments = records.map(Crm_V1_ForecastAdjustment.init) }
  }

  public func setQuotas(request: Crm_V1_SetQuotasRequest, context: ServerContext) async throws -> Crm_V1_SetQuotasResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    if request.quotas.isEmpty || request.quotas.count > ForecastStore.maxQuotaEntries {
      violations.add("quotas", "must hold 1 to \(ForecastStore.maxQuotaEntries) entries", reason: "OUT_OF_RANGE")
    }
    var entries: [ForecastStore.QuotaEntry] = []
    for (index, quota) in request.quotas.prefix(ForecastStore.maxQuotaEntries).enumerated() {
      let path = "quotas[\(index)]"
      let user = RequestFields.id(quota.userID, field: "\(path).user_id", into: &violations)
      if quota.period.isEmpty { violations.add("\(path).period", "is required, e.g. 2027-Q1", reason: "REQUIRED") }
      let period = violations.text("\(path).period", quota.period, maxLength: 20)
      let (amount, currency) = Self.amount(
        quota.hasAmount ? quota.amount : nil, currencyCode: quota.currencyCode, prefix: "\(path).", into: &violations)
      if let user, let period, let currency {
        entries.append(.init(userID: user, period: period, currency: currency, amount: amount))
      }
    }
    try violations.check()
    let records = try await forecasts.setQuotas(entries, principal: call.principal)
    return .with { $0.quotas = records.map(Crm_V1_Quota.init) }
  }

  public func listQuotas(request: Crm_V1_ListQuotasRequest, context: ServerContext) async throws -> Crm_V1_ListQuotasResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    let period = violations.text("period", request.period, maxLength: 20)
    try violations.check()
    let records = try await forecasts.quotas(period: period, user: user, principal: call.principal)
    return .with { $0.quotas = records.map(Crm_V1_Quota.init) }
  }

  public func getForecastSettings(request: Crm_V1_GetForecastSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ForecastSettings
  {
    let call = try RequestContext.require()
    return .init(try await forecasts.settings(principal: call.principal))
  }

  public func updateForecastSettings(request: Crm_V1_UpdateForecastSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ForecastSettings
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let month = request.settings.fiscalYearStartMonth == 0 ? 1 : Int(request.settings.fiscalYearStartMonth)
    if !(1...12).contains(month) {
      violations.add("settings.fiscal_year_start_month", "must be 1 (January) to 12", reason: "OUT_OF_RANGE")
    }
    let period: PeriodKind
    switch request.settings.defaultPeriod {
    case .unspecified, .quarter: period = .quarter
    case .month: period = .month
    default:
      violations.add("settings.default_period", "must be PERIOD_KIND_MONTH or PERIOD_KIND_QUARTER", reason: "INVALID")
      period = .quarter
    }
    try violations.check()
    return .init(
      try await forecasts.updateSettings(
        ForecastSettings(calendar: FiscalCalendar(startMonth: month), defaultPeriod: period), principal: call.principal))
  }

  public func listForecastSnapshots(request: Crm_V1_ListForecastSnapshotsRequest, context: ServerContext) async throws
    -> Crm_V1_ListForecastSnapshotsResponse
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let limit = request.limit == 0 ? 52 : Int(request.limit)
    if !(1...520).contains(limit) { violations.add("limit", "must be 1 to 520", reason: "OUT_OF_RANGE") }
    try violations.check()
    let snapshots = try await forecasts.snapshots(limit: limit, principal: call.principal)
    return .with { $0.snapshots = snapshots.map(Crm_V1_ForecastSnapshot.init) }
  }

  public func takeForecastSnapshot(request: Crm_V1_TakeForecastSnapshotRequest, context: ServerContext) async throws
    -> Crm_V1_ForecastSnapshot
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    return .init(try await forecasts.takeSnapshot(principal: call.principal))
  }

  public func getForecastTrend(request: Crm_V1_GetForecastTrendRequest, context: ServerContext) async throws
    -> Crm_V1_ForecastTrend
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let (subject, period, currency) = Self.scope(request, into: &violations)
    try violations.check()
    let trend = try await forecasts.trend(subject: subject, period: period, currency: currency!, principal: call.principal)
    return .with {
      $0.period = .init(trend.period)
      $0.currencyCode = trend.currency
      $0.points = trend.points.map { point in
        .with {
          $0.snapshot = .init(point.snapshot)
          $0.total = .init(point.total)
        }
      }
      $0.actual = .init(trend.actual)
      $0.periodEnded = trend.periodEnded
    }
  }

  public func listForecastChanges(request: Crm_V1_ListForecastChangesRequest, context: ServerContext) async throws
    -> Crm_V1_ListForecastChangesResponse
  {
    let call = try RequestContext.require()
    try call.principal.requireDealAmounts(for: "forecasts")
    var violations = Violations()
    let (subject, period, currency) = Self.scope(request, into: &violations)
    let from = RequestFields.optionalID(request.fromSnapshotID, field: "from_snapshot_id", into: &violations)
    let to = RequestFields.optionalID(request.toSnapshotID, field: "to_snapshot_id", into: &violations)
    try violations.check()
    let report = try await forecasts.changes(
      subject: subject, period: period, currency: currency!, from: from, to: to, principal: call.principal)
    return .with {
      $0.from = .init(report.from)
      if let later = report.to { $0.to = .init(later) }
      $0.changes = report.changes.map(Crm_V1_ForecastChange.init)
      $0.truncated = report.truncated
    }
  }

  // MARK: - Request fields

  /// Whose number, which period and currency: the fields every reading RPC shares.
  static func scope(_ request: some ForecastScopedRequest, into violations: inout Violations)
    -> (subject: ForecastSubject?, period: String?, currency: String?)
  {
    (
      subject(userID: request.userID, teamID: request.teamID, company: request.company, into: &violations),
      violations.text("period", request.period, maxLength: 20),
      currency(request.currencyCode, field: "currency_code", into: &violations)
    )
  }

  static func subject(userID: String, teamID: String, company: Bool, into violations: inout Violations) -> ForecastSubject? {
    let user = RequestFields.optionalID(userID, field: "user_id", into: &violations)
    let team = RequestFields.optionalID(teamID, field: "team_id", into: &violations)
    if [user != nil, team != nil, company].filter({ $0 }).count > 1 {
      violations.add(company ? "company" : "team_id", "name a user, a team or the company, not more", reason: "INVALID")
      return nil
    }
    return company ? .company : user.map(ForecastSubject.user) ?? team.map(ForecastSubject.team)
  }

  /// An optional amount (not negative) and the currency it is in: `currency_code` when given (then it
  /// must match the amount's), else the amount's; one of the two is required.
  static func amount(
    _ money: Crm_V1_Money?, currencyCode: String, prefix: String, into violations: inout Violations
  ) -> (Money?, String?) {
    let amount = BillingFields.money(
      money ?? .init(), present: money != nil, field: "\(prefix)amount", currency: nil, sign: .notNegative, required: false,
      into: &violations)
    let field = currencyCode.isEmpty && money != nil ? "\(prefix)amount.currency_code" : "\(prefix)currency_code"
    let currency = Self.currency(currencyCode.isEmpty ? money?.currencyCode ?? "" : currencyCode, field: field, into: &violations)
    if let amount, let currency, amount.currencyCode != currency {
      violations.add("\(prefix)currency_code", "must be the currency of amount", reason: "INVALID")
    }
    return (amount, currency)
  }

  static func currency(_ text: String, field: String, into violations: inout Violations) -> String? {
    let code = text.trimmingWhitespace().uppercased()
    guard !code.isEmpty else {
      violations.add(field, "is required: forecasts add up one currency", reason: "REQUIRED")
      return nil
    }
    guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
      violations.add(field, "must be a 3-letter ISO 4217 code", reason: "INVALID_FORMAT")
      return nil
    }
    return code
  }
}

extension ForecastColumn {
  /// The domain column, or a violation under `field` (only commit, best case and pipeline when
  /// `adjustable`).
  init?(_ column: Crm_V1_ForecastColumn, field: String, adjustable: Bool, into violations: inout Violations) {
    let value: ForecastColumn? =
      switch column {
      case .closed: .closed
      case .commit: .commit
      case .bestCase: .bestCase
      case .pipeline: .pipeline
      case .weighted: .weighted
      default: nil
      }
    guard let value else {
      violations.add(
        field, "is required: FORECAST_COLUMN_CLOSED, _COMMIT, _BEST_CASE, _PIPELINE or _WEIGHTED", reason: "REQUIRED")
      return nil
    }
    if adjustable, !ForecastColumn.adjustable.contains(value) {
      violations.add(
        field, "only commit, best case and pipeline are adjusted; closed and weighted come from the deals", reason: "INVALID")
      return nil
    }
    self = value
  }

  var proto: Crm_V1_ForecastColumn {
    switch self {
    case .closed: .closed
    case .commit: .commit
    case .bestCase: .bestCase
    case .pipeline: .pipeline
    case .weighted: .weighted
    }
  }
}

extension Crm_V1_ForecastPeriod {
  init(_ period: ForecastPeriod) {
    self.init()
    name = period.name
    kind = period.kind.proto
    startDate = .init(period.start)
    endDate = .init(period.end)
  }
}

extension PeriodKind {
  var proto: Crm_V1_PeriodKind {
    switch self {
    case .month: .month
    case .quarter: .quarter
    case .year: .year
    }
  }
}

extension Crm_V1_ForecastRow {
  init(_ row: ForecastReport.Row) {
    self.init()
    kind =
      switch row.kind {
      case .ownDeals: .ownDeals
      case .report: .report
      case .total: .total
      }
    userID = row.user?.id.lowercasedString ?? ""
    displayName = row.user?.displayName ?? row.team?.name ?? ""
    teamID = row.team?.id.lowercasedString ?? ""
    teamName = row.team?.name ?? ""
    closed = .init(row.figures[.closed])
    commit = .init(row.figures[.commit])
    bestCase = .init(row.figures[.bestCase])
    pipeline = .init(row.figures[.pipeline])
    weighted = .init(row.figures[.weighted])
    if let quota = row.quota { self.quota = .init(quota) }
    if let attainment = row.attainment { self.attainment = attainment }
  }
}

extension Crm_V1_ForecastValue {
  init(_ value: CRMCore.ForecastValue) {
    self.init()
    amount = .init(value.amount)
    unadjusted = .init(value.unadjusted)
    submitted = .init(value.submitted)
    ownerAdjusted = value.ownerAdjusted
    managerAdjusted = value.managerAdjusted
    dealCount = Int32(clamping: value.deals)
  }
}

extension Crm_V1_ForecastAdjustment {
  init(_ record: ForecastAdjustmentRecord) {
    self.init()
    id = record.id.lowercasedString
    currencyCode = record.currency
    userID = record.subjectID.lowercasedString
    adjusterID = record.adjusterID.lowercasedString
    managerAdjustment = record.isManagerAdjustment
    period = .init(record.period)
    column = record.column.proto
    if let amount = record.amount { self.amount = .init(amount) }
    note = record.note
    createTime = .init(record.createdAt)
    if let supersededAt = record.supersededAt { supersedeTime = .init(supersededAt) }
  }
}

extension Crm_V1_Quota {
  init(_ record: QuotaRecord) {
    self.init()
    userID = record.userID.lowercasedString
    period = record.period.name
    amount = .init(record.amount)
    currencyCode = record.amount.currencyCode
    periodRange = .init(record.period)
    updateTime = .init(record.updatedAt)
  }
}

extension Crm_V1_ForecastSettings {
  init(_ settings: ForecastSettings) {
    self.init()
    fiscalYearStartMonth = Int32(settings.calendar.startMonth)
    defaultPeriod = settings.defaultPeriod.proto
  }
}

extension Crm_V1_ForecastSnapshot {
  init(_ snapshot: ForecastSnapshot) {
    self.init()
    id = snapshot.id.lowercasedString
    takeTime = .init(snapshot.takenAt)
    weekStart = .init(snapshot.weekStart)
    windowStart = .init(snapshot.windowStart)
    windowEnd = .init(snapshot.windowEnd)
    dealCount = Int32(clamping: snapshot.deals)
  }
}

extension Crm_V1_ForecastChange {
  init(_ change: ForecastChange) {
    self.init()
    opportunityID = change.opportunityID.lowercasedString
    name = change.name
    ownerID = (change.after ?? change.before)?.ownerID.lowercasedString ?? ""
    moves = change.moves.map {
      switch $0 {
      case .added: .added
      case .removed: .removed
      case .enteredCommit: .enteredCommit
      case .leftCommit: .leftCommit
      case .amountChanged: .amountChanged
      case .closeDateChanged: .closeDateChanged
      case .won: .won
      case .lost: .lost
      }
    }
    if let before = change.before { self.before = .init(before) }
    if let after = change.after { self.after = .init(after) }
  }
}

extension Crm_V1_ForecastDealState {
  init(_ state: ForecastDealState) {
    self.init()
    if let amount = state.amount { self.amount = .init(amount) }
    forecastCategory = .init(state.category)
    self.state = .init(state.state)
    if let closeDate = state.closeDate { self.closeDate = .init(closeDate) }
    probability = Int32(state.probability)
    archived = state.archived
  }
}

/// The requests that read a forecast of a user, a team or the company for a period and currency.
protocol ForecastScopedRequest {
  var period: String { get }
  var userID: String { get }
  var teamID: String { get }
  var company: Bool { get }
  var currencyCode: String { get }
}

extension Crm_V1_GetForecastRequest: ForecastScopedRequest {}
extension Crm_V1_ListForecastDealsRequest: ForecastScopedRequest {}
extension Crm_V1_GetForecastTrendRequest: ForecastScopedRequest {}
extension Crm_V1_ListForecastChangesRequest: ForecastScopedRequest {}
