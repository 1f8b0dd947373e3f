import CRMCore
import Foundation
import LibPQ

/// Bulk writes of billing facts for ``ImportStore``: many invoices or payments inside the caller's
/// transaction (an import batch's), each written whole or not at all, with the same outcomes and
/// errors as one push through the RPC.
extension BillingStore {
  /// What importing one fact did.
  enum ImportedFact: Sendable {
    case written(UUID, UpsertOutcome)
    case failed(CRMError)
  }

  /// A batch of invoices to import with their set-based insert encoded ahead of the transaction —
  /// by the import stream's reader, while the previous batch is written — leaving the accounts, which
  /// only the transaction can settle, to bind then. (Encoding the insert inside the transaction was
  /// a third of crmd's CPU in an import, all of it time PostgreSQL waited, `perf`.)
  struct InvoiceImport: Sendable {
    let invoices: [InvoiceFields]
    let ids: [UUID]
    /// The statement up to the accounts' and the mask's arrays, and after them.
    let head: PostgresQuery
    let tail: PostgresQuery

    init(_ invoices: [InvoiceFields], context: ChangeLog.Context) {
      let principal = context.principal
      let tenant = principal.tenantID
      let ids = invoices.map { _ in UUID.v7() }
      self.invoices = invoices
      self.ids = ids
      let f = invoices
      var lines: [(invoice: UUID, line: InvoiceLine)] = []
      for (id, invoice) in zip(ids, invoices) { for line in invoice.lines { lines.append((id, line)) } }
      let l = lines.map(\.line)
      // The entries are what ``upsertInvoice`` logs for a new invoice (a stored invoice without
      // payments yet is its fields), but for the account, which the statement puts in.
      let changes = zip(ids, invoices).map { id, fields in
        let zero = Money.zero(fields.currencyCode)
        var snapshot = Invoice(
          id: id, accountID: id, fields: fields, amountPaid: zero, amountCredited: zero, amountRefunded: zero,
          balance: fields.total, amountDisputed: zero, version: 1, createdAt: .now, updatedAt: .now
        ).snapshot
        snapshot["account_id"] = nil
        return FieldChange.render(FieldChange.diff(fields: Invoice.changeLogOrder, old: nil, new: snapshot))
      }
      let accountPosition = Invoice.changeLogOrder.firstIndex(of: "account_id")!
      head = """
        WITH created AS (
          INSERT INTO invoices (
            tenant_id, id, source_system, external_id, source_version, account_id, number, currency, issue_date, due_date,
            payment_terms, vendor_status, state, subtotal, tax, total, has_instalments, created_by, updated_by)
          SELECT \(tenant), i.id, i.source_system, i.external_id, i.source_version, i.account_id, i.number, i.currency,
            i.issue_date, i.due_date, i.payment_terms, i.vendor_status, i.state, i.subtotal::numeric, i.tax::numeric,
            i.total::numeric, false, \(principal.userID), \(principal.userID)
          FROM unnest(
            \(ids)::uuid[], \(f.map(\.source.system))::text[], \(f.map(\.source.externalID))::text[],
            \(f.map(\.source.version))::bigint[], \(f.map(\.number))::text[], \(f.map(\.currencyCode))::text[],
            \(f.map(\.issueDate))::date[], \(f.map(\.dueDate))::date[], \(f.map { NullableText($0.paymentTerms) })::text[],
            \(f.map(\.vendorStatus))::text[], \(f.map(\.state.rawValue))::text[], \(f.map(\.subtotal.numeral))::text[],
            \(f.map(\.tax.numeral))::text[], \(f.map(\.total.numeral))::text[],
        """
      tail = """
          ) AS i (
            id, source_system, external_id, source_version, number, currency, issue_date, due_date, payment_terms,
            vendor_status, state, subtotal, tax, total, account_id, included)
          WHERE i.included
          ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
          RETURNING id, account_id
        ), lines AS (
          INSERT INTO invoice_lines (
            tenant_id, invoice_id, line_number, external_id, kind, description, product, metric, quantity, unit, unit_price,
            amount, tax, period_start, period_end)
          SELECT \(tenant), l.invoice_id, l.line_number, l.external_id, l.kind, l.description, l.product, l.metric,
            l.quantity::numeric, l.unit, l.unit_price::numeric, l.amount::numeric, l.tax::numeric, l.period_start::date,
            l.period_end::date
          FROM unnest(
            \(lines.map(\.invoice))::uuid[], \(l.map(\.lineNumber))::integer[], \(l.map { NullableText($0.externalID) })::text[],
            \(l.map(\.kind.rawValue))::text[], \(l.map { NullableText($0.description) })::text[],
            \(l.map { NullableText($0.product) })::text[], \(l.map { NullableText($0.metric) })::text[],
            \(l.map { NullableText($0.quantity) })::text[], \(l.map { NullableText($0.unit) })::text[],
            \(l.map { NullableText($0.unitPrice?.numeral) })::text[], \(l.map(\.amount.numeral))::text[],
            \(l.map { $0.tax?.numeral ?? "0" })::text[], \(l.map { NullableText($0.periodStart?.description) })::text[],
            \(l.map { NullableText($0.periodEnd?.description) })::text[]
          ) AS l (
            invoice_id, line_number, external_id, kind, description, product, metric, quantity, unit, unit_price, amount, tax,
            period_start, period_end)
          WHERE l.invoice_id IN (SELECT id FROM created)
        ), logged AS (
          INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin)
          SELECT \(tenant), \(RecordType.invoice.rawValue), c.id, 'create', \(principal.userID), \(context.requestID),
            jsonb_insert(
              c.changes::jsonb, ARRAY[\(accountPosition)]::text[],
              jsonb_build_object('field', 'account_id', 'old', NULL, 'new', created.account_id)),
            \(context.origin)
          FROM unnest(\(ids)::uuid[], \(changes)::text[]) AS c (id, changes) JOIN created ON created.id = c.id
        )
        SELECT id FROM created
        """
    }

