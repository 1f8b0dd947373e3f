import CRMCore
import Foundation
import Testing

@Suite("Forecast: fiscal periods and rollups")
struct ForecastTests {
  static func day(_ text: String) -> CalendarDate { CalendarDate(text)! }
  static func usd(_ units: Int64) -> Money { Money(currencyCode: "USD", units: units, nanos: 0) }

  @Test("a January fiscal year is the calendar year; its quarters and months by name")
  func calendarYear() throws {
    let calendar = FiscalCalendar()
    let q1 = try #require(calendar.period(named: "2027-Q1"))
    #expect(q1.kind == .quarter && q1.start == Self.day("2027-01-01") && q1.end == Self.day("2027-03-31"))
    let year = try #require(calendar.period(named: "FY2027"))
    #expect(year.name == "2027" && year.start == Self.day("2027-01-01") && year.end == Self.day("2027-12-31"))
    let february = try #require(calendar.period(named: "2028-02"))
    #expect(february.end == Self.day("2028-02-29") && february.kind == .month)
    #expect(calendar.period(.quarter, containing: Self.day("2026-12-31"))?.name == "2026-Q4")
    #expect(calendar.periods(.month, inside: q1).map(\.name) == ["2027-01", "2027-02", "2027-03"])
    for bad in ["", "2027-Q5", "2027-Q0", "2027-13", "27-Q1", "FY2027-03", "2027-1", "2027-Q1x", "２０２７", "2027-"] {
      #expect(calendar.period(named: bad) == nil, "\(bad)")
    }
  }

  @Test("a fiscal year starting in April is named by the year it ends in")
  func aprilYear() throws {
    let calendar = FiscalCalendar(startMonth: 4)
    let year = try #require(calendar.period(named: "2027"))
    #expect(year.start == Self.day("2026-04-01") && year.end == Self.day("2027-03-31"))
    let q1 = try #require(calendar.period(named: "2027-Q1"))
    #expect(q1.start == Self.day("2026-04-01") && q1.end == Self.day("2026-06-30"))
    let q4 = try #require(calendar.period(named: "2027-q4"))
    #expect(q4.start == Self.day("2027-01-01") && q4.end == Self.day("2027-03-31"))
    #expect(calendar.period(.quarter, containing: Self.day("2026-05-15"))?.name == "2027-Q1")
    #expect(calendar.period(.quarter, containing: Self.day("2027-02-10"))?.name == "2027-Q4")
    #expect(calendar.period(.year, containing: Self.day("2026-03-31"))?.name == "2026")
    #expect(calendar.periods(.quarter, inside: year).map(\.name) == ["2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4"])
    // Every day of a span falls in exactly one quarter, and the quarters tile the year.
    var day = Self.day("2026-01-01")
    while day <= Self.day("2028-12-31") {
      let quarter = try #require(calendar.period(.quarter, containing: day))
      #expect(quarter.contains(day))
      #expect(calendar.period(named: quarter.name) == quarter)
      day = day.adding(days: 1)
    }
  }

  /// VP manages Sales; Alice (in East) manages East, a child of Sales, where Bob works; Carol is in
  /// Sales; Dave is in West, a child of Sales without a manager.
  static func organisation() -> (hierarchy: ForecastHierarchy, vp: UUID, alice: UUID, bob: UUID, carol: UUID, dave: UUID) {
    let (vp, alice, bob, carol, dave) = (UUID(), UUID(), UUID(), UUID(), UUID())
    let (sales, east, west) = (UUID(), UUID(), UUID())
    let now = Timestamp.now
    let hierarchy = ForecastHierarchy(
      members: [
        ForecastMember(id: vp, displayName: "Vera VP", teamID: sales),
        ForecastMember(id: alice, displayName: "Alice", teamID: east),
        ForecastMember(id: bob, displayName: "Bob", teamID: east),
        ForecastMember(id: carol, displayName: "Carol", teamID: sales),
        ForecastMember(id: dave, displayName: "Dave", teamID: west),
      ],
      teams: [
        Team(id: sales, name: "Sales", parentTeamID: nil, managerID: vp, createdAt: now),
        Team(id: east, name: "East", parentTeamID: sales, managerID: alice, createdAt: now),
        Team(id: west, name: "West", parentTeamID: sales, managerID: nil, createdAt: now),
      ])
    return (hierarchy, vp, alice, bob, carol, dave)
  }

  static func totals(_ entries: [ForecastCategory: (amount: Int64, weighted: Int64, deals: Int)]) -> [ForecastCategory:
    CategoryTotals]
  {
    entries.mapValues { CategoryTotals(amount: usd($0.amount), weighted: usd($0.weighted), deals: $0.deals) }
  }

