import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

/// How a billing import reads its rows: which column fills which field, which rows make one invoice
/// or payment, and the fact they make, checked exactly as `UpsertInvoice` and `UpsertPayment` check
/// theirs (the rows are turned into those messages and validated by the same code).
struct BillingImportMapping: Sendable {
  let kind: BillingImportKind
  let columns: [String]
  /// The column that fills each field.
  let columnIndex: [String: Int]
  /// The column each mapped field comes from.
  let columnOf: [String: String]
  /// The mapped fields of the fact itself (not of a line or allocation), which its rows repeat.
  let factFields: [String]
  /// The mapped fields of a line or allocation.
  let partFields: [String]

  /// Builds the mapping; INVALID_ARGUMENT names bad header fields.
  init(kind: BillingImportKind, columns: [String], explicit: [String: String]) throws(CRMError) {
    var violations = Violations()
    if columns.isEmpty { violations.add("header.columns", "name the columns rows carry", reason: "REQUIRED") }
    if columns.count > 500 { violations.add("header.columns", "at most 500 columns", reason: "TOO_MANY") }
    let known = Set(kind.fields)
    let noun = kind == .invoice ? "invoice" : "payment"
    for (column, field) in explicit.sorted(by: { $0.key < $1.key }) where !known.contains(field) {
      violations.add(
        "header.field_mapping[\"\(column.prefix(64))\"]",
        "names no \(noun) import field: use one of \(kind.fields.joined(separator: ", "))", reason: "UNKNOWN_FIELD")
    }
    for column in explicit.keys.sorted() where !columns.contains(column) {
      violations.add("header.field_mapping[\"\(column.prefix(64))\"]", "names no column of the header", reason: "UNKNOWN_COLUMN")
    }
    let aliases = kind.aliases
    var columnIndex: [String: Int] = [:]
    for (index, column) in columns.enumerated() {
      let field: String?
      if let named = explicit[column] {
        field = named
      } else {
        let key = column.trimmingWhitespace().lowercased().replacingOccurrences(of: "-", with: "_")
          .replacingOccurrences(of: " ", with: "_")
        field = known.contains(key) ? key : aliases[key]
      }
      guard let field, known.contains(field) else { continue }
      if let earlier = columnIndex[field] {
        violations.add(
          "header.columns[\(index)]",
          "fills \(field), which column \"\(columns[earlier].prefix(64))\" fills already; map one of them elsewhere",
          reason: "DUPLICATE_FIELD")
      }
      columnIndex[field] = columnIndex[field] ?? index
    }
    for required in ["source_system", "external_id", "source_version"] where columnIndex[required] == nil && !columns.isEmpty {
      violations.add(
        "header.columns",
        "no column fills \(required): every row names its \(noun) by source_system, external_id and "
          + "source_version (map one with field_mapping)", reason: "REQUIRED")
    }
    try violations.check()
    self.kind = kind
    self.columns = columns
    self.columnIndex = columnIndex
    columnOf = columnIndex.mapValues { columns[$0] }
    let parts = kind.partFields
    factFields = columnIndex.keys.filter { !parts.contains($0) }.sorted()
    partFields = columnIndex.keys.filter { parts.contains($0) }.sorted()
  }

  /// The fields the columns fill (for field-level security).
  var mappedFields: [(column: String, field: String)] {
    columnIndex.sorted { $0.value < $1.value }.map { (columns[$0.value], $0.key) }
  }

  /// A row's cell for `field`, trimmed; empty when no column fills it or the row is short.
  func cell(_ row: Crm_V1_ImportRow, _ field: String) -> String {
    guard let index = columnIndex[field], index < row.values.count else { return "" }
    return row.values[index].trimmingWhitespace()
  }

  /// The key rows of one fact share.
  func key(_ row: Crm_V1_ImportRow) -> String { cell(row, "source_system") + "\u{0}" + cell(row, "external_id") }

  /// Splits rows into facts: runs of consecutive rows with the same key; a row whose source_system
  /// and external_id are both empty goes on with the fact above it (a spreadsheet's blank cells).
  func split(_ rows: [Crm_V1_ImportRow]) -> [[Crm_V1_ImportRow]] {
    var groups: [[Crm_V1_ImportRow]] = []
    var previous: String?
    for row in rows {
      let key = key(row)
      if !groups.isEmpty, key == previous || key == "\u{0}" {
        groups[groups.count - 1].append(row)
      } else {
        groups.append([row])
        previous = key
      }
    }
    return groups
  }

  /// The most rows one fact may span: a line or allocation per row, plus a row without one.
  var maxRows: Int { BillingFields.maxLines + 1 }

  // MARK: - Facts

