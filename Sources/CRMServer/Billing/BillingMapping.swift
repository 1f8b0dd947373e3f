import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

/// Checks of billing input shared by invoices, payments and credit notes.
enum BillingFields {
  /// What an amount may be.
  enum Sign {
    case positive, notNegative, any
  }

  /// An amount under `field` in `currency` (when the fact fixes one), within the billing range.
  static func money(
    _ money: Crm_V1_Money, present: Bool, field: String, currency: String?, sign: Sign, required: Bool,
    into violations: inout Violations
  ) -> Money? {
    guard present else {
      if required { violations.add(field, "is required", reason: "REQUIRED") }
      return nil
    }
    guard
      let value = Money.validated(
        currencyCode: money.currencyCode, units: money.units, nanos: money.nanos, field: field, into: &violations)
    else { return nil }
    if let currency, value.currencyCode != currency {
      violations.add("\(field).currency_code", "must be \(currency), like every amount of the same fact", reason: "INVALID")
      return nil
    }
    if value.units.magnitude > Money.billingUnitsLimit {
      violations.add("\(field).units", "must be at most \(Money.billingUnitsLimit) in size", reason: "OUT_OF_RANGE")
      return nil
    }
    switch sign {
    case .positive where !value.isPositive:
      violations.add(field, "must be more than zero", reason: "OUT_OF_RANGE")
      return nil
    case .notNegative where value.isNegative:
      violations.add(field, "must not be negative", reason: "OUT_OF_RANGE")
      return nil
    default:
      return value
    }
  }

  /// A currency code (ISO 4217, any case); empty is `nil`, or a violation when `required`.
  static func currency(_ text: String, field: String, required: Bool, into violations: inout Violations) -> String? {
    let code = text.trimmingWhitespace().uppercased()
    if code.isEmpty {
      if required { violations.add(field, "is required: a 3-letter ISO 4217 code", reason: "REQUIRED") }
      return nil
    }
    guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
      violations.add(field, "must be a 3-letter ISO 4217 code", reason: "INVALID_FORMAT")
      return nil
    }
    return code
  }

  static func source(_ source: Crm_V1_BillingSource, present: Bool, field: String, into violations: inout Violations)
    -> BillingSource?
  {
    guard present else {
      violations.add(field, "is required: {system, external_id, version}", reason: "REQUIRED")
      return nil
    }
    var valid = true
    if !BillingSource.isSystemName(source.system) {
      violations.add(
        "\(field).system", "must be 1 to 64 of a-z, 0-9, \".\", \"_\", \"-\" (e.g. \"stripe\")",
        reason: source.system.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
      valid = false
    }
    let external = violations.text("\(field).external_id", source.externalID, maxLength: 255, required: true)
    if source.version <= 0 {
      violations.add(
        "\(field).version", "must be positive: the source's version of the fact, larger when newer", reason: "REQUIRED")
      valid = false
    }
    guard valid, let external else { return nil }
    return BillingSource(system: source.system, externalID: external, version: source.version)
  }

  static func account(_ ref: Crm_V1_BillingAccountRef, field: String, into violations: inout Violations) -> BillingAccountRef? {
    let id = RequestFields.optionalID(ref.accountID, field: "\(field).account_id", into: &violations)
    let customer = violations.text("\(field).customer_external_id", ref.customerExternalID, maxLength: 255)
    guard id != nil || customer != nil else {
      if ref.accountID.isEmpty {
        violations.add("\(field).account_id", "name the account, or the billing system's customer id", reason: "REQUIRED")
      }
      return nil
    }
    return BillingAccountRef(accountID: id, customerExternalID: customer)
  }

  static func date(_ date: Crm_V1_Date, present: Bool, field: String, required: Bool, into violations: inout Violations)
    -> CalendarDate?
  {
    guard present else {
      if required { violations.add(field, "is required", reason: "REQUIRED") }
      return nil
    }
    return date.domain(field: field, into: &violations)
  }

  /// At most this many lines on an invoice, allocations on a payment or credit note.
  static let maxLines = 5000
  static let maxAllocations = 1000

  static func allocations(
    _ allocations: [Crm_V1_Allocation], field: String, currency: String?, into violations: inout Violations
  ) -> [Allocation] {
    guard allocations.count <= maxAllocations else {
      violations.add(field, "at most \(maxAllocations) allocations", reason: "TOO_MANY")
      return []
    }
    var out: [Allocation] = []
    var seen: Set<Allocation.InvoiceRef> = []
    for (index, allocation) in allocations.enumerated() {
      let path = "\(field)[\(index)]"
      let ref: Allocation.InvoiceRef?
      switch (allocation.invoiceID.isEmpty, allocation.invoiceExternalID.isEmpty) {
      case (false, true):
        ref = RequestFields.optionalID(allocation.invoiceID, field: "\(path).invoice_id", into: &violations).map { .id($0) }
      case (true, false):
        ref = violations.text("\(path).invoice_external_id", allocation.invoiceExternalID, maxLength: 255).map { .external($0) }
      case (false, false):
        violations.add(path, "name the invoice by invoice_id or by invoice_external_id, not both", reason: "INVALID")
        ref = nil
      case (true, true):
        violations.add("\(path).invoice_id", "name the invoice by invoice_id or invoice_external_id", reason: "REQUIRED")
        ref = nil
      }
      let amount = money(
        allocation.amount, present: allocation.hasAmount, field: "\(path).amount", currency: currency, sign: .positive,
        required: true, into: &violations)
      guard let ref, let amount else { continue }
      guard seen.insert(ref).inserted else {
        violations.add(path, "names the same invoice as an earlier allocation; allocate once per invoice", reason: "DUPLICATE")
        continue
      }
      out.append(Allocation(invoice: ref, amount: amount))
    }
    return out
  }

  /// Refuses allocations that add up to more than `total`.
  static func checkSum(_ allocations: [Allocation], within total: Money?, field: String, into violations: inout Violations) {
    guard let total else { return }
    let sum = allocations.reduce(Money.zero(total.currencyCode)) { $0.adding($1.amount) }
    if sum.isGreater(than: total) {
      violations.add(field, "allocate at most the amount (\(total.formatted)) in all", reason: "OUT_OF_RANGE")
    }
  }
}

