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

@Suite("Server: pipeline and funnel analytics")
struct AnalyticsRPCTests {
  typealias Client = Crm_V1_AnalyticsService.Client<HTTP2ClientTransport.Posix>
  typealias Deals = Crm_V1_OpportunityService.Client<HTTP2ClientTransport.Posix>

  static let day: Int64 = 86_400

  /// Rewrites a deal's stage history to have happened at `times` (one per entry, in order): created
  /// at the first, in its current stage since the last, closed then if it is closed.
  static func backdate(deal id: String, _ times: [String]) throws {
    let connection = try TestDatabase.ownerConnection()
    let deal = UUID(uuidString: id)!
    let entries = try connection.query(
      "SELECT count(*) AS n FROM opportunity_stage_history WHERE opportunity_id = \(deal)")[0]
    #expect(try entries.decode("n") as Int == times.count, "one time per stage entry of \(id)")
    try connection.query(
      """
      UPDATE opportunity_stage_history s SET changed_at = (\(times)::timestamptz[])[h.n]
      FROM (SELECT sequence, row_number() OVER (ORDER BY sequence) AS n FROM opportunity_stage_history
        WHERE opportunity_id = \(deal)) h
      WHERE s.opportunity_id = \(deal) AND s.sequence = h.sequence
      """)
    try connection.query(
      """
      UPDATE opportunities SET created_at = \(times[0])::timestamptz, stage_entered_at = \(times.last!)::timestamptz,
        closed_at = CASE WHEN state <> 'open' THEN \(times.last!)::timestamptz END
      WHERE id = \(deal)
      """)
  }

  /// A deal of `owner` that moves through `stages` (names in the default pipeline) after its first,
  /// then is won or lost when `close` says so.
  static func deal(
    _ deals: Deals, owner: String, account: String, amount: Int64, currency: String = "USD", through stages: [String] = [],
    close: Crm_V1_StageCategory? = nil, sourceLead: String = "", auth: Metadata
  ) async throws -> String {
    let pipeline = try await deals.listPipelines(.init(), metadata: auth).pipelines[0]
    var deal = try await deals.createOpportunity(
      .with {
        $0.opportunity = .with {
          $0.name = "Deal \(amount)"
          $0.ownerID = owner
          $0.accountID = account
          $0.amount = OpportunityRPCTests.money(amount, currency)
          $0.closeDate = OpportunityRPCTests.date(2025, 3, 31)
          $0.sourceLeadID = sourceLead
        }
      }, metadata: auth)
    for name in stages {
      deal = try await deals.moveOpportunityStage(
        .with {
          $0.id = deal.id
          $0.stageID = OpportunityRPCTests.stage(pipeline, name).id
        }, metadata: auth)
    }
    switch close {
    case .won: _ = try await deals.closeOpportunityWon(.with { $0.id = deal.id }, metadata: auth)
    case .lost:
      _ = try await deals.closeOpportunityLost(
        .with {
          $0.id = deal.id
          $0.lostReason = "budget"
        }, metadata: auth)
    default: break
    }
    return deal.id
  }

  static func stage(_ analytics: Crm_V1_PipelineAnalytics, _ name: String) -> Crm_V1_StageAnalytics {
    analytics.stages.first { $0.name == name }!
  }

  static func days(_ duration: Google_Protobuf_Duration) -> Double { Double(duration.seconds) / Double(day) }

