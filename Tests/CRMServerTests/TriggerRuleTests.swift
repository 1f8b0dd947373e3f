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

@Suite("Server: trigger rules")
struct TriggerRuleTests {
  static func condition(_ field: String, _ op: Crm_V1_RuleOperator, _ value: Google_Protobuf_Value? = nil) -> Crm_V1_RuleCondition
  {
    .with {
      $0.field = field
      $0.operator = op
      if let value { $0.value = value }
    }
  }

  static func setField(_ field: String, _ value: Google_Protobuf_Value) -> Crm_V1_RuleAction {
    .with {
      $0.setField = .with {
        $0.field = field
        $0.value = value
      }
    }
  }

  static func addTag(_ tag: String) -> Crm_V1_RuleAction { .with { $0.addTag = .with { $0.tag = tag } } }

  static func rule(
    _ name: String, type: Crm_V1_RecordType = .lead, onCreate: Bool = false, onUpdate: Bool = false,
    position: Int32 = 0, conditions: [Crm_V1_RuleCondition] = [], actions: [Crm_V1_RuleAction]
  ) -> Crm_V1_CreateTriggerRuleRequest {
    .with {
      $0.rule = .with {
        $0.recordType = type
        $0.name = name
        $0.position = position
        $0.onCreate = onCreate
        $0.onUpdate = onUpdate
        $0.conditions = conditions
        $0.actions = actions
      }
    }
  }

