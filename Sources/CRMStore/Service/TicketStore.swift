public import CRMCore
public import Foundation
import LibPQ

/// SQL for tickets: create, read, update (fields and status), archive, list, comments, merges, and
/// the SLA clocks every change re-evaluates in the same transaction.
///
/// Any agent who can see a ticket may work it (reply, change its status, fields and assignee):
/// service desks share their queues. Archiving needs the assignee, their managers or an admin.
/// Times that drive SLA clocks — creation, comments, status changes — are read from `now`, the
/// SLA clock, which tests move.
public struct TicketStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp
  typealias Mechanics = RecordMechanics<Ticket>

  /// A store over `database`; `now` is the SLA clock.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// Who writes a ticket's opening comment (its description).
  public enum OpeningAuthor: Sendable, Hashable {
    /// The requester (a ticket from a customer, by mail, form or chat, or logged for them).
    case requester
    /// The agent creating it (an outbound ticket): that public comment is not the first reply.
    case agent
  }

  /// How a new ticket opens.
  public struct Opening: Sendable, Hashable {
    /// `new` unless given; `closed` cannot be created.
    public var status: TicketStatus?
    /// The opening comment's author; default the requester when there is one, else the agent.
    public var author: OpeningAuthor?
    /// The channel's message id of the opening message (an email's Message-ID).
    public var messageID: String?

    /// An opening.
    public init(status: TicketStatus? = nil, author: OpeningAuthor? = nil, messageID: String? = nil) {
      self.status = status
      self.author = author
      self.messageID = messageID
    }
  }

  // MARK: - Create, read

  /// Creates a ticket; its account defaults to the requester contact's.
  ///
  /// - Throws: ``CRMError`` — `notFound` for a requester, account or deal out of sight, `invalid` for
  ///   an unknown assignee, group or follower, `failedPrecondition` for a closed status.
  public func create(_ fields: TicketFields, opening: Opening, context: ChangeLog.Context) async throws -> Ticket {
    let at = now()
    return try await database.withTenant(context.principal.tenantID) { connection in
      try Self.create(
        connection, fields, opening: opening, followUpOf: nil, method: "CreateTicket", context: context, at: at, commit: true)
    }
  }

  /// `commit` ends the transaction with the last write (the caller writes nothing after it).
  static func create(
    _ connection: PostgresConnection, _ fields: TicketFields, opening: Opening, followUpOf: UUID?, method: String,
    context: ChangeLog.Context, at: Timestamp, commit: Bool = false
  ) throws -> Ticket {
    let principal = context.principal
    let tenant = principal.tenantID
    let status = opening.status ?? .new
    if status == .closed {
      throw CRMError.invalid("ticket.status", "a ticket cannot be created closed (solve it; it closes by itself)")
    }
    var draft = Ticket(
      id: UUID.v7(), number: 0, version: 1, fields: fields, status: status, openedAt: at, createdAt: at, updatedAt: at)
    draft.followUpOfID = followUpOf
    if status == .solved {
      draft.status = .new
      try move(&draft, to: .solved, at: at)
    }
    if opening.messageID != nil, fields.description == nil {
      throw CRMError.invalid("ticket.description", "a ticket opened from a message needs the message's body", reason: "REQUIRED")
    }
    let author = opening.author ?? (fields.requester == nil ? .agent : .requester)
    if author == .requester, fields.requester == nil {
      throw CRMError.invalid("opening_author", "a ticket opened by its requester needs requester_contact_id or requester_lead_id")
    }
    var statements: [PostgresQuery] = []
    let created = try Mechanics.create(connection, method: method, draft, duplicateAction: .allow, context: context) { draft in
      var routed = draft
      var notes: [FieldChange] = []
      if routed.fields.assigneeID == nil {
        // The tenant's assignment rules for tickets place it (a user, or a capped team rotation).
        let decision = try AssignmentStore.route(
          connection, AssignmentSubject(routed.fields), type: .ticket, tenant: tenant, dryRun: false)
        if case .user(let user) = decision.outcome {
          routed.fields.assigneeID = user
          notes = AssignmentStore.note(decision)
        }
      }
      routed.fields.accountID = try Self.defaultAccount(connection, routed.fields, tenant: tenant)
      let sla = try SLARecorder.context(connection, tenant: tenant)
      let account = try Self.accountFacts(connection, routed.fields.accountID, tenant: tenant)
      statements = SLARecorder.evaluate(
        &routed, instances: [], context: sla, account: account, at: at, actor: principal.userID, note: "created")
      return (routed, notes)
    } checks: {
      try Self.checkLinks(connection, fields, changed: nil, principal: principal)
    } afterInsert: { ticket in
      // The opening comment, the clocks and (with `commit`) the end of the transaction: one round trip.
      var writes: [PostgresQuery] = []
      if let body = ticket.fields.description {
        let comment = TicketComment(
          id: UUID.v7(), ticketID: ticket.id,
          author: author == .agent ? .agent(principal.userID) : .customer(ticket.fields.requester), isPublic: true,
          body: body, messageID: opening.messageID, channel: ticket.fields.channel, createdAt: at)
        writes = [comment.insert(tenant: tenant)] + messageIDRow(comment, tenant: tenant)
      }
      writes += statements
      if commit, !writes.isEmpty { writes.append(PostgresQuery(unsafeSQL: "COMMIT")) }
      if !writes.isEmpty { _ = try connection.pipeline(writes) }
    }
    return created.record
  }

  /// The ticket, if the caller may see it.
  public func get(_ id: UUID, principal: Principal) async throws -> Ticket {
    try await Mechanics.get(database, id: id, principal: principal)
  }

  /// The tickets named, in order; NOT_FOUND if any is missing or out of sight.
  public func batchGet(_ ids: [UUID], principal: Principal) async throws -> [Ticket] {
    try await Mechanics.batchGet(database, ids: ids, principal: principal)
  }

  /// The ticket with this number, if the caller may see it.
  public func get(number: Int64, principal: Principal) async throws -> Ticket {
    try await database.withTenant(principal.tenantID) { connection in
      let rows = try connection.query(
        "SELECT id FROM tickets WHERE tenant_id = \(principal.tenantID) AND number = \(number)")
      guard let id = try rows.first?.decode("id", as: UUID.self),
        let ticket = try Mechanics.fetch(connection, id: id, principal: principal)
      else { throw CRMError.notFound("ticket #\(number) not found") }
      return ticket
    }
  }

  // MARK: - Update

  /// Applies the fields in `mask` from `patch`, and `status` when the mask names it.
  ///
  /// - Throws: ``CRMError`` — `failedPrecondition` for a closed or archived ticket or a status move the
  ///   rules forbid (back to `new`); `staleEtag`, `notFound`.
  public func update(
    _ id: UUID, patch: TicketFields, mask: Set<TicketField>, status: TicketStatus?, expectedVersion: Int64?,
    context: ChangeLog.Context
  ) async throws -> Ticket {
    let principal = context.principal
    let at = now()
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "UpdateTicket", context: context, recordID: id) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      let current = try Self.lock(connection, id: id, expectedVersion: expectedVersion, principal: principal, edit: true)
      var next = current
      next.fields = current.fields.applying(patch, mask: mask)
      if mask.contains(.requester), !mask.contains(.accountID), next.fields.requester != current.fields.requester {
        next.fields.accountID = nil
        next.fields.accountID =
          try Self.defaultAccount(connection, next.fields, tenant: principal.tenantID) ?? current.fields.accountID
      }
      if mask.contains(.status), let status { try Self.move(&next, to: status, at: at) }
      try Self.checkLinks(connection, next.fields, changed: current.fields, principal: principal)
      return try Self.save(connection, next, over: current, context: context, at: at, note: Self.note(mask), commit: true)
    }
  }

  /// Why clocks changed, for their log.
  static func note(_ mask: Set<TicketField>) -> String {
    mask.isEmpty ? "update" : mask.map(\.rawValue).sorted().joined(separator: ", ") + " changed"
  }

  /// Moves `ticket` to `status` at `at`, keeping its SLA facts.
  static func move(_ ticket: inout Ticket, to status: TicketStatus, at: Timestamp) throws {
    guard status != ticket.status else { return }
    guard ticket.status.canMove(to: status) else {
      throw CRMError.failedPrecondition(
        status == .new
          ? "a ticket never returns to new" : "ticket #\(ticket.number) is closed; closed tickets are final")
    }
    if ticket.status == .solved, !status.isResolved {
      // Reopened: the resolution clock starts again.
      ticket.openedAt = at
      ticket.solvedAt = nil
    }
    if status == .solved {
      ticket.solvedAt = at
      // One survey per ticket: reopening and solving again does not ask twice.
      if ticket.satisfactionToken == nil {
        ticket.satisfactionToken = "csat_" + String(TokenSecret.generate().dropFirst(4))
        ticket.satisfactionIssuedAt = at
      }
    }
    if status == .closed {
      ticket.closedAt = at
      if ticket.solvedAt == nil { ticket.solvedAt = at }
    }
    ticket.status = status
    ticket.statusChangedAt = at
  }

  /// Writes `next` over `current` with its SLA clocks re-evaluated at `at`, in one round trip (which
  /// commits with `commit`, for a caller that writes nothing after it).
  static func save(
    _ connection: PostgresConnection, _ next: Ticket, over current: Ticket, context: ChangeLog.Context, at: Timestamp,
    note: String, notes: [FieldChange] = [], extra: [PostgresQuery] = [], cancelClocks: Bool = false, always: Bool = false,
    commit: Bool = false
  ) throws -> Ticket {
    let tenant = context.principal.tenantID
    var next = next
    // What re-planning reads (settings, policies, calendars, the clock logs, the account's tier and
    // tags) goes in one pipelined round trip.
    let reads = try connection.pipeline(
      SLARecorder.contextQueries(tenant: tenant) + [
        SLARecorder.instancesQuery(tickets: [current.id], tenant: tenant),
        accountFactsQuery(next.fields.accountID, tenant: tenant),
      ])
    let sla = try SLARecorder.context(from: reads[0..<3], tenant: tenant)
    let instances = try SLARecorder.instances(from: reads[3])[current.id] ?? []
    let account = try accountFacts(from: reads[4])
    let statements = SLARecorder.evaluate(
      &next, instances: instances, context: sla, account: account, at: at, cancelAll: cancelClocks,
      actor: context.principal.userID, note: note)
    return try Mechanics.write(
      connection, next, over: current, context: context, notes: notes, alongside: extra + statements,
      always: always || !statements.isEmpty || next.slaFacts != current.slaFacts, commit: commit)
  }

  /// Archives (soft-deletes) the ticket: the assignee, their managers or an admin.
  public func archive(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Ticket {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: true, expectedVersion: expectedVersion, context: context)
    }
  }

  /// Restores an archived ticket.
  public func restore(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> Ticket {
    try await database.withTenant(context.principal.tenantID) { connection in
      try Mechanics.setArchived(connection, id: id, archive: false, expectedVersion: expectedVersion, context: context)
    }
  }

  // MARK: - Comments

  /// A comment to add.
  public struct NewComment: Sendable, Hashable {
    /// Agent (the caller) or customer.
    public var fromCustomer: Bool
    /// The customer who wrote it; default the ticket's requester.
    public var customer: TicketRequester?
    /// False for an internal note (agents only).
    public var isPublic: Bool
    public var body: String
    public var messageID: String?
    public var channel: TicketChannel?
    /// The status an agent sets with the comment ("submit as pending").
    public var status: TicketStatus?

    /// A comment.
    public init(
      fromCustomer: Bool, customer: TicketRequester? = nil, isPublic: Bool, body: String, messageID: String? = nil,
      channel: TicketChannel? = nil, status: TicketStatus? = nil
    ) {
      self.fromCustomer = fromCustomer
      self.customer = customer
      self.isPublic = isPublic
      self.body = body
      self.messageID = messageID
      self.channel = channel
      self.status = status
    }
  }

  /// What adding a comment did.
  public struct CommentResult: Sendable, Hashable {
    /// The ticket as it is now: the one commented on, or the follow-up a comment to a closed ticket made.
    public var ticket: Ticket
    public var comment: TicketComment
    /// True when the comment opened a follow-up ticket (its ticket was closed).
    public var openedFollowUp: Bool
    /// True when the message id was seen before: nothing was written.
    public var duplicate: Bool
  }

  /// Adds a comment. A customer comment reopens a pending, on-hold or solved ticket and starts the
  /// next-reply clock; one to a closed ticket opens a follow-up ticket linked to it. A public agent
  /// comment is the reply the reply clocks wait for. A message id seen before writes nothing.
  ///
  /// - Throws: ``CRMError`` — `failedPrecondition` for an agent comment on a closed ticket or a status
  ///   move the rules forbid; `staleEtag`, `notFound`.
  public func addComment(_ ticketID: UUID, _ new: NewComment, expectedVersion: Int64?, context: ChangeLog.Context)
    async throws -> CommentResult
  {
    let at = now()
    return try await database.withTenant(context.principal.tenantID) { connection in
      try Self.addComment(connection, ticketID, new, expectedVersion: expectedVersion, context: context, at: at, commit: true)
    }
  }

  /// `commit` ends the transaction with the comment's write (the caller writes nothing after it).
  static func addComment(
    _ connection: PostgresConnection, _ ticketID: UUID, _ new: NewComment, expectedVersion: Int64?,
    context: ChangeLog.Context, at: Timestamp, commit: Bool = false
  ) throws -> CommentResult {
    let principal = context.principal
    let tenant = principal.tenantID
    let commentID = UUID.v7()
    if let first = try Mechanics.claimRequestID(connection, method: "AddComment", context: context, recordID: commentID) {
      return try replayComment(connection, first, principal: principal)
    }
    if let messageID = new.messageID, let seen = try seenMessage(connection, messageID, tenant: tenant) {
      var result = try replayComment(connection, seen, principal: principal)
      result.duplicate = true
      return result
    }
    let current = try lock(connection, id: ticketID, expectedVersion: expectedVersion, principal: principal, allowClosed: true)
    if current.status == .closed {
      guard new.fromCustomer else {
        throw CRMError.failedPrecondition(
          "ticket #\(current.number) is closed; closed tickets are final (a customer writing to it opens a follow-up)")
      }
      var fields = current.fields
      fields.description = new.body
      fields.channel = new.channel ?? fields.channel
      fields.requester = new.customer ?? fields.requester
      fields.externalID = nil
      fields.assigneeID = try activeUser(connection, fields.assigneeID, tenant: tenant)
      let followUp = try create(
        connection, fields, opening: Opening(status: .new, author: .requester, messageID: new.messageID),
        followUpOf: current.id, method: "AddComment.followUp", context: ChangeLog.Context(principal: principal, requestID: nil),
        at: at)
      let comment = try connection.query(
        """
        SELECT \(unsafeSQL: TicketComment.columns) FROM ticket_comments
        WHERE tenant_id = \(tenant) AND ticket_id = \(followUp.id) ORDER BY created_at, id LIMIT 1
        """)
      return CommentResult(ticket: followUp, comment: try TicketComment(row: comment[0]), openedFollowUp: true, duplicate: false)
    }
    if let customer = new.customer, customer != current.fields.requester {
      // A customer other than the requester must exist and be in the caller's sight (comments carry
      // no foreign key to contacts and leads).
      try RecordAccess.requireVisible(connection, customer.link, principal: principal)
    }
    // A job's note (the system actor is no user) is crmd's own.
    let author: CommentAuthor =
      new.fromCustomer
      ? .customer(new.customer ?? current.fields.requester)
      : principal.userID == PoolStore.systemActor ? .system : .agent(principal.userID)
    let comment = TicketComment(
      id: commentID, ticketID: current.id, author: author, isPublic: new.fromCustomer || new.isPublic, body: new.body,
      messageID: new.messageID, channel: new.channel, createdAt: at)
    var next = current
    if comment.isFromCustomer {
      if let reopened = current.status.afterCustomerComment, reopened != current.status { try move(&next, to: reopened, at: at) }
      next.awaitingReplySince = current.awaitingReplySince ?? at
    } else if comment.isPublicAgentReply {
      next.firstResponseAt = current.firstResponseAt ?? at
      next.awaitingReplySince = nil
    }
    if let status = new.status {
      guard !new.fromCustomer else { throw CRMError.invalid("status", "only agents set a status with a comment") }
      try move(&next, to: status, at: at)
    } else if comment.isPublicAgentReply, next.status == .new {
      // An agent's public reply opens a new ticket.
      try move(&next, to: .open, at: at)
    }
    let note = FieldChange(
      field: "comment", oldValue: .null,
      newValue: .object([
        ("id", .string(comment.id.lowercasedString)), ("public", .bool(comment.isPublic)),
        ("author", .string(comment.isFromCustomer ? "customer" : "agent")),
      ]))
    let saved = try save(
      connection, next, over: current, context: context, at: at,
      note: comment.isFromCustomer ? "customer comment" : (comment.isPublic ? "agent reply" : "internal note"), notes: [note],
      extra: [comment.insert(tenant: tenant)] + messageIDRow(comment, tenant: tenant), always: true, commit: commit)
    return CommentResult(ticket: saved, comment: comment, openedFollowUp: false, duplicate: false)
  }

  /// A ticket's comments, oldest first, keyset-paginated; internal notes only for agents (every
  /// caller of this API is one, so all are returned).
  public func comments(of ticketID: UUID, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> Page<TicketComment>
  {
    let fingerprint = "comments|\(ticketID.lowercasedString)"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    return try await database.withTenant(principal.tenantID) { connection in
      guard try Mechanics.fetch(connection, id: ticketID, principal: principal) != nil else {
        throw Mechanics.notFound(ticketID)
      }
      var query: PostgresQuery = """
        SELECT \(unsafeSQL: TicketComment.columns) FROM ticket_comments
        WHERE tenant_id = \(principal.tenantID) AND ticket_id = \(ticketID)
        """
      if let token { query.append(" AND (created_at, id) > (\(token.key)::timestamptz, \(token.id))") }
      query.append(" ORDER BY created_at, id LIMIT \(pageSize + 1)")
      var comments = try connection.query(query).rows.map(TicketComment.init(row:))
      var next: String?
      if comments.count > pageSize {
        comments.removeLast()
        let last = comments[pageSize - 1]
        next = tokens.encode(PageToken(key: last.createdAt.postgresText ?? "", id: last.id, query: fingerprint))
      }
      return Page(items: comments, nextPageToken: next)
    }
  }

  // MARK: - Merge

  /// Merges `sources` into `target`: each source is closed with a pointer to the target and its clocks
  /// cancelled; its comments are carried over (marked with where they came from), its message ids
  /// move (later mail for it lands on the target), and its followers join the target's.
  ///
  /// - Throws: `failedPrecondition` when a ticket is closed or archived, `invalid` when the target is
  ///   among the sources.
  public func merge(_ sources: [UUID], into target: UUID, context: ChangeLog.Context) async throws -> Ticket {
    let principal = context.principal
    let tenant = principal.tenantID
    let at = now()
    if sources.contains(target) { throw CRMError.invalid("source_ids", "a ticket cannot be merged into itself") }
    return try await database.withTenant(tenant) { connection in
      if let first = try Mechanics.claimRequestID(connection, method: "MergeTickets", context: context, recordID: target) {
        return try Mechanics.replay(connection, id: first, principal: principal)
      }
      // Lock in id order so two merges over the same tickets cannot deadlock.
      var locked: [UUID: Ticket] = [:]
      for id in (sources + [target]).sorted(by: { $0.lowercasedString < $1.lowercasedString }) {
        locked[id] = try Self.lock(connection, id: id, expectedVersion: nil, principal: principal, edit: true)
      }
      var into = locked[target]!
      let original = into
      for sourceID in sources {
        let source = locked[sourceID]!
        var closed = source
        closed.mergedIntoID = target
        try Self.move(&closed, to: .closed, at: at)
        let carry: [PostgresQuery] = [
          """
          INSERT INTO ticket_comments (tenant_id, id, ticket_id, is_public, author_kind, author_user_id, author_contact_id,
            author_lead_id, body, channel, message_id, merged_from_ticket_id, created_at)
          SELECT tenant_id, crm_uuid_v7(), \(target), is_public, author_kind, author_user_id, author_contact_id, author_lead_id,
            body, channel, NULL, \(sourceID), created_at
          FROM ticket_comments WHERE tenant_id = \(tenant) AND ticket_id = \(sourceID)
          """,
          "UPDATE ticket_message_ids SET ticket_id = \(target) WHERE tenant_id = \(tenant) AND ticket_id = \(sourceID)",
          TicketComment(
            id: UUID.v7(), ticketID: sourceID, author: .system, isPublic: false,
            body: "Merged into ticket #\(original.number).", createdAt: at
          ).insert(tenant: tenant),
        ]
        _ = try Self.save(
          connection, closed, over: source, context: context, at: at, note: "merged into #\(original.number)", extra: carry,
          cancelClocks: true)
        for follower in source.fields.followerIDs where !into.fields.followerIDs.contains(follower) {
          if into.fields.followerIDs.count < TicketFields.maxFollowers { into.fields.followerIDs.append(follower) }
        }
      }
      let numbers = sources.compactMap { locked[$0]?.number }.map { "#\($0)" }.joined(separator: ", ")
      let noteComment = TicketComment(
        id: UUID.v7(), ticketID: target, author: .system, isPublic: false, body: "Merged in: \(numbers).", createdAt: at)
      let saved = try Self.save(
        connection, into, over: original, context: context, at: at, note: "merge",
        notes: [
          FieldChange(field: "merged_from", oldValue: .null, newValue: .array(sources.map { .string($0.lowercasedString) }))
        ], extra: [noteComment.insert(tenant: tenant)], always: true)
      return saved
    }
  }

  // MARK: - Helpers

  /// Locks a ticket for a change: any agent who sees it may work it. Archived tickets and (unless
  /// `allowClosed`) closed ones do not change. An `edit` (its fields, a merge) also waits for a pending
  /// approval request (docs/approvals.md); comments and SLA moves do not, so no customer reply is refused.
  static func lock(
    _ connection: PostgresConnection, id: UUID, expectedVersion: Int64?, principal: Principal, allowClosed: Bool = false,
    edit: Bool = false
  ) throws -> Ticket {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: Ticket.columns), \(ApprovalStore.lockColumn(.ticket, table: "tickets", principal: principal))
      FROM tickets WHERE tenant_id = \(principal.tenantID) AND id = \(id) FOR UPDATE
      """)
    guard let row = rows.first else { throw Mechanics.notFound(id) }
    let ticket = try Ticket(row: row)
    guard principal.canRead(.ticket, ownedBy: ticket.accessOwner) else { throw Mechanics.notFound(id) }
    if edit, let request = try row.decode("approval_lock", as: UUID?.self) { throw ApprovalStore.locked(.ticket, by: request) }
    if let expectedVersion, expectedVersion != ticket.version { throw CRMError.staleEtag(current: ticket.etag) }
    if ticket.archivedAt != nil {
      throw CRMError.failedPrecondition("ticket #\(ticket.number) is archived; restore it first")
    }
    if ticket.status == .closed, !allowClosed {
      throw CRMError.failedPrecondition("ticket #\(ticket.number) is closed; closed tickets are final")
    }
    return ticket
  }

  /// The requester contact's account when `fields` names none.
  static func defaultAccount(_ connection: PostgresConnection, _ fields: TicketFields, tenant: UUID) throws -> UUID? {
    if let account = fields.accountID { return account }
    guard case .contact(let contact) = fields.requester else { return nil }
    return try connection.query("SELECT account_id FROM contacts WHERE tenant_id = \(tenant) AND id = \(contact)")
      .first?.decode("account_id", as: UUID?.self)
  }

  /// The account's tier and tags, for policy conditions.
  static func accountFacts(_ connection: PostgresConnection, _ account: UUID?, tenant: UUID) throws
    -> (tier: String?, tags: Set<String>)
  {
    try accountFacts(from: connection.query(accountFactsQuery(account, tenant: tenant)))
  }

  /// The account's tier and tags (no rows without an account).
  static func accountFactsQuery(_ account: UUID?, tenant: UUID) -> PostgresQuery {
    "SELECT tier, tags FROM accounts WHERE tenant_id = \(tenant) AND id = \(account)"
  }

  static func accountFacts(from rows: PostgresResult) throws -> (tier: String?, tags: Set<String>) {
    guard let row = rows.first else { return (nil, []) }
    let tier: String = try row.decode("tier")
    return (tier == "unspecified" ? nil : tier, Set(try row.decode("tags", as: [String].self)))
  }

  /// `user` when it is an active user of the tenant, else `nil`.
  static func activeUser(_ connection: PostgresConnection, _ user: UUID?, tenant: UUID) throws -> UUID? {
    guard let user else { return nil }
    let active = try connection.query("SELECT is_active FROM users WHERE tenant_id = \(tenant) AND id = \(user)")
      .first?.decode("is_active", as: Bool.self)
    return active == true ? user : nil
  }

  /// Checks what a ticket names (only what differs from `old` when given): the requester, account and
  /// deals are in sight, the assignee and followers are active users, the group is a team.
  static func checkLinks(
    _ connection: PostgresConnection, _ fields: TicketFields, changed old: TicketFields?, principal: Principal
  )
    throws
  {
    let tenant = principal.tenantID
    var links: [RecordLink] = []
    if let requester = fields.requester, requester != old?.requester { links.append(requester.link) }
    if let account = fields.accountID, account != old?.accountID { links.append(RecordLink(type: .account, id: account)) }
    let oldDeals = Set(old?.opportunityIDs ?? [])
    for id in fields.opportunityIDs where !oldDeals.contains(id) { links.append(RecordLink(type: .opportunity, id: id)) }
    if !links.isEmpty { try RecordAccess.requireReadable(connection, links, principal: principal) }
    let oldLines = Set(old?.invoiceLines ?? [])
    let newLines = fields.invoiceLines.filter { !oldLines.contains($0) }
    for (invoice, lines) in Dictionary(grouping: newLines, by: \.invoiceID).sorted(by: { $0.key.uuidString < $1.key.uuidString })
    {
      // NOT_FOUND unless the caller sees the invoice's billing data.
      _ = try BillingStore.visibleID(connection, .invoices, .id(invoice), principal: principal)
      let wanted = lines.map(\.lineNumber).filter { $0 > 0 }
      guard !wanted.isEmpty else { continue }
      let found = Set(
        try connection.query(
          """
          SELECT line_number FROM invoice_lines
          WHERE tenant_id = \(tenant) AND invoice_id = \(invoice) AND line_number = ANY(\(wanted)::integer[])
          """
        ).rows.map { try $0.decode("line_number", as: Int.self) })
      if let missing = wanted.first(where: { !found.contains($0) }) {
        throw CRMError.invalid(
          "ticket.invoice_lines", "invoice \(invoice.lowercasedString) has no line \(missing)", reason: "NOT_FOUND")
      }
    }
    if let assignee = fields.assigneeID, assignee != old?.assigneeID,
      try activeUser(connection, assignee, tenant: tenant) == nil
    {
      throw CRMError.invalid("ticket.assignee_id", "no such active user", reason: "NOT_FOUND")
    }
    let newFollowers = fields.followerIDs.filter { !(old?.followerIDs.contains($0) ?? false) }
    if !newFollowers.isEmpty {
      let found: Int64 = try connection.query(
        "SELECT count(*) AS n FROM users WHERE tenant_id = \(tenant) AND id = ANY(\(newFollowers)::uuid[]) AND is_active"
      )[0].decode("n")
      if found != newFollowers.count {
        throw CRMError.invalid("ticket.follower_ids", "names a user that does not exist or is inactive", reason: "NOT_FOUND")
      }
    }
    if let group = fields.groupID, group != old?.groupID {
      let exists = try connection.query("SELECT 1 FROM teams WHERE tenant_id = \(tenant) AND id = \(group)").first != nil
      if !exists { throw CRMError.invalid("ticket.group_id", "no such team", reason: "NOT_FOUND") }
    }
  }

  static func messageIDRow(_ comment: TicketComment, tenant: UUID) -> [PostgresQuery] {
    guard let messageID = comment.messageID else { return [] }
    return [
      """
      INSERT INTO ticket_message_ids (tenant_id, message_id, ticket_id, comment_id)
      VALUES (\(tenant), \(messageID), \(comment.ticketID), \(comment.id)) ON CONFLICT DO NOTHING
      """
    ]
  }

  /// The comment a message id was recorded with, if it was seen before.
  static func seenMessage(_ connection: PostgresConnection, _ messageID: String, tenant: UUID) throws -> UUID? {
    try connection.query(
      "SELECT comment_id FROM ticket_message_ids WHERE tenant_id = \(tenant) AND message_id = \(messageID)"
    ).first?.decode("comment_id", as: UUID?.self)
  }

  /// The result a repeated comment request (or message) returns: the comment and its ticket now.
  static func replayComment(_ connection: PostgresConnection, _ commentID: UUID, principal: Principal) throws -> CommentResult {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: TicketComment.columns) FROM ticket_comments
      WHERE tenant_id = \(principal.tenantID) AND id = \(commentID)
      """)
    guard let row = rows.first else { throw CRMError.notFound("comment \(commentID.lowercasedString) not found") }
    let comment = try TicketComment(row: row)
    let ticket = try Mechanics.replay(connection, id: comment.ticketID, principal: principal)
    return CommentResult(ticket: ticket, comment: comment, openedFollowUp: false, duplicate: false)
  }
}