extension Crm_V1_Invoice {
  /// The invoice a billing system pushed, validated.
  func fields(into violations: inout Violations) -> InvoiceFields? {
    let source = BillingFields.source(self.source, present: hasSource, field: "invoice.source", into: &violations)
    let account = BillingFields.account(self.account, field: "invoice.account", into: &violations)
    let number = violations.text("invoice.number", number, maxLength: 100, required: true)
    let currency = BillingFields.currency(currencyCode, field: "invoice.currency_code", required: true, into: &violations)
    let issue = BillingFields.date(
      issueDate, present: hasIssueDate, field: "invoice.issue_date", required: true, into: &violations)
    let due = BillingFields.date(dueDate, present: hasDueDate, field: "invoice.due_date", required: true, into: &violations)
    if let issue, let due, due < issue { violations.add("invoice.due_date", "must be on or after issue_date", reason: "INVALID") }
    let terms = violations.text("invoice.payment_terms", paymentTerms, maxLength: 100)
    let vendorStatus = violations.text("invoice.vendor_status", vendorStatus, maxLength: 100, required: true)
    let state = InvoiceState(state, field: "invoice.state", into: &violations)
    let total = BillingFields.money(
      total, present: hasTotal, field: "invoice.total", currency: currency, sign: .notNegative, required: true,
      into: &violations)
    let tax = BillingFields.money(
      tax, present: hasTax, field: "invoice.tax", currency: currency, sign: .any, required: false, into: &violations)
    let subtotal = BillingFields.money(
      subtotal, present: hasSubtotal, field: "invoice.subtotal", currency: currency, sign: .any, required: false,
      into: &violations)
    var lines: [InvoiceLine] = []
    if self.lines.count > BillingFields.maxLines {
      violations.add("invoice.lines", "at most \(BillingFields.maxLines) lines", reason: "TOO_MANY")
    } else {
      for (index, line) in self.lines.enumerated() {
        if let line = line.domain(number: index + 1, currency: currency, into: &violations) { lines.append(line) }
      }
    }
    let instalments = Self.instalments(
      self.instalments, currency: currency, issue: issue, due: due, total: total, into: &violations)
    guard let source, let account, let number, let currency, let issue, let due, let vendorStatus, let state, let total
    else { return nil }
    let zero = Money.zero(currency)
    return InvoiceFields(
      source: source, account: account, number: number, currencyCode: currency, issueDate: issue, dueDate: due,
      paymentTerms: terms, vendorStatus: vendorStatus, state: state, subtotal: subtotal ?? total, tax: tax ?? zero,
      total: total, lines: lines, instalments: instalments)
  }