  /// What reading one group's cells found: the problems of cells that do not parse, by row.
  struct Reading {
    let mapping: BillingImportMapping
    var errors: [Int64: [ImportFieldError]] = [:]
    /// (row, field) pairs whose cell did not parse: validation's "is required" for them is noise.
    var unreadable = Set<String>()

    mutating func fail(_ row: Int64, _ field: String, _ reason: String, _ description: String) {
      errors[row, default: []].append(
        ImportFieldError(field: field, column: mapping.columnOf[field] ?? "", reason: reason, description: description))
      unreadable.insert("\(row)|\(field)")
    }

    mutating func money(_ row: Crm_V1_ImportRow, _ field: String, currency: String) -> Crm_V1_Money? {
      let text = mapping.cell(row, field)
      guard !text.isEmpty else { return nil }
      guard let money = Money(currencyCode: currency, numeral: text) else {
        fail(row.index, field, "INVALID_FORMAT", "must be a decimal amount like 1250.50 (at most 9 fraction digits)")
        return nil
      }
      return Crm_V1_Money(money)
    }

    mutating func date(_ row: Crm_V1_ImportRow, _ field: String) -> Crm_V1_Date? {
      let text = mapping.cell(row, field)
      guard !text.isEmpty else { return nil }
      guard let day = CalendarDate(text) else {
        fail(row.index, field, "INVALID_FORMAT", "must be a day like 2026-12-31")
        return nil
      }
      return Crm_V1_Date(day)
    }

    mutating func source(_ row: Crm_V1_ImportRow) -> Crm_V1_BillingSource {
      var source = Crm_V1_BillingSource()
      source.system = mapping.cell(row, "source_system")
      source.externalID = mapping.cell(row, "external_id")
      let version = mapping.cell(row, "source_version")
      if !version.isEmpty {
        if let number = Int64(version) {
          source.version = number
        } else {
          fail(row.index, "source_version", "INVALID_FORMAT", "must be a whole number, larger when newer")
        }
      }
      return source
    }

    func account(_ row: Crm_V1_ImportRow) -> Crm_V1_BillingAccountRef {
      .with {
        $0.accountID = mapping.cell(row, "account_id")
        $0.customerExternalID = mapping.cell(row, "customer_external_id")
      }
    }
  }

  /// The rows' problems before anything is read: a wrong number of cells, or fact columns that differ
  /// from the first row's.
  func shapeErrors(_ rows: [Crm_V1_ImportRow]) -> [Int64: [ImportFieldError]] {
    var errors: [Int64: [ImportFieldError]] = [:]
    for row in rows where row.values.count != columns.count {
      errors[row.index] = [
        ImportFieldError(
          field: "", column: "", reason: "WRONG_COLUMN_COUNT",
          description: "the row has \(row.values.count) values for \(columns.count) columns")
      ]
    }
    guard errors.isEmpty, let first = rows.first else { return errors }
    let noun = kind == .invoice ? "invoice" : "payment"
    if rows.count > maxRows {
      errors[first.index] = [
        ImportFieldError(
          field: kind.partsField, column: "", reason: "TOO_MANY",
          description: "an \(noun) spans at most \(maxRows) rows (\(BillingFields.maxLines) \(kind.partsField))")
      ]
    }
    for row in rows.dropFirst() {
      for field in factFields {
        let value = cell(row, field)
        if !value.isEmpty, value != cell(first, field) {
          errors[row.index, default: []].append(
            ImportFieldError(
              field: field, column: columnOf[field] ?? "", reason: "INCONSISTENT",
              description: "differs from row \(first.index), the \(noun)'s first: its rows repeat the \(noun)'s columns or "
                + "leave them empty"))
        }
      }
    }
    return errors
  }

  /// Whether a row carries a line or an allocation (any of those cells filled).
  func hasPart(_ row: Crm_V1_ImportRow) -> Bool { partFields.contains { !cell(row, $0).isEmpty } }

