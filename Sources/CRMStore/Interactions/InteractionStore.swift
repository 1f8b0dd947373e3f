public import CRMCore
public import Foundation
import LibPQ

/// SQL for the interaction log and the timeline.
///
/// Logging an interaction checks the caller may see every linked record, writes the interaction, its
/// link rows and its change-log entry, and moves `last_activity_at` forward on every linked record, all
/// in one transaction. An interaction is visible when the tenant's sharing for interactions lets the
/// caller see its owner's records and the caller may see at least one record it is linked to.
public struct InteractionStore: Sendable {
  let database: Database
  typealias Mechanics = RecordMechanics<Interaction>

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Logs an interaction owned by `ownerID` (the caller when `nil`).
  public func log(_ fields: InteractionFields, ownerID: UUID?, context: ChangeLog.Context) async throws -> Interaction {
    let principal = context.principal
    let draft = Interaction(
      id: UUID.v7(), version: 1, ownerID: ownerID ?? principal.userID, fields: fields, createdAt: .now, updatedAt: .now,
      createdBy: principal.userID, updatedBy: principal.userID, archivedAt: nil)
    return try await database.withTenant(principal.tenantID) { connection in
      try Mechanics.create(
        connection, method: "LogInteraction", draft, duplicateAction: .allow, context: context,
        checks: {
          try Owners.checkAssignable(connection, owner: draft.ownerID, field: "interaction.owner_id", principal: principal)
          try RecordAccess.requireReadable(connection, draft.fields.links, principal: principal)
        },
        afterInsert: { interaction in
          try Self.writeLinks(connection, interaction, replacing: false, tenant: principal.tenantID)
          try RecordAccess.touchActivity(
            connection, interaction.fields.links, at: min(interaction.fields.startAt, .now), tenant: principal.tenantID)
        }
      ).record
    }
  }

