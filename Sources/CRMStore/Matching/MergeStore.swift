public import CRMCore
public import Foundation
import LibPQ

/// What to merge: a survivor, the records merged into it, and which record each field comes from.
public struct MergePlan<Field: Hashable & Sendable>: Sendable {
  public var survivorID: UUID
  /// The survivor's etag version; `nil` skips the check.
  public var survivorVersion: Int64?
  /// The records merged into the survivor, each with its etag version (`nil` skips the check).
  public var losers: [(id: UUID, version: Int64?)]
  /// Field → the record (survivor or loser) whose value the survivor takes.
  public var choices: [Field: UUID]
  /// The record whose owner the survivor takes; `nil` keeps the survivor's.
  public var ownerFrom: UUID?

  /// A plan.
  public init(
    survivorID: UUID, survivorVersion: Int64?, losers: [(id: UUID, version: Int64?)], choices: [Field: UUID],
    ownerFrom: UUID?
  ) {
    self.survivorID = survivorID
    self.survivorVersion = survivorVersion
    self.losers = losers
    self.choices = choices
    self.ownerFrom = ownerFrom
  }
}

/// A record type that merges: its fields merge field by field (``FieldMerge``).
protocol MergeableRecord: StoredRecord {
  associatedtype Fields: MergeableFields
  var fields: Fields { get set }
  /// Takes `other`'s owner (and, for a pooled record, its pool: a record is owned or pooled, never both).
  mutating func takeOwner(of other: Self)
  var lastActivityAt: Timestamp? { get }
  var mergedIntoID: UUID? { get }
  /// The survivor of a merge without references into the merged set that would point at itself.
  func detached(from merged: Set<UUID>) -> Self
}

extension MergeableRecord {
  func detached(from merged: Set<UUID>) -> Self { self }
}

extension Lead: MergeableRecord {
  mutating func takeOwner(of other: Lead) {
    ownerID = other.ownerID
    poolID = other.poolID
  }
}

extension Contact: MergeableRecord {
  mutating func takeOwner(of other: Contact) { ownerID = other.ownerID }
}

extension Account: MergeableRecord {
  mutating func takeOwner(of other: Account) {
    ownerID = other.ownerID
    poolID = other.poolID
  }

  /// An account whose parent is among the merged accounts loses that parent.
  func detached(from merged: Set<UUID>) -> Account {
    guard let parent = fields.parentID, merged.contains(parent) else { return self }
    var account = self
    account.fields.parentID = nil
    return account
  }
}

