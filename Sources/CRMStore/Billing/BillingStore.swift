public import CRMCore
public import Foundation
import LibPQ

/// SQL for the billing link: invoices, payments and credit notes pushed by billing systems, and
/// reads of them for whoever may see an account's billing data.
///
/// A push is an upsert keyed by (source system, external id) in one transaction: the stored fact is
/// locked, the source's versions compared (an older or equal one writes nothing), the fact and its
/// lines or allocations replaced, and one change-log entry written. What invoices have been paid,
/// credited and refunded are kept by migration 0050's triggers from the allocations; the checks here
/// name the invoice an allocation would overpay, and the database's checks stand behind them.
public struct BillingStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp

  /// A store over `database`; `now` decides what is overdue today.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// How a read names a fact: our id, or the source's.
  public enum Key: Sendable, Hashable {
    case id(UUID)
    case source(system: String, externalID: String)
  }

  /// Today (UTC) by the store's clock: the day `overdue` is judged on when a caller names none.
  public var today: CalendarDate { now().utcDate }

  static let constraintErrors: [String: CRMError] = [
    "invoices_not_overpaid": .failedPrecondition(
      "payments and credit notes already allocate more to this invoice than the new total; push the credit note or "
        + "the corrected payments first"),
    "invoices_refunds_within_paid": .failedPrecondition(
      "this would leave an invoice refunded more than it was paid; push the refund's credit note changes first"),
    "payment_allocations_same_currency": .failedPrecondition(
      "payments allocated to this invoice are in its old currency; an invoice with allocations keeps its currency"),
    "credit_note_allocations_same_currency": .failedPrecondition(
      "credit notes allocated to this invoice are in its old currency; an invoice with allocations keeps its currency"),
    "payments_not_overallocated": .invalid("payment.allocations", "allocate at most the payment's amount in all"),
    "credit_notes_not_overallocated": .invalid("credit_note.allocations", "allocate at most the credit note's amount in all"),
  ]

  // MARK: - Invoices

  /// Creates or updates the invoice the source names; its lines are replaced.
  public func upsertInvoice(_ fields: InvoiceFields, context: ChangeLog.Context) async throws -> (
    invoice: Invoice, outcome: UpsertOutcome
  ) {
    try context.principal.requireBillingWriter()
    return try await database.withTenant(context.principal.tenantID) { connection in
      try Self.upsertInvoice(connection, fields, context: context)
    }
  }

  /// ``upsertInvoice(_:context:)`` inside the caller's transaction (an import batch's), the caller's
  /// permission already checked; database checks that fail come back as the errors the RPC gives.
  static func upsertInvoice(_ connection: PostgresConnection, _ fields: InvoiceFields, context: ChangeLog.Context) throws -> (
    invoice: Invoice, outcome: UpsertOutcome
  ) {
    let principal = context.principal
    let tenant = principal.tenantID
    return try translatingConstraints(Self.constraintErrors) {
      let account = try Self.account(connection, fields.account, system: fields.source.system, tenant: tenant)
      let table = Table.invoices
      let claim = try Self.claim(connection, table, source: fields.source, tenant: tenant) { id in
        """
        INSERT INTO invoices (
          tenant_id, id, source_system, external_id, source_version, account_id, number, currency, issue_date, due_date,
          payment_terms, vendor_status, state, subtotal, tax, total, has_instalments, created_by, updated_by)
        VALUES (
          \(tenant), \(id), \(fields.source.system), \(fields.source.externalID), \(fields.source.version), \(account),
          \(fields.number), \(fields.currencyCode), \(fields.issueDate), \(fields.dueDate), \(fields.paymentTerms),
          \(fields.vendorStatus), \(fields.state.rawValue), \(fields.subtotal.numeral)::numeric, \(fields.tax.numeral)::numeric,
          \(fields.total.numeral)::numeric, \(!fields.instalments.isEmpty), \(principal.userID), \(principal.userID))
        ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
        RETURNING id
        """
      }
      var old: Invoice?
      switch claim {
      case .current(let id, let outcome):
        return (try Self.invoice(connection, id: id, tenant: tenant), outcome)
      case .update(let id):
        old = try Self.invoice(connection, id: id, tenant: tenant)
        try connection.query(
          """
          UPDATE invoices SET source_version = \(fields.source.version), account_id = \(account), number = \(fields.number),
            currency = \(fields.currencyCode), issue_date = \(fields.issueDate), due_date = \(fields.dueDate),
            payment_terms = \(fields.paymentTerms), vendor_status = \(fields.vendorStatus), state = \(fields.state.rawValue),
            subtotal = \(fields.subtotal.numeral)::numeric, tax = \(fields.tax.numeral)::numeric,
            total = \(fields.total.numeral)::numeric, has_instalments = \(!fields.instalments.isEmpty), version = version + 1,
            updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id)
          """)
        try connection.query("DELETE FROM invoice_lines WHERE tenant_id = \(tenant) AND invoice_id = \(id)")
        try connection.query("DELETE FROM invoice_instalments WHERE tenant_id = \(tenant) AND invoice_id = \(id)")
      case .created:
        break
      }
      let id = claim.id
      if !fields.lines.isEmpty {
        try connection.query(
          """
          INSERT INTO invoice_lines (
            tenant_id, invoice_id, line_number, external_id, kind, description, product, metric, quantity, unit, unit_price,
            amount, tax, period_start, period_end)
          SELECT \(tenant), \(id), l.line_number, l.external_id, l.kind, l.description, l.product, l.metric,
            l.quantity::numeric, l.unit, l.unit_price::numeric, l.amount::numeric, l.tax::numeric, l.period_start::date,
            l.period_end::date
          FROM jsonb_to_recordset(\(StoredJSON.encode(fields.lines.map(\.stored)))::jsonb) AS l (
            line_number integer, external_id text, kind text, description text, product text, metric text, quantity text,
            unit text, unit_price text, amount text, tax text, period_start text, period_end text)
          """)
      }
      if !fields.instalments.isEmpty {
        let plan = fields.instalments
        try connection.query(
          """
          INSERT INTO invoice_instalments (tenant_id, invoice_id, number, due_date, amount)
          SELECT \(tenant), \(id), p.number, p.due_date, p.amount::numeric
          FROM unnest(\(plan.map(\.number))::integer[], \(plan.map(\.dueDate))::date[], \(plan.map(\.amount.numeral))::text[])
            AS p (number, due_date, amount)
          """)
        try connection.query("SELECT crm_settle_instalments(\(tenant), \(id))")
      }
      let invoice = try Self.invoice(connection, id: id, tenant: tenant)
      try Self.log(
        connection, context: context, type: .invoice, id: id, old: old?.snapshot, new: invoice.snapshot,
        order: Invoice.changeLogOrder)
      if fields.state == .open || fields.state == .uncollectible { try Self.markDunningStale(connection, tenant: tenant) }
      return (invoice, old == nil ? .created : .updated)
    }
  }

  /// The invoice with its lines, if the caller may see its account's billing data.
  public func invoice(_ key: Key, principal: Principal) async throws -> Invoice {
    try await database.withTenant(principal.tenantID) { connection in
      let id = try Self.visibleID(connection, .invoices, key, principal: principal)
      return try Self.invoice(connection, id: id, tenant: principal.tenantID)
    }
  }

  static func invoice(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> Invoice {
    let rows = try connection.query(
      "SELECT \(unsafeSQL: Invoice.columns) FROM invoices WHERE tenant_id = \(tenant) AND id = \(id)")
    guard let row = rows.first else { throw CRMError.notFound("invoice \(id.lowercasedString) not found") }
    let currency: String = try row.decode("currency")
    let lines = try connection.query(
      """
      SELECT \(unsafeSQL: InvoiceLine.columns) FROM invoice_lines
      WHERE tenant_id = \(tenant) AND invoice_id = \(id) ORDER BY line_number
      """
    ).rows.map { try InvoiceLine(row: $0, currency: currency) }
    let instalments = try connection.query(
      """
      SELECT number, due_date, amount::text AS amount, owed::text AS owed, collectible::text AS collectible
      FROM invoice_instalments WHERE tenant_id = \(tenant) AND invoice_id = \(id) ORDER BY number
      """
    ).rows.map { row in
      InvoiceInstalment(
        number: try row.decode("number"), dueDate: try row.decode("due_date"),
        amount: try BillingRow.money(row, "amount", currency: currency),
        owed: try BillingRow.money(row, "owed", currency: currency),
        collectible: try BillingRow.money(row, "collectible", currency: currency))
    }
    return try Invoice(row: row, lines: lines, instalments: instalments)
  }

  /// Which invoices a list shows, in which order.
  public struct InvoiceQuery: Sendable, Hashable {
    public enum Order: String, Sendable, Hashable {
      /// Newest issue date first.
      case issueDescending = "issue"
      /// Earliest due date first.
      case dueAscending = "due"
    }

    public var accountID: UUID?
    /// With `accountID`: also every account below it.
    public var includeChildren = false
    public var states: [InvoiceState] = []
    /// Only invoices owed past their due date on this day.
    public var overdueOn: CalendarDate?
    public var dueFrom: CalendarDate?
    public var dueTo: CalendarDate?
    public var currencyCode: String?
    /// Only invoices with an open dispute.
    public var disputed = false
    public var order: Order = .issueDescending

    /// A query; everything optional.
    public init() {}

    var fingerprint: String {
      [
        "invoices", accountID?.lowercasedString, String(includeChildren), states.map(\.rawValue).joined(separator: ","),
        overdueOn?.description, dueFrom?.description, dueTo?.description, currencyCode, String(disputed), order.rawValue,
      ].map { $0 ?? "" }.joined(separator: "|")
    }
  }

  /// One keyset page of the invoices the caller may see (without their lines).
  public func invoices(_ query: InvoiceQuery, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> Page<Invoice>
  {
    let tenant = principal.tenantID
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: query.fingerprint)
    var conditions = Self.scope(
      .invoices, accountID: query.accountID, includeChildren: query.includeChildren, principal: principal)
    if !query.states.isEmpty { conditions.append(" AND state = ANY(\(query.states.map(\.rawValue))::text[])") }
    if let day = query.overdueOn {
      conditions.append(
        " AND state = ANY(\(InvoiceState.collectible.map(\.rawValue))::text[]) AND collect_due < \(day) AND balance > amount_disputed"
      )
    }
    if let from = query.dueFrom { conditions.append(" AND due_date >= \(from)") }
    if let to = query.dueTo { conditions.append(" AND due_date <= \(to)") }
    if let currency = query.currencyCode { conditions.append(" AND currency = \(currency)") }
    if query.disputed { conditions.append(" AND amount_disputed > 0") }
    let (column, direction) = query.order == .issueDescending ? ("issue_date", "DESC") : ("due_date", "ASC")
    if let token {
      guard let day = CalendarDate(token.key) else {
        throw CRMError.invalid("page_token", "is malformed", reason: "INVALID_FORMAT")
      }
      conditions.append(" AND (\(unsafeSQL: column), id) \(unsafeSQL: direction == "DESC" ? "<" : ">") (\(day), \(token.id))")
    }
    let read: PostgresQuery = """
      SELECT \(unsafeSQL: Invoice.columns), \(unsafeSQL: column)::text AS sort_key FROM invoices WHERE \(conditions)
      ORDER BY \(unsafeSQL: column) \(unsafeSQL: direction), id \(unsafeSQL: direction) LIMIT \(pageSize + 1)
      """
    return try await database.withTenant(tenant) { connection in
      let rows = try connection.query(read)
      var invoices = try rows.rows.map { try Invoice(row: $0, lines: []) }
      var next: String?
      if invoices.count > pageSize {
        invoices.removeLast()
        let key: String = try rows[pageSize - 1].decode("sort_key")
        next = tokens.encode(PageToken(key: key, id: invoices[pageSize - 1].id, query: query.fingerprint))
      }
      return Page(items: invoices, nextPageToken: next)
    }
  }

  // MARK: - Payments and credit notes

  /// Creates or updates the payment the source names; its allocations are replaced.
  ///
  /// - Throws: `failedPrecondition` naming an invoice an allocation would overpay (nothing is
  ///   written), or one the source has not pushed yet; `notFound` for an unknown invoice id.
  public func upsertPayment(_ fields: PaymentFields, context: ChangeLog.Context) async throws -> (
    payment: Payment, outcome: UpsertOutcome
  ) {
    try context.principal.requireBillingWriter()
    return try await database.withTenant(context.principal.tenantID) { connection in
      try Self.upsertPayment(connection, fields, context: context)
    }
  }

  /// ``upsertPayment(_:context:)`` inside the caller's transaction (an import batch's), the caller's
  /// permission already checked; database checks that fail come back as the errors the RPC gives.
  static func upsertPayment(_ connection: PostgresConnection, _ fields: PaymentFields, context: ChangeLog.Context) throws -> (
    payment: Payment, outcome: UpsertOutcome
  ) {
    let principal = context.principal
    let tenant = principal.tenantID
    return try translatingConstraints(Self.constraintErrors) {
      let account = try Self.account(connection, fields.account, system: fields.source.system, tenant: tenant)
      let claim = try Self.claim(connection, .payments, source: fields.source, tenant: tenant) { id in
        """
        INSERT INTO payments (
          tenant_id, id, source_system, external_id, source_version, account_id, currency, amount, received_on, method,
          reference, state, created_by, updated_by)
        VALUES (
          \(tenant), \(id), \(fields.source.system), \(fields.source.externalID), \(fields.source.version), \(account),
          \(fields.amount.currencyCode), \(fields.amount.numeral)::numeric, \(fields.receivedOn), \(fields.method),
          \(fields.reference), \(fields.state.rawValue), \(principal.userID), \(principal.userID))
        ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
        RETURNING id
        """
      }
      var old: Payment?
      switch claim {
      case .current(let id, let outcome):
        return (try Self.payment(connection, id: id, tenant: tenant), outcome)
      case .update(let id):
        let stored = try Self.payment(connection, id: id, tenant: tenant)
        old = stored
        let update: PostgresQuery = """
          UPDATE payments SET source_version = \(fields.source.version), account_id = \(account),
            currency = \(fields.amount.currencyCode), amount = \(fields.amount.numeral)::numeric,
            received_on = \(fields.receivedOn), method = \(fields.method), reference = \(fields.reference),
            state = \(fields.state.rawValue), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id)
          """
        // Ordered so that no statement leaves a check broken on the way: the allocations are
        // replaced in one statement (an invoice refunded from this payment never looks unpaid),
        // before the payment shrinks or after it grows.
        let sum = fields.allocations.reduce(Money.zero(fields.amount.currencyCode)) { $0.adding($1.amount) }
        func allocate(_ allocations: [Allocation], replacing: Bool) throws {
          try Self.allocate(
            connection, .payments, id: id, allocations, system: fields.source.system, refund: false, replacing: replacing,
            field: "payment.allocations", tenant: tenant)
        }
        if stored.fields.amount.currencyCode != fields.amount.currencyCode {
          // The allocations name the payment with its currency: they go before it changes.
          try allocate([], replacing: true)
          try connection.query(update)
          try allocate(fields.allocations, replacing: false)
        } else if sum.isGreater(than: stored.fields.amount) {
          try connection.query(update)
          try allocate(fields.allocations, replacing: true)
        } else {
          try allocate(fields.allocations, replacing: true)
          try connection.query(update)
        }
      case .created(let id):
        try Self.allocate(
          connection, .payments, id: id, fields.allocations, system: fields.source.system, refund: false, replacing: false,
          field: "payment.allocations", tenant: tenant)
      }
      let id = claim.id
      let payment = try Self.payment(connection, id: id, tenant: tenant)
      try Self.log(
        connection, context: context, type: .payment, id: id, old: old?.snapshot, new: payment.snapshot,
        order: Payment.changeLogOrder)
      return (payment, old == nil ? .created : .updated)
    }
  }

  /// Creates or updates the credit note the source names; its allocations are replaced.
  public func upsertCreditNote(_ fields: CreditNoteFields, context: ChangeLog.Context) async throws -> (
    creditNote: CreditNote, outcome: UpsertOutcome
  ) {
    let principal = context.principal
    try principal.requireBillingWriter()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try translatingConstraints(Self.constraintErrors) {
        let account = try Self.account(connection, fields.account, system: fields.source.system, tenant: tenant)
        let claim = try Self.claim(connection, .creditNotes, source: fields.source, tenant: tenant) { id in
          """
          INSERT INTO credit_notes (
            tenant_id, id, source_system, external_id, source_version, account_id, number, currency, amount, issue_date, kind,
            reason, state, created_by, updated_by)
          VALUES (
            \(tenant), \(id), \(fields.source.system), \(fields.source.externalID), \(fields.source.version), \(account),
            \(fields.number), \(fields.amount.currencyCode), \(fields.amount.numeral)::numeric, \(fields.issueDate),
            \(fields.kind.rawValue), \(fields.reason), \(fields.state.rawValue), \(principal.userID), \(principal.userID))
          ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
          RETURNING id
          """
        }
        var old: CreditNote?
        switch claim {
        case .current(let id, let outcome):
          return (try Self.creditNote(connection, id: id, tenant: tenant), outcome)
        case .update(let id):
          old = try Self.creditNote(connection, id: id, tenant: tenant)
          try connection.query("DELETE FROM credit_note_allocations WHERE tenant_id = \(tenant) AND credit_note_id = \(id)")
          try connection.query(
            """
            UPDATE credit_notes SET source_version = \(fields.source.version), account_id = \(account),
              number = \(fields.number), currency = \(fields.amount.currencyCode), amount = \(fields.amount.numeral)::numeric,
              issue_date = \(fields.issueDate), kind = \(fields.kind.rawValue), reason = \(fields.reason),
              state = \(fields.state.rawValue), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
            WHERE tenant_id = \(tenant) AND id = \(id)
            """)
        case .created:
          break
        }
        let id = claim.id
        // A credit note's old allocations went first (that only raises what invoices owe).
        try Self.allocate(
          connection, .creditNotes, id: id, fields.allocations, system: fields.source.system, refund: fields.kind == .refund,
          replacing: false, field: "credit_note.allocations", tenant: tenant)
        let note = try Self.creditNote(connection, id: id, tenant: tenant)
        try Self.log(
          connection, context: context, type: .creditNote, id: id, old: old?.snapshot, new: note.snapshot,
          order: CreditNote.changeLogOrder)
        return (note, old == nil ? .created : .updated)
      }
    }
  }

  /// The payment with its allocations, if the caller may see its account's billing data.
  public func payment(_ key: Key, principal: Principal) async throws -> Payment {
    try await database.withTenant(principal.tenantID) { connection in
      let id = try Self.visibleID(connection, .payments, key, principal: principal)
      return try Self.payment(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// The credit note with its allocations, if the caller may see its account's billing data.
  public func creditNote(_ key: Key, principal: Principal) async throws -> CreditNote {
    try await database.withTenant(principal.tenantID) { connection in
      let id = try Self.visibleID(connection, .creditNotes, key, principal: principal)
      return try Self.creditNote(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// One keyset page of the payments the caller may see, newest received first.
  public func payments(accountID: UUID?, includeChildren: Bool, pageSize: Int, pageToken: String, principal: Principal)
    async throws -> Page<Payment>
  {
    let fingerprint = "payments|\(accountID?.lowercasedString ?? "")|\(includeChildren)"
    let tokens = try await database.pageTokens()
    var conditions = Self.scope(.payments, accountID: accountID, includeChildren: includeChildren, principal: principal)
    if let token = try tokens.decode(pageToken, query: fingerprint) {
      guard let day = CalendarDate(token.key) else {
        throw CRMError.invalid("page_token", "is malformed", reason: "INVALID_FORMAT")
      }
      conditions.append(" AND (received_on, id) < (\(day), \(token.id))")
    }
    let read: PostgresQuery = """
      SELECT \(unsafeSQL: Payment.columns) FROM payments WHERE \(conditions)
      ORDER BY received_on DESC, id DESC LIMIT \(pageSize + 1)
      """
    return try await database.withTenant(principal.tenantID) { connection in
      let rows = try connection.query(read)
      let allocations = try Self.allocations(
        connection, .payments, of: try rows.rows.map { try $0.decode("id", as: UUID.self) }, tenant: principal.tenantID)
      var payments = try rows.rows.map { row in
        try Payment(row: row, allocations: allocations[try row.decode("id", as: UUID.self)] ?? [])
      }
      var next: String?
      if payments.count > pageSize {
        payments.removeLast()
        let last = payments[pageSize - 1]
        next = tokens.encode(PageToken(key: last.fields.receivedOn.description, id: last.id, query: fingerprint))
      }
      return Page(items: payments, nextPageToken: next)
    }
  }

  static func payment(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> Payment {
    let rows = try connection.query(
      "SELECT \(unsafeSQL: Payment.columns) FROM payments WHERE tenant_id = \(tenant) AND id = \(id)")
    guard let row = rows.first else { throw CRMError.notFound("payment \(id.lowercasedString) not found") }
    return try Payment(row: row, allocations: try allocations(connection, .payments, of: [id], tenant: tenant)[id] ?? [])
  }

  static func creditNote(_ connection: PostgresConnection, id: UUID, tenant: UUID) throws -> CreditNote {
    let rows = try connection.query(
      "SELECT \(unsafeSQL: CreditNote.columns) FROM credit_notes WHERE tenant_id = \(tenant) AND id = \(id)")
    guard let row = rows.first else { throw CRMError.notFound("credit note \(id.lowercasedString) not found") }
    return try CreditNote(row: row, allocations: try allocations(connection, .creditNotes, of: [id], tenant: tenant)[id] ?? [])
  }

  // MARK: - The account's timeline

  /// The change-log entries of an account's invoices, payments, credit notes, disputes and collection
  /// (promises, escalations, write-offs), newest first after the keyset position, when the caller may
  /// see its billing data; none otherwise.
  static func timelineEntries(
    _ connection: PostgresConnection, account: UUID, after: (time: Timestamp, key: String)?, limit: Int, principal: Principal
  ) throws -> [ChangeEntry] {
    guard try billingReadable(connection, account: account, principal: principal) else { return [] }
    var query: PostgresQuery = """
      SELECT \(unsafeSQL: ChangeLog.columns) FROM change_log
      WHERE tenant_id = \(principal.tenantID) AND (
        (record_type = 'invoice' AND record_id IN (
          SELECT id FROM invoices WHERE tenant_id = \(principal.tenantID) AND account_id = \(account)))
        OR (record_type = 'payment' AND record_id IN (
          SELECT id FROM payments WHERE tenant_id = \(principal.tenantID) AND account_id = \(account)))
        OR (record_type = 'credit_note' AND record_id IN (
          SELECT id FROM credit_notes WHERE tenant_id = \(principal.tenantID) AND account_id = \(account)))
        OR (record_type = 'dispute' AND record_id IN (
          SELECT id FROM invoice_disputes WHERE tenant_id = \(principal.tenantID) AND account_id = \(account)))
        OR (record_type = 'collection' AND record_id = \(account)))
      """
    if let after {
      query.append(" AND (changed_at, 'c:' || lpad(sequence::text, 20, '0') COLLATE \"C\") < (\(after.time), \(after.key))")
    }
    query.append(" ORDER BY changed_at DESC, sequence DESC LIMIT \(limit)")
    return try connection.query(query).rows.map { try ChangeLog.entry($0, recordType: .invoice) }
  }

  // MARK: - Shared steps

  /// The three fact tables and their allocation tables.
  enum Table: String {
    case invoices, payments
    case creditNotes = "credit_notes"

    var recordType: RecordType {
      switch self {
      case .invoices: .invoice
      case .payments: .payment
      case .creditNotes: .creditNote
      }
    }

    var noun: String { recordType.rawValue.replacingOccurrences(of: "_", with: " ") }

    /// The allocation table and its column naming the fact (payments and credit notes).
    var allocations: (table: String, column: String) {
      self == .payments ? ("payment_allocations", "payment_id") : ("credit_note_allocations", "credit_note_id")
    }
  }

  /// What a push found under its source key.
  enum Claim {
    /// Inserted just now.
    case created(UUID)
    /// Stored with an older version, now locked: update it.
    case update(UUID)
    /// Stored with this or a newer version: nothing to write.
    case current(UUID, UpsertOutcome)

    var id: UUID {
      switch self {
      case .created(let id), .update(let id), .current(let id, _): id
      }
    }
  }

  /// Locks the fact stored under `source`'s key and compares versions, or inserts it with `insert`
  /// (given the new id). Two first pushes racing: one inserts, the other finds it and compares.
  static func claim(
    _ connection: PostgresConnection, _ table: Table, source: BillingSource, tenant: UUID,
    insert: (UUID) -> PostgresQuery
  ) throws -> Claim {
    let lock: PostgresQuery = """
      SELECT id, source_version FROM \(unsafeSQL: table.rawValue)
      WHERE tenant_id = \(tenant) AND source_system = \(source.system) AND external_id = \(source.externalID)
      FOR UPDATE
      """
    for _ in 0..<2 {
      if let row = try connection.query(lock).first {
        let id: UUID = try row.decode("id")
        let stored: Int64 = try row.decode("source_version")
        if stored > source.version { return .current(id, .stale) }
        if stored == source.version { return .current(id, .unchanged) }
        return .update(id)
      }
      let id = UUID.v7()
      if try connection.query(insert(id)).first != nil { return .created(id) }
    }
    throw CRMError.aborted("the \(table.noun) was written concurrently; push it again")
  }

  /// The account a push names: by id (linking the source's customer id to it when given too), or by
  /// the source's customer id linked earlier.
  static func account(_ connection: PostgresConnection, _ ref: BillingAccountRef, system: String, tenant: UUID) throws -> UUID {
    if let id = ref.accountID {
      guard try connection.query("SELECT 1 FROM accounts WHERE tenant_id = \(tenant) AND id = \(id)").first != nil else {
        throw CRMError.notFound("account \(id.lowercasedString) not found")
      }
      if let customer = ref.customerExternalID {
        try connection.query(
          """
          INSERT INTO billing_customers (tenant_id, source_system, external_id, account_id)
          VALUES (\(tenant), \(system), \(customer), \(id))
          ON CONFLICT (tenant_id, source_system, external_id) DO UPDATE SET account_id = EXCLUDED.account_id
          WHERE billing_customers.account_id <> EXCLUDED.account_id
          """)
      }
      return id
    }
    let customer = ref.customerExternalID ?? ""
    let rows = try connection.query(
      """
      SELECT account_id FROM billing_customers
      WHERE tenant_id = \(tenant) AND source_system = \(system) AND external_id = \(customer)
      """)
    guard let id = try rows.first?.decode("account_id", as: UUID.self) else {
      throw CRMError.failedPrecondition(
        "customer \"\(customer.prefix(100))\" of \(system) is not linked to an account yet: push one fact naming both "
          + "account.account_id and account.customer_external_id")
    }
    return id
  }

  /// Writes a payment's or credit note's allocations after checking each invoice exists, is in the
  /// same currency and still owes (for a refund: was paid) at least the amount. `replacing` also
  /// deletes the fact's old allocations to other invoices and changes the amounts of the rest, in the
  /// same statement (the invoices' sums are settled once, after all of it).
  static func allocate(
    _ connection: PostgresConnection, _ table: Table, id: UUID, _ allocations: [Allocation], system: String, refund: Bool,
    replacing: Bool, field: String, tenant: UUID
  ) throws {
    let (allocationTable, column) = table.allocations
    let delete: PostgresQuery =
      "DELETE FROM \(unsafeSQL: allocationTable) WHERE tenant_id = \(tenant) AND \(unsafeSQL: column) = \(id)"
    guard !allocations.isEmpty else {
      if replacing { try connection.query(delete) }
      return
    }
    var ids: [UUID] = []
    var externals: [String] = []
    for allocation in allocations {
      switch allocation.invoice {
      case .id(let id): ids.append(id)
      case .external(let external): externals.append(external)
      }
    }
    // What the fact's old allocations (replaced below) paid is owed again.
    let freed: PostgresQuery =
      replacing
      ? """
      coalesce((
        SELECT a.amount FROM \(unsafeSQL: allocationTable) a
        WHERE a.tenant_id = i.tenant_id AND a.invoice_id = i.id AND a.\(unsafeSQL: column) = \(id)), 0)
      """ : "0"
    let rows = try connection.query(
      """
      SELECT id, source_system, external_id, number, currency, (balance + \(freed))::text AS balance,
        (amount_paid - amount_refunded)::text AS refundable
      FROM invoices i
      WHERE tenant_id = \(tenant) AND (id = ANY(\(ids)::uuid[]) OR (source_system = \(system) AND external_id = ANY(\(externals)::text[])))
      ORDER BY id
      FOR UPDATE
      """)
    var byID: [UUID: PostgresRow] = [:]
    var byExternal: [String: PostgresRow] = [:]
    for row in rows.rows {
      byID[try row.decode("id")] = row
      if try row.decode("source_system", as: String.self) == system { byExternal[try row.decode("external_id")] = row }
    }
    var resolved: [(invoice: UUID, amount: Money)] = []
    for (index, allocation) in allocations.enumerated() {
      let path = "\(field)[\(index)]"
      let found: PostgresRow?
      switch allocation.invoice {
      case .id(let invoice):
        found = byID[invoice]
        guard found != nil else { throw CRMError.notFound("invoice \(invoice.lowercasedString) not found (\(path))") }
      case .external(let external):
        found = byExternal[external]
        guard found != nil else {
          throw CRMError.failedPrecondition(
            "invoice \"\(external.prefix(100))\" of \(system) has not been pushed yet (\(path)); push it first, then this again")
        }
      }
      let row = found!
      let currency: String = try row.decode("currency")
      let number: String = try row.decode("number")
      guard allocation.amount.currencyCode == currency else {
        throw CRMError.invalid("\(path).amount.currency_code", "must be the invoice's currency, \(currency)")
      }
      let room = try BillingRow.money(row, refund ? "refundable" : "balance", currency: currency)
      if allocation.amount.isGreater(than: room) {
        throw CRMError.failedPrecondition(
          refund
            ? "invoice \(number) was paid \(room.formatted) net of refunds; \(path) refunds \(allocation.amount.formatted)"
            : "invoice \(number) owes \(room.formatted); \(path) of \(allocation.amount.formatted) would overpay it")
      }
      resolved.append((try row.decode("id"), allocation.amount))
    }
    var insert: PostgresQuery =
      replacing ? "WITH gone AS (\(delete) AND invoice_id <> ALL(\(resolved.map(\.invoice))::uuid[])) " : ""
    insert.append(
      """
      INSERT INTO \(unsafeSQL: allocationTable) (tenant_id, \(unsafeSQL: column), invoice_id, currency, amount)
      SELECT \(tenant), \(id), a.invoice, a.currency, a.amount::numeric
      FROM unnest(\(resolved.map(\.invoice))::uuid[], \(resolved.map(\.amount.currencyCode))::text[],
        \(resolved.map(\.amount.numeral))::text[]) AS a (invoice, currency, amount)
      """)
    if replacing {
      insert.append(
        """
         ON CONFLICT (tenant_id, \(unsafeSQL: column), invoice_id) DO UPDATE SET amount = EXCLUDED.amount
        WHERE \(unsafeSQL: allocationTable).amount <> EXCLUDED.amount
        """)
    }
    try connection.query(insert)
  }

  /// The allocations of the payments or credit notes named, by fact.
  static func allocations(_ connection: PostgresConnection, _ table: Table, of ids: [UUID], tenant: UUID) throws
    -> [UUID: [StoredAllocation]]
  {
    guard !ids.isEmpty else { return [:] }
    let (allocationTable, column) = table.allocations
    let rows = try connection.query(
      """
      SELECT a.\(unsafeSQL: column) AS fact, a.invoice_id, i.external_id, a.currency, a.amount
      FROM \(unsafeSQL: allocationTable) a JOIN invoices i ON i.tenant_id = a.tenant_id AND i.id = a.invoice_id
      WHERE a.tenant_id = \(tenant) AND a.\(unsafeSQL: column) = ANY(\(ids)::uuid[])
      ORDER BY a.\(unsafeSQL: column), i.issue_date, i.id
      """)
    var out: [UUID: [StoredAllocation]] = [:]
    for row in rows.rows {
      let allocation = StoredAllocation(
        invoiceID: try row.decode("invoice_id"), invoiceExternalID: try row.decode("external_id"),
        amount: try BillingRow.money(row, "amount", currency: try row.decode("currency")))
      out[try row.decode("fact"), default: []].append(allocation)
    }
    return out
  }

  /// The id a read names, if the fact exists and the caller may see its account's billing data.
  static func visibleID(_ connection: PostgresConnection, _ table: Table, _ key: Key, principal: Principal) throws -> UUID {
    let tenant = principal.tenantID
    var query: PostgresQuery = """
      SELECT f.id, a.owner_id, c.collector_id FROM \(unsafeSQL: table.rawValue) f
      JOIN accounts a ON a.tenant_id = f.tenant_id AND a.id = f.account_id
      LEFT JOIN account_collections c ON c.tenant_id = a.tenant_id AND c.account_id = a.id
      WHERE f.tenant_id = \(tenant)
      """
    let named: String
    switch key {
    case .id(let id):
      query.append(" AND f.id = \(id)")
      named = id.lowercasedString
    case .source(let system, let external):
      query.append(" AND f.source_system = \(system) AND f.external_id = \(external)")
      named = "\"\(external.prefix(100))\" of \(system)"
    }
    guard let row = try connection.query(query).first,
      principal.canReadBilling(
        accountOwner: try row.decode("owner_id", as: UUID?.self), collector: try row.decode("collector_id", as: UUID?.self))
    else { throw CRMError.notFound("\(table.noun) \(named) not found") }
    return try row.decode("id")
  }

  /// The conditions limiting a list to the tenant, the account (and those below it) and what the
  /// caller may see. The hierarchy is an array computed first (`ANY(ARRAY(…))`), so the planner reads
  /// its facts by account index rather than scanning the tenant's.
  static func scope(_ table: Table, accountID: UUID?, includeChildren: Bool, principal: Principal) -> PostgresQuery {
    let tenant = principal.tenantID
    var conditions: PostgresQuery = "tenant_id = \(tenant)"
    if let accountID {
      // The account (and those below it) the caller may read billing for.
      conditions.append(
        " AND account_id = ANY(ARRAY(\(accounts(accountID, includeChildren: includeChildren, principal: principal))))")
    } else if let readable = readableAccountIDs(principal) {
      conditions.append(" AND account_id IN (\(readable))")
    }
    return conditions
  }

  /// Writes the change-log entry of a push: the whole fact when created, what changed when updated.
  static func log(
    _ connection: PostgresConnection, context: ChangeLog.Context, type: RecordType, id: UUID, old: [String: JSONValue]?,
    new: [String: JSONValue], order: [String]
  ) throws {
    try ChangeLog.append(
      connection, context: context, recordType: type, recordID: id, operation: old == nil ? .create : .update,
      changes: FieldChange.diff(fields: order, old: old, new: new))
  }
}
