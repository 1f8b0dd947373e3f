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

@Suite("Server: shared pools (公海)")
struct PoolRPCTests {
  static func leadRef(_ id: String) -> Crm_V1_RecordRef {
    .with {
      $0.recordType = .lead
      $0.recordID = id
    }
  }

  /// A lead pool with `members` (user ids) and the given settings, holding `count` fresh leads.
  static func pool(
    _ client: GRPCClient<some ClientTransport>, auth: Metadata, members: [UUID], leads count: Int,
    configure: (inout Crm_V1_Pool) -> Void = { _ in }
  ) async throws -> (Crm_V1_Pool, [String]) {
    let service = Crm_V1_PoolService.Client(wrapping: client)
    var message = Crm_V1_Pool.with {
      $0.name = "Open sea \(UUID().uuidString.prefix(6))"
      $0.recordType = .lead
    }
    configure(&message)
    let pool = try await service.createPool(.with { $0.pool = message }, metadata: auth)
    _ = try await service.setPoolMembers(
      .with {
        $0.poolID = pool.id
        $0.members = members.map { id in .with { $0.userID = id.lowercasedString } }
      }, metadata: auth)
    var ids: [String] = []
    for index in 0..<count {
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with {
          $0.lead = .with { $0.company = "Pooled \(index) \(UUID().uuidString.prefix(6))" }
          $0.duplicateAction = .allow
        }, metadata: auth)
      let moved = try await service.moveToPool(
        .with {
          $0.record = leadRef(lead.id)
          $0.poolID = pool.id
          $0.reasonCode = "seeded"
        }, metadata: auth)
      #expect(moved.lead.ownerID.isEmpty && moved.lead.poolID == pool.id)
      ids.append(lead.id)
    }
    return (pool, ids)
  }

  @Test("32 reps claim one record at once: exactly one wins, 31 hear FAILED_PRECONDITION")
  func claimRace() async throws {
    let tenant = try await TestTenant.make()
    var reps: [(Principal, String)] = []
    for _ in 0..<32 { reps.append(try await tenant.makeUser(.salesRep)) }
    let everyone = reps
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let (_, leads) = try await Self.pool(client, auth: auth, members: everyone.map(\.0.userID), leads: 1)
      let service = Crm_V1_PoolService.Client(wrapping: client)
      let outcomes = try await withThrowingTaskGroup(of: (UUID, RPCError.Code?).self) { group in
        for (rep, secret) in everyone {
          group.addTask {
            let result = await code {
              try await service.claim(.with { $0.record = Self.leadRef(leads[0]) }, metadata: TestServer.auth(secret))
            }
            return (rep.userID, result)
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      let winners = outcomes.filter { $0.1 == nil }
      #expect(winners.count == 1)
      #expect(outcomes.filter { $0.1 == .failedPrecondition }.count == 31)
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).getLead(.with { $0.id = leads[0] }, metadata: auth)
      #expect(lead.ownerID == winners.first?.0.lowercasedString && lead.poolID.isEmpty && !lead.claimedFromPoolID.isEmpty)
      // Exactly one claim reached the change log.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = leads[0]
        }, metadata: auth)
      let claims = history.entries.filter { entry in
        entry.operation == .update && entry.changes.contains { $0.field == "owner_id" && $0.newValue.stringValue != "" }
      }
      #expect(claims.count == 1)
    }
  }

  @Test("hold limits hold under concurrent claims (the lower of pool and tenant wins); cooldown after a release")
  func holdLimits() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (outsider, outsiderSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_PoolService.Client(wrapping: client)
      let (pool, leads) = try await Self.pool(client, auth: auth, members: [rep.userID], leads: 10) {
        $0.holdLimit = 5
        $0.reclaimCooldownDays = 7
      }
      _ = try await service.setHoldLimits(.with { $0.leadHoldLimit = 3 }, metadata: auth)
      #expect(try await service.getHoldLimits(.init(), metadata: auth).leadHoldLimit == 3)
      let repAuth = TestServer.auth(repSecret)
      let outcomes = try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
        for id in leads {
          group.addTask { await code { try await service.claim(.with { $0.record = Self.leadRef(id) }, metadata: repAuth) } }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      #expect(outcomes.filter { $0 == nil }.count == 3)
      #expect(outcomes.filter { $0 == .failedPrecondition }.count == 7)
      let held = try await service.listExpiringHoldings(.with { $0.all = true }, metadata: repAuth).holdings
      #expect(held.count == 3 && held.allSatisfy { $0.poolID == pool.id && !$0.hasReturnTime })

      // Not a member: no claim. Releasing needs a reason code; the released record is in cooldown.
      let stranger = await code {
        try await service.claim(.with { $0.record = Self.leadRef(leads[0]) }, metadata: TestServer.auth(outsiderSecret))
      }
      #expect(stranger == .permissionDenied || stranger == .failedPrecondition)
      let mine = held[0].record
      let noReason = await code { try await service.release(.with { $0.record = mine }, metadata: repAuth) }
      #expect(noReason == .invalidArgument)
      let released = try await service.release(
        .with {
          $0.record = mine
          $0.reasonCode = "not_reachable"
          $0.note = "Three calls, no answer"
        }, metadata: repAuth)
      #expect(released.lead.poolID == pool.id && released.lead.ownerID.isEmpty)
      let again = await code { try await service.claim(.with { $0.record = mine }, metadata: repAuth) }
      #expect(again == .failedPrecondition)
      let pooled = try await service.listPoolRecords(.with { $0.poolID = pool.id }, metadata: repAuth).records
      #expect(pooled.count == 8 && pooled.first?.lead.id == mine.recordID)
      let other = try #require(pooled.first { $0.lead.id != mine.recordID })
      _ = try await service.claim(.with { $0.record = Self.leadRef(other.lead.id) }, metadata: repAuth)

      // A pool admin assigns to members only, and the member's limits still apply.
      let full = await code {
        try await service.assignFromPool(
          .with {
            $0.record = mine
            $0.userID = rep.userID.lowercasedString
          }, metadata: auth)
      }
      #expect(full == .failedPrecondition)
      let nonMember = await code {
        try await service.assignFromPool(
          .with {
            $0.record = mine
            $0.userID = outsider.userID.lowercasedString
          }, metadata: auth)
      }
      #expect(nonMember == .invalidArgument)
      // A pooled lead's owner does not change by update.
      let update = await code {
        try await Crm_V1_LeadService.Client(wrapping: client).updateLead(
          .with {
            $0.lead = .with {
              $0.id = mine.recordID
              $0.ownerID = outsider.userID.lowercasedString
            }
            $0.updateMask = .with { $0.paths = ["owner_id"] }
          }, metadata: auth)
      }
      #expect(update == .failedPrecondition)
    }
  }

  @Test("recycling returns exactly the expired holdings, once, even when two nodes run it together")
  func recycling() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      let service = Crm_V1_PoolService.Client(wrapping: client)
      let (pool, leads) = try await Self.pool(client, auth: auth, members: [rep.userID], leads: 6) {
        $0.recycleAfterDays = 7
        $0.protectionDays = 2
        $0.warningDays = 3
      }
      for id in leads { _ = try await service.claim(.with { $0.record = Self.leadRef(id) }, metadata: repAuth) }
      // Age the claims: A, B, C, E claimed 10 days ago, D 1 day ago, F 6 days ago.
      let ages = [10, 10, 10, 1, 10, 6]
      let connection = try TestDatabase.ownerConnection()
      defer { connection.close() }
      for (id, days) in zip(leads, ages) {
        try connection.query(
          "UPDATE leads SET claimed_at = now() - make_interval(days => \(days)) WHERE id = \(UUID(uuidString: id)!)")
      }
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      let now = Int64(Date().timeIntervalSince1970)
      // B was called 3 days ago (qualifies); C only got a note yesterday (does not).
      for (index, kind, daysAgo) in [(1, Crm_V1_InteractionKind.call, 3), (2, .note, 1)] {
        _ = try await interactions.logInteraction(
          .with {
            $0.interaction = .with {
              $0.kind = kind
              $0.startTime = .init(seconds: now - Int64(daysAgo) * 86_400, nanos: 0)
              $0.links = [Self.leadRef(leads[index])]
            }
          }, metadata: repAuth)
      }
      // E is converted: closed records do not return.
      _ = try await Crm_V1_LeadService.Client(wrapping: client).convertLead(
        .with {
          $0.leadID = leads[4]
          $0.account = .with { $0.name = "Converted Co" }
          $0.contact = .with { $0.lastName = "Converted" }
        }, metadata: repAuth)

      let expiring = try await service.listExpiringHoldings(.init(), metadata: repAuth).holdings
      #expect(Set(expiring.map(\.record.recordID)) == [leads[0], leads[2], leads[5]])
      #expect(expiring.first { $0.record.recordID == leads[5] }?.returnReason == "no_activity")

      let runs = try await withThrowingTaskGroup(of: Int32.self) { group in
        for _ in 0..<2 { group.addTask { try await service.recyclePools(.init(), metadata: auth).returned } }
        return try await group.reduce(0, +)
      }
      #expect(runs == 2)
      #expect(try await service.recyclePools(.init(), metadata: auth).returned == 0)
      let back = try await service.listPoolRecords(.with { $0.poolID = pool.id }, metadata: auth).records.map(\.lead.id)
      #expect(Set(back) == [leads[0], leads[2]])
      let kept = try await service.listExpiringHoldings(.with { $0.all = true }, metadata: repAuth).holdings
      #expect(Set(kept.map(\.record.recordID)) == [leads[1], leads[3], leads[5]])
      let returns = try connection.query(
        "SELECT record_id, kind, reason_code, user_id FROM pool_returns WHERE pool_id = \(UUID(uuidString: pool.id)!) AND kind = 'recycle'")
      #expect(returns.count == 2)
      #expect(try returns.rows.allSatisfy { try $0.decode("user_id", as: UUID.self) == rep.userID })
      // The recycled record's history says who held it and why it went back.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = leads[0]
        }, metadata: auth)
      #expect(history.entries.first?.requestID == "recycle:\(pool.id)")
      // The holder who lost it waits out no cooldown here (none set) and may claim it again.
      _ = try await service.claim(.with { $0.record = Self.leadRef(leads[0]) }, metadata: repAuth)
    }
  }
}