  /// One group of rows as an invoice, or each row's errors.
  func invoice(_ rows: [Crm_V1_ImportRow]) -> BillingImportGroup<InvoiceFields> {
    let partRows = rows.filter(hasPart)
    var group = BillingImportGroup<InvoiceFields>(
      kind: .invoice, indexes: rows.map(\.index), partRows: partRows.map(\.index), columns: columnOf, fields: nil,
      errors: shapeErrors(rows))
    guard group.errors.isEmpty, let first = rows.first else { return finish(&group, Violations(), Reading(mapping: self)) }
    var reading = Reading(mapping: self)
    let currency = cell(first, "currency_code").uppercased()
    var invoice = Crm_V1_Invoice()
    invoice.source = reading.source(first)
    invoice.account = reading.account(first)
    invoice.number = cell(first, "number")
    invoice.currencyCode = currency
    if let day = reading.date(first, "issue_date") { invoice.issueDate = day }
    if let day = reading.date(first, "due_date") { invoice.dueDate = day }
    invoice.paymentTerms = cell(first, "payment_terms")
    let stateText = cell(first, "state")
    if stateText.isEmpty {
      reading.fail(
        first.index, "state", "REQUIRED", "is required: one of \(InvoiceState.allCases.map(\.rawValue).joined(separator: ", "))")
    } else {
      if let state = InvoiceState(rawValue: stateText.lowercased()) {
        invoice.state = Crm_V1_InvoiceState(state)
      } else {
        reading.fail(
          first.index, "state", "INVALID",
          "must be one of \(InvoiceState.allCases.map(\.rawValue).joined(separator: ", "))")
      }
    }
    // The vendor's status verbatim; a file with only our state gives that.
    invoice.vendorStatus = cell(first, "vendor_status").isEmpty ? stateText : cell(first, "vendor_status")
    for row in partRows {
      var line = Crm_V1_InvoiceLine()
      switch cell(row, "line_kind").lowercased() {
      case "", "charge": line.kind = .charge
      case "usage": line.kind = .usage
      default: reading.fail(row.index, "line_kind", "INVALID", "must be charge or usage")
      }
      line.externalID = cell(row, "line_external_id")
      line.description_p = cell(row, "description")
      line.product = cell(row, "product")
      line.metric = cell(row, "metric")
      line.quantity = cell(row, "quantity")
      line.unit = cell(row, "unit")
      if let money = reading.money(row, "unit_price", currency: currency) { line.unitPrice = money }
      if let money = reading.money(row, "amount", currency: currency) { line.amount = money }
      if let money = reading.money(row, "line_tax", currency: currency) { line.tax = money }
      if let day = reading.date(row, "period_start") { line.periodStart = day }
      if let day = reading.date(row, "period_end") { line.periodEnd = day }
      invoice.lines.append(line)
    }
    let subtotal = reading.money(first, "subtotal", currency: currency)
    let tax = reading.money(first, "tax", currency: currency)
    if let total = reading.money(first, "total", currency: currency) {
      invoice.total = total
      if let subtotal { invoice.subtotal = subtotal }
      if let tax { invoice.tax = tax }
    } else if cell(first, "total").isEmpty, !invoice.lines.isEmpty, invoice.lines.allSatisfy(\.hasAmount) {
      // No total given: the lines' amounts and taxes add up to it.
      var sums = (amount: Money.zero(currency), tax: Money.zero(currency))
      for line in invoice.lines {
        sums.amount = sums.amount.adding(line.amount.domain)
        if line.hasTax { sums.tax = sums.tax.adding(line.tax.domain) }
      }
      invoice.subtotal = Crm_V1_Money(sums.amount)
      invoice.tax = Crm_V1_Money(sums.tax)
      invoice.total = Crm_V1_Money(sums.amount.adding(sums.tax))
    } else if cell(first, "total").isEmpty, !reading.errors.isEmpty {
      // The total would come from the lines, which have their own errors.
      reading.unreadable.insert("\(first.index)|total")
    }
    var violations = Violations()
    group.fields = invoice.fields(into: &violations)
    return finish(&group, violations, reading)
  }

  /// One group of rows as a payment, or each row's errors.
  func payment(_ rows: [Crm_V1_ImportRow]) -> BillingImportGroup<PaymentFields> {
    let partRows = rows.filter(hasPart)
    var group = BillingImportGroup<PaymentFields>(
      kind: .payment, indexes: rows.map(\.index), partRows: partRows.map(\.index), columns: columnOf, fields: nil,
      errors: shapeErrors(rows))
    guard group.errors.isEmpty, let first = rows.first else { return finish(&group, Violations(), Reading(mapping: self)) }
    var reading = Reading(mapping: self)
    let currency = cell(first, "currency_code").uppercased()
    var payment = Crm_V1_Payment()
    payment.source = reading.source(first)
    payment.account = reading.account(first)
    if let money = reading.money(first, "amount", currency: currency) { payment.amount = money }
    if let day = reading.date(first, "received_date") { payment.receivedDate = day }
    payment.method = cell(first, "method")
    payment.reference = cell(first, "reference")
    switch cell(first, "state").lowercased() {
    case "", "completed": payment.state = .completed
    case "reversed": payment.state = .reversed
    default: reading.fail(first.index, "state", "INVALID", "must be completed or reversed")
    }
    for row in partRows {
      var allocation = Crm_V1_Allocation()
      allocation.invoiceID = cell(row, "invoice_id")
      allocation.invoiceExternalID = cell(row, "invoice_external_id")
      if let money = reading.money(row, "allocated_amount", currency: currency) { allocation.amount = money }
      payment.allocations.append(allocation)
    }
    var violations = Violations()
    group.fields = payment.fields(into: &violations)
    return finish(&group, violations, reading)
  }

