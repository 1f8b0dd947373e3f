import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: tasks and alerts")
struct TaskRPCTests {
  static func time(daysFromNow days: Double) -> Google_Protobuf_Timestamp {
    .init(seconds: Int64(Date().timeIntervalSince1970 + days * 86_400), nanos: 0)
  }

  @Test("tasks: CRUD, overdue first, done stamped, related records checked, others' lists for managers only")
  func tasks() async throws {
    let tenant = try await TestTenant.make()
    let (manager, managerSecret) = try await tenant.makeUser(.manager)
    let team = try await tenant.makeTeam("East", manager: manager.userID)
    let (rep, repSecret) = try await tenant.makeUser(.salesRep, team: team)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let service = Crm_V1_TaskService.Client(wrapping: client)
      let repAuth = TestServer.auth(repSecret)
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with { $0.lead = .with { $0.lastName = "Follow me up" } }, metadata: repAuth)
      var created: [String: Crm_V1_Task] = [:]
      for (subject, due) in [("later", 3.0), ("undated", nil), ("overdue", -2.0), ("tomorrow", 1.0)] as [(String, Double?)] {
        created[subject] = try await service.createTask(
          .with {
            $0.task = .with {
              $0.subject = subject
              if let due { $0.dueTime = Self.time(daysFromNow: due) }
              $0.priority = subject == "overdue" ? .high : .unspecified
              $0.related = .with {
                $0.recordType = .lead
                $0.recordID = lead.id
              }
            }
          }, metadata: repAuth)
      }
      #expect(created["overdue"]!.overdue && !created["later"]!.overdue && created["later"]!.status == .open)
      #expect(created["later"]!.priority == .normal && created["overdue"]!.priority == .high)
      var mine = try await service.listMyTasks(.init(), metadata: repAuth).tasks.map(\.subject)
      #expect(mine == ["overdue", "tomorrow", "later", "undated"])
      let page = try await service.listMyTasks(.with { $0.pageSize = 3 }, metadata: repAuth)
      let rest = try await service.listMyTasks(
        .with {
          $0.pageSize = 3
          $0.pageToken = page.nextPageToken
        }, metadata: repAuth)
      #expect(page.tasks.map(\.subject) + rest.tasks.map(\.subject) == mine && rest.nextPageToken.isEmpty)

      let done = try await service.updateTask(
        .with {
          $0.task = .with {
            $0.id = created["overdue"]!.id
            $0.etag = created["overdue"]!.etag
            $0.status = .done
          }
          $0.updateMask = .with { $0.paths = ["status"] }
        }, metadata: repAuth)
      #expect(done.status == .done && done.hasCompleteTime && !done.overdue)
      mine = try await service.listMyTasks(.init(), metadata: repAuth).tasks.map(\.subject)
      #expect(mine == ["tomorrow", "later", "undated"])
      #expect(try await service.listMyTasks(.with { $0.includeClosed = true }, metadata: repAuth).tasks.count == 4)
      let stale = await code {
        try await service.updateTask(
          .with {
            $0.task = .with {
              $0.id = done.id
              $0.etag = created["overdue"]!.etag
              $0.subject = "again"
            }
            $0.updateMask = .with { $0.paths = ["subject"] }
          }, metadata: repAuth)
      }
      #expect(stale == .aborted)

