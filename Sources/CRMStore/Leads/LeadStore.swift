public import CRMCore
public import Foundation
import LibPQ

/// SQL for leads: create, read, update, status changes, archive and restore, list.
///
/// Like the other stores, each method is one tenant-scoped transaction that also writes the change log;
/// every write recomputes the lead's match keys for duplicate detection.
public struct LeadStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<Lead>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Creates a lead owned by `ownerID`, in status `new`; with no owner named the tenant's assignment
  /// rules place it (a user, a team's next turn, or a pool), else the caller owns it.
  /// The tenant's duplicate rule for the type applies, or `duplicateAction` when given: a block
  /// throws ``CRMError/duplicate(_:)``, a warning comes back in ``Created/duplicates``.
  public func create(
    _ fields: LeadFields, ownerID: UUID?, duplicateAction: DuplicateAction? = nil, context: ChangeLog.Context
  ) async throws -> Created<Lead> {
    let principal = context.principal
    let owner = ownerID ?? principal.userID
    let draft = Lead(
      id: UUID.v7(), version: 1, ownerID: owner, fields: fields, status: .new, disqualifiedReason: nil,
      lastActivityAt: nil, createdAt: .now, updatedAt: .now, createdBy: principal.userID, updatedBy: principal.userID,
      archivedAt: nil)
    return try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.create(
        connection, method: "CreateLead", draft, duplicateAction: duplicateAction, context: context,
        route: { draft in
          guard ownerID == nil else { return (draft, []) }
          return try AssignmentStore.routeNew(
            connection, draft, subject: AssignmentSubject(draft.fields), tenant: principal.tenantID)
        }
      ) {
        try Owners.checkAssignable(connection, owner: owner, field: "lead.owner_id", principal: principal)
      }
    }
  }

  /// The lead, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Lead {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// The leads named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Lead] {
    try await Mechanics.batchGet(database, ids: ids, principal: principal)
  }

  /// Applies the fields in `mask` from `patch` (and `owner_id` from `newOwnerID`).
  ///
  /// - Throws: ``CRMError`` — `invalidArgument` when the merged lead would name nobody, and the
  ///   usual `staleEtag`, `notFound`, `permissionDenied`, `failedPrecondition` (archived or converted).
  public func update(
    _ id: UUID, patch: LeadFields, mask: Set<LeadField>, newOwnerID: UUID?, expectedVersion: Int64?,
    context: ChangeLog.Context
  ) async throws -> Lead {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateLead", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("lead \(id.lowercasedString) is archived; undelete it first")
      }
      guard current.status != .converted else {
        throw CRMError.failedPrecondition("lead \(id.lowercasedString) is converted; change the records it became")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      guard next.fields.hasIdentity else {
        throw CRMError.invalid("lead", "a lead needs a name, a company, an email or a phone", reason: "REQUIRED")
      }
      if mask.contains(.ownerID), current.poolID != nil {
        throw CRMError.failedPrecondition(
          "the lead sits in a shared pool: claim it (PoolService.Claim) or have a pool admin assign it (AssignFromPool)")
      }
      if mask.contains(.ownerID), let newOwnerID, newOwnerID != current.ownerID {
        try Owners.checkAssignable(connection, owner: newOwnerID, field: "lead.owner_id", principal: principal)
        next.ownerID = newOwnerID
      }
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Moves the lead to `status` if its lifecycle allows (see ``LeadStatus``).
  public func setStatus(
    _ id: UUID, to status: LeadStatus, reason: String?, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> Lead {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "SetLeadStatus", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("lead \(id.lowercasedString) is archived; undelete it first")
      }
      var next = current
      next.status = try current.status.transition(to: status, reason: reason)
      next.disqualifiedReason = status == .disqualified ? reason?.trimmingWhitespace() : nil
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Archives (soft-deletes) the lead.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Lead {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// Restores an archived lead.
  public func restore(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Lead {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: false, expectedVersion: expectedVersion, context: context)
    }
  }

  /// One page of leads matching `filter`, keyset-paginated.
  public func list(
    _ filter: LeadFilter, pageSize: Int, pageToken: String, includeTotal: Bool, principal: Principal
  ) async throws -> Page<Lead> {
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      var conditions = Mechanics.commonConditions(
        principal: principal, archive: filter.archive, ownerID: filter.ownerID, tag: filter.tag,
        updatedSince: filter.updatedSince)
      if !filter.statuses.isEmpty { conditions.append(" AND status = ANY(\(filter.statuses.map(\.rawValue))::text[])") }
      if let source = filter.source { conditions.append(" AND source = \(source.rawValue)") }
      if let campaign = filter.campaign { conditions.append(" AND campaign = \(campaign)") }
      if let email = filter.email { conditions.append(IndexedFilter.email.condition(Lead.table, email)) }
      if let phone = filter.phone { conditions.append(IndexedFilter.phone.condition(Lead.table, phone)) }
      if let prefix = filter.companyPrefix {
        conditions.append(IndexedFilter.companyPrefix.condition(Lead.table, Mechanics.likePrefix(prefix)))
      }
      if let after = filter.createdAfter { conditions.append(" AND created_at >= \(after)") }
      if let before = filter.createdBefore { conditions.append(" AND created_at < \(before)") }
      if let before = filter.updatedBefore { conditions.append(" AND updated_at < \(before)") }
      if let account = filter.convertedAccountID { conditions.append(" AND converted_account_id = \(account)") }
      return try Mechanics.page(
        connection, where: conditions, order: filter.order, token: token, tokens: tokens, fingerprint: filter.fingerprint,
        pageSize: pageSize, includeTotal: includeTotal)
    }
  }
}
