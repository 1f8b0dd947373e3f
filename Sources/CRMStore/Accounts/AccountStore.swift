public import CRMCore
public import Foundation
import LibPQ

/// SQL for accounts: create, read, update, archive and restore, list, hierarchy.
///
/// Every method runs in one tenant-scoped transaction that also writes the change log (and the
/// idempotency key when a request id is given). Visibility follows the caller's ``Principal``.
public struct AccountStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<Account>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// The deepest account hierarchy walked.
  public static let maxHierarchyDepth = 20

  /// Creates an account owned by `ownerID`; with no owner named the tenant's assignment rules place
  /// it, else the caller owns it.
  /// The tenant's duplicate rule for the type applies, or `duplicateAction` when given: a block
  /// throws ``CRMError/duplicate(_:)``, a warning comes back in ``Created/duplicates``.
  ///
  /// - Throws: ``CRMError`` — `alreadyExists` for a taken external id, `invalidArgument` for an unknown
  ///   parent or owner, `permissionDenied` when assigning to a user outside the caller's hierarchy.
  public func create(
    _ fields: AccountFields, ownerID: UUID?, duplicateAction: DuplicateAction? = nil, context: ChangeLog.Context
  ) async throws -> Created<Account> {
    let principal = context.principal
    let owner = ownerID ?? principal.userID
    let draft = Account(
      id: UUID.v7(), version: 1, ownerID: owner, fields: fields, createdAt: .now, updatedAt: .now,
      createdBy: principal.userID, updatedBy: principal.userID, archivedAt: nil)
    return try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.create(
        connection, method: "CreateAccount", draft, duplicateAction: duplicateAction, context: context,
        route: { draft in
          guard ownerID == nil else { return (draft, []) }
          return try AssignmentStore.routeNew(
            connection, draft, subject: AssignmentSubject(draft.fields), tenant: principal.tenantID)
        }
      ) {
        try Owners.checkAssignable(connection, owner: owner, field: "account.owner_id", principal: principal)
        if let parentID = fields.parentID {
          try checkParent(connection, parentID: parentID, of: draft.id, principal: principal)
        }
      }
    }
  }

  /// The account, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Account {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// The accounts named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Account] {
    try await Mechanics.batchGet(database, ids: ids, principal: principal)
  }

  /// Applies the fields in `mask` from `patch` (and `owner_id` from `newOwnerID`).
  ///
  /// - Parameter expectedVersion: the version the caller's etag names; `nil` skips the check.
  /// - Throws: ``CRMError`` — `staleEtag`, `notFound`, `permissionDenied`, `failedPrecondition` (archived,
  ///   or a parent that would make a cycle), `alreadyExists` (external id).
  public func update(
    _ id: UUID, patch: AccountFields, mask: Set<AccountField>, newOwnerID: UUID?, expectedVersion: Int64?,
    context: ChangeLog.Context
  ) async throws -> Account {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateAccount", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("account \(id.lowercasedString) is archived; undelete it first")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      if mask.contains(.ownerID), current.poolID != nil {
        throw CRMError.failedPrecondition(
          "the account sits in a shared pool: claim it (PoolService.Claim) or have a pool admin assign it (AssignFromPool)")
      }
      if mask.contains(.ownerID), let newOwnerID, newOwnerID != current.ownerID {
        try Owners.checkAssignable(connection, owner: newOwnerID, field: "account.owner_id", principal: principal)
        next.ownerID = newOwnerID
      }
      if mask.contains(.parentID), let parentID = next.fields.parentID, parentID != current.fields.parentID {
        try checkParent(connection, parentID: parentID, of: id, principal: principal)
      }
      return try Mechanics.write(connection, next, over: current, context: context)
    }
  }

  /// Archives (soft-deletes) the account.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Account {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// Restores an archived account.
  public func restore(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Account {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: false, expectedVersion: expectedVersion, context: context)
    }
  }

  /// One page of accounts matching `filter`, in its order, keyset-paginated.
  public func list(
    _ filter: AccountFilter, pageSize: Int, pageToken: String, includeTotal: Bool, principal: Principal
  ) async throws -> Page<Account> {
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      var conditions = Mechanics.commonConditions(
        principal: principal, archive: filter.archive, ownerID: filter.ownerID, tag: filter.tag,
        updatedSince: filter.updatedSince)
      if let parent = filter.parentID { conditions.append(" AND parent_id = \(parent)") }
      if let prefix = filter.namePrefix {
        conditions.append(IndexedFilter.namePrefix.condition(Account.table, Mechanics.likePrefix(prefix)))
      }
      if let domain = filter.domain { conditions.append(" AND domain = \(domain)") }
      return try Mechanics.page(
        connection, where: conditions, order: filter.order, token: token, tokens: tokens, fingerprint: filter.fingerprint,
        pageSize: pageSize, includeTotal: includeTotal)
    }
  }

  /// The hierarchy `id` belongs to: its root and every descendant the caller may see, depth first.
  public func hierarchy(of id: UUID, maxDepth: Int, principal: Principal) async throws -> (root: UUID, nodes: [(Account, Int)]) {
    try await database.withTenant(principal.tenantID) { connection in
      guard try Mechanics.fetch(connection, id: id, principal: principal) != nil else { throw Mechanics.notFound(id) }
      let rootRow = try connection.query(
        """
        WITH RECURSIVE up AS (
          SELECT id, parent_id, 0 AS level FROM accounts WHERE tenant_id = \(principal.tenantID) AND id = \(id)
          UNION ALL
          SELECT a.id, a.parent_id, up.level + 1 FROM accounts a
          JOIN up ON a.tenant_id = \(principal.tenantID) AND a.id = up.parent_id
          WHERE up.level < \(Self.maxHierarchyDepth)
        )
        SELECT id FROM up ORDER BY level DESC LIMIT 1
        """)
      let root: UUID = try rootRow[0].decode("id")
      let depthLimit = maxDepth <= 0 ? Self.maxHierarchyDepth : min(maxDepth, Self.maxHierarchyDepth)
      let rows = try connection.query(
        """
        WITH RECURSIVE down AS (
          SELECT id, 0 AS depth, ARRAY[id] AS path FROM accounts WHERE tenant_id = \(principal.tenantID) AND id = \(root)
          UNION ALL
          SELECT a.id, down.depth + 1, down.path || a.id FROM accounts a
          JOIN down ON a.tenant_id = \(principal.tenantID) AND a.parent_id = down.id
          WHERE down.depth < \(depthLimit) AND a.archived_at IS NULL
        )
        SELECT \(unsafeSQL: Account.columns.split(separator: ",").map { "a." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")),
               down.depth
        FROM down JOIN accounts a ON a.tenant_id = \(principal.tenantID) AND a.id = down.id
        ORDER BY down.path
        LIMIT 10000
        """)
      var hidden = Set<UUID>()
      var nodes: [(Account, Int)] = []
      for row in rows.rows {
        let account = try Account(row: row)
        let depth: Int = try row.decode("depth")
        if let parent = account.fields.parentID, hidden.contains(parent), account.id != root {
          hidden.insert(account.id)
          continue
        }
        guard principal.canRead(.account, ownedBy: account.ownerID, pool: account.poolID) else {
          hidden.insert(account.id)
          continue
        }
        nodes.append((account, depth))
      }
      return (root, nodes)
    }
  }

  /// Checks a new parent exists, is visible, and would not close a cycle (serialized per tenant).
  private func checkParent(_ connection: PostgresConnection, parentID: UUID, of id: UUID, principal: Principal) throws {
    try Self.lockHierarchy(connection, tenant: principal.tenantID)
    guard try Mechanics.fetch(connection, id: parentID, principal: principal) != nil else {
      throw CRMError.invalid("account.parent_id", "no such account", reason: "NOT_FOUND")
    }
    let (closesCycle, depth) = try Self.ancestry(connection, from: parentID, reaching: id, tenant: principal.tenantID)
    if closesCycle {
      throw CRMError.failedPrecondition("account.parent_id would make the hierarchy a cycle")
    }
    if depth >= Self.maxHierarchyDepth - 1 {
      throw CRMError.failedPrecondition("account hierarchies are at most \(Self.maxHierarchyDepth) levels deep")
    }
  }

  /// Walks up from `start` through its parents: whether the walk reaches `id`, and how deep it goes.
  /// Callers hold the tenant's hierarchy lock (``lockHierarchy(_:tenant:)``).
  static func ancestry(_ connection: PostgresConnection, from start: UUID, reaching id: UUID, tenant: UUID) throws -> (
    reaches: Bool, depth: Int
  ) {
    let result = try connection.query(
      """
      WITH RECURSIVE up AS (
        SELECT id, parent_id, 0 AS level FROM accounts WHERE tenant_id = \(tenant) AND id = \(start)
        UNION ALL
        SELECT a.id, a.parent_id, up.level + 1 FROM accounts a
        JOIN up ON a.tenant_id = \(tenant) AND a.id = up.parent_id
        WHERE up.level < 100
      )
      SELECT count(*) FILTER (WHERE id = \(id)) AS hits, coalesce(max(level), 0) AS depth FROM up
      """)
    return (try result[0].decode("hits", as: Int64.self) > 0, try result[0].decode("depth", as: Int.self))
  }

  /// Serializes changes to the tenant's account hierarchy until the transaction ends.
  static func lockHierarchy(_ connection: PostgresConnection, tenant: UUID) throws {
    try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('account-hierarchy:' || \(tenant), 0))")
  }
}