  /// An instalment plan, checked: due dates ascending from the issue date to the invoice's due date
  /// (the last on it), positive amounts in the invoice's currency adding up to its total.
  static func instalments(
    _ given: [Crm_V1_InvoiceInstalment], currency: String?, issue: CalendarDate?, due: CalendarDate?, total: Money?,
    into violations: inout Violations
  ) -> [InvoiceInstalment] {
    guard !given.isEmpty else { return [] }
    guard given.count <= InvoiceInstalment.maxCount else {
      violations.add("invoice.instalments", "at most \(InvoiceInstalment.maxCount) instalments", reason: "TOO_MANY")
      return []
    }
    var plan: [InvoiceInstalment] = []
    for (index, instalment) in given.enumerated() {
      let field = "invoice.instalments[\(index)]"
      let day = BillingFields.date(
        instalment.dueDate, present: instalment.hasDueDate, field: "\(field).due_date", required: true, into: &violations)
      let amount = BillingFields.money(
        instalment.amount, present: instalment.hasAmount, field: "\(field).amount", currency: currency, sign: .positive,
        required: true, into: &violations)
      guard let day, let amount else { continue }
      if let issue, day < issue {
        violations.add("\(field).due_date", "must be on or after the invoice's issue_date", reason: "INVALID")
      }
      if let previous = plan.last, day < previous.dueDate {
        violations.add("\(field).due_date", "instalments come in due order", reason: "INVALID")
      }
      plan.append(InvoiceInstalment(number: index + 1, dueDate: day, amount: amount))
    }
    guard plan.count == given.count, let last = plan.last else { return [] }
    if let due, last.dueDate != due {
      violations.add(
        "invoice.instalments[\(plan.count - 1)].due_date", "the last instalment falls on the invoice's due_date, \(due)",
        reason: "INVALID")
    }
    if let total, let currency {
      let sum = plan.reduce(Money.zero(currency)) { $0.adding($1.amount) }
      if sum != total {
        violations.add(
          "invoice.instalments", "add up to \(sum.formatted); they must add up to the total, \(total.formatted)",
          reason: "INVALID")
      }
    }
    return plan
  }

  /// The API form of a stored invoice, as of `today` for `overdue`.
  init(_ invoice: Invoice, today: CalendarDate) {
    self.init()
    let f = invoice.fields
    id = invoice.id.lowercasedString
    source = .init(f.source)
    account = .with { $0.accountID = invoice.accountID.lowercasedString }
    number = f.number
    currencyCode = f.currencyCode
    issueDate = .init(f.issueDate)
    dueDate = .init(f.dueDate)
    paymentTerms = f.paymentTerms ?? ""
    vendorStatus = f.vendorStatus
    state = Crm_V1_InvoiceState(f.state)
    subtotal = .init(f.subtotal)
    tax = .init(f.tax)
    total = .init(f.total)
    lines = f.lines.map(Crm_V1_InvoiceLine.init)
    amountPaid = .init(invoice.amountPaid)
    amountCredited = .init(invoice.amountCredited)
    amountRefunded = .init(invoice.amountRefunded)
    balance = .init(invoice.balance)
    overdue = invoice.isOverdue(on: today)
    amountDisputed = .init(invoice.amountDisputed)
    etag = invoice.etag
    createTime = .init(invoice.createdAt)
    updateTime = .init(invoice.updatedAt)
    let collectible = InvoiceState.collectible.contains(f.state)
    instalments = f.instalments.map { instalment in
      var out = Crm_V1_InvoiceInstalment()
      out.number = Int32(instalment.number)
      out.dueDate = .init(instalment.dueDate)
      out.amount = .init(instalment.amount)
      if let owed = instalment.owed { out.owed = .init(owed) }
      if let part = instalment.collectible {
        out.collectible = .init(part)
        out.overdue = collectible && part.isPositive && instalment.dueDate < today
      }
      return out
    }
    collectDueDate = .init(invoice.collectDue)
  }
}

