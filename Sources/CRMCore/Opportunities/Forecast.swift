public import Foundation

/// One number column of a forecast.
public enum ForecastColumn: String, Sendable, Hashable, CaseIterable {
  /// Won deals.
  case closed
  /// Commit + closed.
  case commit
  /// Best case + commit + closed.
  case bestCase = "best_case"
  /// Open deals not omitted: pipeline + best case + commit.
  case pipeline
  /// The open pipeline weighted by probability.
  case weighted

  /// The columns an owner or a manager may adjust.
  public static let adjustable: [ForecastColumn] = [.commit, .bestCase, .pipeline]

  /// The deals' forecast categories the column sums (cumulatively).
  public var categories: Set<ForecastCategory> {
    switch self {
    case .closed: [.closed]
    case .commit: [.commit, .closed]
    case .bestCase: [.bestCase, .commit, .closed]
    case .pipeline, .weighted: [.pipeline, .bestCase, .commit]
    }
  }
}

/// What one owner's deals in a period and currency add up to, per forecast category: the sum of
/// amounts, of amounts × probability, and the count.
public struct CategoryTotals: Sendable, Hashable {
  public var amount: Money
  public var weighted: Money
  public var deals: Int

  /// Totals.
  public init(amount: Money, weighted: Money, deals: Int) {
    self.amount = amount
    self.weighted = weighted
    self.deals = deals
  }
}

/// One number of a forecast row: as read, from the deals alone, as the row's user submitted it.
public struct ForecastValue: Sendable, Hashable {
  public var amount: Money
  public var unadjusted: Money
  public var submitted: Money
  public var ownerAdjusted: Bool
  public var managerAdjusted: Bool
  public var deals: Int

  /// A value with no adjustment: every reading the same.
  public init(_ amount: Money, deals: Int) {
    self.amount = amount
    unadjusted = amount
    submitted = amount
    ownerAdjusted = false
    managerAdjusted = false
    self.deals = deals
  }
}

/// The five numbers of one forecast row.
public struct ForecastFigures: Sendable, Hashable {
  // Stored, not a dictionary by column: a 1,000-rep rollup adds figures thousands of times, and
  // hashing the column keys was most of its time.
  public var closed: ForecastValue
  public var commit: ForecastValue
  public var bestCase: ForecastValue
  public var pipeline: ForecastValue
  public var weighted: ForecastValue

  /// Zero in every column.
  public static func zero(_ currency: String) -> ForecastFigures {
    let zero = ForecastValue(.zero(currency), deals: 0)
    return ForecastFigures(closed: zero, commit: zero, bestCase: zero, pipeline: zero, weighted: zero)
  }

  init(closed: ForecastValue, commit: ForecastValue, bestCase: ForecastValue, pipeline: ForecastValue, weighted: ForecastValue) {
    self.closed = closed
    self.commit = commit
    self.bestCase = bestCase
    self.pipeline = pipeline
    self.weighted = weighted
  }

  /// The cumulative figures of one owner's deals.
  public init(currency: String, totals: [ForecastCategory: CategoryTotals]) {
    self = .zero(currency)
    for column in ForecastColumn.allCases {
      var amount = Money.zero(currency)
      var deals = 0
      for category in column.categories {
        guard let total = totals[category] else { continue }
        amount = amount.adding(column == .weighted ? total.weighted : total.amount)
        deals += total.deals
      }
      self[column] = ForecastValue(amount, deals: deals)
    }
  }

  public subscript(_ column: ForecastColumn) -> ForecastValue {
    get {
      switch column {
      case .closed: closed
      case .commit: commit
      case .bestCase: bestCase
      case .pipeline: pipeline
      case .weighted: weighted
      }
    }
    set {
      switch column {
      case .closed: closed = newValue
      case .commit: commit = newValue
      case .bestCase: bestCase = newValue
      case .pipeline: pipeline = newValue
      case .weighted: weighted = newValue
      }
    }
  }

  /// The column-wise sum (adjusted with adjusted, unadjusted with unadjusted, submitted with submitted).
  func adding(_ other: ForecastFigures) -> ForecastFigures {
    ForecastFigures(
      closed: closed.adding(other.closed), commit: commit.adding(other.commit), bestCase: bestCase.adding(other.bestCase),
      pipeline: pipeline.adding(other.pipeline), weighted: weighted.adding(other.weighted))
  }
}

