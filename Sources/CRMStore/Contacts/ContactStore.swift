public import CRMCore
public import Foundation
import LibPQ

/// SQL for contacts: create, read, update, archive and restore, list.
///
/// Like ``AccountStore``, every method is one tenant-scoped transaction that writes the change log.
public struct ContactStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<Contact>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Creates a contact owned by `ownerID` (the caller when `nil`).
  /// The tenant's duplicate rule for the type applies, or `duplicateAction` when given: a block
  /// throws ``CRMError/duplicate(_:)``, a warning comes back in ``Created/duplicates``.
  public func create(
    _ fields: ContactFields, ownerID: UUID?, duplicateAction: DuplicateAction? = nil, context: ChangeLog.Context
  ) async throws -> Created<Contact> {
    let principal = context.principal
    let owner = ownerID ?? principal.userID
    let draft = Contact(
      id: UUID.v7(), version: 1, ownerID: owner, fields: fields, createdAt: .now, updatedAt: .now,
      createdBy: principal.userID, updatedBy: principal.userID, archivedAt: nil)
    return try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.create(connection, method: "CreateContact", draft, duplicateAction: duplicateAction, context: context) {
        try Owners.checkAssignable(connection, owner: owner, field: "contact.owner_id", principal: principal)
        if let accountID = fields.accountID { try checkAccount(connection, accountID, principal: principal) }
      }
    }
  }

  /// The contact, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Contact {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// The contacts named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Contact] {
    try await Mechanics.batchGet(database, ids: ids, principal: principal)
  }

  /// Applies the fields in `mask` from `patch` (and `owner_id` from `newOwnerID`).
  public func update(
    _ id: UUID, patch: ContactFields, mask: Set<ContactField>, newOwnerID: UUID?, expectedVersion: Int64?,
    context: ChangeLog.Context
  ) async throws -> Contact {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateContact", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("contact \(id.lowercasedString) is archived; undelete it first")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      if next.fields.firstName == nil, next.fields.lastName == nil {
        throw CRMError.invalid("contact.last_name", "first_name or last_name is required", reason: "REQUIRED")
      }
      if mask.contains(.ownerID), let newOwnerID, newOwnerID != current.ownerID {
        try Owners.checkAssignable(connection, owner: newOwnerID, field: "contact.owner_id", principal: principal)
        next.ownerID = newOwnerID
      }
      if let accountID = next.fields.accountID, accountID != current.fields.accountID {
        try checkAccount(connection, accountID, principal: principal)
      }
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Archives (soft-deletes) the contact.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Contact {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// Restores an archived contact.
  public func restore(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Contact {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: false, expectedVersion: expectedVersion, context: context)
    }
  }

  /// One page of contacts matching `filter`, keyset-paginated. With `filter.accountID` set, the
  /// account itself must be visible (NOT_FOUND otherwise).
  public func list(
    _ filter: ContactFilter, pageSize: Int, pageToken: String, includeTotal: Bool, principal: Principal
  ) async throws -> Page<Contact> {
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      var conditions = Mechanics.commonConditions(
        principal: principal, archive: filter.archive, ownerID: filter.ownerID, tag: filter.tag,
        updatedSince: filter.updatedSince)
      if let account = filter.accountID {
        guard try RecordMechanics<Account>.fetch(connection, id: account, principal: principal) != nil else {
          throw RecordMechanics<Account>.notFound(account)
        }
        conditions.append(" AND account_id = \(account)")
      }
      if let prefix = filter.namePrefix {
        conditions.append(IndexedFilter.namePrefix.condition(Contact.table, Mechanics.likePrefix(prefix)))
      }
      if let email = filter.email { conditions.append(IndexedFilter.email.condition(Contact.table, email)) }
      return try Mechanics.page(
        connection, where: conditions, order: filter.order, token: token, tokens: tokens, fingerprint: filter.fingerprint,
        pageSize: pageSize, includeTotal: includeTotal)
    }
  }

  private func checkAccount(_ connection: PostgresConnection, _ accountID: UUID, principal: Principal) throws {
    guard try RecordMechanics<Account>.fetch(connection, id: accountID, principal: principal) != nil else {
      throw CRMError.invalid("contact.account_id", "no such account", reason: "NOT_FOUND")
    }
  }
}