  /// Puts validation's violations and the unreadable cells on their rows; a group with any error
  /// has no fields and an error on every row.
  func finish<Fields>(_ group: inout BillingImportGroup<Fields>, _ violations: Violations, _ reading: Reading)
    -> BillingImportGroup<Fields>
  {
    var errors = group.errors
    for (row, rowErrors) in reading.errors { errors[row, default: []] += rowErrors }
    if !violations.isEmpty {
      for (row, rowErrors) in group.rowErrors(.invalidArgument(violations.all)) {
        for error in rowErrors where !error.reason.hasSuffix("_FAILED") && !reading.unreadable.contains("\(row)|\(error.field)") {
          // One error per field: every amount names the fact's currency, for one.
          if !(errors[row] ?? []).contains(where: { $0.field == error.field }) {
            errors[row, default: []].append(error)
          }
        }
      }
    }
    if errors.isEmpty { return group }
    group.fields = nil
    group.completeErrors(&errors)
    group.errors = errors
    return group
  }
}

/// Cuts an import stream's batches into whole facts: the last fact of a batch may go on in the next
/// one, so it waits for it (or for the stream's end) and is written with it.
struct BillingFactAssembler {
  /// The rows of the fact that ended the last batch.
  var carried: [Crm_V1_ImportRow] = []
  /// The key of a fact written (and failed) for having more rows than a fact may: its further rows
  /// fail too rather than make a fact of their own.
  var oversized: String?

  /// The whole facts among the rows so far, and whether the first continues an oversized one.
  mutating func facts(adding rows: [Crm_V1_ImportRow], mapping: BillingImportMapping) -> (
    facts: [[Crm_V1_ImportRow]], continuesOversized: Bool
  ) {
    var facts = mapping.split(carried + rows)
    let continuesOversized = oversized != nil && facts.first.map { mapping.key($0[0]) } == oversized
    carried = []
    oversized = nil
    if let last = facts.last {
      if last.count > mapping.maxRows || continuesOversized && facts.count == 1 {
        oversized = mapping.key(last[0])
      } else {
        carried = facts.removeLast()
      }
    }
    return (facts, continuesOversized)
  }

  /// The last fact, when the stream ends.
  mutating func rest() -> [Crm_V1_ImportRow]? {
    defer { carried = [] }
    return carried.isEmpty ? nil : carried
  }
}

extension BillingImportMapping {
  /// Reads `facts` into invoices or payments now (on the stream's reader) and returns their write.
  /// With `continuesOversized`, the first fact's rows are the rest of one that had too many.
  func prepare(
    _ facts: [[Crm_V1_ImportRow]], store: ImportStore, header: ImportHeader, context: ChangeLog.Context,
    continuesOversized: Bool = false
  ) -> @Sendable () async throws -> [ImportRowResult] {
    // A row index sent twice is answered once, as for the other record types.
    var seen = Set<Int64>()
    let facts = facts.map { $0.filter { seen.insert($0.index).inserted } }.filter { !$0.isEmpty }
    guard !facts.isEmpty else { return { [] } }
    func tooMany<Fields>(_ group: inout BillingImportGroup<Fields>) {
      var errors: [Int64: [ImportFieldError]] = [:]
      errors[group.indexes[0]] = [
        ImportFieldError(
          field: kind.partsField, column: "", reason: "TOO_MANY",
          description: "continues a fact of more than \(maxRows) rows (\(BillingFields.maxLines) \(kind.partsField) at most)")
      ]
      group.completeErrors(&errors)
      group.fields = nil
      group.errors = errors
    }
    switch kind {
    case .invoice:
      var groups = facts.map(invoice)
      if continuesOversized { tooMany(&groups[0]) }
      return store.prepareInvoices(groups, header: header, context: context)
    case .payment:
      var groups = facts.map(payment)
      if continuesOversized { tooMany(&groups[0]) }
      return store.preparePayments(groups, header: header, context: context)
    }
  }

  /// The field of the API's invoice or payment an import field fills (for field-level security).
  func apiField(_ field: String) -> String {
    if kind.partFields.contains(field) { return kind.partsField }
    switch field {
    case "source_system", "external_id", "source_version": return "source"
    case "account_id", "customer_external_id": return "account"
    default: return field
    }
  }
}
