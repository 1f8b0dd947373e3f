import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.PoolService`: shared pools (公海), their members and limits, and claiming, releasing,
/// assigning, moving and recycling records.
public struct PoolService: Crm_V1_PoolService.SimpleServiceProtocol {
  let pools: PoolStore
  let authenticator: Authenticator

  /// A service over the store; `authenticator`'s cache is cleared when memberships change (they are
  /// part of the caller's principal).
  public init(pools: PoolStore, authenticator: Authenticator) {
    self.pools = pools
    self.authenticator = authenticator
  }

  public func createPool(request: Crm_V1_CreatePoolRequest, context: ServerContext) async throws -> Crm_V1_Pool {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasPool { violations.add("pool", "is required", reason: "REQUIRED") }
    let settings = request.pool.settings(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Pool(try await pools.create(settings, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getPool(request: Crm_V1_GetPoolRequest, context: ServerContext) async throws -> Crm_V1_Pool {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Pool(try await pools.get(id!, principal: call.principal))
  }

  public func listPools(request: Crm_V1_ListPoolsRequest, context: ServerContext) async throws -> Crm_V1_ListPoolsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let type: RecordType? =
      request.recordType == .unspecified ? nil : RecordType(pooled: request.recordType, field: "record_type", into: &violations)
    try violations.check()
    let found = try await pools.list(recordType: type, includeArchived: request.includeArchived, principal: call.principal)
    return .with { $0.pools = found.map(Crm_V1_Pool.init) }
  }

  public func updatePool(request: Crm_V1_UpdatePoolRequest, context: ServerContext) async throws -> Crm_V1_Pool {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.pool.id, field: "pool.id", into: &violations)
    let expected = RequestFields.etag(request.pool.etag, field: "pool.etag", into: &violations)
    let settings = request.pool.settings(into: &violations)
    try violations.check()
    return Crm_V1_Pool(
      try await pools.update(id!, settings, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deletePool(request: Crm_V1_DeletePoolRequest, context: ServerContext) async throws -> Crm_V1_Pool {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: "")
    return Crm_V1_Pool(
      try await pools.archive(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: nil)))
  }

  public func setPoolMembers(request: Crm_V1_SetPoolMembersRequest, context: ServerContext) async throws -> Crm_V1_PoolMembers {
    let call = try RequestContext.require()
    var violations = Violations()
    let pool = RequestFields.id(request.poolID, field: "pool_id", into: &violations)
    if request.members.count > 10_000 { violations.add("members", "at most 10,000 members", reason: "TOO_MANY") }
    var members: [(userID: UUID, isAdmin: Bool)] = []
    for (index, member) in request.members.prefix(10_001).enumerated() {
      guard let user = RequestFields.id(member.userID, field: "members[\(index)].user_id", into: &violations) else { continue }
      if members.contains(where: { $0.userID == user }) {
        violations.add("members[\(index)].user_id", "names a user twice", reason: "DUPLICATE")
      }
      members.append((user, member.admin))
    }
    try violations.check()
    let result = try await pools.setMembers(pool!, members, context: .init(principal: call.principal, requestID: nil))
    authenticator.invalidateAll()
    return Self.members(pool!, result)
  }

  public func listPoolMembers(request: Crm_V1_ListPoolMembersRequest, context: ServerContext) async throws -> Crm_V1_PoolMembers {
    let call = try RequestContext.require()
    var violations = Violations()
    let pool = RequestFields.id(request.poolID, field: "pool_id", into: &violations)
    try violations.check()
    return Self.members(pool!, try await pools.members(of: pool!, principal: call.principal))
  }

  public func setHoldLimits(request: Crm_V1_HoldLimits, context: ServerContext) async throws -> Crm_V1_HoldLimits {
    let call = try RequestContext.require()
    var violations = Violations()
    for (has, value, field) in [
      (request.hasLeadHoldLimit, request.leadHoldLimit, "lead_hold_limit"),
      (request.hasAccountHoldLimit, request.accountHoldLimit, "account_hold_limit"),
    ] where has && value < 0 {
      violations.add(field, "must not be negative", reason: "OUT_OF_RANGE")
    }
    try violations.check()
    try await pools.setTenantHoldLimits(
      lead: request.hasLeadHoldLimit ? Int(request.leadHoldLimit) : nil,
      account: request.hasAccountHoldLimit ? Int(request.accountHoldLimit) : nil, principal: call.principal)
    return try await getHoldLimits(request: .init(), context: context)
  }

  public func getHoldLimits(request: Crm_V1_GetHoldLimitsRequest, context: ServerContext) async throws -> Crm_V1_HoldLimits {
    let call = try RequestContext.require()
    let limits = try await pools.tenantHoldLimits(principal: call.principal)
    return .with {
      if let lead = limits.lead { $0.leadHoldLimit = Int32(lead) }
      if let account = limits.account { $0.accountHoldLimit = Int32(account) }
    }
  }

  public func listPoolRecords(request: Crm_V1_ListPoolRecordsRequest, context: ServerContext) async throws
    -> Crm_V1_ListPoolRecordsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let pool = RequestFields.id(request.poolID, field: "pool_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await pools.records(in: pool!, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.records = page.items.map(Crm_V1_PoolRecord.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func claim(request: Crm_V1_ClaimRequest, context: ServerContext) async throws -> Crm_V1_PoolRecord {
    let (call, target, requestID) = try Self.target(request.record, etag: request.etag, requestID: request.requestID)
    return Crm_V1_PoolRecord(try await pools.claim(target, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func release(request: Crm_V1_ReleaseRequest, context: ServerContext) async throws -> Crm_V1_PoolRecord {
    var violations = Violations()
    let reason = Self.reasonCode(request.reasonCode, into: &violations)
    let note = violations.multilineText("note", request.note, maxLength: 2000)
    let pool = RequestFields.optionalID(request.poolID, field: "pool_id", into: &violations)
    let (call, target, requestID) = try Self.target(
      request.record, etag: request.etag, requestID: request.requestID, violations: violations)
    return Crm_V1_PoolRecord(
      try await pools.release(
        target, to: pool, reasonCode: reason!, note: note, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func assignFromPool(request: Crm_V1_AssignFromPoolRequest, context: ServerContext) async throws -> Crm_V1_PoolRecord {
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    let (call, target, requestID) = try Self.target(
      request.record, etag: request.etag, requestID: request.requestID, violations: violations)
    return Crm_V1_PoolRecord(
      try await pools.assign(target, to: user, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func moveToPool(request: Crm_V1_MoveToPoolRequest, context: ServerContext) async throws -> Crm_V1_PoolRecord {
    var violations = Violations()
    let pool = RequestFields.id(request.poolID, field: "pool_id", into: &violations)
    let reason = Self.reasonCode(request.reasonCode, into: &violations)
    let note = violations.multilineText("note", request.note, maxLength: 2000)
    let (call, target, requestID) = try Self.target(
      request.record, etag: request.etag, requestID: request.requestID, violations: violations)
    return Crm_V1_PoolRecord(
      try await pools.move(
        target, to: pool!, reasonCode: reason!, note: note, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func listExpiringHoldings(request: Crm_V1_ListExpiringHoldingsRequest, context: ServerContext) async throws
    -> Crm_V1_ListExpiringHoldingsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations) ?? call.principal.userID
    try violations.check()
    let holdings = try await pools.holdings(of: user, all: request.all, principal: call.principal)
    return .with { $0.holdings = holdings.map(Crm_V1_Holding.init) }
  }

  public func recyclePools(request: Crm_V1_RecyclePoolsRequest, context: ServerContext) async throws
    -> Crm_V1_RecyclePoolsResponse
  {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    let report = try await pools.recycle(tenant: call.principal.tenantID)
    return .with {
      $0.pools = Int32(report.pools)
      $0.returned = Int32(report.returned)
    }
  }

  // MARK: - Request parts

  /// The record, etag and request id every pool verb takes, validated with `violations` so far.
  static func target(
    _ record: Crm_V1_RecordRef, etag: String, requestID: String, violations: Violations = Violations()
  ) throws -> (RequestContext, PoolStore.Target, String?) {
    let call = try RequestContext.require()
    var violations = violations
    let type = RecordType(pooled: record.recordType, field: "record.record_type", into: &violations)
    let id = RequestFields.id(record.recordID, field: "record.record_id", into: &violations)
    let expected = RequestFields.etag(etag, field: "etag", into: &violations)
    let parsedRequestID = RequestFields.requestID(requestID, into: &violations)
    try violations.check()
    return (call, PoolStore.Target(record: RecordLink(type: type!, id: id!), expectedVersion: expected), parsedRequestID)
  }

  /// A reason code: 1–64 characters of letters, digits, `_`, `-` and `.`.
  static func reasonCode(_ text: String, into violations: inout Violations) -> String? {
    guard let code = violations.text("reason_code", text, maxLength: 64, required: true) else { return nil }
    guard code.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0) })
    else {
      violations.add("reason_code", "letters, digits, '_', '-' and '.' only, e.g. no_budget", reason: "INVALID_FORMAT")
      return nil
    }
    return code
  }

  static func members(_ pool: UUID, _ members: [(userID: UUID, isAdmin: Bool)]) -> Crm_V1_PoolMembers {
    .with {
      $0.poolID = pool.lowercasedString
      $0.members = members.map { member in
        .with {
          $0.userID = member.userID.lowercasedString
          $0.admin = member.isAdmin
        }
      }
    }
  }
}

extension RecordType {
  /// A type pools hold: a lead or an account.
  init?(pooled type: Crm_V1_RecordType, field: String, into violations: inout Violations) {
    switch type {
    case .lead: self = .lead
    case .account: self = .account
    default:
      violations.add(field, "must be RECORD_TYPE_LEAD or RECORD_TYPE_ACCOUNT", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_Pool {
  init(_ pool: Pool) {
    self.init()
    let s = pool.settings
    id = pool.id.lowercasedString
    etag = pool.etag
    createTime = .init(pool.createdAt)
    updateTime = .init(pool.updatedAt)
    if let archivedAt = pool.archivedAt { archiveTime = .init(archivedAt) }
    name = s.name
    recordType = Crm_V1_RecordType(s.recordType)
    description_p = s.description ?? ""
    if let limit = s.holdLimit { holdLimit = Int32(limit) }
    countClosed = s.countClosed
    reclaimCooldownDays = Int32(s.reclaimCooldownDays)
    if let days = s.recycleAfterDays { recycleAfterDays = Int32(days) }
    if let days = s.recycleNoProgressDays { recycleNoProgressDays = Int32(days) }
    protectionDays = Int32(s.protectionDays)
    warningDays = Int32(s.warningDays)
    qualifyingKinds = s.qualifyingKinds.map(Crm_V1_InteractionKind.init)
  }

  /// The settings sent, validated.
  func settings(into violations: inout Violations) -> PoolSettings {
    let type = RecordType(pooled: recordType, field: "pool.record_type", into: &violations) ?? .lead
    var settings = PoolSettings(name: name, recordType: type)
    settings.description = description_p
    settings.holdLimit = hasHoldLimit ? Int(holdLimit) : nil
    settings.countClosed = countClosed
    settings.reclaimCooldownDays = Int(reclaimCooldownDays)
    settings.recycleAfterDays = hasRecycleAfterDays ? Int(recycleAfterDays) : nil
    settings.recycleNoProgressDays = hasRecycleNoProgressDays ? Int(recycleNoProgressDays) : nil
    settings.protectionDays = Int(protectionDays)
    if hasWarningDays { settings.warningDays = Int(warningDays) }
    if !qualifyingKinds.isEmpty {
      settings.qualifyingKinds = qualifyingKinds.enumerated().compactMap { index, kind in
        InteractionKind(kind, field: "pool.qualifying_kinds[\(index)]", into: &violations)
      }
    }
    return settings.normalized(prefix: "pool", into: &violations)
  }
}

extension Crm_V1_PoolRecord {
  init(_ record: PooledRecord) {
    self.init()
    switch record {
    case .lead(let lead): self.lead = Crm_V1_Lead(lead)
    case .account(let account): self.account = Crm_V1_Account(account)
    }
  }
}

extension Crm_V1_Holding {
  init(_ holding: Holding) {
    self.init()
    record = Crm_V1_RecordRef(holding.record)
    displayName = holding.displayName
    poolID = holding.poolID.lowercasedString
    holderID = holding.holderID.lowercasedString
    claimTime = .init(holding.claimedAt)
    if let worked = holding.lastWorkedAt { lastWorkedTime = .init(worked) }
    if let progressed = holding.lastProgressAt { lastProgressTime = .init(progressed) }
    if let returnsAt = holding.returnsAt { returnTime = .init(returnsAt) }
    returnReason = holding.reason ?? ""
  }
}