  /// The interaction, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Interaction {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.visible(connection, id: id, principal: principal)
    }
  }

  /// The interaction if it exists, its owner is in sight, and one linked record is; else NOT_FOUND.
  static func visible(_ connection: PostgresConnection, id: UUID, principal: Principal) throws -> Interaction {
    guard let interaction = try Mechanics.fetch(connection, id: id, principal: principal),
      try RecordAccess.states(connection, interaction.fields.links, principal: principal).values.contains(where: \.visible)
    else { throw Mechanics.notFound(id) }
    return interaction
  }

  /// Applies the fields in `mask`; only the owner, their managers or an admin may.
  public func update(
    _ id: UUID, patch: InteractionFields, mask: Set<InteractionField>, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> Interaction {
    let principal = context.principal
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateInteraction", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      _ = try Self.visible(connection, id: id, principal: principal)
      let current = try Mechanics.lockForWrite(connection, id: id, principal: principal, expectedVersion: expectedVersion)
      guard current.archivedAt == nil else {
        throw CRMError.failedPrecondition("interaction \(id.lowercasedString) is archived; undelete it first")
      }
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      var violations = Violations()
      next.fields.validate(prefix: "interaction", into: &violations)
      try violations.check()
      let added = Set(next.fields.links).subtracting(current.fields.links)
      if !added.isEmpty { try RecordAccess.requireReadable(connection, Array(added), principal: principal) }
      let updated = try Mechanics.write(connection, next, over: current, context: context)
      if updated.fields.links != current.fields.links || updated.fields.startAt != current.fields.startAt {
        try Self.writeLinks(connection, updated, replacing: true, tenant: principal.tenantID)
        try RecordAccess.touchActivity(
          connection, updated.fields.links, at: min(updated.fields.startAt, .now), tenant: principal.tenantID)
      }
      return updated
    }
  }

  /// Archives or restores the interaction.
  public func setArchived(_ id: UUID, archive: Bool, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> Interaction
  {
    try await database.withTenant(context.principal.tenantID) { connection in
      _ = try Self.visible(connection, id: id, principal: context.principal)
      return try Mechanics.setArchived(
        connection, id: id, archive: archive, expectedVersion: expectedVersion, context: context)
    }
  }

  /// One page of the interactions linked to a record, newest first.
  public func list(_ filter: InteractionFilter, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> Page<Interaction>
  {
    let tokens = try await database.pageTokens()
    let after = try Self.position(tokens.decode(pageToken, query: filter.fingerprint))
    return try await database.withTenant(principal.tenantID) { connection in
      try RecordAccess.requireVisible(connection, filter.record, principal: principal)
      let found = try Self.interactions(
        connection, linkedTo: [filter.record], kinds: filter.kinds, after: after, limit: pageSize + 1, principal: principal)
      return Self.page(
        found.map(TimelineEntry.interaction), pageSize: pageSize, id: filter.record.id, query: filter.fingerprint, tokens: tokens
      )
      .map { entry in
        guard case .interaction(let interaction) = entry else { preconditionFailure("only interactions were listed") }
        return interaction
      }
    }
  }

  /// The keyset position a page token holds: `<microseconds>|<sort key>`.
  static func position(_ token: PageToken?) throws(CRMError) -> (time: Timestamp, key: String)? {
    guard let token else { return nil }
    guard let bar = token.key.firstIndex(of: "|"), let micros = Int64(token.key[..<bar]) else {
      throw .invalid("page_token", "is malformed", reason: "INVALID_FORMAT")
    }
    return (Timestamp(microsecondsSinceEpoch: micros), String(token.key[token.key.index(after: bar)...]))
  }

  /// The first `pageSize` of `entries` (sorted newest first), with a token for the rest.
  static func page(_ entries: [TimelineEntry], pageSize: Int, id: UUID, query: String, tokens: PageTokenCodec)
    -> Page<TimelineEntry>
  {
    guard entries.count > pageSize else { return Page(items: entries, nextPageToken: nil) }
    let items = Array(entries.prefix(pageSize))
    let last = items[pageSize - 1]
    let token = PageToken(key: "\(last.occurredAt.microsecondsSinceEpoch)|\(last.sortKey)", id: id, query: query)
    return Page(items: items, nextPageToken: tokens.encode(token))
  }

  /// One page of a lead's, contact's or account's timeline, newest first: its interactions (for an
  /// account, also those of the contacts the caller may see), its own change-log entries, its
  /// tickets', and for an account its invoices', payments' and credit notes' (when the caller may see
  /// its billing data).
  public func timeline(of record: RecordLink, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> Page<TimelineEntry>
  {
    let fingerprint = "timeline|\(record.key)"
    let tokens = try await database.pageTokens()
    let after = try Self.position(tokens.decode(pageToken, query: fingerprint))
    guard record.type != .interaction else {
      throw CRMError.invalid("record.record_type", "a timeline belongs to a lead, a contact, an account or an opportunity")
    }
    return try await database.withTenant(principal.tenantID) { connection in
      try RecordAccess.requireVisible(connection, record, principal: principal)
      var linked = [record]
      if record.type == .account {
        var query: PostgresQuery =
          "SELECT id FROM contacts WHERE tenant_id = \(principal.tenantID) AND account_id = \(record.id) AND archived_at IS NULL"
        if let owners = principal.readableOwners(.contact) { query.append(" AND owner_id = ANY(\(owners)::uuid[])") }
        linked += try connection.query(query).rows.map { RecordLink(type: .contact, id: try $0.decode("id")) }
      }
      let interactions = try Self.interactions(
        connection, linkedTo: linked, kinds: [], after: after, limit: pageSize + 1, principal: principal)
      var changes: PostgresQuery = """
        SELECT \(unsafeSQL: ChangeLog.columns) FROM change_log
        WHERE tenant_id = \(principal.tenantID) AND record_type = \(record.type.rawValue) AND record_id = \(record.id)
        """
      if let after {
        changes.append(
          " AND (changed_at, 'c:' || lpad(sequence::text, 20, '0') COLLATE \"C\") < (\(after.time), \(after.key))")
      }
      changes.append(" ORDER BY changed_at DESC, sequence DESC LIMIT \(pageSize + 1)")
      var entries = try connection.query(changes).rows.map { try ChangeLog.entry($0, recordType: record.type) }
      entries += try Self.ticketChanges(connection, about: record, after: after, limit: pageSize + 1, principal: principal)
      if record.type == .account {
        entries += try BillingStore.timelineEntries(
          connection, account: record.id, after: after, limit: pageSize + 1, principal: principal)
      }
      let merged = (interactions.map(TimelineEntry.interaction) + entries.map(TimelineEntry.change))
        .sorted(by: TimelineEntry.newestFirst)
      return Self.page(merged, pageSize: pageSize, id: record.id, query: fingerprint, tokens: tokens)
    }
  }

  /// The change-log entries of the tickets a contact or lead asked, or an account's tickets: their
  /// creation, status changes, comments and SLA breaches, for the customer's timeline. Only tickets
  /// the caller may see; newest first after the keyset position.
  static func ticketChanges(
    _ connection: PostgresConnection, about record: RecordLink, after: (time: Timestamp, key: String)?, limit: Int,
    principal: Principal
  ) throws -> [ChangeEntry] {
    let column: String
    switch record.type {
    case .contact: column = "requester_contact_id"
    case .lead: column = "requester_lead_id"
    case .account: column = "account_id"
    default: return []
    }
    var tickets: PostgresQuery =
      "SELECT id FROM tickets WHERE tenant_id = \(principal.tenantID) AND \(unsafeSQL: column) = \(record.id) AND archived_at IS NULL"
    if let owners = principal.readableOwners(.ticket) { tickets.append(" AND assignee_id = ANY(\(owners)::uuid[])") }
    var query: PostgresQuery = """
      SELECT \(unsafeSQL: ChangeLog.columns) FROM change_log
      WHERE tenant_id = \(principal.tenantID) AND record_type = 'ticket' AND record_id IN (\(tickets))
      """
    if let after {
      query.append(" AND (changed_at, 'c:' || lpad(sequence::text, 20, '0') COLLATE \"C\") < (\(after.time), \(after.key))")
    }
    query.append(" ORDER BY changed_at DESC, sequence DESC LIMIT \(limit)")
    return try connection.query(query).rows.map { try ChangeLog.entry($0, recordType: .ticket) }
  }

  /// Interactions linked to any of `records`, newest first, visible and not archived, after the
  /// keyset position `(time, "i:<id>")` — so a page never depends on what a later filter drops.
  static func interactions(
    _ connection: PostgresConnection, linkedTo records: [RecordLink], kinds: [InteractionKind],
    after: (time: Timestamp, key: String)?, limit: Int, principal: Principal
  ) throws -> [Interaction] {
    var conditions: PostgresQuery = "i.archived_at IS NULL"
    if let owners = principal.readableOwners(.interaction) { conditions.append(" AND i.owner_id = ANY(\(owners)::uuid[])") }
    if !kinds.isEmpty { conditions.append(" AND i.kind = ANY(\(kinds.map(\.rawValue))::text[])") }
    if let after {
      conditions.append(" AND (l.occurred_at, 'i:' || l.interaction_id::text COLLATE \"C\") < (\(after.time), \(after.key))")
    }
    var ids = PostgresQuery(unsafeSQL: "")
    let byType = Dictionary(grouping: records, by: \.type)
    for (index, type) in byType.keys.sorted(by: { $0.rawValue < $1.rawValue }).enumerated() {
      if index > 0 { ids.append(unsafeSQL: " UNION ") }
      ids.append(
        """
        (SELECT l.interaction_id FROM interaction_links l
         JOIN interactions i ON i.tenant_id = l.tenant_id AND i.id = l.interaction_id
         WHERE l.tenant_id = \(principal.tenantID) AND l.record_type = \(type.rawValue)
           AND l.record_id = ANY(\(byType[type]!.map(\.id))::uuid[]) AND \(conditions)
         ORDER BY l.occurred_at DESC, l.interaction_id DESC LIMIT \(limit))
        """)
    }
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: Interaction.columns) FROM interactions
      WHERE tenant_id = \(principal.tenantID) AND id IN (\(ids))
      ORDER BY start_at DESC, id DESC LIMIT \(limit)
      """)
    return try rows.rows.map(Interaction.init(row:))
  }

  /// Writes the link rows of `interaction` (replacing the old ones when asked).
  static func writeLinks(_ connection: PostgresConnection, _ interaction: Interaction, replacing: Bool, tenant: UUID) throws {
    if replacing {
      try connection.query("DELETE FROM interaction_links WHERE tenant_id = \(tenant) AND interaction_id = \(interaction.id)")
    }
    let links = interaction.fields.links
    try connection.query(
      """
      INSERT INTO interaction_links (tenant_id, interaction_id, record_type, record_id, occurred_at)
      SELECT \(tenant), \(interaction.id), t, r, \(interaction.fields.startAt)
      FROM unnest(\(links.map(\.type.rawValue))::text[], \(links.map(\.id))::uuid[]) AS u (t, r)
      """)
  }
}