/// SQL for merging duplicates, in one transaction: lock every record (in id order, so concurrent
/// merges cannot deadlock), check etags, permissions and that none is archived, write the survivor's
/// merged fields, archive the others with a pointer to the survivor, and move everything that points
/// at them — interaction links, captures, an account's contacts and child accounts — to the survivor.
/// The change log records each step on the records it touched, so every history stays readable.
public struct MergeStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Merges leads.
  public func mergeLeads(_ plan: MergePlan<LeadField>, context: ChangeLog.Context) async throws -> Lead {
    try await merge(plan, method: "MergeLeads", context: context)
  }

  /// Merges contacts.
  public func mergeContacts(_ plan: MergePlan<ContactField>, context: ChangeLog.Context) async throws -> Contact {
    try await merge(plan, method: "MergeContacts", context: context)
  }

  /// Merges accounts.
  public func mergeAccounts(_ plan: MergePlan<AccountField>, context: ChangeLog.Context) async throws -> Account {
    try await merge(plan, method: "MergeAccounts", context: context)
  }

  func merge<Record: MergeableRecord>(
    _ plan: MergePlan<Record.Fields.Field>, method: String, context: ChangeLog.Context
  ) async throws -> Record {
    typealias Mechanics = RecordMechanics<Record>
    let principal = context.principal
    let loserIDs = plan.losers.map(\.id)
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: method, context: context, recordID: plan.survivorID) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      var versions: [UUID: Int64?] = [plan.survivorID: plan.survivorVersion]
      for loser in plan.losers { versions[loser.id] = loser.version }
      var locked: [UUID: Record] = [:]
      for id in versions.keys.sorted(by: { $0.lowercasedString < $1.lowercasedString }) {
        let record = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: versions[id]!)
        if record.archivedAt != nil {
          throw CRMError.failedPrecondition(
            "\(Record.noun) \(id.lowercasedString) is archived\(record.mergedIntoID.map { " (merged into \($0.lowercasedString))" } ?? ""); undelete it before merging"
          )
        }
        locked[id] = record
      }
      let survivor = locked[plan.survivorID]!
      let losers = loserIDs.map { locked[$0]! }
      var next = survivor
      next.fields = FieldMerge.merge(
        survivor: survivor.fields, others: losers.sorted { $0.updatedAt > $1.updatedAt }.map(\.fields),
        choices: plan.choices.mapValues { locked[$0]!.fields })
      if let ownerFrom = plan.ownerFrom { next.takeOwner(of: locked[ownerFrom]!) }
      next = next.detached(from: Set(loserIDs + [plan.survivorID]))

      // The losers first: they give up unique values the survivor takes (external ids).
      var externalID: String?
      if case .string(let value) = next.snapshot["external_id"] { externalID = value }
      let archived = try connection.query(
        """
        UPDATE \(unsafeSQL: Record.table) SET archived_at = now(), merged_into = \(plan.survivorID), version = version + 1,
          updated_at = now(), updated_by = \(principal.userID),
          external_id = CASE WHEN external_id = \(externalID)::text THEN NULL ELSE external_id END
        WHERE tenant_id = \(principal.tenantID) AND id = ANY(\(loserIDs)::uuid[])
        RETURNING id, archived_at
        """)
      for row in archived.rows {
        let id: UUID = try row.decode("id")
        let at: Timestamp = try row.decode("archived_at")
        var changes = [
          FieldChange(field: "archived_at", oldValue: .null, newValue: .string(at.rfc3339)),
          FieldChange(field: "merged_into", oldValue: .null, newValue: .string(plan.survivorID.lowercasedString)),
        ]
        if let old = locked[id]?.snapshot["external_id"], old != .null, old == next.snapshot["external_id"] {
          changes.append(FieldChange(field: "external_id", oldValue: old, newValue: .null))
        }
        try ChangeLog.append(
          connection, context: context, recordType: Record.recordType, recordID: id, operation: .archive, changes: changes)
      }
      _ = try Mechanics.write(connection, next, over: survivor, context: context)
      try ChangeLog.append(
        connection, context: context, recordType: Record.recordType, recordID: plan.survivorID, operation: .merge,
        changes: [
          FieldChange(
            field: "merged_from", oldValue: .null, newValue: .array(loserIDs.map { .string($0.lowercasedString) }))
        ])
      try Self.relink(
        connection, type: Record.recordType, from: loserIDs, to: plan.survivorID,
        lastActivity: losers.compactMap(\.lastActivityAt).max(), context: context)
      return try Mechanics.replay(connection, id: plan.survivorID, principal: principal)
    }
  }

  /// Moves what points at the merged records to the survivor, writing a change-log entry on every
  /// record whose fields change (interactions' links, contacts' account, accounts' parent).
  static func relink(
    _ connection: PostgresConnection, type: RecordType, from losers: [UUID], to survivor: UUID, lastActivity: Timestamp?,
    context: ChangeLog.Context
  ) throws {
    let tenant = context.principal.tenantID
    let actor = context.principal.userID
    let survivorKey = RecordLink(type: type, id: survivor).key
    let loserKeys = losers.map { RecordLink(type: type, id: $0).key }
    // Interactions: the link rows (an interaction on both keeps one), then the links array, in order
    // and without repeats — of the interactions the moved link rows now name with the survivor (`links
    // &&` is not leakproof: under row-level security it would filter a scan of every interaction in
    // the tenant).
    try connection.query(
      """
      INSERT INTO interaction_links (tenant_id, interaction_id, record_type, record_id, occurred_at)
      SELECT tenant_id, interaction_id, record_type, \(survivor), occurred_at FROM interaction_links
      WHERE tenant_id = \(tenant) AND record_type = \(type.rawValue) AND record_id = ANY(\(losers)::uuid[])
      ON CONFLICT DO NOTHING
      """)
    try connection.query(
      """
      DELETE FROM interaction_links
      WHERE tenant_id = \(tenant) AND record_type = \(type.rawValue) AND record_id = ANY(\(losers)::uuid[])
      """)
    try connection.query(
      """
      WITH moved AS (
        UPDATE interactions i SET
          links = ARRAY(
            SELECT k FROM (
              SELECT CASE WHEN u.k = ANY(\(loserKeys)::text[]) THEN \(survivorKey)::text ELSE u.k END AS k, min(u.n) AS n
              FROM unnest(i.links) WITH ORDINALITY AS u(k, n) GROUP BY 1
            ) s ORDER BY n),
          version = i.version + 1, updated_at = now(), updated_by = \(actor)
        FROM (SELECT id, links AS old FROM interactions
              WHERE tenant_id = \(tenant)
                AND id = ANY(ARRAY(
                  SELECT interaction_id FROM interaction_links
                  WHERE tenant_id = \(tenant) AND record_type = \(type.rawValue) AND record_id = \(survivor)))
                AND links && \(loserKeys)::text[] FOR UPDATE) o
        WHERE i.tenant_id = \(tenant) AND i.id = o.id
        RETURNING i.id, o.old, i.links
      )
      INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
      SELECT \(tenant), 'interaction', id, 'update', \(actor), \(context.requestID),
        jsonb_build_array(jsonb_build_object('field', 'links', 'old', to_jsonb(old), 'new', to_jsonb(links)))
      FROM moved
      """)
    let references: [(table: String, column: String, recordType: String)]
    switch type {
    case .lead, .contact:
      try connection.query(
        """
        UPDATE captures SET record_id = \(survivor)
        WHERE tenant_id = \(tenant) AND record_type = \(type.rawValue) AND record_id = ANY(\(losers)::uuid[])
        """)
      references =
        type == .lead
        ? [("opportunities", "source_lead_id", "opportunity"), ("tickets", "requester_lead_id", "ticket")]
        : [("leads", "converted_contact_id", "lead"), ("tickets", "requester_contact_id", "ticket")]
      // Comments the merged people wrote name the survivor (comments are not versioned records).
      let author = type == .lead ? "author_lead_id" : "author_contact_id"
      try connection.query(
        """
        UPDATE ticket_comments SET \(unsafeSQL: author) = \(survivor)
        WHERE tenant_id = \(tenant) AND \(unsafeSQL: author) = ANY(\(losers)::uuid[])
        """)
    case .account:
      try AccountStore.lockHierarchy(connection, tenant: tenant)
      references = [
        ("contacts", "account_id", "contact"), ("accounts", "parent_id", "account"),
        ("opportunities", "account_id", "opportunity"),
        ("leads", "converted_account_id", "lead"), ("tickets", "account_id", "ticket"),
        ("invoices", "account_id", "invoice"), ("payments", "account_id", "payment"),
        ("credit_notes", "account_id", "credit_note"), ("invoice_disputes", "account_id", "dispute"),
      ]
      // The billing system's customers that named a merged account name the survivor.
      try connection.query(
        """
        UPDATE billing_customers SET account_id = \(survivor)
        WHERE tenant_id = \(tenant) AND account_id = ANY(\(losers)::uuid[])
        """)
    case .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection:
      references = []
    }
    for (table, column, recordType) in references {
      try connection.query(
        """
        WITH moved AS (
          UPDATE \(unsafeSQL: table) r SET \(unsafeSQL: column) = \(survivor), version = r.version + 1, updated_at = now(),
            updated_by = \(actor)
          FROM (SELECT id, \(unsafeSQL: column) AS old FROM \(unsafeSQL: table)
                WHERE tenant_id = \(tenant) AND \(unsafeSQL: column) = ANY(\(losers)::uuid[])
                  AND id <> \(survivor) AND id <> ALL(\(losers)::uuid[])
                FOR UPDATE) o
          WHERE r.tenant_id = \(tenant) AND r.id = o.id
          RETURNING r.id, o.old
        )
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
        SELECT \(tenant), \(recordType)::text, id, 'update', \(actor), \(context.requestID),
          jsonb_build_array(jsonb_build_object('field', \(column)::text, 'old', old::text, 'new', \(survivor.lowercasedString)::text))
        FROM moved
        """)
    }
    switch type {
    case .account:
      // A loser's child may be the survivor's ancestor: re-parenting it under the survivor would close
      // a loop.
      let parent = try connection.query("SELECT parent_id FROM accounts WHERE tenant_id = \(tenant) AND id = \(survivor)")
      if let parentID = try parent.first?.decode("parent_id", as: UUID?.self),
        try AccountStore.ancestry(connection, from: parentID, reaching: survivor, tenant: tenant).reaches
      {
        throw CRMError.failedPrecondition(
          "merging would make the account hierarchy a cycle: the survivor is below a merged account's child; re-parent it first")
      }
      // The survivor keeps its collection; without one it takes the first merged account's that has one.
      try connection.query(
        """
        UPDATE account_collections SET account_id = \(survivor), version = version + 1, updated_at = now()
        WHERE tenant_id = \(tenant) AND account_id = (
          SELECT account_id FROM account_collections WHERE tenant_id = \(tenant) AND account_id = ANY(\(losers)::uuid[])
          ORDER BY array_position(\(losers)::uuid[], account_id) LIMIT 1)
          AND NOT EXISTS (SELECT 1 FROM account_collections WHERE tenant_id = \(tenant) AND account_id = \(survivor))
        """)
    case .contact:
      try relinkDealContacts(connection, from: losers, to: survivor, context: context)
    case .lead, .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection:
      break
    }
    if let lastActivity {
      try RecordAccess.touchActivity(connection, [RecordLink(type: type, id: survivor)], at: lastActivity, tenant: tenant)
    }
  }

  /// Deals naming a merged contact (as primary contact or in a role) name the survivor instead; a
  /// deal naming both keeps the first role. Each changed deal gets a change-log entry.
  static func relinkDealContacts(
    _ connection: PostgresConnection, from losers: [UUID], to survivor: UUID, context: ChangeLog.Context
  ) throws {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: Opportunity.columns) FROM opportunities
      WHERE tenant_id = \(context.principal.tenantID)
        \(IndexedFilter.contact.condition(Opportunity.table, anyOf: losers.map(\.lowercasedString)))
        AND contact_ids && \(losers)::uuid[]
      FOR UPDATE
      """)
    let merged = Set(losers)
    for row in rows.rows {
      let current = try Opportunity(row: row)
      var next = current
      if let primary = current.fields.primaryContactID, merged.contains(primary) { next.fields.primaryContactID = survivor }
      var seen = Set<UUID>()
      next.fields.contactRoles = current.fields.contactRoles.compactMap { role in
        var role = role
        if merged.contains(role.contactID) { role.contactID = survivor }
        return seen.insert(role.contactID).inserted ? role : nil
      }
      _ = try RecordMechanics<Opportunity>.write(connection, next, over: current, context: context)
    }
  }
}