extension Crm_V1_InvoiceLine {
  func domain(number: Int, currency: String?, into violations: inout Violations) -> InvoiceLine? {
    let path = "invoice.lines[\(number - 1)]"
    let kind: InvoiceLineKind?
    switch self.kind {
    case .unspecified, .charge: kind = .charge
    case .usage: kind = .usage
    case .UNRECOGNIZED:
      violations.add("\(path).kind", "must be CHARGE or USAGE", reason: "INVALID")
      kind = nil
    }
    let external = violations.text("\(path).external_id", externalID, maxLength: 255)
    let description = violations.text("\(path).description", description_p, maxLength: 1000)
    let product = violations.text("\(path).product", product, maxLength: 255)
    let metric = violations.text("\(path).metric", metric, maxLength: 100, required: kind == .usage)
    let unit = violations.text("\(path).unit", unit, maxLength: 50)
    var quantity: String?
    let trimmed = self.quantity.trimmingWhitespace()
    if trimmed.isEmpty {
      if kind == .usage { violations.add("\(path).quantity", "is required for usage lines", reason: "REQUIRED") }
    } else if DecimalNumeral.isValid(trimmed) {
      quantity = trimmed
    } else {
      violations.add(
        "\(path).quantity", "must be a decimal with at most 15 whole and 9 fraction digits, e.g. \"12.75\"",
        reason: "INVALID_FORMAT")
    }
    let unitPrice = BillingFields.money(
      unitPrice, present: hasUnitPrice, field: "\(path).unit_price", currency: currency, sign: .any, required: false,
      into: &violations)
    let amount = BillingFields.money(
      amount, present: hasAmount, field: "\(path).amount", currency: currency, sign: .any, required: true, into: &violations)
    let tax = BillingFields.money(
      tax, present: hasTax, field: "\(path).tax", currency: currency, sign: .any, required: false, into: &violations)
    let start = BillingFields.date(
      periodStart, present: hasPeriodStart, field: "\(path).period_start", required: false, into: &violations)
    let end = BillingFields.date(
      periodEnd, present: hasPeriodEnd, field: "\(path).period_end", required: false, into: &violations)
    if let start, let end, end < start {
      violations.add("\(path).period_end", "must be on or after period_start", reason: "INVALID")
    }
    guard let kind, let amount else { return nil }
    return InvoiceLine(
      lineNumber: number, externalID: external, kind: kind, description: description, product: product, metric: metric,
      quantity: quantity, unit: unit, unitPrice: unitPrice, amount: amount, tax: tax, periodStart: start, periodEnd: end)
  }

  init(_ line: InvoiceLine) {
    self.init()
    lineNumber = Int32(line.lineNumber)
    externalID = line.externalID ?? ""
    kind = line.kind == .usage ? .usage : .charge
    description_p = line.description ?? ""
    product = line.product ?? ""
    metric = line.metric ?? ""
    quantity = line.quantity ?? ""
    unit = line.unit ?? ""
    if let unitPrice = line.unitPrice { self.unitPrice = .init(unitPrice) }
    amount = .init(line.amount)
    if let tax = line.tax { self.tax = .init(tax) }
    if let start = line.periodStart { periodStart = .init(start) }
    if let end = line.periodEnd { periodEnd = .init(end) }
  }
}

extension Crm_V1_Payment {
  func fields(into violations: inout Violations) -> PaymentFields? {
    let source = BillingFields.source(self.source, present: hasSource, field: "payment.source", into: &violations)
    let account = BillingFields.account(self.account, field: "payment.account", into: &violations)
    let amount = BillingFields.money(
      amount, present: hasAmount, field: "payment.amount", currency: nil, sign: .positive, required: true, into: &violations)
    let received = BillingFields.date(
      receivedDate, present: hasReceivedDate, field: "payment.received_date", required: true, into: &violations)
    let method = violations.text("payment.method", method, maxLength: 50)
    let reference = violations.text("payment.reference", reference, maxLength: 255)
    let state: PaymentState?
    switch self.state {
    case .unspecified, .completed: state = .completed
    case .reversed: state = .reversed
    case .UNRECOGNIZED:
      violations.add("payment.state", "must be COMPLETED or REVERSED", reason: "INVALID")
      state = nil
    }
    let allocations = BillingFields.allocations(
      self.allocations, field: "payment.allocations", currency: amount?.currencyCode, into: &violations)
    if state == .reversed, !self.allocations.isEmpty {
      violations.add("payment.allocations", "a reversed payment allocates nothing", reason: "INVALID")
    }
    BillingFields.checkSum(allocations, within: amount, field: "payment.allocations", into: &violations)
    guard let source, let account, let amount, let received, let state else { return nil }
    return PaymentFields(
      source: source, account: account, amount: amount, receivedOn: received, method: method, reference: reference,
      state: state, allocations: allocations)
  }