    /// The statement inserting the invoices at `included` positions with their `accounts`, returning
    /// the ids of those it inserted: an invoice whose source key the tenant has (an earlier import, a
    /// push meanwhile) is skipped, its lines and entry too.
    func statement(accounts: [UUID?], included: [Bool]) -> PostgresQuery {
      "\(head) \(accounts.map { NullableText($0?.lowercasedString) })::uuid[], \(included)::boolean[] \(tail)"
    }
  }

  /// Upserts the invoices of `batch` at `positions`, in order. Those the tenant has not stored yet —
  /// what a bulk load is made of — are written set-based, in one statement: the invoices, all their
  /// lines and their change-log entries. The rest (updates, versions to compare, accounts to link or
  /// not found, a second push of one invoice in the same batch) go one by one through
  /// ``upsertInvoice(_:_:context:)``, each in a savepoint so that its failure is its own.
  static func importInvoices(
    _ connection: PostgresConnection, _ batch: InvoiceImport, positions: [Int], context: ChangeLog.Context
  ) throws -> [ImportedFact] {
    let tenant = context.principal.tenantID
    let invoices = positions.map { batch.invoices[$0] }
    var facts = [ImportedFact?](repeating: nil, count: invoices.count)
    let accounts = try Self.accounts(connection, invoices.map { ($0.account, $0.source.system) }, tenant: tenant)
    var seen = Set<String>()
    var bound = [UUID?](repeating: nil, count: batch.invoices.count)
    var included = [Bool](repeating: false, count: batch.invoices.count)
    for (index, invoice) in invoices.enumerated() {
      guard seen.insert(invoice.source.system + "\u{0}" + invoice.source.externalID).inserted, let account = accounts[index]
      else { continue }
      bound[positions[index]] = account
      included[positions[index]] = true
    }
    if included.contains(true) {
      do {
        let inserted = try connection.pipeline([
          "SAVEPOINT crm_facts", batch.statement(accounts: bound, included: included), "RELEASE SAVEPOINT crm_facts",
        ])[1]
        let created = Set(try inserted.rows.map { try $0.decode("id", as: UUID.self) })
        // Those the tenant has already go the one-by-one way below.
        for (index, position) in positions.enumerated() where created.contains(batch.ids[position]) {
          facts[index] = .written(batch.ids[position], .created)
        }
      } catch let error as PostgresError where error.sqlState.hasPrefix("22") || error.sqlState.hasPrefix("23") {
        // A check the validation does not know: each invoice goes the one-by-one way below and
        // meets its own outcome. (Conflicts and lost connections end the batch's transaction, which
        // is retried or fails whole.)
        _ = try connection.pipeline(["ROLLBACK TO SAVEPOINT crm_facts", "RELEASE SAVEPOINT crm_facts"])
      }
    }
    for index in invoices.indices where facts[index] == nil {
      do {
        let (invoice, outcome) = try connection.inSavepoint {
          try Self.upsertInvoice(connection, invoices[index], context: context)
        }
        facts[index] = .written(invoice.id, outcome)
      } catch {
        facts[index] = .failed(try Self.importFailure(error, noun: "invoice"))
      }
    }
    let collectible: Set<InvoiceState> = [.open, .uncollectible]
    if zip(invoices, facts).contains(where: { invoice, fact in
      if case .written(_, let outcome) = fact {
        collectible.contains(invoice.state) && (outcome == .created || outcome == .updated)
      } else {
        false
      }
    }) {
      try Self.markDunningStale(connection, tenant: tenant)
    }
    return facts.map { $0! }
  }