      // Another rep's list is not theirs to read; the manager above the rep may.
      let peer = await code {
        try await service.listMyTasks(.with { $0.userID = rep.userID.lowercasedString }, metadata: TestServer.auth(peerSecret))
      }
      #expect(peer == .permissionDenied)
      let managed = try await service.listMyTasks(
        .with { $0.userID = rep.userID.lowercasedString }, metadata: TestServer.auth(managerSecret))
      #expect(managed.tasks.count == 3)
      let bad = await code {
        try await service.createTask(
          .with {
            $0.task = .with {
              $0.subject = ""
              $0.dueTime = Self.time(daysFromNow: 1)
              $0.reminderTime = Self.time(daysFromNow: 2)
              $0.related = .with {
                $0.recordType = .lead
                $0.recordID = UUID().uuidString.lowercased()
              }
            }
          }, metadata: repAuth)
      }
      #expect(bad == .invalidArgument)
      let hidden = await code {
        try await service.createTask(
          .with {
            $0.task = .with {
              $0.subject = "About nothing"
              $0.related = .with {
                $0.recordType = .lead
                $0.recordID = UUID().uuidString.lowercased()
              }
            }
          }, metadata: repAuth)
      }
      #expect(hidden == .notFound)
    }
  }

  @Test("stale deals and holdings about to return raise one task per event; recycled records notify their holder")
  func alerts() async throws {
    let tenant = try await TestTenant.make()
    let (manager, managerSecret) = try await tenant.makeUser(.manager)
    let team = try await tenant.makeTeam("West", manager: manager.userID)
    let (rep, repSecret) = try await tenant.makeUser(.salesRep, team: team)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      let tasks = Crm_V1_TaskService.Client(wrapping: client)
      let connection = try TestDatabase.ownerConnection()
      defer { connection.close() }
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Quiet Co" } }, metadata: repAuth)
      let deals = Crm_V1_OpportunityService.Client(wrapping: client)
      let quiet = try await deals.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Quiet deal"
            $0.accountID = account.id
          }
        }, metadata: repAuth)
      let busy = try await deals.createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Busy deal"
            $0.accountID = account.id
          }
        }, metadata: repAuth)
      for id in [quiet.id, busy.id] {
        try connection.query(
          "UPDATE opportunities SET stage_entered_at = now() - interval '10 days' WHERE id = \(UUID(uuidString: id)!)")
      }
      _ = try await Crm_V1_InteractionService.Client(wrapping: client).logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .call
            $0.startTime = Self.time(daysFromNow: -2)
            $0.links = [.with {
              $0.recordType = .opportunity
              $0.recordID = busy.id
            }]
          }
        }, metadata: repAuth)
      let first = try await tasks.raiseAlerts(.init(), metadata: auth)
      #expect(first.staleDeals == 1)
      #expect(try await tasks.raiseAlerts(.init(), metadata: auth).staleDeals == 0)
      let raised = try await tasks.listMyTasks(.init(), metadata: repAuth).tasks
      #expect(raised.count == 1)
      let task = try #require(raised.first)
      #expect(task.alertKind == .staleDeal && task.related.recordID == quiet.id && task.priority == .high)
      #expect(task.flaggedManagerID == manager.userID.lowercasedString && task.subject == "Stale deal: Quiet deal")
      let flagged = try await tasks.listMyTasks(.with { $0.includeFlagged = true }, metadata: TestServer.auth(managerSecret))
      #expect(flagged.tasks.map(\.id) == [task.id])
      // A shorter threshold makes the busy deal stale too: a new event, a new task.
      _ = try await tasks.setStaleDealDays(.with { $0.days = 1 }, metadata: auth)
      #expect(try await tasks.raiseAlerts(.init(), metadata: auth).staleDeals == 1)
      let invalid = await code { try await tasks.setStaleDealDays(.with { $0.days = 0 }, metadata: auth) }
      #expect(invalid == .invalidArgument)

      // Pools: a holding due in two days raises one warning; the recycled one tells its holder.
      let pools = Crm_V1_PoolService.Client(wrapping: client)
      let pool = try await pools.createPool(
        .with {
          $0.pool = .with {
            $0.name = "Sea"
            $0.recordType = .lead
            $0.recycleAfterDays = 7
            $0.warningDays = 3
          }
        }, metadata: auth)
      _ = try await pools.setPoolMembers(
        .with {
          $0.poolID = pool.id
          $0.members = [.with { $0.userID = rep.userID.lowercasedString }]
        }, metadata: auth)
      var leads: [String] = []
      for name in ["Soon", "Gone"] {
        let lead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
          .with { $0.lead = .with { $0.lastName = name } }, metadata: auth)
        _ = try await pools.moveToPool(
          .with {
            $0.record = .with {
              $0.recordType = .lead
              $0.recordID = lead.id
            }
            $0.poolID = pool.id
            $0.reasonCode = "seeded"
          }, metadata: auth)
        _ = try await pools.claim(
          .with {
            $0.record = .with {
              $0.recordType = .lead
              $0.recordID = lead.id
            }
          }, metadata: repAuth)
        leads.append(lead.id)
      }
      try connection.query("UPDATE leads SET claimed_at = now() - interval '5 days' WHERE id = \(UUID(uuidString: leads[0])!)")
      try connection.query("UPDATE leads SET claimed_at = now() - interval '8 days' WHERE id = \(UUID(uuidString: leads[1])!)")
      #expect(try await pools.recyclePools(.init(), metadata: auth).returned == 1)
      let warned = try await tasks.raiseAlerts(.init(), metadata: auth)
      #expect(warned.expiringHoldings == 1)
      #expect(try await tasks.raiseAlerts(.init(), metadata: auth).expiringHoldings == 0)
      let mine = try await tasks.listMyTasks(.init(), metadata: repAuth).tasks
      let expiring = try #require(mine.first { $0.alertKind == .expiringHolding })
      #expect(expiring.related.recordID == leads[0] && expiring.hasDueTime)
      let recycled = try #require(mine.first { $0.alertKind == .recycled })
      #expect(recycled.related.recordID == leads[1] && recycled.subject == "Returned to pool \"Sea\": Gone")
    }
  }
}
