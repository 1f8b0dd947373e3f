public import CRMCore
public import Foundation
import LibPQ

extension BillingStore {
  /// What opening a dispute needs besides the invoice.
  public struct DisputeOpening: Sendable, Hashable {
    /// The invoice lines contested; their amounts (with tax) make the dispute's amount.
    public var lineNumbers: [Int]
    /// The amount contested, when no lines are named.
    public var amount: Money?
    public var reason: String
    public var evidenceDue: CalendarDate?
    /// What the customer says; the ticket's description.
    public var description: String?
    /// Who raised it, when it was a contact.
    public var requesterContactID: UUID?

    /// An opening.
    public init(
      lineNumbers: [Int], amount: Money?, reason: String, evidenceDue: CalendarDate?, description: String?,
      requesterContactID: UUID?
    ) {
      self.lineNumbers = lineNumbers
      self.amount = amount
      self.reason = reason
      self.evidenceDue = evidenceDue
      self.description = description
      self.requesterContactID = requesterContactID
    }
  }

  static let disputeColumns = """
    id, invoice_id, account_id, ticket_id, array_to_string(line_numbers, ',') AS lines, currency, amount::text AS amount,
    reason, state, evidence_due, credit_note_id, resolved_at, version, created_at, updated_at
    """

  static func dispute(_ row: PostgresRow) throws -> Dispute {
    let currency: String = try row.decode("currency")
    let lines: String = try row.decode("lines")
    let state: String = try row.decode("state")
    return Dispute(
      id: try row.decode("id"), invoiceID: try row.decode("invoice_id"), accountID: try row.decode("account_id"),
      ticketID: try row.decode("ticket_id"), lineNumbers: lines.split(separator: ",").compactMap { Int($0) },
      amount: try BillingRow.money(row, "amount", currency: currency), reason: try row.decode("reason"),
      state: DisputeState(rawValue: state) ?? .needsResponse, evidenceDue: try row.decode("evidence_due"),
      creditNoteID: try row.decode("credit_note_id"), resolvedAt: try row.decode("resolved_at"),
      version: try row.decode("version"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }

  static func dispute(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool = false) throws -> Dispute {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: disputeColumns) FROM invoice_disputes
      WHERE tenant_id = \(tenant) AND id = \(id)\(unsafeSQL: lock ? " FOR UPDATE" : "")
      """)
    guard let row = rows.first else { throw CRMError.notFound("dispute \(id.lowercasedString) not found") }
    return try dispute(row)
  }

  /// Opens a dispute on an invoice the caller may see: a ticket of type dispute (its SLA policies
  /// apply like any ticket's) on the invoice's account, and the contested amount held out of overdue,
  /// aging and credit hold until it is resolved.
  ///
  /// - Throws: `notFound` for an invoice out of sight; `invalid` for lines it does not have or an
  ///   amount past what it owes; `failedPrecondition` for a draft or void invoice.
  public func openDispute(_ key: Key, _ opening: DisputeOpening, context: ChangeLog.Context, tickets: TicketStore)
    async throws -> (dispute: Dispute, ticket: Ticket)
  {
    let principal = context.principal
    let tenant = principal.tenantID
    let at = tickets.now()
    return try await database.withTenant(tenant) { connection in
      let id = try Self.visibleID(connection, .invoices, key, principal: principal)
      let rows = try connection.query(
        """
        SELECT number, currency, state, account_id, (balance - amount_disputed)::text AS open_amount FROM invoices
        WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE
        """)
      let row = rows[0]
      let currency: String = try row.decode("currency")
      let number: String = try row.decode("number")
      let state: String = try row.decode("state")
      let account: UUID = try row.decode("account_id")
      guard state != InvoiceState.draft.rawValue, state != InvoiceState.void.rawValue else {
        throw CRMError.failedPrecondition("invoice \(number) is \(state); only issued invoices can be disputed")
      }
      var amount: Money
      if opening.lineNumbers.isEmpty {
        guard let given = opening.amount else {
          throw CRMError.invalid("line_numbers", "name the lines disputed, or the amount", reason: "REQUIRED")
        }
        guard given.currencyCode == currency else {
          throw CRMError.invalid("amount.currency_code", "must be the invoice's currency, \(currency)")
        }
        amount = given
      } else {
        let lines = try connection.query(
          """
          SELECT line_number, (amount + tax)::text AS amount FROM invoice_lines
          WHERE tenant_id = \(tenant) AND invoice_id = \(id) AND line_number = ANY(\(opening.lineNumbers.map(String.init))::integer[])
          """)
        let found = Set(try lines.rows.map { try $0.decode("line_number", as: Int.self) })
        if let missing = opening.lineNumbers.first(where: { !found.contains($0) }) {
          throw CRMError.invalid("line_numbers", "invoice \(number) has no line \(missing)")
        }
        amount = try lines.rows.reduce(Money.zero(currency)) { $0.adding(try BillingRow.money($1, "amount", currency: currency)) }
        guard amount.isPositive else { throw CRMError.invalid("line_numbers", "the lines named add up to nothing to dispute") }
      }
      let open = try BillingRow.money(row, "open_amount", currency: currency)
      guard !amount.isGreater(than: open) else {
        throw CRMError.invalid(
          opening.lineNumbers.isEmpty ? "amount" : "line_numbers",
          "invoice \(number) has \(open.formatted) not yet disputed or paid; \(amount.formatted) cannot be disputed")
      }
      var fields = TicketFields(subject: "Dispute: invoice \(number) (\(amount.formatted), \(opening.reason))")
      fields.description =
        opening.description ?? "The customer disputes \(amount.formatted) of invoice \(number) (\(opening.reason))."
      fields.type = .dispute
      fields.priority = .high
      fields.channel = .api
      fields.accountID = account
      fields.requester = opening.requesterContactID.map(TicketRequester.contact)
      fields.tags = ["dispute"]
      fields.invoiceLines =
        opening.lineNumbers.isEmpty
        ? [InvoiceLineRef(invoiceID: id, lineNumber: 0)]
        : opening.lineNumbers.map { InvoiceLineRef(invoiceID: id, lineNumber: $0) }
      let ticket = try TicketStore.create(
        connection, fields, opening: .init(author: opening.requesterContactID == nil ? .agent : .requester),
        followUpOf: nil, method: "OpenDispute", context: context, at: at)
      let disputeID = UUID.v7()
      let stored = try Self.dispute(
        connection.query(
          """
          INSERT INTO invoice_disputes (
            tenant_id, id, invoice_id, account_id, ticket_id, line_numbers, currency, amount, reason, state, evidence_due,
            created_by, updated_by)
          VALUES (
            \(tenant), \(disputeID), \(id), \(account), \(ticket.id), \(opening.lineNumbers.map(String.init))::integer[], \(currency),
            \(amount.numeral)::numeric, \(opening.reason), 'needs_response', \(opening.evidenceDue), \(principal.userID),
            \(principal.userID))
          RETURNING \(unsafeSQL: Self.disputeColumns)
          """)[0])
      try Self.log(
        connection, context: context, type: .dispute, id: disputeID, old: nil, new: stored.snapshot, order: Dispute.changeLogOrder
      )
      return (stored, ticket)
    }
  }

  /// The dispute, if the caller may see its account's billing data.
  public func dispute(_ id: UUID, principal: Principal) async throws -> Dispute {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.requireVisibleDispute(connection, id, principal: principal)
      return try Self.dispute(connection, id: id, tenant: principal.tenantID)
    }
  }

  static func requireVisibleDispute(_ connection: PostgresConnection, _ id: UUID, principal: Principal) throws {
    let link = RecordLink(type: .dispute, id: id)
    guard try RecordAccess.states(connection, [link], principal: principal)[link]?.visible == true else {
      throw CRMError.notFound("dispute \(id.lowercasedString) not found")
    }
  }

  /// The disputes of an account (or an invoice), newest first, optionally only open ones.
  public func disputes(
    accountID: UUID?, invoiceID: UUID?, openOnly: Bool, pageSize: Int, pageToken: String, principal: Principal
  ) async throws -> Page<Dispute> {
    let tenant = principal.tenantID
    let fingerprint = "disputes|\(accountID?.lowercasedString ?? "")|\(invoiceID?.lowercasedString ?? "")|\(openOnly)"
    let tokens = try await database.pageTokens()
    var conditions = Self.scope(.invoices, accountID: accountID, includeChildren: false, principal: principal)
    if let invoiceID { conditions.append(" AND invoice_id = \(invoiceID)") }
    if openOnly { conditions.append(" AND state IN ('needs_response', 'under_review')") }
    if let token = try tokens.decode(pageToken, query: fingerprint) {
      conditions.append(" AND (created_at, id) < (\(token.key)::timestamptz, \(token.id))")
    }
    let query: PostgresQuery = """
      SELECT \(unsafeSQL: Self.disputeColumns) FROM invoice_disputes WHERE \(conditions)
      ORDER BY created_at DESC, id DESC LIMIT \(pageSize + 1)
      """
    return try await database.withTenant(tenant) { connection in
      var items = try connection.query(query).rows.map(Self.dispute)
      var next: String?
      if items.count > pageSize {
        items.removeLast()
        let last = items[pageSize - 1]
        next = tokens.encode(PageToken(key: last.createdAt.postgresText ?? "", id: last.id, query: fingerprint))
      }
      return Page(items: items, nextPageToken: next)
    }
  }

  /// Moves an open dispute on: to `under_review` (evidence submitted), or to its outcome — `won` or
  /// `withdrawn` release the amount; `lost` issues a credit note for it (an adjustment of what the
  /// invoice still owes, a refund of what it was paid beyond that). The ticket gets an internal note
  /// and, on an outcome, is solved (a ticket closed meanwhile is left as it is).
  public func moveDispute(
    _ id: UUID, to state: DisputeState, note: String?, expectedVersion: Int64?, context: ChangeLog.Context,
    tickets: TicketStore
  ) async throws -> Dispute {
    let principal = context.principal
    let tenant = principal.tenantID
    let at = tickets.now()
    return try await database.withTenant(tenant) { connection in
      try Self.requireVisibleDispute(connection, id, principal: principal)
      let current = try Self.dispute(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      guard current.state.isOpen else {
        throw CRMError.failedPrecondition("the dispute is \(current.state.rawValue); a resolved dispute is final")
      }
      guard state != .needsResponse else { throw CRMError.failedPrecondition("a dispute never returns to needs_response") }
      guard state != current.state else { return current }
      var creditNote: UUID?
      if state == .lost {
        creditNote = try Self.creditLostDispute(connection, current, on: at.utcDate, context: context)
      }
      let next = try Self.dispute(
        connection.query(
          """
          UPDATE invoice_disputes SET state = \(state.rawValue), credit_note_id = \(creditNote),
            resolved_at = \(state.isOpen ? nil : at), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id)
          RETURNING \(unsafeSQL: Self.disputeColumns)
          """)[0])
      try Self.log(
        connection, context: context, type: .dispute, id: id, old: current.snapshot, new: next.snapshot,
        order: Dispute.changeLogOrder)
      let outcome =
        state == .underReview
        ? "Dispute under review: evidence submitted."
        : "Dispute \(state.rawValue)" + (state == .lost ? ": a credit note of \(current.amount.formatted) was issued." : ".")
      // The ticket hears of it unless it was closed meanwhile (closed tickets are final; the
      // dispute's own history has the move).
      let status = try connection.query(
        "SELECT status FROM tickets WHERE tenant_id = \(tenant) AND id = \(current.ticketID)"
      ).first.map { try $0.decode("status", as: String.self) }
      if status != TicketStatus.closed.rawValue {
        _ = try TicketStore.addComment(
          connection, current.ticketID,
          .init(
            fromCustomer: false, isPublic: false, body: [outcome, note].compactMap { $0 }.joined(separator: "\n\n"),
            status: state.isOpen ? nil : .solved),
          expectedVersion: nil, context: context, at: at)
      }
      return next
    }
  }

  /// Issues what a lost dispute owes the customer: a credit note adjusting what the invoice still
  /// owes, and one refunding what it was paid beyond that (a chargeback); keyed by the dispute (source
  /// `crm`), so each is issued once. Returns the first.
  static func creditLostDispute(
    _ connection: PostgresConnection, _ dispute: Dispute, on day: CalendarDate, context: ChangeLog.Context
  ) throws -> UUID {
    let tenant = context.principal.tenantID
    let row = try connection.query(
      """
      SELECT (balance - amount_disputed + \(dispute.amount.numeral)::numeric)::text AS owed,
        (amount_paid - amount_refunded)::text AS refundable
      FROM invoices WHERE tenant_id = \(tenant) AND id = \(dispute.invoiceID) FOR UPDATE
      """)[0]
    let currency = dispute.amount.currencyCode
    let owed = try BillingRow.money(row, "owed", currency: currency)
    let refundable = try BillingRow.money(row, "refundable", currency: currency)
    let adjust = dispute.amount.isGreater(than: owed) ? owed : dispute.amount
    let refund = dispute.amount.subtracting(adjust)
    guard !refund.isGreater(than: refundable) else {
      throw CRMError.failedPrecondition(
        "the invoice owes \(owed.formatted) and was paid \(refundable.formatted) net of refunds: "
          + "less than the \(dispute.amount.formatted) disputed")
    }
    var issued: [UUID] = []
    for (kind, amount) in [(CreditNoteKind.adjustment, adjust), (.refund, refund)] where amount.isPositive {
      let key = "dispute-" + dispute.id.lowercasedString + (kind == .refund ? "-refund" : "")
      issued.append(
        try issueCreditNote(
          connection, account: dispute.accountID, invoice: dispute.invoiceID, amount: amount, kind: kind,
          reason: "dispute_lost", key: key, number: key.uppercased(), on: day, context: context
        ).id)
    }
    return issued[0]
  }

  /// Issues a credit note of crmd's own (source `crm`, keyed by `key`) allocated whole to one
  /// invoice, and logs it: what a lost dispute and a write-off leave behind.
  static func issueCreditNote(
    _ connection: PostgresConnection, account: UUID, invoice: UUID, amount: Money, kind: CreditNoteKind, reason: String,
    key: String, number: String, on day: CalendarDate, context: ChangeLog.Context
  ) throws -> CreditNote {
    let tenant = context.principal.tenantID
    let id = UUID.v7()
    try connection.query(
      """
      INSERT INTO credit_notes (tenant_id, id, source_system, external_id, source_version, account_id, number, currency, amount,
        issue_date, kind, reason, state, created_by, updated_by)
      VALUES (\(tenant), \(id), 'crm', \(key), 1, \(account), \(String(number.prefix(100))), \(amount.currencyCode),
        \(amount.numeral)::numeric, \(day), \(kind.rawValue), \(reason), 'issued', \(context.principal.userID),
        \(context.principal.userID))
      """)
    try connection.query(
      """
      INSERT INTO credit_note_allocations (tenant_id, credit_note_id, invoice_id, currency, amount)
      VALUES (\(tenant), \(id), \(invoice), \(amount.currencyCode), \(amount.numeral)::numeric)
      """)
    let note = try creditNote(connection, id: id, tenant: tenant)
    try log(
      connection, context: context, type: .creditNote, id: id, old: nil, new: note.snapshot, order: CreditNote.changeLogOrder)
    return note
  }
}