  /// Upserts `payments` in order, one by one through ``upsertPayment(_:_:context:)``, each in a
  /// savepoint: an allocation that would overpay fails its payment alone.
  static func importPayments(_ connection: PostgresConnection, _ payments: [PaymentFields], context: ChangeLog.Context) throws
    -> [ImportedFact]
  {
    try payments.map { payment in
      do {
        let (stored, outcome) = try connection.inSavepoint { try Self.upsertPayment(connection, payment, context: context) }
        return .written(stored.id, outcome)
      } catch {
        return .failed(try Self.importFailure(error, noun: "payment"))
      }
    }
  }

  /// What a fact's failure tells its rows; errors that are not the fact's own (a conflict, a lost
  /// connection) are rethrown and end the batch.
  static func importFailure(_ error: any Error, noun: String) throws -> CRMError {
    if let error = error as? CRMError { return error }
    if let error = error as? PostgresError, error.sqlState.hasPrefix("22") || error.sqlState.hasPrefix("23") {
      return .failedPrecondition("the \(noun) breaks a rule of the stored data (\(error.constraint ?? "a value out of range"))")
    }
    throw error
  }

  /// The account each fact names, where the batch can settle it at once: by id when it exists (its
  /// customer id linked to it in one statement for the batch), or by a customer id linked earlier.
  /// `nil` leaves the fact to the one-by-one path, which names the problem.
  static func accounts(_ connection: PostgresConnection, _ refs: [(ref: BillingAccountRef, system: String)], tenant: UUID)
    throws -> [UUID?]
  {
    let ids = Array(Set(refs.compactMap(\.ref.accountID)))
    var existing = Set<UUID>()
    if !ids.isEmpty {
      // A join, not `id = ANY(…)`: a generic plan checked that as a filter over every account of the
      // tenant, 200 comparisons each (half of PostgreSQL's CPU in a bulk import, `perf`).
      for row in try connection.query(
        """
        SELECT a.id FROM unnest(\(ids)::uuid[]) AS k (id) JOIN accounts a ON a.tenant_id = \(tenant) AND a.id = k.id
        """
      ).rows {
        existing.insert(try row.decode("id"))
      }
    }
    // The links the batch names, the last one winning as it would one push after another.
    var links: [String: (system: String, customer: String, account: UUID)] = [:]
    for (ref, system) in refs {
      guard let id = ref.accountID, existing.contains(id), let customer = ref.customerExternalID else { continue }
      links[system + "\u{0}" + customer] = (system, customer, id)
    }
    if !links.isEmpty {
      let link = Array(links.values)
      try connection.query(
        """
        INSERT INTO billing_customers (tenant_id, source_system, external_id, account_id)
        SELECT \(tenant), l.system, l.customer, l.account
        FROM unnest(\(link.map(\.system))::text[], \(link.map(\.customer))::text[], \(link.map(\.account))::uuid[])
          AS l (system, customer, account)
        ON CONFLICT (tenant_id, source_system, external_id) DO UPDATE SET account_id = EXCLUDED.account_id
        WHERE billing_customers.account_id <> EXCLUDED.account_id
        """)
    }
    let customers = refs.filter { $0.ref.accountID == nil && $0.ref.customerExternalID != nil }
    var linked: [String: UUID] = [:]
    if !customers.isEmpty {
      for row in try connection.query(
        """
        SELECT b.source_system, b.external_id, b.account_id FROM billing_customers b
        JOIN unnest(\(customers.map(\.system))::text[], \(customers.map { $0.ref.customerExternalID! })::text[]) AS k (system, customer)
          ON b.source_system = k.system AND b.external_id = k.customer
        WHERE b.tenant_id = \(tenant)
        """
      ).rows {
        let system: String = try row.decode("source_system")
        let customer: String = try row.decode("external_id")
        linked[system + "\u{0}" + customer] = try row.decode("account_id")
      }
    }
    return refs.map { ref, system in
      if let id = ref.accountID { return existing.contains(id) ? id : nil }
      return ref.customerExternalID.flatMap { linked[system + "\u{0}" + $0] }
    }
  }
}
