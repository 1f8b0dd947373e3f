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

@Suite("Server: approvals")
struct ApprovalTests {
  @Test("a big deal needs the rep's manager, then finance; it is locked meanwhile; approval moves it into the gated stage")
  func stepsLockAndGate() async throws {
    let tenant = try await TestTenant.make()
    let (manager, managerSecret) = try await tenant.makeUser(.manager)
    let sales = try await tenant.makeTeam("Sales", manager: manager.userID)
    let (rep, repSecret) = try await tenant.makeUser(.salesRep, team: sales)
    let finance = try await tenant.makeTeam("Finance")
    let (first, firstSecret) = try await tenant.makeUser(.salesRep, team: finance)
    let (_, secondSecret) = try await tenant.makeUser(.salesRep, team: finance)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      let approvals = Crm_V1_ApprovalService.Client(wrapping: client)
      let deals = Crm_V1_OpportunityService.Client(wrapping: client)
      let pipeline = try #require(try await deals.listPipelines(.init(), metadata: admin).pipelines.first)
      let negotiation = OpportunityRPCTests.stage(pipeline, "Negotiation").id
      let process = try await approvals.createApprovalProcess(
        .with {
          $0.process = .with {
            $0.recordType = .opportunity
            $0.name = "Deals over 100k"
            $0.entryConditions = [TriggerRuleTests.condition("amount", .greaterThan, 100_000)]
            $0.gatedStageID = negotiation
            $0.steps = [
              .with {
                $0.name = "Sales manager"
                $0.managerLevel = 1
              },
              .with {
                $0.name = "Finance"
                $0.team = .with { $0.teamID = finance.lowercasedString }
              },
            ]
            $0.onApprove = [
              .with { $0.moveStageID = negotiation },
              .with {
                $0.setField = .with {
                  $0.field = "next_step"
                  $0.value = "Send the contract"
                }
              },
            ]
          }
        }, metadata: admin)
      #expect(process.steps.count == 2 && process.gatedStageID == negotiation)

      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Initech" } }, metadata: repAuth)
      func deal(_ units: Int64) async throws -> Crm_V1_Opportunity {
        try await deals.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = "Deal \(units)"
              $0.accountID = account.id
              $0.amount = OpportunityRPCTests.money(units)
              $0.closeDate = OpportunityRPCTests.date(2027, 3, 31)
            }
          }, metadata: repAuth)
      }
      let big = try await deal(150_000)
      func move(_ id: String, auth: Metadata) async throws -> Crm_V1_Opportunity {
        try await deals.moveOpportunityStage(
          .with {
            $0.id = id
            $0.stageID = negotiation
          }, metadata: auth)
      }
      #expect(await code { try await move(big.id, auth: repAuth) } == .failedPrecondition, "the gate holds")
      // A small deal is not the process's business.
      let small = try await deal(50_000)
      #expect(try await move(small.id, auth: repAuth).stageID == negotiation)
      #expect(
        await code {
          try await approvals.submitForApproval(
            .with {
              $0.record = .with {
                $0.recordType = .opportunity; $0.recordID = small.id
              }
            }, metadata: repAuth)
        } == .failedPrecondition)

      let submitted = try await approvals.submitForApproval(
        .with {
          $0.record = .with {
            $0.recordType = .opportunity
            $0.recordID = big.id
          }
          $0.comment = "20% discount to close this quarter"
        }, metadata: repAuth)
      #expect(submitted.status == .pending && submitted.step == 1 && submitted.stepName == "Sales manager")
      #expect(submitted.decisions.map(\.approverID) == [manager.userID.lowercasedString])
      // Locked: the rep may not change the deal, nor submit it twice; finance does not decide step 1.
      #expect(
        await code {
          try await deals.updateOpportunity(
            .with {
              $0.opportunity = .with {
                $0.id = big.id
                $0.nextStep = "Sneak it through"
              }
              $0.updateMask = .init(protoPaths: ["next_step"])
            }, metadata: repAuth)
        } == .failedPrecondition)
      #expect(
        await code {
          try await approvals.submitForApproval(
            .with {
              $0.record = .with {
                $0.recordType = .opportunity; $0.recordID = big.id
              }
            }, metadata: repAuth)
        } == .failedPrecondition)
      #expect(
        await code { try await approvals.approveRequest(.with { $0.id = submitted.id }, metadata: TestServer.auth(firstSecret)) }
          == .permissionDenied)

      let queue = try await approvals.listMyApprovals(.with { _ in }, metadata: TestServer.auth(managerSecret))
      #expect(queue.requests.map(\.id) == [submitted.id])
      let second = try await approvals.approveRequest(
        .with {
          $0.id = submitted.id
          $0.comment = "OK by me"
        }, metadata: TestServer.auth(managerSecret))
      #expect(second.status == .pending && second.step == 2 && second.stepName == "Finance")
      #expect(Set(second.decisions.filter { $0.step == 2 }.map(\.outcome)) == [.pending])
      #expect(try await approvals.listMyApprovals(.with { _ in }, metadata: TestServer.auth(managerSecret)).requests.isEmpty)
      #expect(try await approvals.listMyApprovals(.with { _ in }, metadata: TestServer.auth(firstSecret)).requests.count == 1)

      let done = try await approvals.approveRequest(.with { $0.id = submitted.id }, metadata: TestServer.auth(secondSecret))
      #expect(done.status == .approved && done.hasDecideTime)
      #expect(done.decisions.first { $0.approverID == first.userID.lowercasedString }?.outcome == .skipped, "first response")
      let moved = try await deals.getOpportunity(.with { $0.id = big.id }, metadata: repAuth)
      #expect(moved.stageID == negotiation && moved.nextStep == "Send the contract")
      // Unlocked again.
      _ = try await deals.updateOpportunity(
        .with {
          $0.opportunity = .with {
            $0.id = big.id
            $0.description_p = "Signed off"
          }
          $0.updateMask = .init(protoPaths: ["description"])
        }, metadata: repAuth)
      #expect(
        await code { try await approvals.approveRequest(.with { $0.id = submitted.id }, metadata: TestServer.auth(secondSecret)) }
          == .failedPrecondition)

      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .opportunity
          $0.recordID = big.id
          $0.pageSize = 50
        }, metadata: repAuth
      ).entries.reversed()
      #expect(
        history.filter { $0.operation == .event }.map(\.eventName) == [
          "approval_submitted", "approval_decided", "approval_decided", "approval_approved",
        ])
      #expect(history.contains { $0.changes.contains { $0.field == "stage_id" } })
      #expect(
        try await approvals.listApprovalRequests(
          .with {
            $0.record = .with {
              $0.recordType = .opportunity; $0.recordID = big.id
            }
          }, metadata: repAuth
        ).requests.map(\.id) == [submitted.id])
      _ = rep
    }
  }

  @Test("a ticket under approval keeps taking comments; its fields wait for the decision")
  func ticketLock() async throws {
    let tenant = try await TestTenant.make()
    let (lead, leadSecret) = try await tenant.makeUser(.manager)
    let (_, agentSecret) = try await tenant.makeUser(.serviceAgent)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let agent = TestServer.auth(agentSecret)
      let approvals = Crm_V1_ApprovalService.Client(wrapping: client)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      _ = try await approvals.createApprovalProcess(
        .with {
          $0.process = .with {
            $0.recordType = .ticket
            $0.name = "Refunds"
            $0.entryConditions = [TriggerRuleTests.condition("tags", .containsTag, "refund")]
            $0.steps = [
              .with {
                $0.name = "Service lead"
                $0.userID = lead.userID.lowercasedString
              }
            ]
          }
        }, metadata: admin)
      let ticket = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Refund for order 4711"
            $0.tags = ["refund"]
          }
        }, metadata: agent)
      let request = try await approvals.submitForApproval(
        .with {
          $0.record = .with {
            $0.recordType = .ticket; $0.recordID = ticket.id
          }
        }, metadata: agent)
      #expect(request.status == .pending)
      _ = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.public = true
          $0.body = "We are checking your refund."
        }, metadata: agent)
      func retitle(_ auth: Metadata) async throws -> Crm_V1_Ticket {
        try await tickets.updateTicket(
          .with {
            $0.ticket = .with {
              $0.id = ticket.id
              $0.subject = "Refund approved for order 4711"
            }
            $0.updateMask = .init(protoPaths: ["subject"])
          }, metadata: auth)
      }
      #expect(await code { try await retitle(agent) } == .failedPrecondition)
      #expect(try await retitle(TestServer.auth(leadSecret)).subject == "Refund approved for order 4711", "the approver may")
      _ = try await approvals.approveRequest(.with { $0.id = request.id }, metadata: TestServer.auth(leadSecret))
      _ = try await retitle(agent)
    }
  }

  @Test("an upsert import leaves a record under approval alone, naming the request; after the decision it goes through")
  func importsWaitForTheDecision() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let rep = TestServer.auth(repSecret)
      let approvals = Crm_V1_ApprovalService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      _ = try await approvals.createApprovalProcess(
        .with {
          $0.process = .with {
            $0.recordType = .lead
            $0.name = "Strategic leads"
            $0.entryConditions = [TriggerRuleTests.condition("company_size", .greaterThan, 1000)]
            $0.steps = [
              .with {
                $0.name = "Admin"
                $0.userID = tenant.admin.userID.lowercasedString
              }
            ]
          }
        }, metadata: admin)
      let lead = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Megacorp"
            $0.companySize = 5000
            $0.externalID = "ERP-1"
          }
        }, metadata: rep)
      let request = try await approvals.submitForApproval(
        .with {
          $0.record = .with {
            $0.recordType = .lead; $0.recordID = lead.id
          }
        }, metadata: rep)
      func upsert(_ importID: String) async throws -> Crm_V1_ImportRowResult {
        let answers = try await ImportRPCTests.run(
          client,
          [
            .with {
              $0.header = .with {
                $0.recordType = .lead
                $0.importID = importID
                $0.mode = .upsertByExternalID
                $0.columns = ["Last Name", "ERP Id", "Title"]
                $0.fieldMapping = ["ERP Id": "external_id", "Title": "title"]
              }
            },
            .with { $0.rows = .with { $0.rows = [.with { $0.values = ["Megacorp", "ERP-1", "CTO"] }] } },
          ], auth: rep)
        return try #require(ImportRPCTests.results(answers).first)
      }
      let waiting = try await upsert("while-pending")
      #expect(waiting.outcome == .failed)
      #expect(waiting.errors.first?.reason == "FAILED_PRECONDITION" && waiting.errors.first?.field == "external_id")
      #expect(waiting.errors.first?.description_p.contains(request.id) == true, "\(waiting.errors)")
      #expect(try await leads.getLead(.with { $0.id = lead.id }, metadata: rep).title.isEmpty)

      _ = try await approvals.approveRequest(.with { $0.id = request.id }, metadata: admin)
      let decided = try await upsert("after-approval")
      #expect(decided.outcome == .updated && decided.recordID == lead.id)
      #expect(try await leads.getLead(.with { $0.id = lead.id }, metadata: rep).title == "CTO")
    }
  }

  @Test("a rule submits; a unanimous team needs everyone, one rejection ends it with its actions; the submitter recalls")
  func unanimousRejectRecall() async throws {
    let tenant = try await TestTenant.make()
    let board = try await tenant.makeTeam("Board")
    let (_, oneSecret) = try await tenant.makeUser(.manager, team: board)
    let (_, twoSecret) = try await tenant.makeUser(.manager, team: board)
    let (_, outsiderSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let approvals = Crm_V1_ApprovalService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let process = try await approvals.createApprovalProcess(
        .with {
          $0.process = .with {
            $0.recordType = .lead
            $0.name = "Strategic leads"
            $0.entryConditions = [TriggerRuleTests.condition("company_size", .greaterThan, 1000)]
            $0.steps = [
              .with {
                $0.name = "Board"
                $0.team = .with {
                  $0.teamID = board.lowercasedString
                  $0.unanimous = true
                }
              }
            ]
            $0.onReject = [
              .with {
                $0.setField = .with {
                  $0.field = "status"
                  $0.value = "nurturing"
                }
              }
            ]
          }
        }, metadata: admin)
      let rule = try await Crm_V1_TriggerRuleService.Client(wrapping: client).createTriggerRule(
        TriggerRuleTests.rule(
          "Big companies go to the board", onCreate: true,
          conditions: [TriggerRuleTests.condition("company_size", .greaterThan, 1000)],
          actions: [.with { $0.submitForApproval = .with { $0.processID = process.id } }]), metadata: admin)
      let lead = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Megacorp"
            $0.companySize = 5000
          }
        }, metadata: admin)
      let ref = Crm_V1_RecordRef.with {
        $0.recordType = .lead
        $0.recordID = lead.id
      }
      let request = try #require(
        try await approvals.listApprovalRequests(.with { $0.record = ref }, metadata: admin).requests.first)
      #expect(request.status == .pending && request.ruleID == rule.id && request.decisions.count == 2)
      #expect(
        await code {
          try await approvals.getApprovalRequest(.with { $0.id = request.id }, metadata: TestServer.auth(outsiderSecret))
        }
          == nil, "leads are public read in a new tenant: whoever sees the lead sees its request")

      let half = try await approvals.approveRequest(.with { $0.id = request.id }, metadata: TestServer.auth(oneSecret))
      #expect(half.status == .pending && half.decisions.filter { $0.outcome == .approved }.count == 1)
      let rejected = try await approvals.rejectRequest(
        .with {
          $0.id = request.id
          $0.comment = "Not now"
        }, metadata: TestServer.auth(twoSecret))
      #expect(rejected.status == .rejected)
      #expect(try await leads.getLead(.with { $0.id = lead.id }, metadata: admin).status == .nurturing)

      // Another; the submitter (the rule's writer, the admin) recalls it and the lead unlocks.
      let other = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Gigacorp"
            $0.companySize = 2000
          }
        }, metadata: admin)
      let otherRef = Crm_V1_RecordRef.with {
        $0.recordType = .lead
        $0.recordID = other.id
      }
      let pending = try #require(
        try await approvals.listApprovalRequests(.with { $0.record = otherRef }, metadata: admin).requests.first)
      #expect(
        await code { try await approvals.recallRequest(.with { $0.id = pending.id }, metadata: TestServer.auth(oneSecret)) }
          == .permissionDenied)
      let recalled = try await approvals.recallRequest(.with { $0.id = pending.id }, metadata: admin)
      #expect(recalled.status == .recalled && recalled.decisions.allSatisfy { $0.outcome == .skipped })
      #expect(try await approvals.listMyApprovals(.with { _ in }, metadata: TestServer.auth(oneSecret)).requests.isEmpty)

      // Bad definitions name the field.
      let violations = await HardeningRPCTests.violations {
        try await approvals.createApprovalProcess(
          .with {
            $0.process = .with {
              $0.recordType = .lead
              $0.name = "Bad"
              $0.entryConditions = [TriggerRuleTests.condition("status", .changed)]
              $0.gatedStageID = UUID().uuidString
              $0.steps = [.with { $0.name = "x" }]
            }
          }, metadata: admin)
      }
      #expect(
        Set(violations ?? [])
          == ["process.entry_conditions[0].operator", "process.steps[0]", "process.steps", "process.gated_stage_id"])
    }
  }
}
