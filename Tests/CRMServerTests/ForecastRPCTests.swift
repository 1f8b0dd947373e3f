import CRMCore
import CRMProto
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: the forecast")
struct ForecastRPCTests {
  typealias Client = Crm_V1_ForecastService.Client<HTTP2ClientTransport.Posix>

  /// VP manages Sales; Alice, in Sales, manages East (under Sales), where Bob works; Carol works in Sales.
  struct Organisation {
    var vp: (id: String, auth: Metadata)
    var alice: (id: String, auth: Metadata)
    var bob: (id: String, auth: Metadata)
    var carol: (id: String, auth: Metadata)
    var sales: String
    var east: String
  }

  static func organisation(_ tenant: TestTenant) async throws -> Organisation {
    func user(_ role: Role, team: UUID? = nil) async throws -> (id: String, auth: Metadata) {
      let (principal, secret) = try await tenant.makeUser(role, team: team)
      return (principal.userID.lowercasedString, TestServer.auth(secret))
    }
    let vp = try await user(.manager)
    let sales = try await tenant.makeTeam("Sales", manager: UUID(uuidString: vp.id)!)
    let alice = try await user(.manager, team: sales)
    let east = try await tenant.makeTeam("East", parent: sales, manager: UUID(uuidString: alice.id)!)
    let bob = try await user(.salesRep, team: east)
    let carol = try await user(.salesRep, team: sales)
    return Organisation(
      vp: vp, alice: alice, bob: bob, carol: carol, sales: sales.lowercasedString, east: east.lowercasedString)
  }

  /// A deal owned by `owner`, closing on `close` (2027-02-15 by default), forecast as `category`.
  @discardableResult
  static func deal(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>, owner: String, account: String, amount: Int64, currency: String = "USD",
    probability: Int32, category: Crm_V1_ForecastCategory, close: Crm_V1_Date = OpportunityRPCTests.date(2027, 2, 15),
    won: Bool = false, auth: Metadata
  ) async throws -> Crm_V1_Opportunity {
    let deals = Crm_V1_OpportunityService.Client(wrapping: client)
    let deal = try await deals.createOpportunity(
      .with {
        $0.opportunity = .with {
          $0.name = "Deal \(amount) \(currency)"
          $0.ownerID = owner
          $0.accountID = account
          $0.amount = OpportunityRPCTests.money(amount, currency)
          $0.closeDate = close
          if !won {
            $0.probability = probability
            $0.forecastCategory = category
          }
        }
      }, metadata: auth)
    guard won else { return deal }
    return try await deals.closeOpportunityWon(
      .with {
        $0.id = deal.id
        $0.etag = deal.etag
      }, metadata: auth)
  }

  /// closed, commit, best case, pipeline, weighted: whole units as the reader reads them.
  static func amounts(_ row: Crm_V1_ForecastRow) -> [Int64] {
    [row.closed, row.commit, row.bestCase, row.pipeline, row.weighted].map(\.amount.units)
  }

  static func forecast(
    _ forecasts: Client, user: String = "", team: String = "", period: String = "2027-Q1", auth: Metadata
  ) async throws -> Crm_V1_Forecast {
    try await forecasts.getForecast(
      .with {
        $0.period = period
        $0.userID = user
        $0.teamID = team
        $0.currencyCode = "usd"
      }, metadata: auth)
  }

  static func adjust(
    _ forecasts: Client, user: String = "", column: Crm_V1_ForecastColumn, units: Int64?, note: String = "",
    auth: Metadata
  ) async throws -> Crm_V1_ForecastAdjustment {
    try await forecasts.adjustForecast(
      .with {
        $0.period = "2027-Q1"
        $0.userID = user
        $0.column = column
        if let units { $0.amount = OpportunityRPCTests.money(units) }
        $0.currencyCode = "USD"
        $0.note = note
      }, metadata: auth)
  }