extension ForecastValue {
  /// The sum of each reading; the flags stay this value's.
  func adding(_ other: ForecastValue) -> ForecastValue {
    var sum = self
    sum.amount = amount.adding(other.amount)
    sum.unadjusted = unadjusted.adding(other.unadjusted)
    sum.submitted = submitted.adding(other.submitted)
    sum.deals += other.deals
    return sum
  }
}

/// A user as the forecast tree knows them.
public struct ForecastMember: Sendable, Hashable {
  public var id: UUID
  public var displayName: String
  public var teamID: UUID?

  /// A member.
  public init(id: UUID, displayName: String, teamID: UUID?) {
    self.id = id
    self.displayName = displayName
    self.teamID = teamID
  }
}

/// The team hierarchy turned into who reports to whom, for one forecast.
///
/// A user's manager in a forecast is the manager of their team — or, when they manage it themselves
/// or it has none, of the nearest team above with a manager — provided that manager is inside the
/// forecast's subject's reach (else the search goes on up). Every user below the subject therefore
/// rolls up along exactly one path, and no deal is counted twice.
public struct ForecastHierarchy: Sendable {
  public let members: [UUID: ForecastMember]
  public let teams: [UUID: Team]
  let childTeams: [UUID: [UUID]]

  /// The tenant's users and teams.
  public init(members: [ForecastMember], teams: [Team]) {
    self.members = Dictionary(members.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    self.teams = Dictionary(teams.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    var children: [UUID: [UUID]] = [:]
    for team in teams { if let parent = team.parentTeamID { children[parent, default: []].append(team.id) } }
    childTeams = children
  }

  /// `team` and every team below it.
  public func subtree(of team: UUID) -> Set<UUID> {
    var seen: Set<UUID> = []
    var queue = [team]
    while let next = queue.popLast() {
      guard seen.insert(next).inserted else { continue }
      queue.append(contentsOf: childTeams[next] ?? [])
    }
    return seen
  }

  /// The users in `teams`.
  func users(in teams: Set<UUID>) -> Set<UUID> {
    Set(members.values.filter { $0.teamID.map(teams.contains) == true }.map(\.id))
  }

  /// Everyone below `user`: the users of the teams they manage and of every team under those, not
  /// themselves (the same reach as ``Principal/ownersInHierarchy``).
  public func below(_ user: UUID) -> Set<UUID> {
    var managed: Set<UUID> = []
    for team in teams.values where team.managerID == user { managed.formUnion(subtree(of: team.id)) }
    return users(in: managed).subtracting([user])
  }

  /// Everyone in `team`'s subtree.
  public func users(inTeamTree team: UUID) -> Set<UUID> { users(in: subtree(of: team)) }

  /// Who reports to whom among `scope` under `subject` (`nil`: a team without a manager): the
  /// children of each user, and of the subject under the `nil` key.
  public func reports(subject: UUID?, scope: Set<UUID>) -> [UUID?: [UUID]] {
    func parent(of user: UUID) -> UUID? {
      var team = members[user]?.teamID
      var steps = 0
      while let id = team, let current = teams[id], steps < 64 {
        if let manager = current.managerID, manager != user, manager == subject || scope.contains(manager) {
          return manager == subject ? nil : manager
        }
        team = current.parentTeamID
        steps += 1
      }
      return nil
    }
    var parents: [UUID: UUID?] = [:]
    for user in scope where user != subject { parents[user] = parent(of: user) }
    var children: [UUID?: [UUID]] = [:]
    for (user, parent) in parents { children[parent, default: []].append(user) }
    // A cycle of managers (A manages B's team, B manages A's) never reaches the subject: its users
    // report to the subject directly.
    var reached: Set<UUID> = []
    var queue: [UUID?] = [nil]
    while let next = queue.popLast() {
      for child in children[next] ?? [] where reached.insert(child).inserted { queue.append(child) }
    }
    for user in parents.keys where !reached.contains(user) {
      children[parents[user]!]?.removeAll { $0 == user }
      children[nil, default: []].append(user)
    }
    for key in children.keys {
      // Keys computed once per user: a comparison that formats ids is most of a large forecast's time.
      children[key] = children[key]!.map { (members[$0]?.displayName ?? "", $0.lowercasedString, $0) }
        .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
    }
    return children
  }

  /// The team `user` manages that sits highest among those they manage (for a row's label).
  public func managedTeam(of user: UUID) -> Team? {
    let managed = teams.values.filter { $0.managerID == user }
    return managed.first { team in !managed.contains { $0.id == team.parentTeamID } } ?? managed.first
  }
}

/// The adjustments in force for one period and currency: each user's own, and each manager's of
/// each report.
public struct ForecastAdjustments: Sendable {
  /// By subject: the subject's own adjustments.
  public var owner: [UUID: [ForecastColumn: Money]] = [:]
  /// By subject, then adjuster.
  public var manager: [UUID: [UUID: [ForecastColumn: Money]]] = [:]

  /// None.
  public init() {}
}

/// The rows of one forecast, computed from each owner's deals, the tree and the adjustments.
public struct ForecastRollup: Sendable {
  public struct Row: Sendable {
    public var user: UUID?
    public var figures: ForecastFigures
  }

  /// The subject's own deals (absent for a team without a manager).
  public var ownDeals: Row?
  /// Each direct report's number as the subject reads it.
  public var reports: [Row]
  /// The subject's number.
  public var total: Row

  /// Rolls up: a user's rollup is their own deals plus each report's number as they read it (the
  /// report's own adjustment, replaced by the user's adjustment of that report when there is one);
  /// the total is the subject's rollup, replaced by the subject's own adjustment when set.
  public init(
    subject: UUID?, currency: String, tree: [UUID?: [UUID]], own: [UUID: [ForecastCategory: CategoryTotals]],
    adjustments: ForecastAdjustments
  ) {
    func ownFigures(_ user: UUID) -> ForecastFigures {
      own[user].map { ForecastFigures(currency: currency, totals: $0) } ?? .zero(currency)
    }
    /// What the reports under `key` add up to, as `reader` (their manager) reads them.
    func reportsSum(_ key: UUID?, reader: UUID?) -> ForecastFigures {
      var sum = ForecastFigures.zero(currency)
      for child in tree[key] ?? [] { sum = sum.adding(reported(child, to: reader)) }
      return sum
    }
    func submitted(_ user: UUID) -> ForecastFigures {
      var figures = ownFigures(user).adding(reportsSum(user, reader: user))
      for (column, amount) in adjustments.owner[user] ?? [:] where ForecastColumn.adjustable.contains(column) {
        figures[column].amount = amount
        figures[column].ownerAdjusted = true
      }
      for column in ForecastColumn.allCases { figures[column].submitted = figures[column].amount }
      return figures
    }
    func reported(_ user: UUID, to reader: UUID?) -> ForecastFigures {
      var figures = submitted(user)
      guard let reader else { return figures }
      for (column, amount) in adjustments.manager[user]?[reader] ?? [:] where ForecastColumn.adjustable.contains(column) {
        figures[column].amount = amount
        figures[column].managerAdjusted = true
      }
      return figures
    }
    ownDeals = subject.map { Row(user: $0, figures: ownFigures($0)) }
    reports = (tree[nil] ?? []).map { Row(user: $0, figures: reported($0, to: subject)) }
    var total = reports.reduce(subject.map(ownFigures) ?? .zero(currency)) { $0.adding($1.figures) }
    for (column, amount) in subject.flatMap({ adjustments.owner[$0] }) ?? [:] where ForecastColumn.adjustable.contains(column) {
      total[column].amount = amount
      total[column].ownerAdjusted = true
    }
    for column in ForecastColumn.allCases { total[column].submitted = total[column].amount }
    self.total = Row(user: subject, figures: total)
  }
}

/// The tenant's forecast settings.
public struct ForecastSettings: Sendable, Hashable {
  public var calendar: FiscalCalendar
  /// The period a forecast shows when none is named: month or quarter.
  public var defaultPeriod: PeriodKind

  /// Settings.
  public init(calendar: FiscalCalendar, defaultPeriod: PeriodKind) {
    self.calendar = calendar
    self.defaultPeriod = defaultPeriod
  }
}

/// Whose forecast: a user's, a team's (its manager's when it has one), or the whole tenant's.
public enum ForecastSubject: Sendable, Hashable {
  case user(UUID)
  case team(UUID)
  case company
}

/// A computed forecast.
public struct ForecastReport: Sendable {
  public enum RowKind: Sendable { case ownDeals, report, total }

  public struct Row: Sendable {
    public var kind: RowKind
    public var user: ForecastMember?
    /// The team the row's user manages, if any.
    public var team: Team?
    public var figures: ForecastFigures
    public var quota: Money?

    /// A row.
    public init(kind: RowKind, user: ForecastMember?, team: Team?, figures: ForecastFigures, quota: Money?) {
      self.kind = kind
      self.user = user
      self.team = team
      self.figures = figures
      self.quota = quota
    }

    /// closed ÷ quota; `nil` without a positive quota.
    public var attainment: Double? {
      guard let quota, quota.isPositive else { return nil }
      return figures[.closed].amount.ratio(to: quota)
    }
  }

  public var period: ForecastPeriod
  public var currency: String
  /// The subject as resolved: the user (a team's manager), and the team when one was asked for.
  public var userID: UUID?
  public var teamID: UUID?
  public var rows: [Row]
  public var total: Row

  /// A report.
  public init(period: ForecastPeriod, currency: String, userID: UUID?, teamID: UUID?, rows: [Row], total: Row) {
    self.period = period
    self.currency = currency
    self.userID = userID
    self.teamID = teamID
    self.rows = rows
    self.total = total
  }
}

/// A user's quota for one period.
public struct QuotaRecord: Sendable, Hashable {
  public var userID: UUID
  public var period: ForecastPeriod
  public var amount: Money
  public var updatedAt: Timestamp

  /// A quota.
  public init(userID: UUID, period: ForecastPeriod, amount: Money, updatedAt: Timestamp) {
    self.userID = userID
    self.period = period
    self.amount = amount
    self.updatedAt = updatedAt
  }
}

/// One adjustment of a forecast number, as recorded.
public struct ForecastAdjustmentRecord: Sendable, Hashable {
  public var id: UUID
  public var subjectID: UUID
  public var adjusterID: UUID
  public var period: ForecastPeriod
  public var currency: String
  public var column: ForecastColumn
  /// `nil`: this record removed the adjustment before it.
  public var amount: Money?
  public var note: String
  public var createdAt: Timestamp
  public var supersededAt: Timestamp?

  /// A record.
  public init(
    id: UUID, subjectID: UUID, adjusterID: UUID, period: ForecastPeriod, currency: String, column: ForecastColumn,
    amount: Money?, note: String, createdAt: Timestamp, supersededAt: Timestamp?
  ) {
    self.id = id
    self.subjectID = subjectID
    self.adjusterID = adjusterID
    self.period = period
    self.currency = currency
    self.column = column
    self.amount = amount
    self.note = note
    self.createdAt = createdAt
    self.supersededAt = supersededAt
  }

  /// True when a manager set it (not the number's owner).
  public var isManagerAdjustment: Bool { subjectID != adjusterID }
}

/// One weekly snapshot of the deals a forecast reads.
public struct ForecastSnapshot: Sendable, Hashable {
  public var id: UUID
  /// The Monday (UTC) of its week.
  public var weekStart: CalendarDate
  public var takenAt: Timestamp
  /// The close dates it covers: the quarter it was taken in and the next one.
  public var windowStart: CalendarDate
  public var windowEnd: CalendarDate
  public var deals: Int

  /// A snapshot.
  public init(
    id: UUID, weekStart: CalendarDate, takenAt: Timestamp, windowStart: CalendarDate, windowEnd: CalendarDate, deals: Int
  ) {
    self.id = id
    self.weekStart = weekStart
    self.takenAt = takenAt
    self.windowStart = windowStart
    self.windowEnd = windowEnd
    self.deals = deals
  }

  /// Whether every close date of `period` is inside the snapshot's window.
  public func covers(_ period: ForecastPeriod) -> Bool { windowStart <= period.start && period.end <= windowEnd }
}

/// What a deal looked like to one reading of a forecast.
public struct ForecastDealState: Sendable, Hashable {
  public var ownerID: UUID
  public var amount: Money?
  public var category: ForecastCategory
  public var state: StageCategory
  public var closeDate: CalendarDate?
  public var probability: Int
  public var archived: Bool

  /// A state.
  public init(
    ownerID: UUID, amount: Money?, category: ForecastCategory, state: StageCategory, closeDate: CalendarDate?,
    probability: Int, archived: Bool
  ) {
    self.ownerID = ownerID
    self.amount = amount
    self.category = category
    self.state = state
    self.closeDate = closeDate
    self.probability = probability
    self.archived = archived
  }

  /// Whether a forecast of `period` in `currency` reads the deal.
  public func isIn(_ period: ForecastPeriod, currency: String) -> Bool {
    !archived && amount?.currencyCode == currency && closeDate.map(period.contains) == true
  }
}

/// One way a deal moved between two readings of a forecast.
public enum ForecastMove: String, Sendable, Hashable, CaseIterable {
  case added
  case removed
  case enteredCommit = "entered_commit"
  case leftCommit = "left_commit"
  case amountChanged = "amount_changed"
  case closeDateChanged = "close_date_changed"
  case won
  case lost

  /// How a deal moved from `before` to `after` as a forecast of `period` in `currency` reads it;
  /// empty when it did not, or when neither reading has it in the period.
  public static func between(
    _ before: ForecastDealState?, _ after: ForecastDealState?, period: ForecastPeriod, currency: String
  ) -> [ForecastMove] {
    let was = before?.isIn(period, currency: currency) ?? false
    let now = after?.isIn(period, currency: currency) ?? false
    guard was || now else { return [] }
    var moves: [ForecastMove] = []
    if !was { moves.append(.added) }
    if !now { moves.append(.removed) }
    guard let before, let after else { return moves }
    if before.state == .open, after.state == .won { moves.append(.won) }
    if before.state == .open, after.state == .lost { moves.append(.lost) }
    if before.category != .commit, after.category == .commit, after.state == .open { moves.append(.enteredCommit) }
    if before.category == .commit, after.category != .commit, after.state == .open { moves.append(.leftCommit) }
    if before.amount != after.amount { moves.append(.amountChanged) }
    if before.closeDate != after.closeDate { moves.append(.closeDateChanged) }
    return moves
  }
}

/// A deal that moved, with both readings.
public struct ForecastChange: Sendable, Hashable {
  public var opportunityID: UUID
  public var name: String
  public var moves: [ForecastMove]
  public var before: ForecastDealState?
  public var after: ForecastDealState?

  /// A change.
  public init(opportunityID: UUID, name: String, moves: [ForecastMove], before: ForecastDealState?, after: ForecastDealState?) {
    self.opportunityID = opportunityID
    self.name = name
    self.moves = moves
    self.before = before
    self.after = after
  }
}

/// What moved in a forecast between a snapshot and another, or now (`to` nil).
public struct ForecastChanges: Sendable {
  public var from: ForecastSnapshot
  public var to: ForecastSnapshot?
  public var changes: [ForecastChange]
  public var truncated: Bool

  /// Changes.
  public init(from: ForecastSnapshot, to: ForecastSnapshot?, changes: [ForecastChange], truncated: Bool) {
    self.from = from
    self.to = to
    self.changes = changes
    self.truncated = truncated
  }
}

/// A forecast's total at each snapshot covering its period, and now.
public struct ForecastTrend: Sendable {
  public var period: ForecastPeriod
  public var currency: String
  public var points: [(snapshot: ForecastSnapshot, total: ForecastReport.Row)]
  public var actual: ForecastReport.Row
  public var periodEnded: Bool

  /// A trend.
  public init(
    period: ForecastPeriod, currency: String, points: [(snapshot: ForecastSnapshot, total: ForecastReport.Row)],
    actual: ForecastReport.Row, periodEnded: Bool
  ) {
    self.period = period
    self.currency = currency
    self.points = points
    self.actual = actual
    self.periodEnded = periodEnded
  }
}