  @Test("a rule acts in the write's transaction; the answer, its etag, history, tasks and the feed show it, naming the rule")
  func actsInTheTransaction() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(feed: true) { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_TriggerRuleService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      let start = try await changes.listChanges(.with { $0.pageSize = 1000 }, metadata: auth).nextCursor
      let rule = try await rules.createTriggerRule(
        Self.rule(
          "Web leads with an industry get worked", onCreate: true,
          conditions: [Self.condition("source", .equals, "web_form"), Self.condition("industry", .changed)],
          actions: [
            Self.setField("status", "working"), Self.addTag("Inbound"),
            .with {
              $0.createTask = .with {
                $0.subject = "Call within a day"
                $0.priority = .high
                $0.dueInHours = 24
              }
            },
            .with { $0.emitEvent = .with { $0.name = "hot_lead" } },
          ]), metadata: auth)
      #expect(rule.actions[1].addTag.tag == "inbound" && rule.onCreate && !rule.onUpdate)

      let hot = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Hot"
            $0.source = .webForm
            $0.industry = "Software"
          }
        }, metadata: auth)
      #expect(hot.status == .working && hot.tags == ["inbound"])
      let stored = try await leads.getLead(.with { $0.id = hot.id }, metadata: auth)
      #expect(stored.etag == hot.etag && stored.status == .working, "the create answers with what the rules left")
      let cold = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Cold"
            $0.source = .phone
            $0.industry = "Software"
          }
        }, metadata: auth)
      #expect(cold.status == .new && cold.tags.isEmpty)

      // The etag from the create is current: an update with it goes through.
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = hot.id
            $0.etag = hot.etag
            $0.title = "CTO"
          }
          $0.updateMask = .init(protoPaths: ["title"])
        }, metadata: auth)

      let history = try await changes.getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = hot.id
        }, metadata: auth
      ).entries.reversed()
      #expect(history.map(\.operation) == [.create, .update, .update, .event, .update])
      let byRule = history.filter { $0.ruleID == rule.id }
      #expect(byRule.count == 3 && byRule.allSatisfy { $0.ruleName == "Web leads with an industry get worked" })
      #expect(byRule.first?.changes.map(\.field) == ["status"] && byRule.first?.changes.first?.newValue.stringValue == "working")
      #expect(history.first { $0.operation == .event }?.eventName == "hot_lead")
      #expect(history.last?.ruleID == "", "the caller's own update names no rule")

      let tasks = try await Crm_V1_TaskService.Client(wrapping: client).listMyTasks(
        .with {
          $0.related = .with {
            $0.recordType = .lead; $0.recordID = hot.id
          }
        }, metadata: auth)
      #expect(tasks.tasks.map(\.subject) == ["Call within a day"])
      #expect(tasks.tasks.first?.ownerID == tenant.admin.userID.lowercasedString && tasks.tasks.first?.priority == .high)
      #expect(tasks.tasks.first?.hasDueTime == true)

      let feed = try await ChangeFeedTests.events(changes, after: start, metadata: auth) { events in
        events.contains { $0.change.operation == .event }
      }
      let event = try #require(feed.events.first { $0.change.operation == .event })
      #expect(event.change.recordID == hot.id && event.change.eventName == "hot_lead" && event.change.ruleID == rule.id)
      #expect(event.change.changes.contains { $0.field == "industry" }, "the event carries the change that fired it")
      let created = try #require(feed.events.first { $0.change.recordID == hot.id && $0.change.operation == .create })
      #expect(created.transactionID == event.transactionID, "the rule ran in the create's transaction")

      // Deleted, it stops.
      _ = try await rules.deleteTriggerRule(.with { $0.id = rule.id }, metadata: auth)
      let later = try await leads.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Later"
            $0.source = .webForm
            $0.industry = "Software"
          }
        }, metadata: auth)
      #expect(later.status == .new)
      #expect(try await rules.listTriggerRules(.with { _ in }, metadata: auth).rules.isEmpty)
      #expect(try await rules.getTriggerRule(.with { $0.id = rule.id }, metadata: auth).name == rule.name)
    }
  }

  @Test("rules chain, but a rule never fires beneath itself: two rules that would feed each other stop")
  func loops() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_TriggerRuleService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let first = try await rules.createTriggerRule(
        Self.rule(
          "Industry → description", onUpdate: true, conditions: [Self.condition("industry", .changed)],
          actions: [Self.setField("description", "touched by the first rule")]), metadata: auth)
      let second = try await rules.createTriggerRule(
        Self.rule(
          "Description → industry", onUpdate: true, position: 1, conditions: [Self.condition("description", .changed)],
          actions: [Self.setField("industry", "Set by the second rule")]), metadata: auth)
      // A rule that keeps its own condition true.
      let campaign = try await rules.createTriggerRule(
        Self.rule(
          "Campaign → campaign", onUpdate: true, position: 2, conditions: [Self.condition("campaign", .changed)],
          actions: [Self.setField("campaign", "spring"), Self.setField("campaign", "autumn")]), metadata: auth)
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Looped" } }, metadata: auth)
      let updated = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = lead.id
            $0.industry = "Retail"
            $0.campaign = "winter"
          }
          $0.updateMask = .init(protoPaths: ["industry", "campaign"])
        }, metadata: auth)
      #expect(updated.industry == "Set by the second rule" && updated.description_p == "touched by the first rule")
      #expect(updated.campaign == "autumn")
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = lead.id
        }, metadata: auth
      ).entries.reversed().dropFirst()
      // The caller's update; the first rule and the campaign rule's two sets on it; the second rule on
      // the first's change — and no more: the first rule does not run again on the second's change, nor
      // the campaign rule on its own.
      #expect(history.map(\.ruleID) == ["", first.id, campaign.id, campaign.id, second.id])
    }
  }

  @Test("a rule moves a lead's status only between open statuses: a disqualified lead stays disqualified")
  func statusGuard() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      _ = try await Crm_V1_TriggerRuleService.Client(wrapping: client).createTriggerRule(
        Self.rule(
          "Industry means work", onUpdate: true, conditions: [Self.condition("industry", .changed)],
          actions: [Self.setField("status", "working")]), metadata: auth)
      let open = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Open" } }, metadata: auth)
      let closed = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Closed" } }, metadata: auth)
      _ = try await leads.setLeadStatus(
        .with {
          $0.id = closed.id
          $0.status = .disqualified
          $0.reason = "No budget"
        }, metadata: auth)
      for lead in [open, closed] {
        _ = try await leads.updateLead(
          .with {
            $0.lead = .with {
              $0.id = lead.id
              $0.industry = "Retail"
            }
            $0.updateMask = .init(protoPaths: ["industry"])
          }, metadata: auth)
      }
      #expect(try await leads.getLead(.with { $0.id = open.id }, metadata: auth).status == .working)
      let still = try await leads.getLead(.with { $0.id = closed.id }, metadata: auth)
      #expect(still.status == .disqualified && still.disqualifiedReason == "No budget")
    }
  }

  @Test("a chain of rules stops after eight rounds; ten rules all feeding each other each run once per record")
  func depthAndFanOut() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_TriggerRuleService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      // A chain: step i turns campaign "step i-1" into "step i".
      for step in 1...10 {
        _ = try await rules.createTriggerRule(
          Self.rule(
            "Step \(step)", onUpdate: true, position: Int32(step),
            conditions: [Self.condition("campaign", .changedTo, .init(stringLiteral: "step \(step - 1)"))],
            actions: [Self.setField("campaign", .init(stringLiteral: "step \(step)"))]), metadata: auth)
      }
      // Ten rules that each react to any change of the source detail by changing it again.
      for index in 0..<10 {
        _ = try await rules.createTriggerRule(
          Self.rule(
            "Echo \(index)", onUpdate: true, position: Int32(20 + index), conditions: [Self.condition("source_detail", .changed)],
            actions: [Self.setField("source_detail", .init(stringLiteral: "echo \(index)"))]), metadata: auth)
      }
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Chained" } }, metadata: auth)
      let updated = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = lead.id
            $0.campaign = "step 0"
            $0.sourceDetail = "by hand"
          }
          $0.updateMask = .init(protoPaths: ["campaign", "source_detail"])
        }, metadata: auth)
      #expect(updated.campaign == "step 8", "rounds 0 to 7 ran steps 1 to 8")
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = lead.id
          $0.pageSize = 100
        }, metadata: auth
      ).entries
      let names = history.map(\.ruleName).filter { !$0.isEmpty }
      #expect(names.filter { $0.hasPrefix("Step") }.count == 8)
      #expect(Set(names.filter { $0.hasPrefix("Echo") }).count == 10 && names.filter { $0.hasPrefix("Echo") }.count == 10)
    }
  }

  @Test("an import runs the rules set-wise: every matching row gets the actions, each entry naming the rule")
  func imports() async throws {
    let tenant = try await TestTenant.make()
    let team = [try await tenant.makeUser(.salesRep).0.userID, try await tenant.makeUser(.salesRep).0.userID]
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_AssignmentService.Client(wrapping: client).createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Machinery to the team"
            $0.criteria = .with { $0.industries = ["machinery"] }
            $0.team = AssignmentRPCTests.team(team.map { ($0, 1) })
          }
        }, metadata: auth)
      let rule = try await Crm_V1_TriggerRuleService.Client(wrapping: client).createTriggerRule(
        Self.rule(
          "Engine makers", onCreate: true, conditions: [Self.condition("company", .equals, "Engines 3")],
          actions: [
            Self.addTag("engines"), Self.setField("industry", "Machinery"), .with { $0.assign = Crm_V1_AssignAction() },
          ]), metadata: auth)
      let requests =
        [ImportRPCTests.header("ruled")]
        + stride(from: Int64(0), to: 600, by: 300).map { ImportRPCTests.batch($0..<$0 + 300, tag: "r") }
      let results = ImportRPCTests.results(try await ImportRPCTests.run(client, requests, auth: auth))
      let created = results.filter { $0.outcome == .created }.count
      #expect(created > 500)
      let connection = try TestDatabase.ownerConnection()
      defer { connection.close() }
      let counts = try connection.query(
        """
        SELECT count(*) FILTER (WHERE company = 'Engines 3') AS matching,
               count(*) FILTER (WHERE company = 'Engines 3' AND tags @> ARRAY['engines'] AND industry = 'Machinery') AS acted,
               count(*) FILTER (WHERE company <> 'Engines 3' AND (tags <> '{}' OR industry IS NOT NULL)) AS wrongly,
               (SELECT count(*) FROM change_log c WHERE c.tenant_id = \(tenant.tenantID) AND c.rule_id = \(UUID(uuidString: rule.id)!)) AS entries
        FROM leads WHERE tenant_id = \(tenant.tenantID)
        """)[0]
      let matching: Int64 = try counts.decode("matching")
      #expect(matching > 50)
      #expect(try counts.decode("acted", as: Int64.self) == matching)
      #expect(try counts.decode("wrongly", as: Int64.self) == 0)
      #expect(try counts.decode("entries", as: Int64.self) == matching * 3)
      // The assign action routed the batch's records set-wise, taking the team's turns in order.
      let owners = try connection.query(
        """
        SELECT owner_id, count(*) AS n FROM leads WHERE tenant_id = \(tenant.tenantID) AND company = 'Engines 3' GROUP BY owner_id
        """
      ).rows.map { (try $0.decode("owner_id", as: UUID.self), try $0.decode("n", as: Int64.self)) }
      #expect(Set(owners.map(\.0)) == Set(team))
      #expect(owners.map(\.1).reduce(0, +) == matching && abs(owners[0].1 - owners[1].1) <= 1, "\(owners)")
    }
  }

  @Test("assign routes through the assignment rules: team turns, a pool, a ticket's assignee; history names both rules")
  func assignAction() async throws {
    let tenant = try await TestTenant.make()
    let (alice, aliceSecret) = try await tenant.makeUser(.salesRep)
    let (bob, _) = try await tenant.makeUser(.salesRep)
    let (carol, _) = try await tenant.makeUser(.salesRep)
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let routing = Crm_V1_AssignmentService.Client(wrapping: client)
      let pool = try await Crm_V1_PoolService.Client(wrapping: client).createPool(
        .with {
          $0.pool = .with {
            $0.name = "China inbound"
            $0.recordType = .lead
          }
        }, metadata: auth)
      let enterprise = try await routing.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Enterprise to the team"
            $0.position = 1
            $0.criteria = .with { $0.companySizeMin = 1000 }
            $0.team = AssignmentRPCTests.team([(alice.userID, 1), (bob.userID, 1)])
          }
        }, metadata: auth)
      _ = try await routing.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "China to the pool"
            $0.position = 2
            $0.criteria = .with { $0.regionCodes = ["CN"] }
            $0.poolID = pool.id
          }
        }, metadata: auth)
      _ = try await routing.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .ticket
            $0.name = "Urgent to Carol"
            $0.criteria = .with { $0.priorities = [.urgent] }
            $0.userID = carol.userID.lowercasedString
          }
        }, metadata: auth)
      let rules = Crm_V1_TriggerRuleService.Client(wrapping: client)
      let assign = Crm_V1_RuleAction.with { $0.assign = Crm_V1_AssignAction() }
      let rule = try await rules.createTriggerRule(
        Self.rule(
          "Re-route on a new size", onUpdate: true, conditions: [Self.condition("company_size", .changed)],
          actions: [assign, .with { $0.createTask = .with { $0.subject = "Introduce yourself" } }]), metadata: auth)
      #expect(rule.actions.first?.assign != nil && rule.actions.first?.action == .assign(Crm_V1_AssignAction()))
      _ = try await rules.createTriggerRule(
        Self.rule(
          "Urgent tickets re-route", type: .ticket, onUpdate: true,
          conditions: [Self.condition("priority", .changedTo, "urgent")],
          actions: [assign]), metadata: auth)

      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let asRep = TestServer.auth(repSecret)
      func resize(_ name: String, size: Int32, region: String = "US") async throws -> Crm_V1_Lead {
        let lead = try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.lastName = name
              $0.companySize = 10
              $0.regionCode = "US"
            }
          }, metadata: asRep)
        #expect(lead.ownerID == rep.userID.lowercasedString, "no assignment rule takes a small US lead")
        return try await leads.updateLead(
          .with {
            $0.lead = .with {
              $0.id = lead.id
              $0.companySize = size
              $0.regionCode = region
            }
            $0.updateMask = .with { $0.paths = ["company_size", "region_code"] }
          }, metadata: asRep)
      }
      let first = try await resize("First", size: 5000)
      let second = try await resize("Second", size: 2000)
      #expect(first.ownerID == alice.userID.lowercasedString && second.ownerID == bob.userID.lowercasedString, "team turns")
      let pooled = try await resize("Pooled", size: 20, region: "CN")
      #expect(pooled.ownerID.isEmpty && pooled.poolID == pool.id)
      let stays = try await resize("Stays", size: 30)
      #expect(stays.ownerID == rep.userID.lowercasedString, "no assignment rule places it: left as it is")

      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      let history = try await changes.getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = first.id
        }, metadata: auth
      ).entries.reversed()
      let routed = try #require(history.last { $0.ruleID == rule.id && $0.operation == .update })
      #expect(routed.ruleName == "Re-route on a new size")
      #expect(routed.changes.map(\.field) == ["owner_id", "assignment_rule"])
      #expect(routed.changes.first?.newValue.stringValue == alice.userID.lowercasedString)
      #expect(routed.changes.last?.newValue.structValue.fields["id"]?.stringValue == enterprise.id)
      let tasks = try await Crm_V1_TaskService.Client(wrapping: client).listMyTasks(
        .with {
          $0.related = .with {
            $0.recordType = .lead; $0.recordID = first.id
          }
        }, metadata: TestServer.auth(aliceSecret))
      #expect(tasks.tasks.map(\.ownerID) == [alice.userID.lowercasedString], "the task after assign goes to the new owner")
      let stayed = try await changes.getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = stays.id
        }, metadata: auth
      ).entries
      #expect(!stayed.contains { $0.changes.contains { $0.field == "assignment_rule" } })

      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let ticket = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Printer on fire" } }, metadata: auth)
      #expect(ticket.assigneeID.isEmpty)
      let urgent = try await tickets.updateTicket(
        .with {
          $0.ticket = .with {
            $0.id = ticket.id
            $0.priority = .urgent
          }
          $0.updateMask = .with { $0.paths = ["priority"] }
        }, metadata: auth)
      #expect(urgent.assigneeID == carol.userID.lowercasedString)
    }
  }

  @Test("bad definitions answer INVALID_ARGUMENT naming the field; reps may not define rules; a stale etag is ABORTED")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_TriggerRuleService.Client(wrapping: client)
      func violations(_ request: Crm_V1_CreateTriggerRuleRequest) async -> [String]? {
        await HardeningRPCTests.violations { try await rules.createTriggerRule(request, metadata: auth) }
      }
      let tag = Self.addTag("x")
      #expect(
        await violations(Self.rule("x", onCreate: true, conditions: [Self.condition("salary", .equals, 1)], actions: [tag]))
          == ["rule.conditions[0].field"])
      #expect(
        await violations(
          Self.rule("x", onCreate: true, conditions: [Self.condition("status", .greaterThan, "new")], actions: [tag]))
          == ["rule.conditions[0].operator"])
      #expect(
        await violations(Self.rule("x", onCreate: true, conditions: [Self.condition("status", .equals, "hot")], actions: [tag]))
          == ["rule.conditions[0].value"])
      #expect(
        await violations(
          Self.rule("x", onCreate: true, conditions: [Self.condition("score", .greaterThan, "high")], actions: [tag]))
          == ["rule.conditions[0].value"])
      #expect(
        await violations(Self.rule("x", onCreate: true, actions: [Self.setField("company", "ACME")])) == [
          "rule.actions[0].set_field.field"
        ])
      #expect(
        await violations(Self.rule("x", onCreate: true, actions: [Self.setField("status", "converted")])) == [
          "rule.actions[0].set_field.value"
        ])
      #expect(
        await violations(Self.rule("x", onCreate: true, actions: [.with { $0.emitEvent = .with { $0.name = "Bad Name!" } }]))
          == ["rule.actions[0].emit_event.name"])
      #expect(
        await violations(Self.rule("x", onCreate: true, actions: [.with { $0.emitEvent = .with { $0.name = "approval_done" } }]))
          == ["rule.actions[0].emit_event.name"])
      #expect(
        await violations(Self.rule("x", type: .contact, onCreate: true, actions: [.with { $0.assign = Crm_V1_AssignAction() }]))
          == ["rule.actions[0].assign"])
      #expect(await violations(Self.rule("x", actions: [tag])) == ["rule.on_create"])
      #expect(await violations(Self.rule("x", onCreate: true, actions: [])) == ["rule.actions"])
      #expect(await violations(Self.rule("x", type: .task, onCreate: true, actions: [tag])) == ["rule.record_type"])
      #expect(await violations(Self.rule("", onCreate: true, actions: [tag])) == ["rule.name"])
      #expect(
        await code {
          try await rules.createTriggerRule(
            Self.rule(
              "x", onCreate: true,
              actions: [
                .with {
                  $0.createTask = .with {
                    $0.subject = "s"; $0.assigneeID = UUID().uuidString
                  }
                }
              ]),
            metadata: auth)
        } == .invalidArgument)
      #expect(
        await code {
          try await rules.createTriggerRule(Self.rule("x", onCreate: true, actions: [tag]), metadata: TestServer.auth(repSecret))
        }
          == .permissionDenied)
      #expect(
        await code { try await rules.listTriggerRules(.with { _ in }, metadata: TestServer.auth(repSecret)) } == .permissionDenied
      )

      let rule = try await rules.createTriggerRule(
        Self.rule(
          "Deals over 50k", type: .opportunity, onCreate: true, conditions: [Self.condition("amount", .greaterThan, 50_000)],
          actions: [Self.addTag("big")]), metadata: auth)
      var changed = rule
      changed.name = "Deals over 60k"
      changed.conditions = [Self.condition("amount", .greaterThan, 60_000)]
      let updated = try await rules.updateTriggerRule(.with { $0.rule = changed }, metadata: auth)
      #expect(updated.name == "Deals over 60k" && updated.etag != rule.etag)
      #expect(await code { try await rules.updateTriggerRule(.with { $0.rule = changed }, metadata: auth) } == .aborted)
      changed.recordType = .lead
      changed.conditions = []
      changed.etag = updated.etag
      #expect(
        await HardeningRPCTests.violations { try await rules.updateTriggerRule(.with { $0.rule = changed }, metadata: auth) }
          == ["rule.record_type"])

      // The amount condition reads a deal's amount as one number.
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Initech" } }, metadata: auth)
      let deals = Crm_V1_OpportunityService.Client(wrapping: client)
      func deal(_ units: Int64) async throws -> Crm_V1_Opportunity {
        try await deals.createOpportunity(
          .with {
            $0.opportunity = .with {
              $0.name = "Deal \(units)"
              $0.accountID = account.id
              $0.amount = OpportunityRPCTests.money(units)
            }
          }, metadata: auth)
      }
      #expect(try await deal(60_001).tags == ["big"])
      #expect(try await deal(60_000).tags.isEmpty)
      // Another tenant cannot see it.
      let other = try await TestTenant.make()
      #expect(
        await code { try await rules.getTriggerRule(.with { $0.id = rule.id }, metadata: TestServer.auth(other.adminSecret)) }
          == .notFound)
    }
  }
}
