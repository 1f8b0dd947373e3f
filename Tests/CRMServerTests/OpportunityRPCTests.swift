import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
import SwiftProtobuf
import Testing

@Suite("Server: pipelines, opportunities and stages")
struct OpportunityRPCTests {
  static func money(_ units: Int64, _ currency: String = "USD") -> Crm_V1_Money {
    .with {
      $0.currencyCode = currency
      $0.units = units
    }
  }

  static func date(_ year: Int32, _ month: Int32, _ day: Int32) -> Crm_V1_Date {
    .with {
      $0.year = year
      $0.month = month
      $0.day = day
    }
  }

  static func stage(_ pipeline: Crm_V1_Pipeline, _ name: String) -> Crm_V1_PipelineStage {
    pipeline.stages.first { $0.name == name }!
  }

  @Test("a deal starts in the default pipeline's first stage, needs Proposal's fields, closes, reopens, and keeps its history")
  func stageLifecycle() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_OpportunityService.Client(wrapping: client)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Initech" } }, metadata: auth)
      let pipelines = try await service.listPipelines(.init(), metadata: auth).pipelines
      #expect(pipelines.count == 1)
      let sales = try #require(pipelines.first)
      #expect(sales.isDefault && sales.name == "Sales")
      #expect(sales.stages.map(\.name) == [
        "Prospecting", "Qualification", "Needs analysis", "Proposal", "Negotiation", "Closed won", "Closed lost",
      ])

      var deal = try await service.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Initech — 200 seats"
            $0.accountID = account.id
            $0.competitors = ["Globex", "globex", "Hooli"]
          }
        }, metadata: auth)
      #expect(deal.pipelineID == sales.id)
      #expect(deal.stageID == Self.stage(sales, "Prospecting").id)
      #expect(deal.state == .open && deal.probability == 10 && !deal.probabilityOverridden)
      #expect(deal.forecastCategory == .pipeline)
      #expect(deal.competitors == ["Globex", "Hooli"])

      // Proposal needs an amount and a close date, also when the deal skips the stages before it.
      let proposal = Self.stage(sales, "Proposal")
      let negotiation = Self.stage(sales, "Negotiation")
      let early = await code {
        try await service.moveOpportunityStage(
          .with {
            $0.id = deal.id
            $0.stageID = negotiation.id
          }, metadata: auth)
      }
      #expect(early == .failedPrecondition)
      deal = try await service.updateOpportunity(
        .with {
          $0.opportunity = .with {
            $0.id = deal.id
            $0.etag = deal.etag
            $0.amount = Self.money(48_000)
            $0.closeDate = Self.date(2027, 3, 31)
          }
          $0.updateMask = .with { $0.paths = ["amount", "close_date"] }
        }, metadata: auth)
      deal = try await service.moveOpportunityStage(
        .with {
          $0.id = deal.id
          $0.stageID = proposal.id
          $0.etag = deal.etag
        }, metadata: auth)
      #expect(deal.stageID == proposal.id && deal.probability == 60 && deal.forecastCategory == .bestCase)
      // A stale etag is refused; moving to the stage it is in changes nothing.
      let stale = await code {
        try await service.moveOpportunityStage(
          .with {
            $0.id = deal.id
            $0.stageID = negotiation.id
            $0.etag = "1"
          }, metadata: auth)
      }
      #expect(stale == .aborted)
      let same = try await service.moveOpportunityStage(
        .with {
          $0.id = deal.id
          $0.stageID = proposal.id
        }, metadata: auth)
      #expect(same.etag == deal.etag)
      // The stage's required fields cannot be emptied while it is there.
      let emptied = await code {
        try await service.updateOpportunity(
          .with {
            $0.opportunity = .with { $0.id = deal.id }
            $0.updateMask = .with { $0.paths = ["amount"] }
          }, metadata: auth)
      }
      #expect(emptied == .failedPrecondition)
      // The stage moves only through the stage verbs.
      let masked = await code {
        try await service.updateOpportunity(
          .with {
            $0.opportunity = .with {
              $0.id = deal.id
              $0.stageID = negotiation.id
            }
            $0.updateMask = .with { $0.paths = ["stage_id"] }
          }, metadata: auth)
      }
      #expect(masked == .invalidArgument)

      deal = try await service.moveOpportunityStage(
        .with {
          $0.id = deal.id
          $0.stageID = negotiation.id
          $0.probability = 85
        }, metadata: auth)
      #expect(deal.probability == 85 && deal.probabilityOverridden && deal.forecastCategory == .commit)

      let noReason = await code { try await service.closeOpportunityLost(.with { $0.id = deal.id }, metadata: auth) }
      #expect(noReason == .invalidArgument)
      deal = try await service.closeOpportunityWon(.with { $0.id = deal.id }, metadata: auth)
      #expect(deal.state == .won && deal.probability == 100 && deal.forecastCategory == .closed && deal.hasCloseTime)
      #expect(!deal.probabilityOverridden)
      let moveClosed = await code {
        try await service.moveOpportunityStage(
          .with {
            $0.id = deal.id
            $0.stageID = proposal.id
          }, metadata: auth)
      }
      #expect(moveClosed == .failedPrecondition)
      let winAgain = await code { try await service.closeOpportunityWon(.with { $0.id = deal.id }, metadata: auth) }
      #expect(winAgain == .failedPrecondition)
      let reopened = try await service.reopenOpportunity(.with { $0.id = deal.id }, metadata: auth)
      #expect(reopened.state == .open && reopened.stageID == negotiation.id && reopened.probability == 80)
      #expect(!reopened.hasCloseTime)
      deal = try await service.closeOpportunityLost(
        .with {
          $0.id = deal.id
          $0.lostReason = "Went with Globex"
          $0.requestID = "lose-1"
        }, metadata: auth)
      #expect(deal.state == .lost && deal.lostReason == "Went with Globex" && deal.probability == 0)
      #expect(deal.forecastCategory == .omitted)
      // Repeating the request id returns the deal as it is and writes nothing.
      let repeated = try await service.closeOpportunityLost(
        .with {
          $0.id = deal.id
          $0.lostReason = "Went with Globex"
          $0.requestID = "lose-1"
        }, metadata: auth)
      #expect(repeated.etag == deal.etag)

      let history = try await service.getStageHistory(.with { $0.opportunityID = deal.id }, metadata: auth)
      #expect(history.changes.map(\.toStageName) == [
        "Prospecting", "Proposal", "Negotiation", "Closed won", "Negotiation", "Closed lost",
      ])
      #expect(history.changes.map(\.fromStageName) == [
        "", "Prospecting", "Proposal", "Negotiation", "Closed won", "Negotiation",
      ])
      #expect(history.changes[1].amount.units == 48_000 && history.changes[1].probability == 60)
      #expect(history.changes.allSatisfy { $0.changeUserID == tenant.admin.userID.lowercasedString })
      #expect(history.timeInStage.map(\.stageName) == ["Prospecting", "Proposal", "Negotiation", "Closed won", "Closed lost"])
      #expect(history.timeInStage.first { $0.stageName == "Negotiation" }?.visits == 2)
      let sequences = history.changes.map(\.sequence)
      #expect(sequences == sequences.sorted())

      // The change log has the stage moves too: create, update, five stage changes.
      let changes = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .opportunity
          $0.recordID = deal.id
        }, metadata: auth)
      #expect(changes.entries.count == 7)
    }
  }

  @Test("invalid input names its fields; deals need an account the caller sees and a stage of the pipeline")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_OpportunityService.Client(wrapping: client)
      do {
        _ = try await service.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = String(repeating: "x", count: 300)
              $0.amount = Self.money(-5, "usd")
              $0.closeDate = Self.date(2027, 2, 30)
              $0.probability = 120
              $0.contactRoles = [.with { $0.contactID = "nope" }]
            }
          }, metadata: auth)
        Issue.record("accepted invalid input")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        let fields = Set(
          try #require(try error.unpackGoogleRPCStatus()).details.compactMap(\.badRequest).flatMap(\.violations).map(\.field))
        #expect(
          fields.isSuperset(of: [
            "opportunity.name", "opportunity.account_id", "opportunity.amount", "opportunity.close_date",
            "opportunity.probability", "opportunity.contact_roles[0].contact_id",
          ]))
      }
      let foreign = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Elsewhere" } }, metadata: TestServer.auth(other.adminSecret))
      let hidden = await code {
        try await service.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = "Poach"
              $0.accountID = foreign.id
            }
          }, metadata: auth)
      }
      #expect(hidden == .notFound)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Here" } }, metadata: auth)
      let otherStage = try await service.listPipelines(.init(), metadata: TestServer.auth(other.adminSecret)).pipelines[0]
        .stages[0].id
      let wrongStage = await code {
        try await service.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = "Misplaced"
              $0.accountID = account.id
              $0.stageID = otherStage
            }
          }, metadata: auth)
      }
      #expect(wrongStage == .invalidArgument)
      let unknown = await code { try await service.getOpportunity(.with { $0.id = UUID().uuidString.lowercased() }, metadata: auth) }
      #expect(unknown == .notFound)
    }
  }

  @Test("admins define pipelines: stage rules, renames keep deals, stages with deals stay, one default")
  func pipelineAdministration() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_OpportunityService.Client(wrapping: client)
      func stage(_ name: String, _ category: Crm_V1_StageCategory, _ probability: Int32? = nil) -> Crm_V1_PipelineStage {
        .with {
          $0.name = name
          $0.category = category
          if let probability { $0.probability = probability }
        }
      }
      let renewal: Crm_V1_Pipeline = .with {
        $0.name = "Renewals"
        $0.stages = [
          stage("Upcoming", .open, 50), stage("Quoted", .open, 75), stage("Renewed", .won), stage("Churned", .lost),
        ]
        $0.stages[1].requiredFields = ["amount"]
      }
      let denied = await code { try await service.createPipeline(.with { $0.pipeline = renewal }, metadata: TestServer.auth(repSecret)) }
      #expect(denied == .permissionDenied)
      var badOrder = renewal
      badOrder.stages.swapAt(1, 2)
      let misordered = await code { try await service.createPipeline(.with { $0.pipeline = badOrder }, metadata: auth) }
      #expect(misordered == .invalidArgument)
      var noLost = renewal
      noLost.stages.removeLast()
      let incomplete = await code { try await service.createPipeline(.with { $0.pipeline = noLost }, metadata: auth) }
      #expect(incomplete == .invalidArgument)

      var created = try await service.createPipeline(.with { $0.pipeline = renewal }, metadata: auth)
      #expect(!created.isDefault)
      #expect(created.stages.map(\.probability) == [50, 75, 100, 0])
      #expect(created.stages.map(\.forecastCategory) == [.pipeline, .pipeline, .closed, .omitted])
      #expect(created.stages[1].requiredFields == ["amount"])
      let duplicate = await code { try await service.createPipeline(.with { $0.pipeline = renewal }, metadata: auth) }
      #expect(duplicate == .alreadyExists)

      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Renewing Co" } }, metadata: auth)
      let deal = try await service.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Renewal 2027"
            $0.accountID = account.id
            $0.pipelineID = created.id
          }
        }, metadata: auth)
      #expect(deal.stageID == created.stages[0].id && deal.probability == 50)

      // Removing the stage that holds the deal is refused; renaming and reordering keep it.
      var removal = created
      removal.stages.removeFirst()
      let occupied = await code { try await service.updatePipeline(.with { $0.pipeline = removal }, metadata: auth) }
      #expect(occupied == .failedPrecondition)
      var renamed = created
      renamed.stages[0].name = "Due in 90 days"
      renamed.stages.insert(stage("Contacted", .open, 60), at: 1)
      renamed.isDefault = true
      created = try await service.updatePipeline(.with { $0.pipeline = renamed }, metadata: auth)
      #expect(created.stages.map(\.name) == ["Due in 90 days", "Contacted", "Quoted", "Renewed", "Churned"])
      #expect(created.stages[0].id == deal.stageID && created.isDefault)
      let staleUpdate = await code { try await service.updatePipeline(.with { $0.pipeline = renamed }, metadata: auth) }
      #expect(staleUpdate == .aborted)
      let all = try await service.listPipelines(.init(), metadata: auth).pipelines
      #expect(all.map(\.name) == ["Renewals", "Sales"])
      #expect(all.filter(\.isDefault).count == 1)
      let sales = all[1]
      let defaultDelete = await code { try await service.deletePipeline(.with { $0.id = created.id }, metadata: auth) }
      #expect(defaultDelete == .failedPrecondition)
      let archived = try await service.deletePipeline(.with { $0.id = sales.id }, metadata: auth)
      #expect(archived.hasArchiveTime)
      #expect(try await service.listPipelines(.init(), metadata: auth).pipelines.map(\.name) == ["Renewals"])
      let openDeals = await code { try await service.deletePipeline(.with { $0.id = created.id }, metadata: auth) }
      #expect(openDeals == .failedPrecondition)
    }
  }

  @Test("lists filter by pipeline, stage, state, owner, team, close dates, amounts and forecast category")
  func listFilters() async throws {
    let tenant = try await TestTenant.make()
    let team = try await tenant.makeTeam("East")
    let (rep, _) = try await tenant.makeUser(.salesRep, team: team)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_OpportunityService.Client(wrapping: client)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Buyer" } }, metadata: auth)
      let sales = try await service.listPipelines(.init(), metadata: auth).pipelines[0]
      var ids: [String: String] = [:]
      for (name, units, month, owner, stageName) in [
        ("small", Int64(1_000), Int32(1), tenant.admin.userID, "Prospecting"),
        ("medium", 20_000, 2, rep.userID, "Proposal"),
        ("large", 300_000, 3, rep.userID, "Negotiation"),
      ] {
        let deal = try await service.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = name
              $0.accountID = account.id
              $0.amount = Self.money(units)
              $0.closeDate = Self.date(2027, month, 15)
              $0.ownerID = owner.lowercasedString
              $0.stageID = Self.stage(sales, stageName).id
            }
          }, metadata: auth)
        ids[name] = deal.id
      }
      _ = try await service.closeOpportunityWon(.with { $0.id = ids["large"]! }, metadata: auth)
      func names(_ configure: (inout Crm_V1_ListOpportunitiesRequest) -> Void) async throws -> [String] {
        var request = Crm_V1_ListOpportunitiesRequest()
        configure(&request)
        return try await service.listOpportunities(request, metadata: auth).opportunities.map(\.name)
      }
      #expect(try await names { _ in } == ["large", "medium", "small"])
      #expect(try await names { $0.state = .open } == ["medium", "small"])
      #expect(try await names { $0.state = .won } == ["large"])
      #expect(try await names { $0.teamID = team.lowercasedString } == ["large", "medium"])
      #expect(try await names { $0.ownerID = tenant.admin.userID.lowercasedString } == ["small"])
      #expect(try await names { $0.stageID = Self.stage(sales, "Proposal").id } == ["medium"])
      #expect(try await names { $0.pipelineID = sales.id } == ["large", "medium", "small"])
      #expect(try await names { $0.forecastCategory = .bestCase } == ["medium"])
      #expect(
        try await names {
          $0.closeDateFrom = Self.date(2027, 2, 1)
          $0.closeDateTo = Self.date(2027, 3, 15)
        } == ["large", "medium"])
      #expect(try await names { $0.minAmount = Self.money(20_000) } == ["large", "medium"])
      #expect(
        try await names {
          $0.minAmount = Self.money(500)
          $0.maxAmount = Self.money(20_000)
        } == ["medium", "small"])
      #expect(try await names { $0.minAmount = Self.money(1, "EUR") } == [])
      let mixed = await code {
        try await service.listOpportunities(
          .with {
            $0.minAmount = Self.money(1, "EUR")
            $0.maxAmount = Self.money(2, "USD")
          }, metadata: auth)
      }
      #expect(mixed == .invalidArgument)
      let page = try await service.listOpportunities(.with { $0.pageSize = 2 }, metadata: auth)
      #expect(page.opportunities.map(\.name) == ["large", "medium"])
      let rest = try await service.listOpportunities(
        .with {
          $0.pageSize = 2
          $0.pageToken = page.nextPageToken
        }, metadata: auth)
      #expect(rest.opportunities.map(\.name) == ["small"] && rest.nextPageToken.isEmpty)
    }
  }

  @Test("deals follow merged accounts, contacts and leads; interactions on a deal mark its activity")
  func mergesAndActivity() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_OpportunityService.Client(wrapping: client)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let survivor = try await accounts.createAccount(.with { $0.account = .with { $0.name = "Acme" } }, metadata: auth)
      let loser = try await accounts.createAccount(
        .with {
          $0.account = .with { $0.name = "ACME Inc" }
          $0.duplicateAction = .allow
        }, metadata: auth)
      let keep = try await contacts.createContact(.with { $0.contact = .with { $0.lastName = "Keep" } }, metadata: auth)
      let gone = try await contacts.createContact(
        .with {
          $0.contact = .with { $0.lastName = "Gone" }
          $0.duplicateAction = .allow
        }, metadata: auth)
      let deal = try await service.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Anvils"
            $0.accountID = loser.id
            $0.primaryContactID = gone.id
            $0.contactRoles = [
              .with {
                $0.contactID = gone.id
                $0.role = .decisionMaker
              },
              .with {
                $0.contactID = keep.id
                $0.role = .influencer
              },
            ]
          }
        }, metadata: auth)
      _ = try await accounts.mergeAccounts(
        .with {
          $0.survivorID = survivor.id
          $0.merged = [.with { $0.id = loser.id }]
        }, metadata: auth)
      _ = try await contacts.mergeContacts(
        .with {
          $0.survivorID = keep.id
          $0.merged = [.with { $0.id = gone.id }]
        }, metadata: auth)
      let moved = try await service.getOpportunity(.with { $0.id = deal.id }, metadata: auth)
      #expect(moved.accountID == survivor.id)
      #expect(moved.primaryContactID == keep.id)
      #expect(moved.contactRoles.map(\.contactID) == [keep.id])
      #expect(moved.contactRoles.map(\.role) == [.decisionMaker])

      let when = Int64(Date().timeIntervalSince1970) - 60
      _ = try await Crm_V1_InteractionService.Client(wrapping: client).logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .meeting
            $0.subject = "Pricing call"
            $0.startTime = .init(seconds: when, nanos: 0)
            $0.links = [.with {
              $0.recordType = .opportunity
              $0.recordID = deal.id
            }]
          }
        }, metadata: auth)
      let touched = try await service.getOpportunity(.with { $0.id = deal.id }, metadata: auth)
      #expect(touched.lastActivityTime.seconds == when)
      #expect(touched.etag == moved.etag)
      let timeline = try await Crm_V1_InteractionService.Client(wrapping: client).getTimeline(
        .with {
          $0.record = .with {
            $0.recordType = .opportunity
            $0.recordID = deal.id
          }
        }, metadata: auth)
      #expect(timeline.entries.contains { $0.interaction.subject == "Pricing call" })
    }
  }
}