  @Test("rollups match a hand-computed table, with owner and manager adjustments where each reader sees them")
  func rollup() throws {
    let org = Self.organisation()
    #expect(org.hierarchy.below(org.vp) == [org.alice, org.bob, org.carol, org.dave])
    #expect(org.hierarchy.below(org.alice) == [org.bob])
    let tree = org.hierarchy.reports(subject: org.vp, scope: org.hierarchy.below(org.vp))
    #expect(tree[nil] == [org.alice, org.carol, org.dave] && tree[org.alice] == [org.bob])
    let own: [UUID: [ForecastCategory: CategoryTotals]] = [
      org.vp: Self.totals([.commit: (100, 90, 1)]),
      org.alice: Self.totals([.closed: (50, 50, 1), .bestCase: (30, 15, 1)]),
      org.bob: Self.totals([.commit: (200, 120, 2), .pipeline: (1000, 100, 3)]),
      org.carol: Self.totals([.closed: (10, 10, 1)]),
    ]

    // Unadjusted: every reading is the deals'.
    let plain = ForecastRollup(subject: org.vp, currency: "USD", tree: tree, own: own, adjustments: ForecastAdjustments())
    func amounts(_ figures: ForecastFigures) -> [Int64] {
      ForecastColumn.allCases.map { figures[$0].amount.units }
    }
    // closed, commit, best case, pipeline, weighted
    #expect(amounts(plain.ownDeals!.figures) == [0, 100, 100, 100, 90])
    #expect(plain.reports.map(\.user) == [org.alice, org.carol, org.dave])
    #expect(amounts(plain.reports[0].figures) == [50, 250, 280, 1230, 235])
    #expect(amounts(plain.reports[1].figures) == [10, 10, 10, 0, 0])
    #expect(amounts(plain.reports[2].figures) == [0, 0, 0, 0, 0])
    #expect(amounts(plain.total.figures) == [60, 360, 390, 1330, 325])
    #expect(plain.total.figures[.pipeline].deals == 7 && plain.total.figures[.closed].deals == 2)

    // Bob says commit 150; Alice (his manager) says 180; the VP puts Alice's best case at 300 and
    // their own commit at 400.
    var adjustments = ForecastAdjustments()
    adjustments.owner[org.bob] = [.commit: Self.usd(150)]
    adjustments.manager[org.bob] = [org.alice: [.commit: Self.usd(180)]]
    adjustments.manager[org.alice] = [org.vp: [.bestCase: Self.usd(300)]]
    adjustments.owner[org.vp] = [.commit: Self.usd(400)]
    let vp = ForecastRollup(subject: org.vp, currency: "USD", tree: tree, own: own, adjustments: adjustments)
    let alice = vp.reports[0].figures
    #expect(alice[.commit].amount == Self.usd(230) && alice[.commit].unadjusted == Self.usd(250))
    #expect(
      alice[.bestCase].amount == Self.usd(300) && alice[.bestCase].managerAdjusted && alice[.bestCase].submitted == Self.usd(280))
    #expect(vp.total.figures[.commit].amount == Self.usd(400) && vp.total.figures[.commit].ownerAdjusted)
    #expect(vp.total.figures[.commit].unadjusted == Self.usd(360))
    #expect(vp.total.figures[.bestCase].amount == Self.usd(410))
    // Closed and weighted are never adjusted.
    #expect(vp.total.figures[.closed].amount == Self.usd(60) && vp.total.figures[.weighted].amount == Self.usd(325))

    // Alice's own forecast: Bob's row as she reads it; her total carries no one's view above her.
    let aliceTree = org.hierarchy.reports(subject: org.alice, scope: org.hierarchy.below(org.alice))
    let hers = ForecastRollup(subject: org.alice, currency: "USD", tree: aliceTree, own: own, adjustments: adjustments)
    let bob = hers.reports[0].figures[.commit]
    #expect(bob.amount == Self.usd(180) && bob.submitted == Self.usd(150) && bob.unadjusted == Self.usd(200))
    #expect(bob.ownerAdjusted && bob.managerAdjusted)
    #expect(hers.total.figures[.commit].amount == Self.usd(230) && hers.total.figures[.bestCase].amount == Self.usd(280))

    // Bob reads his own number: his adjustment, not his manager's.
    let his = ForecastRollup(subject: org.bob, currency: "USD", tree: [:], own: own, adjustments: adjustments)
    #expect(his.total.figures[.commit].amount == Self.usd(150) && !his.total.figures[.commit].managerAdjusted)
  }

  @Test("managers who manage each other's teams still count each deal once")
  func managerCycle() {
    let (boss, a, b) = (UUID(), UUID(), UUID())
    let (top, teamA, teamB) = (UUID(), UUID(), UUID())
    let now = Timestamp.now
    let hierarchy = ForecastHierarchy(
      members: [
        ForecastMember(id: boss, displayName: "Boss", teamID: top),
        ForecastMember(id: a, displayName: "A", teamID: teamA),
        ForecastMember(id: b, displayName: "B", teamID: teamB),
      ],
      teams: [
        Team(id: top, name: "Top", parentTeamID: nil, managerID: boss, createdAt: now),
        Team(id: teamA, name: "A's", parentTeamID: top, managerID: b, createdAt: now),
        Team(id: teamB, name: "B's", parentTeamID: top, managerID: a, createdAt: now),
      ])
    let tree = hierarchy.reports(subject: boss, scope: hierarchy.below(boss))
    #expect(Set(tree[nil] ?? []) == [a, b] && (tree[a] ?? []).isEmpty && (tree[b] ?? []).isEmpty)
    let rollup = ForecastRollup(
      subject: boss, currency: "USD", tree: tree,
      own: [a: Self.totals([.commit: (5, 5, 1)]), b: Self.totals([.commit: (7, 7, 1)])], adjustments: ForecastAdjustments())
    #expect(rollup.total.figures[.commit].amount == Self.usd(12))
  }

  @Test("a team without a manager rolls up its members with no own row")
  func teamWithoutManager() {
    let org = Self.organisation()
    let west = org.hierarchy.teams.values.first { $0.name == "West" }!.id
    let scope = org.hierarchy.users(inTeamTree: west)
    let tree = org.hierarchy.reports(subject: nil, scope: scope)
    let rollup = ForecastRollup(
      subject: nil, currency: "USD", tree: tree, own: [org.dave: Self.totals([.closed: (3, 3, 1)])],
      adjustments: ForecastAdjustments())
    #expect(rollup.ownDeals == nil && rollup.reports.map(\.user) == [org.dave])
    #expect(rollup.total.figures[.closed].amount == Self.usd(3))
  }
}
