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

@Suite("Server: assignment rules")
struct AssignmentRPCTests {
  static func team(_ members: [(UUID, Int32)], cap: Int32? = nil) -> Crm_V1_TeamRotation {
    .with {
      $0.members = members.map { id, weight in
        .with {
          $0.userID = id.lowercasedString
          $0.weight = weight
        }
      }
      if let cap { $0.openRecordCap = cap }
    }
  }

  @Test("round-robin stays fair over 1,000 concurrent creates: no member more than one ahead")
  func fairUnderConcurrency() async throws {
    let tenant = try await TestTenant.make()
    var reps: [UUID] = []
    for _ in 0..<4 { reps.append(try await tenant.makeUser(.salesRep).0.userID) }
    let members = reps
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_AssignmentService.Client(wrapping: client).createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Everyone in turn"
            $0.team = Self.team(members.map { ($0, 1) })
          }
        }, metadata: auth)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let owners = try await withThrowingTaskGroup(of: String.self) { group in
        for index in 0..<1000 {
          group.addTask {
            try await leads.createLead(
              .with {
                $0.lead = .with { $0.lastName = "Lead \(index)" }
                $0.duplicateAction = .allow
              }, metadata: auth
            ).ownerID
          }
        }
        return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
      }
      #expect(Set(owners.keys) == Set(members.map(\.lowercasedString)))
      let counts = owners.values
      #expect(counts.reduce(0, +) == 1000)
      #expect(counts.max()! - counts.min()! <= 1, "\(owners)")
    }
  }

  @Test("rules fire in order on their criteria: pool, user, weighted team; skipped when away; explained by TestAssignment")
  func rulesInOrder() async throws {
    let tenant = try await TestTenant.make()
    let (alice, _) = try await tenant.makeUser(.salesRep)
    let (bob, _) = try await tenant.makeUser(.salesRep)
    let (carol, _) = try await tenant.makeUser(.salesRep)
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_AssignmentService.Client(wrapping: client)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let pool = try await Crm_V1_PoolService.Client(wrapping: client).createPool(
        .with {
          $0.pool = .with {
            $0.name = "China inbound"
            $0.recordType = .lead
          }
        }, metadata: auth)
      _ = try await rules.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "China to the pool"
            $0.position = 1
            $0.criteria = .with { $0.regionCodes = ["cn"] }
            $0.poolID = pool.id
          }
        }, metadata: auth)
      let software = try await rules.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Web software leads to Alice"
            $0.position = 2
            $0.criteria = .with {
              $0.sources = [.webForm]
              $0.industries = ["software"]
            }
            $0.userID = alice.userID.lowercasedString
          }
        }, metadata: auth)
      _ = try await rules.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Everyone else: Bob twice as often as Carol"
            $0.position = 3
            $0.team = Self.team([(bob.userID, 2), (carol.userID, 1)])
          }
        }, metadata: auth)
      let invalid = await code {
        try await rules.createAssignmentRule(
          .with {
            $0.rule = .with {
              $0.recordType = .lead
              $0.criteria = .with { $0.regionCodes = ["USA"] }
            }
          }, metadata: auth)
      }
      #expect(invalid == .invalidArgument)
      let readable = await code {
        try await rules.listAssignmentRules(.init(), metadata: TestServer.auth(repSecret))
      }
      #expect(readable == nil)  // everyone may read the rules; only admins change them
      let denied = await code {
        try await rules.deleteAssignmentRule(.with { $0.id = software.id }, metadata: TestServer.auth(repSecret))
      }
      #expect(denied == .permissionDenied)
      #expect(try await rules.listAssignmentRules(.init(), metadata: auth).rules.map(\.position) == [1, 2, 3])

      func create(_ configure: (inout Crm_V1_Lead) -> Void) async throws -> Crm_V1_Lead {
        var lead = Crm_V1_Lead.with { $0.lastName = "Routed \(UUID().uuidString.prefix(6))" }
        configure(&lead)
        return try await leads.createLead(
          .with {
            $0.lead = lead
            $0.duplicateAction = .allow
          }, metadata: auth)
      }
      let chinese = try await create { $0.regionCode = "CN" }
      #expect(chinese.ownerID.isEmpty && chinese.poolID == pool.id)
      let web = try await create {
        $0.source = .webForm
        $0.industry = "Software"
      }
      #expect(web.ownerID == alice.userID.lowercasedString)
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = web.id
        }, metadata: auth)
      let fired = try #require(history.entries.last?.changes.first { $0.field == "assignment_rule" })
      #expect(fired.newValue.structValue.fields["name"]?.stringValue == software.name)
      // Named owners skip the rules.
      let named = try await create {
        $0.source = .webForm
        $0.industry = "Software"
        $0.ownerID = carol.userID.lowercasedString
      }
      #expect(named.ownerID == carol.userID.lowercasedString)

      // Alice away: her rule is passed over, the team takes it, and TestAssignment says so.
      _ = try await Crm_V1_AdminService.Client(wrapping: client).updateUser(
        .with {
          $0.id = alice.userID.lowercasedString
          $0.outOfOfficeUntil = .init(seconds: Int64(Date().timeIntervalSince1970) + 86_400, nanos: 0)
        }, metadata: auth)
      let dry = try await rules.testAssignment(
        .with {
          $0.record = .with {
            $0.recordType = .lead
            $0.recordID = web.id
          }
        }, metadata: auth)
      #expect(dry.rule.position == 3 && [bob.userID.lowercasedString, carol.userID.lowercasedString].contains(dry.userID))
      #expect(dry.skipped.map(\.name) == ["China to the pool", "Web software leads to Alice"])
      #expect(dry.skipped[1].reason.contains("out of office"))
      var picked: [String: Int] = [:]
      for _ in 0..<30 {
        let lead = try await create {
          $0.source = .webForm
          $0.industry = "Software"
        }
        picked[lead.ownerID, default: 0] += 1
      }
      #expect(picked == [bob.userID.lowercasedString: 20, carol.userID.lowercasedString: 10])
      // The dry run took no turn: 30 records, 20 and 10.

      // Captures are routed too.
      let captured = try await Crm_V1_CaptureService.Client(wrapping: client).captureLead(
        .with {
          $0.webForm = .with {
            $0.fields = ["email": "wang@example.cn", "name": "Wang Fang", "country": "CN"]
            $0.formName = "Contact us"
          }
        }, metadata: auth)
      let capturedLead = try await leads.getLead(.with { $0.id = captured.record.recordID }, metadata: auth)
      #expect(capturedLead.regionCode == "CN" && capturedLead.poolID == pool.id && capturedLead.ownerID.isEmpty)
    }
  }

  @Test("ReassignRecords moves a rep's open records to a user or a pool, managers and admins only")
  func reassign() async throws {
    let tenant = try await TestTenant.make()
    let (leaving, leavingSecret) = try await tenant.makeUser(.salesRep)
    let (successor, _) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      var ids: [String] = []
      for index in 0..<5 {
        ids.append(
          try await leads.createLead(
            .with {
              $0.lead = .with {
                $0.lastName = "Handover \(index)"
                $0.ownerID = leaving.userID.lowercasedString
              }
              $0.duplicateAction = .allow
            }, metadata: auth
          ).id)
      }
      _ = try await leads.setLeadStatus(
        .with {
          $0.id = ids[4]
          $0.status = .disqualified
          $0.reason = "Spam"
        }, metadata: auth)
      let service = Crm_V1_AssignmentService.Client(wrapping: client)
      let denied = await code {
        try await service.reassignRecords(
          .with {
            $0.recordType = .lead
            $0.fromOwnerID = leaving.userID.lowercasedString
            $0.toUserID = successor.userID.lowercasedString
          }, metadata: TestServer.auth(leavingSecret))
      }
      #expect(denied == .permissionDenied)
      let moved = try await service.reassignRecords(
        .with {
          $0.recordType = .lead
          $0.fromOwnerID = leaving.userID.lowercasedString
          $0.toUserID = successor.userID.lowercasedString
          $0.reason = "Territory handover"
        }, metadata: auth)
      #expect(Set(moved.ids) == Set(ids.prefix(4)) && !moved.more)
      let now = try await leads.batchGetLeads(.with { $0.ids = ids }, metadata: auth).leads
      #expect(now.prefix(4).allSatisfy { $0.ownerID == successor.userID.lowercasedString })
      #expect(now[4].ownerID == leaving.userID.lowercasedString)
      let pool = try await Crm_V1_PoolService.Client(wrapping: client).createPool(
        .with {
          $0.pool = .with {
            $0.name = "Handover pool"
            $0.recordType = .lead
          }
        }, metadata: auth)
      let pooled = try await service.reassignRecords(
        .with {
          $0.recordType = .lead
          $0.ids = [ids[0], ids[1]]
          $0.toPoolID = pool.id
          $0.reason = "rebalance"
        }, metadata: auth)
      #expect(pooled.ids.count == 2)
      let inPool = try await Crm_V1_PoolService.Client(wrapping: client).listPoolRecords(
        .with { $0.poolID = pool.id }, metadata: auth)
      #expect(Set(inPool.records.map(\.lead.id)) == [ids[0], ids[1]])
    }
  }

  @Test("imports run the rules too: a batch's new leads take turns in row order, the history names the rule")
  func importsAreRouted() async throws {
    let tenant = try await TestTenant.make()
    var reps: [UUID] = []
    for _ in 0..<3 { reps.append(try await tenant.makeUser(.salesRep).0.userID) }
    let members = reps
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let rule = try await Crm_V1_AssignmentService.Client(wrapping: client).createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Imported leads in turn"
            $0.team = Self.team(members.map { ($0, 1) })
          }
        }, metadata: auth)
      let tag = "routed\(UUID().uuidString.prefix(6).lowercased())"
      // 100 rows: one invalid email (row 96) and two repeats (rows 49 and 99) are not created.
      let answers = try await ImportRPCTests.run(
        client, [ImportRPCTests.header("import-\(tag)"), ImportRPCTests.batch(0..<100, tag: tag)], auth: auth)
      let created = ImportRPCTests.results(answers).filter { $0.outcome == .created }.map(\.recordID)
      #expect(created.count == 97)
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).batchGetLeads(.with { $0.ids = created }, metadata: auth)
      let counts = Dictionary(grouping: leads.leads, by: \.ownerID).mapValues(\.count)
      #expect(Set(counts.keys) == Set(members.map(\.lowercasedString)))
      #expect(counts.values.max()! - counts.values.min()! <= 1, "\(counts)")
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = created[0]
        }, metadata: auth)
      #expect(history.entries.first?.changes.contains { $0.field == "assignment_rule" && $0.newValue.structValue.fields["id"]?.stringValue == rule.id } == true)
      let rotation = try await Crm_V1_AssignmentService.Client(wrapping: client).listAssignmentRules(.init(), metadata: auth)
      #expect(rotation.rules[0].team.members.map(\.assigned).reduce(0, +) == Int64(created.count))
    }
  }

  @Test("score ranges route hot leads; scores are 0-100")
  func scoreRange() async throws {
    let tenant = try await TestTenant.make()
    let (closer, _) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      _ = try await Crm_V1_AssignmentService.Client(wrapping: client).createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .lead
            $0.name = "Hot leads to the closer"
            $0.criteria = .with { $0.scoreMin = 80 }
            $0.userID = closer.userID.lowercasedString
          }
        }, metadata: auth)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      func owner(score: Int32?) async throws -> String {
        try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.lastName = "Scored \(score.map(String.init) ?? "none")"
              if let score { $0.score = score }
            }
            $0.duplicateAction = .allow
          }, metadata: auth
        ).ownerID
      }
      #expect(try await owner(score: 90) == closer.userID.lowercasedString)
      #expect(try await owner(score: 80) == closer.userID.lowercasedString)
      #expect(try await owner(score: 79) == tenant.admin.userID.lowercasedString)
      #expect(try await owner(score: nil) == tenant.admin.userID.lowercasedString)
      let invalid = await code { try await owner(score: 101) }
      #expect(invalid == .invalidArgument)
      let badRule = await code {
        try await Crm_V1_AssignmentService.Client(wrapping: client).createAssignmentRule(
          .with {
            $0.rule = .with {
              $0.recordType = .lead
              $0.name = "Backwards"
              $0.criteria = .with {
                $0.scoreMin = 90
                $0.scoreMax = 10
              }
              $0.userID = closer.userID.lowercasedString
            }
          }, metadata: auth)
      }
      #expect(badRule == .invalidArgument)
    }
  }
}