  init(_ payment: Payment) {
    self.init()
    let f = payment.fields
    id = payment.id.lowercasedString
    source = .init(f.source)
    account = .with { $0.accountID = payment.accountID.lowercasedString }
    amount = .init(f.amount)
    receivedDate = .init(f.receivedOn)
    method = f.method ?? ""
    reference = f.reference ?? ""
    state = f.state == .reversed ? .reversed : .completed
    allocations = payment.allocations.map(Crm_V1_Allocation.init)
    amountAllocated = .init(payment.amountAllocated)
    unallocated = .init(f.state == .reversed ? .zero(f.amount.currencyCode) : f.amount.subtracting(payment.amountAllocated))
    etag = payment.etag
    createTime = .init(payment.createdAt)
    updateTime = .init(payment.updatedAt)
  }
}

extension Crm_V1_BillingSource {
  init(_ source: BillingSource) {
    self.init()
    system = source.system
    externalID = source.externalID
    version = source.version
  }
}

extension Crm_V1_Allocation {
  init(_ allocation: StoredAllocation) {
    self.init()
    invoiceID = allocation.invoiceID.lowercasedString
    invoiceExternalID = allocation.invoiceExternalID
    amount = .init(allocation.amount)
  }
}

extension Crm_V1_CreditNote {
  func fields(into violations: inout Violations) -> CreditNoteFields? {
    let source = BillingFields.source(self.source, present: hasSource, field: "credit_note.source", into: &violations)
    let account = BillingFields.account(self.account, field: "credit_note.account", into: &violations)
    let number = violations.text("credit_note.number", number, maxLength: 100)
    let amount = BillingFields.money(
      amount, present: hasAmount, field: "credit_note.amount", currency: nil, sign: .positive, required: true,
      into: &violations)
    let issue = BillingFields.date(
      issueDate, present: hasIssueDate, field: "credit_note.issue_date", required: true, into: &violations)
    let kind: CreditNoteKind?
    switch self.kind {
    case .adjustment: kind = .adjustment
    case .refund: kind = .refund
    case .unspecified, .UNRECOGNIZED:
      violations.add("credit_note.kind", "must be ADJUSTMENT or REFUND", reason: "REQUIRED")
      kind = nil
    }
    let reason = reason.isEmpty ? "other" : reason
    if !CreditNoteFields.isReason(reason) {
      violations.add(
        "credit_note.reason", "must be lower-case words joined by \"_\" (e.g. \"write_off\"), at most 50 characters",
        reason: "INVALID_FORMAT")
    }
    let state: CreditNoteState?
    switch self.state {
    case .unspecified, .issued: state = .issued
    case .void: state = .void
    case .UNRECOGNIZED:
      violations.add("credit_note.state", "must be ISSUED or VOID", reason: "INVALID")
      state = nil
    }
    let allocations = BillingFields.allocations(
      self.allocations, field: "credit_note.allocations", currency: amount?.currencyCode, into: &violations)
    if state == .void, !self.allocations.isEmpty {
      violations.add("credit_note.allocations", "a void credit note allocates nothing", reason: "INVALID")
    }
    BillingFields.checkSum(allocations, within: amount, field: "credit_note.allocations", into: &violations)
    guard let source, let account, let amount, let issue, let kind, let state, CreditNoteFields.isReason(reason) else {
      return nil
    }
    return CreditNoteFields(
      source: source, account: account, number: number, amount: amount, issueDate: issue, kind: kind, reason: reason,
      state: state, allocations: allocations)
  }