  @Test(
    "the rollup through the hierarchy matches a hand-computed table, with quotas, adjustments and the deals behind each number")
  func rollupAdjustQuota() async throws {
    let tenant = try await TestTenant.make()
    let org = try await Self.organisation(tenant)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let account = try await BillingRPCTests.account(client, "Forecast Corp", auth: admin)
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 200, probability: 60, category: .commit, auth: admin)
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 1000, probability: 10, category: .pipeline, auth: admin)
      // Not in the USD Q1 forecast: another currency, another quarter, omitted.
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 999, currency: "EUR", probability: 50, category: .commit, auth: admin
      )
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 888, probability: 50, category: .commit,
        close: OpportunityRPCTests.date(2027, 4, 1), auth: admin)
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 77, probability: 50, category: .omitted, auth: admin)
      let aliceWon = try await Self.deal(
        client, owner: org.alice.id, account: account, amount: 50, probability: 0, category: .pipeline, won: true, auth: admin)
      #expect(aliceWon.state == .won && aliceWon.forecastCategory == .closed)
      try await Self.deal(
        client, owner: org.alice.id, account: account, amount: 30, probability: 50, category: .bestCase, auth: admin)
      try await Self.deal(
        client, owner: org.carol.id, account: account, amount: 10, probability: 0, category: .pipeline, won: true, auth: admin)
      try await Self.deal(
        client, owner: org.vp.id, account: account, amount: 100, probability: 90, category: .commit, auth: admin)

      let forecasts = Client(wrapping: client)
      _ = try await forecasts.setQuotas(
        .with {
          $0.quotas =
            [
              .with {
                $0.userID = org.vp.id
                $0.period = "2027-Q1"
                $0.amount = OpportunityRPCTests.money(100)
              }
            ]
            + ["2027-01", "2027-02", "2027-03"].map { month in
              .with {
                $0.userID = org.alice.id
                $0.period = month
                $0.amount = OpportunityRPCTests.money(20)
              }
            }
        }, metadata: admin)

      var vp = try await Self.forecast(forecasts, auth: org.vp.auth)
      #expect(vp.period.name == "2027-Q1" && vp.period.startDate == OpportunityRPCTests.date(2027, 1, 1))
      #expect(vp.period.endDate == OpportunityRPCTests.date(2027, 3, 31) && vp.currencyCode == "USD")
      #expect(vp.rows.map(\.kind) == [.ownDeals, .report, .report])
      // Reports by name: "manager" (Alice) before "sales_rep" (Carol).
      #expect(vp.rows.map(\.userID) == [org.vp.id, org.alice.id, org.carol.id])
      let rows = Dictionary(uniqueKeysWithValues: vp.rows.map { ($0.userID, $0) })
      #expect(Self.amounts(rows[org.vp.id]!) == [0, 100, 100, 100, 90])
      #expect(Self.amounts(rows[org.alice.id]!) == [50, 250, 280, 1230, 235])
      #expect(rows[org.alice.id]!.teamID == org.east && rows[org.alice.id]!.teamName == "East")
      #expect(Self.amounts(rows[org.carol.id]!) == [10, 10, 10, 0, 0])
      #expect(Self.amounts(vp.total) == [60, 360, 390, 1330, 325])
      #expect(vp.total.pipeline.dealCount == 4 && vp.total.closed.dealCount == 2)
      // Quotas: the VP's own for the quarter; Alice's from her three months.
      #expect(vp.total.quota == OpportunityRPCTests.money(100) && vp.total.attainment == 0.6)
      #expect(rows[org.alice.id]!.quota == OpportunityRPCTests.money(60) && rows[org.carol.id]!.hasQuota == false)
      #expect(!rows[org.carol.id]!.hasAttainment)

      // The team asked for is its manager's forecast.
      let east = try await Self.forecast(forecasts, team: org.east, auth: org.vp.auth)
      #expect(east.userID == org.alice.id && east.teamID == org.east && Self.amounts(east.total) == [50, 250, 280, 1230, 235])

      // The company (admins): a row per top manager and per user in no team, the same total.
      let company = try await forecasts.getForecast(
        .with {
          $0.period = "2027-Q1"
          $0.company = true
          $0.currencyCode = "USD"
        }, metadata: admin)
      #expect(
        company.rows.map(\.kind).allSatisfy { $0 == .report }
          && company.rows.contains { $0.userID == org.vp.id && $0.teamName == "Sales" })
      #expect(Self.amounts(company.total) == [60, 360, 390, 1330, 325] && company.total.userID.isEmpty)
      let notAdmin = await code {
        try await forecasts.getForecast(
          .with {
            $0.company = true
            $0.currencyCode = "USD"
          }, metadata: org.vp.auth)
      }
      #expect(notAdmin == .permissionDenied)

      // Adjustments: Bob's own commit 150, Alice's of Bob 180, the VP's of Alice's best case 300, and
      // the VP's own commit 400. Nobody's deal changes.
      _ = try await Self.adjust(forecasts, column: .commit, units: 150, note: "one slips", auth: org.bob.auth)
      _ = try await Self.adjust(forecasts, user: org.bob.id, column: .commit, units: 180, auth: org.alice.auth)
      _ = try await Self.adjust(forecasts, user: org.alice.id, column: .bestCase, units: 300, auth: org.vp.auth)
      let own = try await Self.adjust(forecasts, column: .commit, units: 400, note: "gut feel", auth: org.vp.auth)
      #expect(own.userID == org.vp.id && own.adjusterID == org.vp.id && !own.managerAdjustment && own.note == "gut feel")
      vp = try await Self.forecast(forecasts, auth: org.vp.auth)
      let alice = vp.rows.first { $0.userID == org.alice.id }!
      #expect(alice.commit.amount.units == 230 && alice.commit.unadjusted.units == 250)
      #expect(alice.bestCase.amount.units == 300 && alice.bestCase.managerAdjusted && alice.bestCase.submitted.units == 280)
      #expect(vp.total.commit.amount.units == 400 && vp.total.commit.ownerAdjusted && vp.total.commit.unadjusted.units == 360)
      #expect(vp.total.bestCase.amount.units == 410)
      let aliceView = try await Self.forecast(forecasts, auth: org.alice.auth)
      let bobRow = aliceView.rows.first { $0.userID == org.bob.id }!
      #expect(bobRow.commit.amount.units == 180 && bobRow.commit.submitted.units == 150 && bobRow.commit.unadjusted.units == 200)
      #expect(bobRow.commit.ownerAdjusted && bobRow.commit.managerAdjusted)
      let bobView = try await Self.forecast(forecasts, auth: org.bob.auth)
      #expect(bobView.total.commit.amount.units == 150 && !bobView.total.commit.managerAdjusted && bobView.rows.count == 1)

      // The deals behind a number: Alice's commit is Bob's commit deal and her won deal.
      let behind = try await forecasts.listForecastDeals(
        .with {
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
          $0.userID = org.alice.id
          $0.column = .commit
        }, metadata: org.vp.auth)
      #expect(Set(behind.opportunities.map(\.amount.units)) == [200, 50])
      let ownOnly = try await forecasts.listForecastDeals(
        .with {
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
          $0.userID = org.alice.id
          $0.ownDealsOnly = true
          $0.column = .pipeline
        }, metadata: org.vp.auth)
      #expect(ownOnly.opportunities.map(\.amount.units) == [30])

      // The audit trail: a second adjustment supersedes the first; a removal is a record too; each
      // reader sees the adjustments of their reach only.
      _ = try await Self.adjust(forecasts, column: .commit, units: 160, auth: org.bob.auth)
      _ = try await Self.adjust(forecasts, column: .commit, units: nil, auth: org.bob.auth)
      let trail = try await forecasts.listForecastAdjustments(
        .with {
          $0.period = "2027-Q1"
          $0.userID = org.bob.id
          $0.includeHistory = true
        }, metadata: org.bob.auth
      ).adjustments
      #expect(trail.map(\.hasAmount) == [false, true, true] && trail.map { $0.amount.units } == [0, 160, 150])
      #expect(!trail[0].hasSupersedeTime && trail[1].hasSupersedeTime && trail[2].hasSupersedeTime)
      let inForce = { (auth: Metadata) in
        try await forecasts.listForecastAdjustments(.with { $0.period = "2027-Q1" }, metadata: auth).adjustments
      }
      #expect(try await inForce(org.bob.auth).isEmpty)  // Alice's adjustment of him is hers.
      #expect(try await inForce(org.alice.auth).map(\.adjusterID) == [org.alice.id])
      #expect(Set(try await inForce(org.vp.auth).map(\.adjusterID)) == [org.alice.id, org.vp.id])
      #expect(try await inForce(admin).count == 3)
      vp = try await Self.forecast(forecasts, auth: org.vp.auth)
      #expect(vp.rows.first { $0.userID == org.alice.id }!.commit.amount.units == 230)  // Alice's 180 for Bob stands.
      let removedAgain = await code { try await Self.adjust(forecasts, column: .commit, units: nil, auth: org.bob.auth) }
      #expect(removedAgain == .notFound)
    }
  }

  static func quota(_ user: String, _ period: String, _ units: Int64) -> Crm_V1_Quota {
    .with {
      $0.userID = user
      $0.period = period
      $0.amount = OpportunityRPCTests.money(units)
    }
  }

  @Test("a rep never reaches a peer's or a manager's forecast; adjustments follow the reporting line; bad input names its field")
  func reachAndValidation() async throws {
    let tenant = try await TestTenant.make()
    let org = try await Self.organisation(tenant)
    let other = try await TestTenant.make("other")
    try await TestServer.withClient { client in
      let forecasts = Client(wrapping: client)
      let admin = TestServer.auth(tenant.adminSecret)
      let account = try await BillingRPCTests.account(client, "Reach Corp", auth: admin)
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 500, probability: 50, category: .commit, auth: admin)

      for (user, auth) in [(org.bob.id, org.carol.auth), (org.vp.id, org.alice.auth), (org.alice.id, org.bob.auth)] {
        let outcome1 = await code { try await Self.forecast(forecasts, user: user, auth: auth) }
        #expect(outcome1 == .permissionDenied)
        let deals = await code {
          try await forecasts.listForecastDeals(
            .with {
              $0.userID = user
              $0.currencyCode = "USD"
              $0.column = .commit
            }, metadata: auth)
        }
        #expect(deals == .permissionDenied)
      }
      let outcome2 = await code { try await Self.forecast(forecasts, team: org.sales, auth: org.alice.auth) }
      #expect(outcome2 == .permissionDenied)
      let carol = try await Self.forecast(forecasts, auth: org.carol.auth)
      #expect(Self.amounts(carol.total) == [0, 0, 0, 0, 0] && carol.rows.count == 1)
      // Another tenant's admin does not find these users.
      let outcome3 = await code { try await Self.forecast(forecasts, user: org.vp.id, auth: TestServer.auth(other.adminSecret)) }
      #expect(outcome3 == .notFound)

      // Only a direct manager adjusts a report's number; closed and weighted are not adjustable.
      let outcome4 = await code {
        try await Self.adjust(forecasts, user: org.bob.id, column: .commit, units: 1, auth: org.carol.auth)
      }
      #expect(outcome4 == .permissionDenied)
      let outcome5 = await code {
        try await Self.adjust(forecasts, user: org.bob.id, column: .commit, units: 1, auth: org.vp.auth)
      }
      #expect(outcome5 == .failedPrecondition)
      let outcome6 = await code { try await Self.adjust(forecasts, user: org.bob.id, column: .commit, units: 1, auth: admin) }
      #expect(outcome6 == .permissionDenied)
      #expect(
        await HardeningRPCTests.violations { try await Self.adjust(forecasts, column: .closed, units: 1, auth: org.bob.auth) }
          == ["column"])
      #expect(
        await HardeningRPCTests.violations { try await Self.adjust(forecasts, column: .commit, units: -5, auth: org.bob.auth) }
          == ["amount"])
      let longNote = await HardeningRPCTests.violations {
        try await Self.adjust(forecasts, column: .commit, units: 5, note: String(repeating: "n", count: 256), auth: org.bob.auth)
      }
      #expect(longNote == ["note"])

      // Requests name the offending field.
      let noCurrency = await HardeningRPCTests.violations {
        try await forecasts.getForecast(.with { $0.period = "2027-Q1" }, metadata: org.bob.auth)
      }
      #expect(noCurrency == ["currency_code"])
      for (period, field) in [("2027-Q5", "period"), ("'; DROP TABLE quotas; --", "period"), ("2027-13", "period")] {
        let violations = await HardeningRPCTests.violations {
          try await Self.forecast(forecasts, period: period, auth: org.bob.auth)
        }
        #expect(violations == [field], "\(period)")
      }
      let both = await HardeningRPCTests.violations {
        try await Self.forecast(forecasts, user: org.bob.id, team: org.east, auth: org.vp.auth)
      }
      #expect(both == ["team_id"])

      // Quotas: managers set their reports', not their own or a peer's; all or nothing.
      let quota = Self.quota
      let refused = await HardeningRPCTests.violations {
        try await forecasts.setQuotas(
          .with {
            $0.quotas = [
              quota(org.bob.id, "2027-Q1", 10), quota(org.bob.id, "2027-Q9", 10), quota(org.vp.id, "2027-Q1", 10),
              quota(org.bob.id, "2027-Q1", 20),
            ]
          }, metadata: org.alice.auth)
      }
      #expect(refused == ["quotas[1].period", "quotas[2].user_id", "quotas[3]"])
      let listed = try await forecasts.listQuotas(.init(), metadata: admin).quotas
      #expect(listed.isEmpty)
      _ = try await forecasts.setQuotas(.with { $0.quotas = [quota(org.bob.id, "2027-Q1", 10)] }, metadata: org.alice.auth)
      #expect(try await forecasts.listQuotas(.init(), metadata: org.carol.auth).quotas.isEmpty)
      let bobs = try await forecasts.listQuotas(.with { $0.period = "2027-02" }, metadata: org.bob.auth).quotas
      #expect(bobs.map(\.period) == ["2027-Q1"] && bobs.first?.periodRange.kind == .quarter)

      // The fiscal year's start does not move under quarter quotas; removing them lets it.
      let settings = Crm_V1_ForecastSettings.with {
        $0.fiscalYearStartMonth = 4
        $0.defaultPeriod = .month
      }
      let outcome7 = await code {
        try await forecasts.updateForecastSettings(.with { $0.settings = settings }, metadata: org.vp.auth)
      }
      #expect(outcome7 == .permissionDenied)
      let outcome8 = await code { try await forecasts.updateForecastSettings(.with { $0.settings = settings }, metadata: admin) }
      #expect(outcome8 == .failedPrecondition)
      _ = try await forecasts.setQuotas(
        .with {
          $0.quotas = [
            .with {
              $0.userID = org.bob.id
              $0.period = "2027-Q1"
              $0.currencyCode = "USD"
            }
          ]
        }, metadata: admin)
      let moved = try await forecasts.updateForecastSettings(.with { $0.settings = settings }, metadata: admin)
      #expect(moved.fiscalYearStartMonth == 4 && moved.defaultPeriod == .month)
      // Fiscal 2027-Q1 is now April to June 2026: Bob's February 2027 deal is in 2027-Q4.
      let q4 = try await Self.forecast(forecasts, period: "2027-Q4", auth: org.bob.auth)
      #expect(q4.period.startDate == OpportunityRPCTests.date(2027, 1, 1) && q4.total.commit.amount.units == 500)
      #expect(try await Self.forecast(forecasts, period: "2027-Q1", auth: org.bob.auth).total.commit.amount.units == 0)
      let bad = await HardeningRPCTests.violations {
        try await forecasts.updateForecastSettings(.with { $0.settings.fiscalYearStartMonth = 13 }, metadata: admin)
      }
      #expect(bad == ["settings.fiscal_year_start_month"])
    }
  }

  @Test("a deal won without a close date closes today, so the forecast of today's period counts it")
  func closeDateOnWin() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let account = try await BillingRPCTests.account(client, "Today Corp", auth: admin)
      let deals = Crm_V1_OpportunityService.Client(wrapping: client)
      // A pipeline whose won stage does not ask for a close date (the default one's does).
      let pipeline = try await deals.createPipeline(
        .with {
          $0.pipeline = .with {
            $0.name = "Quick"
            $0.stages = [("Open", Crm_V1_StageCategory.open), ("Won", .won), ("Lost", .lost)].map { stage in
              .with {
                $0.name = stage.0
                $0.category = stage.1
              }
            }
          }
        }, metadata: admin)
      let deal = try await deals.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "No date"
            $0.pipelineID = pipeline.id
            $0.accountID = account
            $0.amount = OpportunityRPCTests.money(70)
          }
        }, metadata: admin)
      #expect(!deal.hasCloseDate)
      let won = try await deals.closeOpportunityWon(
        .with {
          $0.id = deal.id
          $0.etag = deal.etag
        }, metadata: admin)
      let today = Timestamp.now.utcDate
      #expect(won.closeDate == OpportunityRPCTests.date(Int32(today.year), Int32(today.month), Int32(today.day)))
      let forecast = try await Client(wrapping: client).getForecast(.with { $0.currencyCode = "USD" }, metadata: admin)
      #expect(forecast.period.kind == .quarter && forecast.total.closed.amount.units == 70)
    }
  }

  @Test(
    "weekly snapshots are immutable; what moved since one, and forecast versus actual week by week with the adjustments of then")
  func snapshotsChangesTrend() async throws {
    let tenant = try await TestTenant.make()
    let org = try await Self.organisation(tenant)
    let clock = ManualWallClock(CollectionRPCTests.utc("2027-02-01T10:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let forecasts = Client(wrapping: client)
      let deals = Crm_V1_OpportunityService.Client(wrapping: client)
      let account = try await BillingRPCTests.account(client, "Snapshot Corp", auth: admin)
      let noSnapshot = await code {
        try await forecasts.listForecastChanges(.with { $0.currencyCode = "USD" }, metadata: org.vp.auth)
      }
      #expect(noSnapshot == .failedPrecondition)
      let a = try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 200, probability: 60, category: .commit, auth: admin)
      let b = try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 100, probability: 20, category: .pipeline, auth: admin)
      let c = try await Self.deal(
        client, owner: org.alice.id, account: account, amount: 50, probability: 50, category: .bestCase, auth: admin)
      let d = try await Self.deal(
        client, owner: org.carol.id, account: account, amount: 70, probability: 80, category: .commit, auth: admin)
      let e = try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 30, probability: 10, category: .pipeline,
        close: OpportunityRPCTests.date(2027, 5, 10), auth: admin)
      let g = try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 40, probability: 70, category: .commit, auth: admin)
      // Outside the window (the current quarter and the next): not in the snapshot.
      try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 5, probability: 10, category: .pipeline,
        close: OpportunityRPCTests.date(2027, 9, 1), auth: admin)

      let first = try await forecasts.takeForecastSnapshot(.init(), metadata: admin)
      #expect(first.weekStart == OpportunityRPCTests.date(2027, 2, 1) && first.dealCount == 6)
      #expect(
        first.windowStart == OpportunityRPCTests.date(2027, 1, 1) && first.windowEnd == OpportunityRPCTests.date(2027, 6, 30))
      #expect(try await forecasts.takeForecastSnapshot(.init(), metadata: admin).id == first.id)
      let notAdmin = await code { try await forecasts.takeForecastSnapshot(.init(), metadata: org.vp.auth) }
      #expect(notAdmin == .permissionDenied)

      // The week's moves.
      func update(_ deal: Crm_V1_Opportunity, _ paths: [String], _ change: (inout Crm_V1_Opportunity) -> Void) async throws {
        var next = try await deals.getOpportunity(.with { $0.id = deal.id }, metadata: admin)
        change(&next)
        _ = try await deals.updateOpportunity(
          .with {
            $0.opportunity = next
            $0.updateMask = .with { $0.paths = paths }
          }, metadata: admin)
      }
      try await update(a, ["amount"]) { $0.amount = OpportunityRPCTests.money(250) }
      try await update(b, ["forecast_category"]) { $0.forecastCategory = .commit }
      try await update(e, ["close_date"]) { $0.closeDate = OpportunityRPCTests.date(2027, 3, 1) }
      try await update(g, ["close_date"]) { $0.closeDate = OpportunityRPCTests.date(2027, 4, 2) }
      _ = try await deals.closeOpportunityWon(.with { $0.id = c.id }, metadata: admin)
      _ = try await deals.closeOpportunityLost(
        .with {
          $0.id = d.id
          $0.lostReason = "budget"
        }, metadata: admin)
      let f = try await Self.deal(
        client, owner: org.bob.id, account: account, amount: 10, probability: 10, category: .pipeline, auth: admin)
      clock.set(CollectionRPCTests.utc("2027-02-03T10:00:00Z"))
      _ = try await Self.adjust(forecasts, column: .commit, units: 999, note: "after the first snapshot", auth: org.vp.auth)

      let expected: [String: [Crm_V1_ForecastMove]] = [
        a.id: [.amountChanged], b.id: [.enteredCommit], c.id: [.won], d.id: [.lost], e.id: [.added, .closeDateChanged],
        f.id: [.added], g.id: [.removed, .closeDateChanged],
      ]
      let sinceFirst = try await forecasts.listForecastChanges(
        .with {
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
        }, metadata: org.vp.auth)
      #expect(sinceFirst.from.id == first.id && !sinceFirst.hasTo && !sinceFirst.truncated)
      #expect(Dictionary(uniqueKeysWithValues: sinceFirst.changes.map { ($0.opportunityID, $0.moves) }) == expected)
      let amountMove = sinceFirst.changes.first { $0.opportunityID == a.id }!
      #expect(amountMove.before.amount.units == 200 && amountMove.after.amount.units == 250 && amountMove.ownerID == org.bob.id)
      #expect(sinceFirst.changes.first { $0.opportunityID == f.id }!.hasBefore == false)
      // Bob sees his own deals' moves only; Carol not the VP's.
      let bobs = try await forecasts.listForecastChanges(
        .with {
          $0.currencyCode = "USD"; $0.period = "2027-Q1"
        }, metadata: org.bob.auth)
      #expect(Set(bobs.changes.map(\.opportunityID)) == [a.id, b.id, e.id, f.id, g.id])
      let peer = await code {
        try await forecasts.listForecastChanges(
          .with {
            $0.userID = org.vp.id
            $0.currencyCode = "USD"
          }, metadata: org.carol.auth)
      }
      #expect(peer == .permissionDenied)

      // A week later the job takes the next snapshot (for every tenant due).
      clock.set(CollectionRPCTests.utc("2027-02-08T06:00:00Z"))
      #expect(try await ForecastStore(database: TestDatabase.database(), now: clock.now).takeDueSnapshots() >= 1)
      let listed = try await forecasts.listForecastSnapshots(.init(), metadata: org.bob.auth).snapshots
      #expect(listed.map(\.weekStart) == [OpportunityRPCTests.date(2027, 2, 8), OpportunityRPCTests.date(2027, 2, 1)])
      let between = try await forecasts.listForecastChanges(
        .with {
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
          $0.fromSnapshotID = first.id
          $0.toSnapshotID = listed[0].id
        }, metadata: org.vp.auth)
      #expect(Dictionary(uniqueKeysWithValues: between.changes.map { ($0.opportunityID, $0.moves) }) == expected)

      // Forecast versus actual: the first week before the VP's adjustment, the second with it.
      let trend = try await forecasts.getForecastTrend(
        .with {
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
        }, metadata: org.vp.auth)
      #expect(trend.points.map(\.snapshot.id) == [first.id, listed[0].id])
      #expect(Self.amounts(trend.points[0].total) == [0, 310, 360, 460, 249] && !trend.points[0].total.commit.ownerAdjusted)
      #expect(trend.points[1].total.commit.amount.units == 999 && trend.points[1].total.commit.unadjusted.units == 400)
      #expect(
        trend.points[1].total.closed.amount.units == 50 && trend.actual.commit.unadjusted.units == 400 && !trend.periodEnded)

      // Snapshots are facts: crm_app may not change or remove them.
      let database = try await TestDatabase.database()
      for statement in [
        "UPDATE forecast_snapshot_deals SET amount = 0", "DELETE FROM forecast_snapshots",
        "UPDATE forecast_snapshots SET deals = 0",
      ] {
        await #expect(throws: PostgresError.self) {
          try await database.withTenant(tenant.tenantID) { try $0.execute(unsafeSQL: statement) }
        }
      }
    }
  }
}
