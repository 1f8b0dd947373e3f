public import Foundation

/// Where a billing fact comes from: the billing system, its id there, and which of its versions.
public struct BillingSource: Sendable, Hashable {
  /// A lower-case name chosen by the tenant ("stripe", "chargebee-eu").
  public var system: String
  /// The system's id of the fact.
  public var externalID: String
  /// The system's version of it; larger is newer.
  public var version: Int64

  /// A source.
  public init(system: String, externalID: String, version: Int64) {
    self.system = system
    self.externalID = externalID
    self.version = version
  }

  /// Whether `text` is a valid system name: 1–64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
  public static func isSystemName(_ text: String) -> Bool {
    guard let first = text.utf8.first, text.utf8.count <= 64 else { return false }
    func allowed(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
    return allowed(first) && text.utf8.allSatisfy { allowed($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
  }
}

/// The account a billing fact belongs to, as a push names it.
public struct BillingAccountRef: Sendable, Hashable {
  /// The account.
  public var accountID: UUID?
  /// The billing system's customer id, linked to the account by an earlier or this push.
  public var customerExternalID: String?

  /// A reference; at least one of the two is set.
  public init(accountID: UUID?, customerExternalID: String?) {
    self.accountID = accountID
    self.customerExternalID = customerExternalID
  }
}

/// Our normalized invoice state (the source's own status is kept verbatim beside it).
public enum InvoiceState: String, Sendable, Hashable, CaseIterable {
  case draft, open, paid, void, uncollectible
  case writtenOff = "written_off"

  /// States in which an invoice can be owed past its due date.
  public static let collectible: [InvoiceState] = [.open, .uncollectible]
}

/// A charge or metered usage.
public enum InvoiceLineKind: String, Sendable, Hashable, CaseIterable {
  case charge, usage
}

/// One line of an invoice; amounts in the invoice's currency.
public struct InvoiceLine: Sendable, Hashable {
  /// Its place on the invoice, from 1.
  public var lineNumber: Int
  public var externalID: String?
  public var kind: InvoiceLineKind
  public var description: String?
  public var product: String?
  public var metric: String?
  /// A decimal numeral ("1500", "12.75").
  public var quantity: String?
  public var unit: String?
  public var unitPrice: Money?
  public var amount: Money
  public var tax: Money?
  public var periodStart: CalendarDate?
  public var periodEnd: CalendarDate?

  /// A line.
  public init(
    lineNumber: Int, externalID: String? = nil, kind: InvoiceLineKind = .charge, description: String? = nil,
    product: String? = nil, metric: String? = nil, quantity: String? = nil, unit: String? = nil, unitPrice: Money? = nil,
    amount: Money, tax: Money? = nil, periodStart: CalendarDate? = nil, periodEnd: CalendarDate? = nil
  ) {
    self.lineNumber = lineNumber
    self.externalID = externalID
    self.kind = kind
    self.description = description
    self.product = product
    self.metric = metric
    self.quantity = quantity
    self.unit = unit
    self.unitPrice = unitPrice
    self.amount = amount
    self.tax = tax
    self.periodStart = periodStart
    self.periodEnd = periodEnd
  }
}

/// What a billing system says about an invoice.
/// One scheduled part of an invoice paid in instalments.
public struct InvoiceInstalment: Sendable, Hashable {
  /// From 1, in due order.
  public var number: Int
  public var dueDate: CalendarDate
  public var amount: Money
  /// Stored: what of the invoice's balance falls on it (payments cover the earliest first), and the
  /// part of that not in dispute.
  public var owed: Money?
  public var collectible: Money?

  /// An instalment.
  public init(number: Int, dueDate: CalendarDate, amount: Money, owed: Money? = nil, collectible: Money? = nil) {
    self.number = number
    self.dueDate = dueDate
    self.amount = amount
    self.owed = owed
    self.collectible = collectible
  }

  /// The most instalments one invoice has.
  public static let maxCount = 120
}

public struct InvoiceFields: Sendable, Hashable {
  public var source: BillingSource
  public var account: BillingAccountRef
  public var number: String
  public var currencyCode: String
  public var issueDate: CalendarDate
  public var dueDate: CalendarDate
  public var paymentTerms: String?
  public var vendorStatus: String
  public var state: InvoiceState
  public var subtotal: Money
  public var tax: Money
  public var total: Money
  public var lines: [InvoiceLine]
  /// The instalment plan, when the invoice is paid in parts: their amounts add up to the total, the
  /// last falls on the invoice's due date.
  public var instalments: [InvoiceInstalment]

  /// An invoice as pushed.
  public init(
    source: BillingSource, account: BillingAccountRef, number: String, currencyCode: String, issueDate: CalendarDate,
    dueDate: CalendarDate, paymentTerms: String? = nil, vendorStatus: String, state: InvoiceState, subtotal: Money,
    tax: Money, total: Money, lines: [InvoiceLine] = [], instalments: [InvoiceInstalment] = []
  ) {
    self.instalments = instalments
    self.source = source
    self.account = account
    self.number = number
    self.currencyCode = currencyCode
    self.issueDate = issueDate
    self.dueDate = dueDate
    self.paymentTerms = paymentTerms
    self.vendorStatus = vendorStatus
    self.state = state
    self.subtotal = subtotal
    self.tax = tax
    self.total = total
    self.lines = lines
  }
}

/// A stored invoice: what the source said, with the sums of what was allocated to it.
public struct Invoice: Sendable, Hashable {
  public var id: UUID
  public var accountID: UUID
  public var fields: InvoiceFields
  public var amountPaid: Money
  public var amountCredited: Money
  public var amountRefunded: Money
  /// total − paid − credited + refunded.
  public var balance: Money
  /// What open disputes contest: held out of overdue, aging and credit hold.
  public var amountDisputed: Money
  /// The due date of what is owed first: the earliest instalment still collectible, or the due date.
  public var collectDue: CalendarDate
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A stored invoice.
  public init(
    id: UUID, accountID: UUID, fields: InvoiceFields, amountPaid: Money, amountCredited: Money, amountRefunded: Money,
    balance: Money, amountDisputed: Money, collectDue: CalendarDate? = nil, version: Int64, createdAt: Timestamp,
    updatedAt: Timestamp
  ) {
    self.collectDue = collectDue ?? fields.dueDate
    self.id = id
    self.accountID = accountID
    self.fields = fields
    self.amountDisputed = amountDisputed
    self.amountPaid = amountPaid
    self.amountCredited = amountCredited
    self.amountRefunded = amountRefunded
    self.balance = balance
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  /// Owed past its due date on `day` (an instalment's, when it has them): collectible, due before it,
  /// with a balance not in dispute.
  public func isOverdue(on day: CalendarDate) -> Bool {
    InvoiceState.collectible.contains(fields.state) && collectDue < day && balance.isGreater(than: amountDisputed)
  }

  public var etag: String { Etag.make(version) }
}

/// Part of a payment or credit note applied to one invoice.
public struct Allocation: Sendable, Hashable {
  /// How the push named the invoice: our id, or the source's id of an invoice from the same system.
  public enum InvoiceRef: Sendable, Hashable {
    case id(UUID)
    case external(String)
  }

  public var invoice: InvoiceRef
  public var amount: Money

  /// An allocation.
  public init(invoice: InvoiceRef, amount: Money) {
    self.invoice = invoice
    self.amount = amount
  }
}

/// A stored allocation: the invoice and its number, for showing.
public struct StoredAllocation: Sendable, Hashable {
  public var invoiceID: UUID
  public var invoiceExternalID: String
  public var amount: Money

  /// An allocation as stored.
  public init(invoiceID: UUID, invoiceExternalID: String, amount: Money) {
    self.invoiceID = invoiceID
    self.invoiceExternalID = invoiceExternalID
    self.amount = amount
  }
}

public enum PaymentState: String, Sendable, Hashable, CaseIterable {
  case completed, reversed
}

/// What a billing system says about a payment.
public struct PaymentFields: Sendable, Hashable {
  public var source: BillingSource
  public var account: BillingAccountRef
  public var amount: Money
  public var receivedOn: CalendarDate
  public var method: String?
  public var reference: String?
  public var state: PaymentState
  public var allocations: [Allocation]

  /// A payment as pushed.
  public init(
    source: BillingSource, account: BillingAccountRef, amount: Money, receivedOn: CalendarDate, method: String? = nil,
    reference: String? = nil, state: PaymentState = .completed, allocations: [Allocation] = []
  ) {
    self.source = source
    self.account = account
    self.amount = amount
    self.receivedOn = receivedOn
    self.method = method
    self.reference = reference
    self.state = state
    self.allocations = allocations
  }
}

/// A stored payment.
public struct Payment: Sendable, Hashable {
  public var id: UUID
  public var accountID: UUID
  public var fields: PaymentFields
  public var allocations: [StoredAllocation]
  public var amountAllocated: Money
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A stored payment.
  public init(
    id: UUID, accountID: UUID, fields: PaymentFields, allocations: [StoredAllocation], amountAllocated: Money,
    version: Int64, createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.accountID = accountID
    self.fields = fields
    self.allocations = allocations
    self.amountAllocated = amountAllocated
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }
}

public enum CreditNoteKind: String, Sendable, Hashable, CaseIterable {
  case adjustment, refund
}

public enum CreditNoteState: String, Sendable, Hashable, CaseIterable {
  case issued, void
}

/// What a billing system says about a credit note.
public struct CreditNoteFields: Sendable, Hashable {
  public var source: BillingSource
  public var account: BillingAccountRef
  public var number: String?
  public var amount: Money
  public var issueDate: CalendarDate
  public var kind: CreditNoteKind
  public var reason: String
  public var state: CreditNoteState
  public var allocations: [Allocation]

  /// A credit note as pushed.
  public init(
    source: BillingSource, account: BillingAccountRef, number: String? = nil, amount: Money, issueDate: CalendarDate,
    kind: CreditNoteKind, reason: String = "other", state: CreditNoteState = .issued, allocations: [Allocation] = []
  ) {
    self.source = source
    self.account = account
    self.number = number
    self.amount = amount
    self.issueDate = issueDate
    self.kind = kind
    self.reason = reason
    self.state = state
    self.allocations = allocations
  }

  /// Whether `text` is a reason code: lower-case words joined by `_`, at most 50 characters.
  public static func isReason(_ text: String) -> Bool {
    guard let first = text.utf8.first, (0x61...0x7A).contains(first), text.utf8.count <= 50 else { return false }
    return text.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
  }
}

/// A stored credit note.
public struct CreditNote: Sendable, Hashable {
  public var id: UUID
  public var accountID: UUID
  public var fields: CreditNoteFields
  public var allocations: [StoredAllocation]
  public var amountAllocated: Money
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A stored credit note.
  public init(
    id: UUID, accountID: UUID, fields: CreditNoteFields, allocations: [StoredAllocation], amountAllocated: Money,
    version: Int64, createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.accountID = accountID
    self.fields = fields
    self.allocations = allocations
    self.amountAllocated = amountAllocated
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }
}

/// What one push did.
public enum UpsertOutcome: Sendable, Hashable {
  case created, updated
  /// The stored fact has this version already: nothing written.
  case unchanged
  /// The stored fact is newer: the push was ignored.
  case stale
}

// MARK: - Change-log snapshots

extension BillingSource {
  var snapshot: [String: JSONValue] {
    ["source_system": .string(system), "external_id": .string(externalID), "source_version": .int(version)]
  }
}

extension Invoice {
  /// The order fields appear in change-log entries.
  public static let changeLogOrder = [
    "source_system", "external_id", "source_version", "account_id", "number", "currency_code", "issue_date", "due_date",
    "payment_terms", "vendor_status", "state", "subtotal", "tax", "total", "line_count", "instalments",
  ]

  /// The invoice as its change-log entries record it (its lines by count: an invoice may have thousands).
  public var snapshot: [String: JSONValue] {
    let f = fields
    return f.source.snapshot.merging(
      [
        "account_id": .string(accountID.lowercasedString), "number": .string(f.number), "currency_code": .string(f.currencyCode),
        "issue_date": .string(f.issueDate.description), "due_date": .string(f.dueDate.description),
        "payment_terms": f.paymentTerms.map(JSONValue.string) ?? .null, "vendor_status": .string(f.vendorStatus),
        "state": .string(f.state.rawValue), "subtotal": .money(f.subtotal), "tax": .money(f.tax), "total": .money(f.total),
        "line_count": .int(Int64(f.lines.count)),
        "instalments": f.instalments.isEmpty
          ? .null : .array(f.instalments.map { .string("\($0.dueDate) \($0.amount.formatted)") }),
      ]
    ) { first, _ in first }
  }
}

extension StoredAllocation {
  var snapshot: JSONValue {
    .object([("invoice_id", .string(invoiceID.lowercasedString)), ("amount", .money(amount))])
  }
}

extension Payment {
  /// The order fields appear in change-log entries.
  public static let changeLogOrder = [
    "source_system", "external_id", "source_version", "account_id", "amount", "received_date", "method", "reference", "state",
    "allocations",
  ]

  public var snapshot: [String: JSONValue] {
    let f = fields
    return f.source.snapshot.merging(
      [
        "account_id": .string(accountID.lowercasedString), "amount": .money(f.amount),
        "received_date": .string(f.receivedOn.description), "method": f.method.map(JSONValue.string) ?? .null,
        "reference": f.reference.map(JSONValue.string) ?? .null, "state": .string(f.state.rawValue),
        "allocations": .array(allocations.map(\.snapshot)),
      ]
    ) { first, _ in first }
  }
}

extension CreditNote {
  /// The order fields appear in change-log entries.
  public static let changeLogOrder = [
    "source_system", "external_id", "source_version", "account_id", "number", "amount", "issue_date", "kind", "reason", "state",
    "allocations",
  ]

  public var snapshot: [String: JSONValue] {
    let f = fields
    return f.source.snapshot.merging(
      [
        "account_id": .string(accountID.lowercasedString), "number": f.number.map(JSONValue.string) ?? .null,
        "amount": .money(f.amount), "issue_date": .string(f.issueDate.description), "kind": .string(f.kind.rawValue),
        "reason": .string(f.reason), "state": .string(f.state.rawValue), "allocations": .array(allocations.map(\.snapshot)),
      ]
    ) { first, _ in first }
  }
}

// MARK: - Receivables

/// What a tenant decides about receivables.
public struct BillingSettings: Sendable, Hashable {
  /// Upper bounds in days past due of the aging buckets after "current", ascending.
  public var agingDays: [Int]
  /// Days past due after which an account goes on credit hold; `nil`: never for lateness.
  public var creditHoldDaysOverdue: Int?
  /// Whether owing more than the credit limit puts an account on hold.
  public var creditHoldOverLimit: Bool
  /// How many days before a dispute's evidence falls due its ticket is warned (0: on the day).
  public var disputeEvidenceWarningDays: Int

  /// Settings.
  public init(
    agingDays: [Int] = [30, 60, 90], creditHoldDaysOverdue: Int? = nil, creditHoldOverLimit: Bool = true,
    disputeEvidenceWarningDays: Int = 3
  ) {
    self.disputeEvidenceWarningDays = disputeEvidenceWarningDays
    self.agingDays = agingDays
    self.creditHoldDaysOverdue = creditHoldDaysOverdue
    self.creditHoldOverLimit = creditHoldOverLimit
  }

  /// The buckets: "current" (not yet due), then one per bound, then the open-ended last.
  public var buckets: [(label: String, fromDays: Int, toDays: Int?)] {
    var out: [(String, Int, Int?)] = [("current", 0, 0)]
    var from = 1
    for bound in agingDays {
      out.append(("\(from)-\(bound)", from, bound))
      from = bound + 1
    }
    out.append(("\(from - 1)+", from, nil))
    return out
  }
}

public enum PaymentTerms: String, Sendable, Hashable, CaseIterable {
  case prepaid, postpaid, instalments
}

/// What the tenant agreed with an account.
public struct BillingProfile: Sendable, Hashable {
  public var accountID: UUID
  public var creditLimit: Money?
  public var paymentTerms: PaymentTerms
  public var netDays: Int?
  public var version: Int64
  public var updatedAt: Timestamp

  /// A profile.
  public init(
    accountID: UUID, creditLimit: Money?, paymentTerms: PaymentTerms, netDays: Int?, version: Int64, updatedAt: Timestamp
  ) {
    self.accountID = accountID
    self.creditLimit = creditLimit
    self.paymentTerms = paymentTerms
    self.netDays = netDays
    self.version = version
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }
}

// MARK: - Disputes

/// Where a dispute stands; the last three are final.
public enum DisputeState: String, Sendable, Hashable, CaseIterable {
  case needsResponse = "needs_response"
  case underReview = "under_review"
  case won, lost, withdrawn

  /// Open disputes hold their amount out of overdue, aging and credit hold.
  public var isOpen: Bool { self == .needsResponse || self == .underReview }
}

/// A customer contesting an invoice, worked as a ticket of type dispute.
public struct Dispute: Sendable, Hashable {
  public var id: UUID
  public var invoiceID: UUID
  public var accountID: UUID
  public var ticketID: UUID
  /// The invoice lines contested; empty when the dispute names an amount.
  public var lineNumbers: [Int]
  public var amount: Money
  /// Lower-case words joined by `_` (Stripe's: `product_not_received`, `fraudulent`, `duplicate`, …).
  public var reason: String
  public var state: DisputeState
  public var evidenceDue: CalendarDate?
  /// The credit note a lost dispute issued.
  public var creditNoteID: UUID?
  public var resolvedAt: Timestamp?
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A stored dispute.
  public init(
    id: UUID, invoiceID: UUID, accountID: UUID, ticketID: UUID, lineNumbers: [Int], amount: Money, reason: String,
    state: DisputeState, evidenceDue: CalendarDate?, creditNoteID: UUID?, resolvedAt: Timestamp?, version: Int64,
    createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.invoiceID = invoiceID
    self.accountID = accountID
    self.ticketID = ticketID
    self.lineNumbers = lineNumbers
    self.amount = amount
    self.reason = reason
    self.state = state
    self.evidenceDue = evidenceDue
    self.creditNoteID = creditNoteID
    self.resolvedAt = resolvedAt
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }

  /// The order fields appear in change-log entries.
  public static let changeLogOrder = [
    "invoice_id", "account_id", "ticket_id", "line_numbers", "amount", "reason", "state", "evidence_due", "credit_note_id",
  ]

  public var snapshot: [String: JSONValue] {
    [
      "invoice_id": .string(invoiceID.lowercasedString), "account_id": .string(accountID.lowercasedString),
      "ticket_id": .string(ticketID.lowercasedString), "line_numbers": .array(lineNumbers.map { .int(Int64($0)) }),
      "amount": .money(amount), "reason": .string(reason), "state": .string(state.rawValue),
      "evidence_due": evidenceDue.map { .string($0.description) } ?? .null,
      "credit_note_id": creditNoteID.map { .string($0.lowercasedString) } ?? .null,
    ]
  }
}