  init(_ note: CreditNote) {
    self.init()
    let f = note.fields
    id = note.id.lowercasedString
    source = .init(f.source)
    account = .with { $0.accountID = note.accountID.lowercasedString }
    number = f.number ?? ""
    amount = .init(f.amount)
    issueDate = .init(f.issueDate)
    kind = f.kind == .refund ? .refund : .adjustment
    reason = f.reason
    state = f.state == .void ? .void : .issued
    allocations = note.allocations.map(Crm_V1_Allocation.init)
    amountAllocated = .init(note.amountAllocated)
    etag = note.etag
    createTime = .init(note.createdAt)
    updateTime = .init(note.updatedAt)
  }
}

extension InvoiceState {
  init?(_ state: Crm_V1_InvoiceState, field: String, into violations: inout Violations) {
    switch state {
    case .draft: self = .draft
    case .open: self = .open
    case .paid: self = .paid
    case .void: self = .void
    case .uncollectible: self = .uncollectible
    case .writtenOff: self = .writtenOff
    case .unspecified, .UNRECOGNIZED:
      violations.add(field, "must be DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE or WRITTEN_OFF", reason: "REQUIRED")
      return nil
    }
  }
}

extension Crm_V1_InvoiceState {
  init(_ state: InvoiceState) {
    switch state {
    case .draft: self = .draft
    case .open: self = .open
    case .paid: self = .paid
    case .void: self = .void
    case .uncollectible: self = .uncollectible
    case .writtenOff: self = .writtenOff
    }
  }
}

extension Crm_V1_UpsertOutcome {
  init(_ outcome: UpsertOutcome) {
    switch outcome {
    case .created: self = .created
    case .updated: self = .updated
    case .unchanged: self = .unchanged
    case .stale: self = .stale
    }
  }
}

extension Crm_V1_AccountStatement {
  init(_ statement: AccountStatement) {
    self.init()
    accountID = statement.accountID.lowercasedString
    from = .init(statement.from)
    to = .init(statement.to)
    includeChildren = statement.includeChildren
    totals = statement.totals.map { total in
      .with {
        $0.currencyCode = total.currencyCode
        $0.openingBalance = .init(total.opening)
        $0.totalDebits = .init(total.debits)
        $0.totalCredits = .init(total.credits)
        $0.closingBalance = .init(total.closing)
      }
    }
    lines = statement.lines.map { line in
      .with {
        $0.date = .init(line.date)
        switch line.kind {
        case .invoice: $0.kind = .invoice
        case .creditNote: $0.kind = .creditNote
        case .refund: $0.kind = .refund
        case .payment: $0.kind = .payment
        }
        $0.recordID = line.recordID.lowercasedString
        $0.accountID = line.accountID.lowercasedString
        $0.reference = line.reference
        $0.debit = .init(line.debit)
        $0.credit = .init(line.credit)
        $0.balance = .init(line.balance)
      }
    }
    nextPageToken = statement.nextPageToken ?? ""
  }
}

extension Crm_V1_UsageSummary {
  init(_ summary: UsageSummary) {
    self.init()
    accountID = summary.accountID.lowercasedString
    period = summary.period == .quarter ? .quarter : .month
    series = summary.series.map { series in
      .with {
        $0.metric = series.metric
        $0.unit = series.unit ?? ""
        $0.values = series.values.map { value in
          .with {
            $0.periodStart = .init(value.start)
            $0.periodEnd = .init(value.end)
            $0.quantity = value.quantity
            if let amount = value.amount { $0.amount = .init(amount) }
          }
        }
        $0.changePercent = series.changePercent ?? ""
        $0.changeFromAveragePercent = series.changeFromAveragePercent ?? ""
      }
    }
  }
}

extension Crm_V1_AccountBillingProfile {
  init(_ profile: BillingProfile) {
    self.init()
    accountID = profile.accountID.lowercasedString
    if let limit = profile.creditLimit { creditLimit = .init(limit) }
    switch profile.paymentTerms {
    case .prepaid: paymentTerms = .prepaid
    case .postpaid: paymentTerms = .postpaid
    case .instalments: paymentTerms = .instalments
    }
    netDays = Int32(profile.netDays ?? 0)
    etag = profile.etag
    updateTime = .init(profile.updatedAt)
  }
}

