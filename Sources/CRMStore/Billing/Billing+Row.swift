import CRMCore
import Foundation
import LibPQ

/// Reading billing rows: amounts come out of `numeric` columns as exact numerals.
enum BillingRow {
  static func money(_ row: PostgresRow, _ column: String, currency: String) throws -> Money {
    let numeral: String = try row.decode(column)
    guard let money = Money(currencyCode: currency, numeral: numeral) else {
      throw PostgresError(kind: .decoding, serverMessage: "\(column) is no amount: \(numeral.prefix(40))")
    }
    return money
  }

  static func optionalMoney(_ row: PostgresRow, _ column: String, currency: String) throws -> Money? {
    try row.isNull(column) ? nil : money(row, column, currency: currency)
  }

  static func source(_ row: PostgresRow) throws -> BillingSource {
    BillingSource(
      system: try row.decode("source_system"), externalID: try row.decode("external_id"),
      version: try row.decode("source_version"))
  }
}

extension Invoice {
  static let columns = """
    id, account_id, source_system, external_id, source_version, number, currency, issue_date, due_date, payment_terms,
    vendor_status, state, subtotal, tax, total, amount_paid, amount_credited, amount_refunded, balance, amount_disputed,
    collect_due, version, created_at, updated_at
    """

  /// An invoice from a row selecting ``columns``, with `lines` and `instalments`.
  init(row: PostgresRow, lines: [InvoiceLine], instalments: [InvoiceInstalment] = []) throws {
    let currency: String = try row.decode("currency")
    let account: UUID = try row.decode("account_id")
    let state: String = try row.decode("state")
    self.init(
      id: try row.decode("id"), accountID: account,
      fields: InvoiceFields(
        source: try BillingRow.source(row), account: BillingAccountRef(accountID: account, customerExternalID: nil),
        number: try row.decode("number"), currencyCode: currency, issueDate: try row.decode("issue_date"),
        dueDate: try row.decode("due_date"), paymentTerms: try row.decode("payment_terms"),
        vendorStatus: try row.decode("vendor_status"), state: InvoiceState(rawValue: state) ?? .open,
        subtotal: try BillingRow.money(row, "subtotal", currency: currency),
        tax: try BillingRow.money(row, "tax", currency: currency),
        total: try BillingRow.money(row, "total", currency: currency), lines: lines, instalments: instalments),
      amountPaid: try BillingRow.money(row, "amount_paid", currency: currency),
      amountCredited: try BillingRow.money(row, "amount_credited", currency: currency),
      amountRefunded: try BillingRow.money(row, "amount_refunded", currency: currency),
      balance: try BillingRow.money(row, "balance", currency: currency),
      amountDisputed: try BillingRow.money(row, "amount_disputed", currency: currency),
      collectDue: try row.decode("collect_due"), version: try row.decode("version"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }
}

extension InvoiceLine {
  static let columns = """
    invoice_id, line_number, external_id, kind, description, product, metric, quantity::text AS quantity, unit, unit_price,
    amount, tax, period_start, period_end
    """

  init(row: PostgresRow, currency: String) throws {
    let kind: String = try row.decode("kind")
    self.init(
      lineNumber: try row.decode("line_number"), externalID: try row.decode("external_id"),
      kind: InvoiceLineKind(rawValue: kind) ?? .charge, description: try row.decode("description"),
      product: try row.decode("product"), metric: try row.decode("metric"),
      quantity: (try row.decode("quantity", as: String?.self)).map(DecimalNumeral.trimmed), unit: try row.decode("unit"),
      unitPrice: try BillingRow.optionalMoney(row, "unit_price", currency: currency),
      amount: try BillingRow.money(row, "amount", currency: currency),
      tax: try BillingRow.optionalMoney(row, "tax", currency: currency), periodStart: try row.decode("period_start"),
      periodEnd: try row.decode("period_end"))
  }

  /// The line as `jsonb_to_recordset` reads it in ``BillingStore``.
  var stored: StoredLine {
    StoredLine(
      lineNumber: lineNumber, externalID: externalID, kind: kind.rawValue, description: description, product: product,
      metric: metric, quantity: quantity, unit: unit, unitPrice: unitPrice?.numeral, amount: amount.numeral,
      tax: tax?.numeral ?? "0", periodStart: periodStart?.description, periodEnd: periodEnd?.description)
  }

  struct StoredLine: Encodable {
    var lineNumber: Int
    var externalID: String?
    var kind: String
    var description: String?
    var product: String?
    var metric: String?
    var quantity: String?
    var unit: String?
    var unitPrice: String?
    var amount: String
    var tax: String
    var periodStart: String?
    var periodEnd: String?

    enum CodingKeys: String, CodingKey {
      case lineNumber = "line_number", externalID = "external_id", kind, description, product, metric, quantity, unit
      case unitPrice = "unit_price", amount, tax, periodStart = "period_start", periodEnd = "period_end"
    }
  }
}

extension Payment {
  static let columns = """
    id, account_id, source_system, external_id, source_version, currency, amount, received_on, method, reference, state,
    amount_allocated, version, created_at, updated_at
    """

  init(row: PostgresRow, allocations: [StoredAllocation]) throws {
    let currency: String = try row.decode("currency")
    let account: UUID = try row.decode("account_id")
    let state: String = try row.decode("state")
    self.init(
      id: try row.decode("id"), accountID: account,
      fields: PaymentFields(
        source: try BillingRow.source(row), account: BillingAccountRef(accountID: account, customerExternalID: nil),
        amount: try BillingRow.money(row, "amount", currency: currency), receivedOn: try row.decode("received_on"),
        method: try row.decode("method"), reference: try row.decode("reference"),
        state: PaymentState(rawValue: state) ?? .completed,
        allocations: allocations.map { Allocation(invoice: .id($0.invoiceID), amount: $0.amount) }),
      allocations: allocations, amountAllocated: try BillingRow.money(row, "amount_allocated", currency: currency),
      version: try row.decode("version"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }
}

extension CreditNote {
  static let columns = """
    id, account_id, source_system, external_id, source_version, number, currency, amount, issue_date, kind, reason, state,
    amount_allocated, version, created_at, updated_at
    """

  init(row: PostgresRow, allocations: [StoredAllocation]) throws {
    let currency: String = try row.decode("currency")
    let account: UUID = try row.decode("account_id")
    let kind: String = try row.decode("kind")
    let state: String = try row.decode("state")
    self.init(
      id: try row.decode("id"), accountID: account,
      fields: CreditNoteFields(
        source: try BillingRow.source(row), account: BillingAccountRef(accountID: account, customerExternalID: nil),
        number: try row.decode("number"), amount: try BillingRow.money(row, "amount", currency: currency),
        issueDate: try row.decode("issue_date"), kind: CreditNoteKind(rawValue: kind) ?? .adjustment,
        reason: try row.decode("reason"), state: CreditNoteState(rawValue: state) ?? .issued,
        allocations: allocations.map { Allocation(invoice: .id($0.invoiceID), amount: $0.amount) }),
      allocations: allocations, amountAllocated: try BillingRow.money(row, "amount_allocated", currency: currency),
      version: try row.decode("version"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }
}
