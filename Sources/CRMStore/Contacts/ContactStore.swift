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
  public func create(_ fields: ContactFields, ownerID: UUID?, context: ChangeLog.Context) async throws -> Contact {
    let principal = context.principal
    let id = UUID.v7()
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "CreateContact", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let owner = ownerID ?? principal.userID
      try Owners.checkAssignable(connection, owner: owner, field: "contact.owner_id", principal: principal)
      if let accountID = fields.accountID { try checkAccount(connection, accountID, principal: principal) }
      let draft = Contact(
        id: id, version: 1, ownerID: owner, fields: fields, createdAt: .now, updatedAt: .now, createdBy: principal.userID,
        updatedBy: principal.userID, archivedAt: nil)
      let result = try translatingConstraints {
        try connection.query(
          """
          INSERT INTO contacts (tenant_id, id, created_by, updated_by, \(unsafeSQL: Contact.writableColumns))
          VALUES (\(principal.tenantID), \(id), \(principal.userID), \(principal.userID), \(draft.writableValues))
          RETURNING \(unsafeSQL: Contact.columns)
          """)
      }
      let contact = try Contact(row: result[0])
      try ChangeLog.append(
        connection, context: context, recordType: .contact, recordID: id, operation: .create,
        changes: Mechanics.creationChanges(contact, order: ContactField.changeLogOrder))
      return contact
    }
  }

  /// The contact, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Contact {
    try await database.withTenant(principal.tenantID) { connection in
      guard let contact = try Mechanics.fetch(connection, id: id, principal: principal) else { throw Mechanics.notFound(id) }
      return contact
    }
  }

  /// The contacts named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Contact] {
    try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.batchGet(connection, ids: ids, principal: principal)
    }
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
      if next.fields == current.fields, next.ownerID == current.ownerID { return current }
      let result = try translatingConstraints {
        try connection.query(
          """
          UPDATE contacts SET (\(unsafeSQL: Contact.writableColumns)) = (\(next.writableValues)),
            version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(principal.tenantID) AND id = \(id)
          RETURNING \(unsafeSQL: Contact.columns)
          """)
      }
      let updated = try Contact(row: result[0])
      try ChangeLog.append(
        connection, context: context, recordType: .contact, recordID: id, operation: .update,
        changes: Mechanics.updateChanges(from: current, to: updated, order: ContactField.changeLogOrder))
      return updated
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
    let token = try PageToken.decode(pageToken, query: filter.fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      var conditions: PostgresQuery = "tenant_id = \(principal.tenantID)"
      switch filter.archive {
      case .active: conditions.append(unsafeSQL: " AND archived_at IS NULL")
      case .archived: conditions.append(unsafeSQL: " AND archived_at IS NOT NULL")
      case .all: break
      }
      if let owner = filter.ownerID { conditions.append(" AND owner_id = \(owner)") }
      if let account = filter.accountID {
        guard try RecordMechanics<Account>.fetch(connection, id: account, principal: principal) != nil else {
          throw RecordMechanics<Account>.notFound(account)
        }
        conditions.append(" AND account_id = \(account)")
      }
      if let prefix = filter.namePrefix {
        let pattern = Mechanics.likePrefix(prefix)
        conditions.append(
          " AND (lower(first_name) COLLATE \"C\" LIKE \(pattern) ESCAPE '\\' OR lower(last_name) COLLATE \"C\" LIKE \(pattern) ESCAPE '\\')"
        )
      }
      if let email = filter.email { conditions.append(" AND email_addresses @> ARRAY[\(email)]::text[]") }
      if let tag = filter.tag { conditions.append(" AND tags @> ARRAY[\(tag)]::text[]") }
      if let since = filter.updatedSince { conditions.append(" AND updated_at >= \(since)") }
      if let owners = principal.readableOwners(.contact) { conditions.append(" AND owner_id = ANY(\(owners)::uuid[])") }

      var total: Int64?
      if includeTotal {
        total = try connection.query("SELECT count(*) AS n FROM contacts WHERE \(conditions)")[0].decode("n")
      }
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Contact.columns), crm_contact_sort_name(last_name, first_name) AS sort_key FROM contacts WHERE \(conditions)"
      switch filter.order {
      case .name:
        if let token { query.append(" AND (crm_contact_sort_name(last_name, first_name), id) > (\(token.key), \(token.id))") }
        query.append(unsafeSQL: " ORDER BY crm_contact_sort_name(last_name, first_name), id")
      case .updateTimeDescending:
        if let token { query.append(" AND (updated_at, id) < (\(token.key)::timestamptz, \(token.id))") }
        query.append(unsafeSQL: " ORDER BY updated_at DESC, id DESC")
      }
      query.append(" LIMIT \(pageSize + 1)")
      let rows = try connection.query(query)
      var contacts = try rows.rows.map(Contact.init(row:))
      var next: String?
      if contacts.count > pageSize {
        contacts.removeLast()
        let last = contacts[contacts.count - 1]
        let key = filter.order == .name ? try rows[pageSize - 1].decode("sort_key") : (last.updatedAt.postgresText ?? "")
        next = PageToken(key: key, id: last.id, query: filter.fingerprint).encoded
      }
      return Page(items: contacts, nextPageToken: next, totalSize: total)
    }
  }

  private func checkAccount(_ connection: PostgresConnection, _ accountID: UUID, principal: Principal) throws {
    guard try RecordMechanics<Account>.fetch(connection, id: accountID, principal: principal) != nil else {
      throw CRMError.invalid("contact.account_id", "no such account", reason: "NOT_FOUND")
    }
  }

  private func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as PostgresError {
      switch error.constraint {
      case "contacts_external_id" where error.sqlState == SQLState.uniqueViolation:
        throw CRMError.alreadyExists(field: "contact.external_id", message: "another contact has this external_id")
      case "contacts_tenant_id_owner_id_fkey":
        throw CRMError.invalid("contact.owner_id", "no such user", reason: "NOT_FOUND")
      case "contacts_tenant_id_account_id_fkey":
        throw CRMError.invalid("contact.account_id", "no such account", reason: "NOT_FOUND")
      default:
        throw error
      }
    }
  }
}