  @Test(
    "pipeline analytics match a hand-computed table: conversion, time in stage, win rate, cycle, velocity; scoped by hierarchy and source"
  )
  func pipeline() async throws {
    let tenant = try await TestTenant.make()
    let org = try await ForecastRPCTests.organisation(tenant)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let deals = Deals(wrapping: client)
      let account = try await BillingRPCTests.account(client, "Analytics Corp", auth: admin)
      let partnerLead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Referred"
            $0.company = "Analytics Corp"
            $0.source = .partner
          }
        }, metadata: admin)
      // 2025-Q1 (January to March 2025; the default calendar).
      let d1 = try await Self.deal(
        deals, owner: org.bob.id, account: account, amount: 100, through: ["Qualification"], close: .won,
        sourceLead: partnerLead.id, auth: admin)
      try Self.backdate(deal: d1, ["2025-01-01T00:00:00Z", "2025-01-11T00:00:00Z", "2025-01-31T00:00:00Z"])
      let d2 = try await Self.deal(deals, owner: org.bob.id, account: account, amount: 300, close: .lost, auth: admin)
      try Self.backdate(deal: d2, ["2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"])
      let d3 = try await Self.deal(
        deals, owner: org.carol.id, account: account, amount: 200, through: ["Qualification", "Needs analysis"], auth: admin)
      try Self.backdate(deal: d3, ["2025-02-01T00:00:00Z", "2025-02-05T00:00:00Z", "2025-02-15T00:00:00Z"])
      let d4 = try await Self.deal(
        deals, owner: org.alice.id, account: account, amount: 50, currency: "EUR", close: .won, auth: admin)
      try Self.backdate(deal: d4, ["2025-01-01T00:00:00Z", "2025-03-02T00:00:00Z"])
      // Before the period: counts nowhere.
      let d5 = try await Self.deal(deals, owner: org.vp.id, account: account, amount: 999, close: .won, auth: admin)
      try Self.backdate(deal: d5, ["2024-12-01T00:00:00Z", "2024-12-20T00:00:00Z"])

      let analytics = Client(wrapping: client)
      let vp = try await analytics.getPipelineAnalytics(.with { $0.period = "2025-Q1" }, metadata: org.vp.auth)
      #expect(vp.period.name == "2025-Q1" && vp.pipelineName == "Sales" && vp.userID == org.vp.id)
      #expect(
        vp.stages.map(\.name) == [
          "Prospecting", "Qualification", "Needs analysis", "Proposal", "Negotiation", "Closed won", "Closed lost",
        ])
      #expect(vp.wonDeals == 2 && vp.lostDeals == 1 && abs(vp.winRate - 2.0 / 3.0) < 1e-9)
      #expect(Self.days(vp.averageSalesCycle) == 45 && Self.days(vp.medianSalesCycle) == 45)
      #expect(vp.openDeals == 1)

      let prospecting = Self.stage(vp, "Prospecting")
      #expect([prospecting.entered, prospecting.advanced, prospecting.won, prospecting.lost] == [4, 3, 2, 1])
      #expect(prospecting.conversionRate == 0.75 && prospecting.completedStays == 4)
      // Stays of 4, 10, 31 and 60 days: median 20.5, 90th percentile 31 + 0.7 × 29 = 51.3.
      #expect(abs(Self.days(prospecting.medianTimeInStage) - 20.5) < 1e-6)
      #expect(abs(Double(prospecting.p90TimeInStage.seconds) - 51.3 * Double(Self.day)) < 1)
      let qualification = Self.stage(vp, "Qualification")
      #expect([qualification.entered, qualification.advanced, qualification.completedStays] == [2, 2, 2])
      #expect(qualification.conversionRate == 1 && Self.days(qualification.medianTimeInStage) == 15)
      #expect(abs(Double(qualification.p90TimeInStage.seconds) - 19 * Double(Self.day)) < 1)
      let needs = Self.stage(vp, "Needs analysis")
      #expect([needs.entered, needs.advanced, needs.currentDeals, needs.completedStays] == [1, 0, 1, 0])
      #expect(needs.longestCurrentStay.seconds > 600 * Self.day, "in the stage since February 2025")
      #expect(Self.stage(vp, "Closed won").entered == 2 && Self.stage(vp, "Closed won").conversionRate == 0)
      #expect(Self.stage(vp, "Closed lost").entered == 1 && Self.stage(vp, "Proposal").entered == 0)

      #expect(vp.currencies.map(\.currencyCode) == ["EUR", "USD"])
      let eur = vp.currencies[0]
      let usd = vp.currencies[1]
      #expect(usd.wonDeals == 1 && usd.wonAmount.units == 100 && usd.averageWonAmount.units == 100)
      #expect(usd.openDeals == 1 && usd.openAmount.units == 200)
      // One open deal × 2/3 × 100 ÷ 45 days = 200 ÷ 135 a day.
      #expect(usd.velocityPerDay.units == 1 && usd.velocityPerDay.nanos == 481_481_481)
      #expect(eur.wonDeals == 1 && eur.averageWonAmount.units == 50 && eur.openDeals == 0)
      #expect(eur.hasVelocityPerDay && eur.velocityPerDay.units == 0 && eur.velocityPerDay.nanos == 0)

      // Bob sees his own deals only; Alice's organisation is hers and Bob's; a rep reaches no one else.
      let bob = try await analytics.getPipelineAnalytics(.with { $0.period = "2025-Q1" }, metadata: org.bob.auth)
      #expect(bob.wonDeals == 1 && bob.lostDeals == 1 && bob.winRate == 0.5 && bob.openDeals == 0)
      #expect(Self.stage(bob, "Prospecting").entered == 2)
      let alice = try await analytics.getPipelineAnalytics(.with { $0.period = "2025-Q1" }, metadata: org.alice.auth)
      #expect(alice.wonDeals == 2 && alice.lostDeals == 1 && alice.openDeals == 0)
      let peer = await code {
        try await analytics.getPipelineAnalytics(
          .with {
            $0.period = "2025-Q1"
            $0.userID = org.carol.id
          }, metadata: org.bob.auth)
      }
      #expect(peer == .permissionDenied)
      let company = await code {
        try await analytics.getPipelineAnalytics(.with { $0.company = true }, metadata: org.bob.auth)
      }
      #expect(company == .permissionDenied)
      let everyone = try await analytics.getPipelineAnalytics(
        .with {
          $0.period = "2025-Q1"
          $0.company = true
        }, metadata: admin)
      #expect(everyone.wonDeals == 2 && everyone.openDeals == 1 && everyone.userID.isEmpty)
      // Only deals from partner leads: d1.
      let partner = try await analytics.getPipelineAnalytics(
        .with {
          $0.period = "2025-Q1"
          $0.company = true
          $0.sources = [.partner]
        }, metadata: admin)
      #expect(partner.wonDeals == 1 && partner.lostDeals == 0 && partner.openDeals == 0)
      #expect(Self.stage(partner, "Qualification").entered == 1)
      // The period before holds d5 only.
      let before = try await analytics.getPipelineAnalytics(
        .with {
          $0.period = "2024-12"
          $0.company = true
        }, metadata: admin)
      #expect(before.wonDeals == 1 && Self.days(before.averageSalesCycle) == 19)
    }
  }

  @Test("the lead funnel follows the period's leads through working, qualified and converted, by source and campaign")
  func funnel() async throws {
    let tenant = try await TestTenant.make()
    let org = try await ForecastRPCTests.organisation(tenant)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      func lead(_ name: String, owner: String, source: Crm_V1_LeadSource, campaign: String) async throws -> Crm_V1_Lead {
        try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.lastName = name
              $0.company = "\(name) Ltd"
              $0.ownerID = owner
              $0.source = source
              $0.campaign = campaign
            }
          }, metadata: admin)
      }
      func status(_ lead: Crm_V1_Lead, _ status: Crm_V1_LeadStatus) async throws {
        _ = try await leads.setLeadStatus(
          .with {
            $0.id = lead.id
            $0.status = status
            $0.reason = status == .disqualified ? "no budget" : ""
          }, metadata: admin)
      }
      let l1 = try await lead("Alpha", owner: org.bob.id, source: .webForm, campaign: "spring")
      try await status(l1, .working)
      try await status(l1, .qualified)
      _ = try await leads.convertLead(.with { $0.leadID = l1.id }, metadata: admin)
      let l2 = try await lead("Beta", owner: org.bob.id, source: .webForm, campaign: "spring")
      try await status(l2, .working)
      let l3 = try await lead("Gamma", owner: org.carol.id, source: .partner, campaign: "")
      try await status(l3, .disqualified)
      let l4 = try await lead("Delta", owner: org.carol.id, source: .partner, campaign: "spring")
      try await status(l4, .nurturing)
      try await status(l4, .qualified)
      let l5 = try await lead("Epsilon", owner: org.bob.id, source: .webForm, campaign: "spring")
      try await status(l5, .working)

      // The database kept each lead's steps as its status moved.
      let connection = try TestDatabase.ownerConnection()
      let steps = try connection.query(
        """
        SELECT last_name, worked_at IS NOT NULL AS worked, qualified_at IS NOT NULL AS qualified,
          converted_at IS NOT NULL AS converted, worked_at <= qualified_at AND qualified_at <= converted_at AS ordered
        FROM leads WHERE tenant_id = \(tenant.tenantID) ORDER BY last_name
        """
      ).rows.map { row in
        [
          try row.decode("last_name") as String, "\(try row.decode("worked") as Bool)", "\(try row.decode("qualified") as Bool)",
          "\(try row.decode("converted") as Bool)", "\(try row.decode("ordered") as Bool?)",
        ]
      }
      #expect(
        steps == [
          ["Alpha", "true", "true", "true", "Optional(true)"], ["Beta", "true", "false", "false", "nil"],
          ["Delta", "true", "true", "false", "nil"], ["Epsilon", "true", "false", "false", "nil"],
          ["Gamma", "false", "false", "false", "nil"],
        ])
      // Placed in time: 2025-Q1 except Epsilon (December 2024).
      func place(_ lead: Crm_V1_Lead, _ created: String, worked: String?, qualified: String? = nil, converted: String? = nil)
        throws
      {
        try connection.query(
          """
          UPDATE leads SET created_at = \(created)::timestamptz, worked_at = \(worked)::timestamptz,
            qualified_at = \(qualified)::timestamptz, converted_at = coalesce(\(converted)::timestamptz, converted_at)
          WHERE id = \(UUID(uuidString: lead.id)!)
          """)
      }
      try place(
        l1, "2025-01-01T00:00:00Z", worked: "2025-01-02T00:00:00Z", qualified: "2025-01-05T00:00:00Z",
        converted: "2025-01-11T00:00:00Z")
      try place(l2, "2025-01-01T00:00:00Z", worked: "2025-01-03T00:00:00Z")
      try place(l3, "2025-02-01T00:00:00Z", worked: nil)
      try place(l4, "2025-02-01T00:00:00Z", worked: "2025-02-04T00:00:00Z", qualified: "2025-02-08T00:00:00Z")
      try place(l5, "2024-12-01T00:00:00Z", worked: "2024-12-02T00:00:00Z")

      let analytics = Client(wrapping: client)
      let funnel = try await analytics.getLeadFunnel(.with { $0.period = "2025-Q1" }, metadata: org.vp.auth)
      #expect(funnel.total.stages.map(\.step) == [.created, .working, .qualified, .converted])
      #expect(funnel.total.stages.map(\.leads) == [4, 3, 2, 1])
      #expect(funnel.total.stages.map(\.rateFromPrevious) == [1, 0.75, 2.0 / 3.0, 0.5])
      #expect(funnel.total.stages.map(\.rateFromCreated) == [1, 0.75, 0.5, 0.25])
      #expect(funnel.total.stages.map { Self.days($0.medianTime) } == [0, 2, 5.5, 10])
      #expect(funnel.total.disqualified == 1 && funnel.total.open == 2)
      #expect(funnel.bySource.map(\.source) == [.partner, .webForm])
      #expect(funnel.bySource.map { $0.stages.map(\.leads) } == [[2, 1, 1, 0], [2, 2, 1, 1]])
      #expect(funnel.byCampaign.map(\.campaign) == ["spring", ""] && !funnel.campaignsTruncated)
      #expect(funnel.byCampaign.map { $0.stages.map(\.leads) } == [[3, 3, 2, 1], [1, 0, 0, 0]])

      // Bob's own leads; the spring campaign of partners only; a rep does not reach a peer.
      let bob = try await analytics.getLeadFunnel(.with { $0.period = "2025-Q1" }, metadata: org.bob.auth)
      #expect(bob.total.stages.map(\.leads) == [2, 2, 1, 1])
      let springPartners = try await analytics.getLeadFunnel(
        .with {
          $0.period = "2025-Q1"
          $0.sources = [.partner]
          $0.campaigns = ["spring"]
        }, metadata: org.vp.auth)
      #expect(springPartners.total.stages.map(\.leads) == [1, 1, 1, 0])
      let peer = await code {
        try await analytics.getLeadFunnel(.with { $0.teamID = org.sales }, metadata: org.bob.auth)
      }
      #expect(peer == .permissionDenied)
    }
  }

  @Test("bad requests name their field; an unknown pipeline is NOT_FOUND")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let analytics = Client(wrapping: client)
      let fields = await HardeningRPCTests.violations {
        try await analytics.getPipelineAnalytics(
          .with {
            $0.period = "2025-Q5"
            $0.pipelineID = "nope"
            $0.userID = UUID().lowercasedString
            $0.company = true
            $0.sources = [.init(rawValue: 42)!]
          }, metadata: admin)
      }
      // The period is checked against the fiscal calendar once the fields are well-formed.
      #expect(Set(fields ?? []) == ["pipeline_id", "company", "sources[0]"])
      let period = await HardeningRPCTests.violations {
        try await analytics.getLeadFunnel(
          .with {
            $0.period = "2025-Q5"
            $0.campaigns = ["", String(repeating: "c", count: 300)]
          }, metadata: admin)
      }
      #expect(period == ["campaigns[0]", "campaigns[1]"])
      let badPeriod = await HardeningRPCTests.violations {
        try await analytics.getLeadFunnel(.with { $0.period = "2025-Q5" }, metadata: admin)
      }
      #expect(badPeriod == ["period"])
      let missing = await code {
        try await analytics.getPipelineAnalytics(.with { $0.pipelineID = UUID().lowercasedString }, metadata: admin)
      }
      #expect(missing == .notFound)
      // An empty tenant: zeros, no error.
      let empty = try await analytics.getPipelineAnalytics(.with { $0.company = true }, metadata: admin)
      #expect(empty.wonDeals == 0 && empty.winRate == 0 && !empty.hasAverageSalesCycle && empty.currencies.isEmpty)
      let nobody = try await analytics.getLeadFunnel(.with { $0.company = true }, metadata: admin)
      #expect(nobody.total.stages.map(\.leads) == [0, 0, 0, 0] && nobody.bySource.isEmpty)
    }
  }
}