extension Crm_V1_BillingSettings {
  init(_ settings: BillingSettings) {
    self.init()
    agingDays = settings.agingDays.map(Int32.init)
    creditHoldForLateness = settings.creditHoldDaysOverdue != nil
    creditHoldDaysOverdue = Int32(settings.creditHoldDaysOverdue ?? 0)
    creditHoldOverLimit = settings.creditHoldOverLimit
    disputeEvidenceWarningDays = Int32(settings.disputeEvidenceWarningDays)
  }
}

extension Crm_V1_AccountFinancials {
  init(_ financials: AccountFinancials) {
    self.init()
    accountID = financials.accountID.lowercasedString
    asOf = .init(financials.asOf)
    includeChildren = financials.includeChildren
    windowDays = Int32(financials.windowDays)
    currencies = financials.currencies.map { figure in
      .with {
        $0.currencyCode = figure.code
        $0.totalDue = .init(figure.totalDue)
        $0.overdue = .init(figure.overdue)
        $0.aging = figure.buckets.map(Crm_V1_AgingBucket.init)
        $0.openInvoiceCount = Int32(figure.openInvoices)
        $0.overdueInvoiceCount = Int32(figure.overdueInvoices)
        $0.oldestDaysOverdue = Int32(figure.oldestDaysOverdue)
        $0.unallocatedCredit = .init(figure.unallocatedCredit)
        if let limit = figure.creditLimit { $0.creditLimit = .init(limit) }
        if let headroom = figure.creditHeadroom { $0.creditHeadroom = .init(headroom) }
        $0.dsoDays = figure.dsoDays ?? ""
        $0.averageDaysToPay = figure.averageDaysToPay ?? ""
        if let date = figure.lastPaymentDate { $0.lastPaymentDate = .init(date) }
        if let amount = figure.lastPaymentAmount { $0.lastPaymentAmount = .init(amount) }
        $0.disputedAmount = .init(figure.disputed)
        $0.disputeCount = Int32(figure.disputes)
      }
    }
    if let profile = financials.profile { self.profile = .init(profile) }
    creditHold = financials.creditHold
    creditHoldReasons = financials.creditHoldReasons
    collectionStatus = .init(financials.collection.status)
    collectorID = financials.collection.collectorID?.lowercasedString ?? ""
  }
}

extension Crm_V1_AgingBucket {
  init(_ bucket: AccountFinancials.Bucket) {
    self.init()
    label = bucket.label
    fromDays = Int32(bucket.fromDays)
    toDays = Int32(bucket.toDays ?? 0)
    amount = .init(bucket.amount)
    invoiceCount = Int32(bucket.count)
  }
}

extension Crm_V1_Receivable {
  init(_ receivable: BillingStore.Receivable) {
    self.init()
    accountID = receivable.accountID.lowercasedString
    accountName = receivable.accountName
    currencyCode = receivable.currencyCode
    totalDue = .init(receivable.totalDue)
    overdue = .init(receivable.overdue)
    aging = receivable.buckets.map(Crm_V1_AgingBucket.init)
    openInvoiceCount = Int32(receivable.openInvoices)
    oldestDaysOverdue = Int32(receivable.oldestDaysOverdue)
    collectorID = receivable.collectorID?.lowercasedString ?? ""
    collectionStatus = .init(receivable.collectionStatus)
  }
}

extension Crm_V1_Dispute {
  init(_ dispute: Dispute) {
    self.init()
    id = dispute.id.lowercasedString
    invoiceID = dispute.invoiceID.lowercasedString
    accountID = dispute.accountID.lowercasedString
    ticketID = dispute.ticketID.lowercasedString
    lineNumbers = dispute.lineNumbers.map(Int32.init)
    amount = .init(dispute.amount)
    reason = dispute.reason
    switch dispute.state {
    case .needsResponse: state = .needsResponse
    case .underReview: state = .underReview
    case .won: state = .won
    case .lost: state = .lost
    case .withdrawn: state = .withdrawn
    }
    if let due = dispute.evidenceDue { evidenceDueDate = .init(due) }
    creditNoteID = dispute.creditNoteID?.lowercasedString ?? ""
    if let resolved = dispute.resolvedAt { resolveTime = .init(resolved) }
    etag = dispute.etag
    createTime = .init(dispute.createdAt)
    updateTime = .init(dispute.updatedAt)
  }
}
