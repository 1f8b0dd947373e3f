import CRMCore
import CRMProto
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import PropertyBased
import SwiftProtobuf
import Testing

@Suite("Server: learned lead scoring")
struct ScoringRPCTests {
  typealias Client = Crm_V1_ScoringService.Client<HTTP2ClientTransport.Posix>

  /// Writes a generated history straight into the tenant's tables: `count` leads created 200 days
  /// ago (their outcome known), converted ten days after creation or still working. With `signal`,
  /// partner leads and chief executives convert far more often, event leads less; without, every
  /// lead converts with the same chance.
  static func seed(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>, _ tenant: TestTenant, count: Int, signal: Bool, seed: UInt64
  ) async throws {
    let auth = TestServer.auth(tenant.adminSecret)
    let account = try await BillingRPCTests.account(client, "Converted Co", auth: auth)
    let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
      .with {
        $0.contact = .with {
          $0.lastName = "Converted"
          $0.accountID = account
        }
      }, metadata: auth)
    var random = Xoshiro(seed: (seed, 0x9E37_79B9_7F4A_7C15, 1, 2))
    var sources: [String] = []
    var titles: [String] = []
    var emails: [String] = []
    var converted: [Bool] = []
    for _ in 0..<count {
      let source = ["web_form", "partner", "event", "email"].randomElement(using: &random)!
      let title = ["CEO", "Engineer", "Buyer"].randomElement(using: &random)!
      var logit = -1.6
      if signal {
        if source == "partner" { logit += 2.0 }
        if source == "event" { logit -= 1.5 }
        if title == "CEO" { logit += 1.2 }
      }
      sources.append(source)
      titles.append(title)
      emails.append(Bool.random(using: &random) ? "a@gmail.com" : "a@acme.example")
      converted.append(Double.random(in: 0..<1, using: &random) < 1 / (1 + exp(-logit)))
    }
    let connection = try TestDatabase.ownerConnection()
    try connection.query(
      """
      INSERT INTO leads (tenant_id, id, owner_id, last_name, source, title, email_addresses, status, created_at, updated_at,
        converted_at, converted_account_id, converted_contact_id)
      SELECT \(tenant.tenantID), crm_uuid_v7(), \(tenant.admin.userID), 'Seeded ' || u.n, u.source, u.title, ARRAY[u.email],
        CASE WHEN u.converted THEN 'converted' ELSE 'working' END, now() - interval '200 days', now() - interval '200 days',
        CASE WHEN u.converted THEN now() - interval '190 days' END,
        CASE WHEN u.converted THEN \(UUID(uuidString: account)!)::uuid END,
        CASE WHEN u.converted THEN \(UUID(uuidString: contact.id)!)::uuid END
      FROM unnest(\(sources)::text[], \(titles)::text[], \(emails)::text[], \(converted)::bool[]) WITH ORDINALITY
        AS u (source, title, email, converted, n)
      """)
  }

  static func lead(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>, source: Crm_V1_LeadSource, title: String, auth: Metadata
  ) async throws -> Crm_V1_Lead {
    try await Crm_V1_LeadService.Client(wrapping: client).createLead(
      .with {
        $0.lead = .with {
          $0.lastName = "Fresh \(title)"
          $0.source = source
          $0.title = title
          $0.emails = [.with { $0.address = "fresh@acme.example" }]
        }
      }, metadata: auth)
  }

  @Test(
    "a history with signal: the model comes into force, every lead gets a score, tier and reasons, lists sort by it, and it follows changes"
  )
  func learned() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      try await Self.seed(client, tenant, count: 2_000, signal: true, seed: 11)
      let hot = try await Self.lead(client, source: .partner, title: "CEO", auth: admin)
      let cold = try await Self.lead(client, source: .event, title: "Engineer", auth: admin)
      let scoring = Client(wrapping: client)
      let (_, rep) = try await tenant.makeUser(.salesRep)
      let denied = await code { try await scoring.trainScoringModel(.init(), metadata: TestServer.auth(rep)) }
      #expect(denied == .permissionDenied)

      let trained = try await scoring.trainScoringModel(.init(), metadata: admin)
      #expect(trained.model.status == .active && trained.model.version == 1)
      #expect(trained.model.historyLeads == 2_000, "the two fresh leads have no known outcome yet")
      #expect(trained.model.auc > 0.7 && trained.model.holdoutLeads + trained.model.trainingLeads == 2_000)
      #expect(trained.scoredLeads == 2_002 && trained.model.scoredLeads == 2_002)
      func weight(_ feature: String, _ value: String) -> Double {
        trained.model.weights.first { $0.feature == feature && $0.value == value }?.weight ?? .nan
      }
      #expect(weight("source", "partner") > weight("source", "web_form") + 1)
      #expect(weight("source", "event") < weight("source", "web_form"))
      #expect(weight("title_seniority", "c_level") > weight("title_seniority", "individual"))

      let model = try await scoring.getScoringModel(.init(), metadata: TestServer.auth(rep))
      #expect(model.learned && model.inForce.version == 1 && !model.hasLatest)
      #expect(model.summary.hasPrefix("Scores are learned: model 1, held-out AUC 0."))
      #expect(model.settings.minimumLeads == 1_000 && model.settings.windowDays == 90)

      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let hotScored = try await leads.getLead(.with { $0.id = hot.id }, metadata: admin)
      let coldScored = try await leads.getLead(.with { $0.id = cold.id }, metadata: admin)
      #expect(hotScored.hasPredictiveScore && hotScored.predictiveScore.modelVersion == 1)
      #expect(hotScored.predictiveScore.score > coldScored.predictiveScore.score + 30)
      #expect(hotScored.predictiveScore.tier == .veryHigh && coldScored.predictiveScore.tier == .low)
      #expect(hotScored.predictiveScore.reasons.first?.text.hasPrefix("source = partner, +") == true)
      #expect(coldScored.predictiveScore.reasons.contains { $0.feature == "source" && $0.value == "event" && $0.points < 0 })
      #expect(!hotScored.hasScore, "the rule-based score is untouched")

      // Lists sort by the learned score, page by page.
      var scores: [Int32] = []
      var token = ""
      repeat {
        let page = try await leads.listLeads(
          .with {
            $0.orderBy = .scoreDesc
            $0.pageSize = 500
            $0.pageToken = token
          }, metadata: admin)
        scores += page.leads.map(\.predictiveScore.score)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(scores.count == 2_002 && scores == scores.sorted(by: >))
      let accounts = await code {
        try await Crm_V1_AccountService.Client(wrapping: client).listAccounts(.with { $0.orderBy = .scoreDesc }, metadata: admin)
      }
      #expect(accounts == .invalidArgument)

      // A change to the lead's features: the job rescored it.
      let before = coldScored.predictiveScore.score
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = cold.id
            $0.source = .partner
            $0.title = "Chief Executive Officer"
          }
          $0.updateMask = .with { $0.paths = ["source", "title"] }
        }, metadata: admin)
      let report = try await ScoringStore(database: tenant.database).refresh(tenant: tenant.tenantID)
      #expect(report.trained == 0 && report.scored >= 1)
      let after = try await leads.getLead(.with { $0.id = cold.id }, metadata: admin)
      #expect(after.predictiveScore.score > before + 30)
      #expect(after.predictiveScore.reasons.first?.feature == "source")
    }
  }

  @Test("too little history or no signal: the tenant stays on rules, and says why")
  func staysOnRules() async throws {
    let small = try await TestTenant.make()
    let flat = try await TestTenant.make()
    try await TestServer.withClient { client in
      let scoring = Client(wrapping: client)
      let smallAuth = TestServer.auth(small.adminSecret)
      let before = try await scoring.getScoringModel(.init(), metadata: smallAuth)
      #expect(!before.learned && before.summary.contains("no model trained yet"))
      try await Self.seed(client, small, count: 300, signal: true, seed: 5)
      let tooSmall = try await scoring.trainScoringModel(.init(), metadata: smallAuth)
      #expect(tooSmall.model.status == .insufficientHistory && tooSmall.scoredLeads == 0 && tooSmall.model.weights.isEmpty)
      #expect(tooSmall.model.statusReason.contains("300 leads") && tooSmall.model.statusReason.contains("needs 1000"))
      let smallModel = try await scoring.getScoringModel(.init(), metadata: smallAuth)
      #expect(!smallModel.learned && smallModel.latest.version == 1)
      #expect(smallModel.summary.hasPrefix("Scores come from rules only: the history holds 300 leads"))
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).listLeads(.with { $0.pageSize = 5 }, metadata: smallAuth)
      #expect(leads.leads.allSatisfy { !$0.hasPredictiveScore })

      // The tenant lowers its bar: the same history now trains a model.
      let settings = try await scoring.updateScoringSettings(
        .with {
          $0.settings = .with {
            $0.minimumLeads = 200
            $0.minimumConversions = 20
            $0.windowDays = 30
          }
        }, metadata: smallAuth)
      #expect(settings.minimumLeads == 200 && settings.windowDays == 30)
      let retrained = try await scoring.trainScoringModel(.init(), metadata: smallAuth)
      #expect(retrained.model.version == 2 && retrained.model.historyLeads == 300)

      let flatAuth = TestServer.auth(flat.adminSecret)
      try await Self.seed(client, flat, count: 2_000, signal: false, seed: 9)
      let noSignal = try await scoring.trainScoringModel(.init(), metadata: flatAuth)
      #expect(noSignal.model.status == .noSignal && noSignal.scoredLeads == 0 && !noSignal.model.weights.isEmpty)
      #expect(noSignal.model.statusReason.contains("no better than chance"))
      let flatModel = try await scoring.getScoringModel(.init(), metadata: flatAuth)
      #expect(!flatModel.learned && flatModel.latest.status == .noSignal)

      let bad = await HardeningRPCTests.violations {
        try await scoring.updateScoringSettings(
          .with {
            $0.settings = .with {
              $0.windowDays = 400
              $0.minimumLeads = 50
              $0.minimumConversions = 5
            }
          }, metadata: flatAuth)
      }
      #expect(bad == ["settings.window_days", "settings.minimum_leads", "settings.minimum_conversions"])
    }
  }
}
