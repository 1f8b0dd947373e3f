import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.BillingService`: invoices, payments and credit notes pushed by billing systems, and reads
/// of them for whoever may see an account's billing data.
public struct BillingService: Crm_V1_BillingService.SimpleServiceProtocol {
  let billing: BillingStore
  /// Disputes are worked as tickets.
  let tickets: TicketStore

  /// A service over the billing store; disputes open tickets in `tickets`.
  public init(billing: BillingStore, tickets: TicketStore) {
    self.billing = billing
    self.tickets = tickets
  }

  public func upsertInvoice(request: Crm_V1_UpsertInvoiceRequest, context: ServerContext) async throws
    -> Crm_V1_UpsertInvoiceResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasInvoice { violations.add("invoice", "is required", reason: "REQUIRED") }
    let fields = request.invoice.fields(into: &violations)
    try violations.check()
    let (invoice, outcome) = try await billing.upsertInvoice(fields!, context: .init(principal: call.principal, requestID: nil))
    let today = billing.today
    return .with {
      $0.invoice = Crm_V1_Invoice(invoice, today: today)
      $0.outcome = Crm_V1_UpsertOutcome(outcome)
    }
  }

  public func upsertPayment(request: Crm_V1_UpsertPaymentRequest, context: ServerContext) async throws
    -> Crm_V1_UpsertPaymentResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasPayment { violations.add("payment", "is required", reason: "REQUIRED") }
    let fields = request.payment.fields(into: &violations)
    try violations.check()
    let (payment, outcome) = try await billing.upsertPayment(fields!, context: .init(principal: call.principal, requestID: nil))
    return .with {
      $0.payment = Crm_V1_Payment(payment)
      $0.outcome = Crm_V1_UpsertOutcome(outcome)
    }
  }

  public func upsertCreditNote(request: Crm_V1_UpsertCreditNoteRequest, context: ServerContext) async throws
    -> Crm_V1_UpsertCreditNoteResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasCreditNote { violations.add("credit_note", "is required", reason: "REQUIRED") }
    let fields = request.creditNote.fields(into: &violations)
    try violations.check()
    let (note, outcome) = try await billing.upsertCreditNote(fields!, context: .init(principal: call.principal, requestID: nil))
    return .with {
      $0.creditNote = Crm_V1_CreditNote(note)
      $0.outcome = Crm_V1_UpsertOutcome(outcome)
    }
  }

  public func getInvoice(request: Crm_V1_GetInvoiceRequest, context: ServerContext) async throws -> Crm_V1_Invoice {
    let call = try RequestContext.require()
    let key = try Self.key(id: request.id, system: request.sourceSystem, externalID: request.externalID)
    return Crm_V1_Invoice(try await billing.invoice(key, principal: call.principal), today: billing.today)
  }

  public func listInvoices(request: Crm_V1_ListInvoicesRequest, context: ServerContext) async throws
    -> Crm_V1_ListInvoicesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var query = BillingStore.InvoiceQuery()
    query.accountID = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    if request.includeChildren, query.accountID == nil {
      violations.add("include_children", "needs account_id", reason: "INVALID")
    }
    query.includeChildren = request.includeChildren
    for (index, state) in request.states.enumerated() {
      if let state = InvoiceState(state, field: "states[\(index)]", into: &violations) { query.states.append(state) }
    }
    let asOf = BillingFields.date(request.asOf, present: request.hasAsOf, field: "as_of", required: false, into: &violations)
    if request.overdue { query.overdueOn = asOf ?? billing.today }
    query.disputed = request.disputed
    query.dueFrom = BillingFields.date(
      request.dueFrom, present: request.hasDueFrom, field: "due_from", required: false, into: &violations)
    query.dueTo = BillingFields.date(
      request.dueTo, present: request.hasDueTo, field: "due_to", required: false, into: &violations)
    query.currencyCode = BillingFields.currency(request.currencyCode, field: "currency_code", required: false, into: &violations)
    switch request.order {
    case .unspecified: query.order = .issueDescending
    case .dueDate: query.order = .dueAscending
    case .UNRECOGNIZED: violations.add("order", "must be UNSPECIFIED or DUE_DATE", reason: "INVALID")
    }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await billing.invoices(query, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    let today = asOf ?? billing.today
    return .with {
      $0.invoices = page.items.map { Crm_V1_Invoice($0, today: today) }
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func getPayment(request: Crm_V1_GetPaymentRequest, context: ServerContext) async throws -> Crm_V1_Payment {
    let call = try RequestContext.require()
    let key = try Self.key(id: request.id, system: request.sourceSystem, externalID: request.externalID)
    return Crm_V1_Payment(try await billing.payment(key, principal: call.principal))
  }

  public func listPayments(request: Crm_V1_ListPaymentsRequest, context: ServerContext) async throws
    -> Crm_V1_ListPaymentsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    if request.includeChildren, account == nil { violations.add("include_children", "needs account_id", reason: "INVALID") }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await billing.payments(
      accountID: account, includeChildren: request.includeChildren, pageSize: pageSize, pageToken: request.pageToken,
      principal: call.principal)
    return .with {
      $0.payments = page.items.map(Crm_V1_Payment.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func getCreditNote(request: Crm_V1_GetCreditNoteRequest, context: ServerContext) async throws -> Crm_V1_CreditNote {
    let call = try RequestContext.require()
    let key = try Self.key(id: request.id, system: request.sourceSystem, externalID: request.externalID)
    return Crm_V1_CreditNote(try await billing.creditNote(key, principal: call.principal))
  }

  public func getAccountStatement(request: Crm_V1_GetAccountStatementRequest, context: ServerContext) async throws
    -> Crm_V1_AccountStatement
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    let to =
      BillingFields.date(request.to, present: request.hasTo, field: "to", required: false, into: &violations) ?? billing.today
    let from =
      BillingFields.date(request.from, present: request.hasFrom, field: "from", required: false, into: &violations)
      ?? to.adding(days: -89)
    if from > to { violations.add("from", "must be on or before to", reason: "INVALID") }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let statement = try await billing.statement(
      accountID: account!, from: from, to: to, includeChildren: request.includeChildren, pageSize: pageSize,
      pageToken: request.pageToken, principal: call.principal)
    return Crm_V1_AccountStatement(statement)
  }

  public func getUsageSummary(request: Crm_V1_GetUsageSummaryRequest, context: ServerContext) async throws
    -> Crm_V1_UsageSummary
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    var period = UsageSummary.Period.month
    switch request.period {
    case .unspecified, .month: break
    case .quarter: period = .quarter
    case .UNRECOGNIZED: violations.add("period", "must be MONTH or QUARTER", reason: "INVALID")
    }
    let periods = request.periods == 0 ? 6 : Int(request.periods)
    if !(1...36).contains(periods) { violations.add("periods", "must be 1 to 36", reason: "OUT_OF_RANGE") }
    let asOf = BillingFields.date(request.asOf, present: request.hasAsOf, field: "as_of", required: false, into: &violations)
    try violations.check()
    let summary = try await billing.usage(
      accountID: account!, includeChildren: request.includeChildren, period: period, periods: periods, asOf: asOf,
      principal: call.principal)
    return Crm_V1_UsageSummary(summary)
  }

  public func getAccountFinancials(request: Crm_V1_GetAccountFinancialsRequest, context: ServerContext) async throws
    -> Crm_V1_AccountFinancials
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    let asOf = BillingFields.date(request.asOf, present: request.hasAsOf, field: "as_of", required: false, into: &violations)
    let window = request.windowDays == 0 ? 90 : Int(request.windowDays)
    if !(1...730).contains(window) { violations.add("window_days", "must be 1 to 730", reason: "OUT_OF_RANGE") }
    try violations.check()
    let financials = try await billing.financials(
      accountID: account!, asOf: asOf, includeChildren: request.includeChildren, windowDays: window, principal: call.principal)
    return Crm_V1_AccountFinancials(financials)
  }

  public func setAccountBillingProfile(request: Crm_V1_SetAccountBillingProfileRequest, context: ServerContext) async throws
    -> Crm_V1_AccountBillingProfile
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let profile = request.profile
    let account = RequestFields.id(profile.accountID, field: "profile.account_id", into: &violations)
    let limit = BillingFields.money(
      profile.creditLimit, present: profile.hasCreditLimit, field: "profile.credit_limit", currency: nil, sign: .notNegative,
      required: false, into: &violations)
    var terms = PaymentTerms.postpaid
    switch profile.paymentTerms {
    case .unspecified, .postpaid: break
    case .prepaid: terms = .prepaid
    case .instalments: terms = .instalments
    case .UNRECOGNIZED: violations.add("profile.payment_terms", "must be PREPAID, POSTPAID or INSTALMENTS", reason: "INVALID")
    }
    if !(0...365).contains(profile.netDays) {
      violations.add("profile.net_days", "must be 0 to 365", reason: "OUT_OF_RANGE")
    } else if profile.netDays > 0, terms != .postpaid {
      violations.add("profile.net_days", "applies to postpaid terms only", reason: "INVALID")
    }
    let expected = RequestFields.etag(profile.etag, field: "profile.etag", into: &violations)
    try violations.check()
    let stored = try await billing.setProfile(
      accountID: account!, creditLimit: limit, paymentTerms: terms, netDays: terms == .postpaid ? Int(profile.netDays) : nil,
      expectedVersion: expected, principal: call.principal)
    return Crm_V1_AccountBillingProfile(stored)
  }

  public func listReceivables(request: Crm_V1_ListReceivablesRequest, context: ServerContext) async throws
    -> Crm_V1_ListReceivablesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let asOf = BillingFields.date(request.asOf, present: request.hasAsOf, field: "as_of", required: false, into: &violations)
    let currency = BillingFields.currency(request.currencyCode, field: "currency_code", required: false, into: &violations)
    let collector = RequestFields.optionalID(request.collectorID, field: "collector_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await billing.receivables(
      asOf: asOf, currency: currency, overdueOnly: request.overdueOnly, collectorID: collector, pageSize: pageSize,
      pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.receivables = page.items.map(Crm_V1_Receivable.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func openDispute(request: Crm_V1_OpenDisputeRequest, context: ServerContext) async throws
    -> Crm_V1_OpenDisputeResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let key = try Self.key(id: request.invoiceID, system: request.sourceSystem, externalID: request.externalID)
    if request.lineNumbers.count > BillingFields.maxLines || request.lineNumbers.contains(where: { $0 < 1 }) {
      violations.add("line_numbers", "must be the invoice's line numbers (from 1)", reason: "INVALID")
    }
    if Set(request.lineNumbers).count != request.lineNumbers.count {
      violations.add("line_numbers", "names a line twice", reason: "DUPLICATE")
    }
    let amount = BillingFields.money(
      request.amount, present: request.hasAmount, field: "amount", currency: nil, sign: .positive, required: false,
      into: &violations)
    if !request.lineNumbers.isEmpty, amount != nil {
      violations.add("amount", "name the lines or the amount, not both", reason: "INVALID")
    } else if request.lineNumbers.isEmpty, amount == nil, !request.hasAmount {
      violations.add("line_numbers", "name the lines disputed, or the amount", reason: "REQUIRED")
    }
    let reason = request.reason.isEmpty ? "general" : request.reason
    if !CreditNoteFields.isReason(reason) {
      violations.add(
        "reason", "must be lower-case words joined by \"_\" (e.g. \"product_not_received\")", reason: "INVALID_FORMAT")
    }
    let due = BillingFields.date(
      request.evidenceDueDate, present: request.hasEvidenceDueDate, field: "evidence_due_date", required: false,
      into: &violations)
    let description = violations.text("description", request.description_p, maxLength: 100_000)
    let requester = RequestFields.optionalID(request.requesterContactID, field: "requester_contact_id", into: &violations)
    try violations.check()
    let opening = BillingStore.DisputeOpening(
      lineNumbers: request.lineNumbers.map(Int.init), amount: amount, reason: reason, evidenceDue: due, description: description,
      requesterContactID: requester)
    let (dispute, ticket) = try await billing.openDispute(
      key, opening, context: .init(principal: call.principal, requestID: nil), tickets: tickets)
    return .with {
      $0.dispute = Crm_V1_Dispute(dispute)
      $0.ticketID = ticket.id.lowercasedString
      $0.ticketNumber = ticket.number
    }
  }

  public func getDispute(request: Crm_V1_GetDisputeRequest, context: ServerContext) async throws -> Crm_V1_Dispute {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Dispute(try await billing.dispute(id!, principal: call.principal))
  }

  public func listDisputes(request: Crm_V1_ListDisputesRequest, context: ServerContext) async throws
    -> Crm_V1_ListDisputesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    let invoice = RequestFields.optionalID(request.invoiceID, field: "invoice_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await billing.disputes(
      accountID: account, invoiceID: invoice, openOnly: request.openOnly, pageSize: pageSize, pageToken: request.pageToken,
      principal: call.principal)
    return .with {
      $0.disputes = page.items.map(Crm_V1_Dispute.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func moveDispute(request: Crm_V1_MoveDisputeRequest, context: ServerContext) async throws -> Crm_V1_Dispute {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    var state: DisputeState?
    switch request.state {
    case .underReview: state = .underReview
    case .won: state = .won
    case .lost: state = .lost
    case .withdrawn: state = .withdrawn
    case .needsResponse, .unspecified, .UNRECOGNIZED:
      violations.add("state", "must be UNDER_REVIEW, WON, LOST or WITHDRAWN", reason: "INVALID")
    }
    let note = violations.text("note", request.note, maxLength: 10_000)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    try violations.check()
    let dispute = try await billing.moveDispute(
      id!, to: state!, note: note, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil),
      tickets: tickets)
    return Crm_V1_Dispute(dispute)
  }

  public func getBillingSettings(request: Crm_V1_GetBillingSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_BillingSettings
  {
    let call = try RequestContext.require()
    return Crm_V1_BillingSettings(try await billing.settings(principal: call.principal))
  }

  public func setBillingSettings(request: Crm_V1_SetBillingSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_BillingSettings
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let given = request.settings
    let aging = given.agingDays.isEmpty ? [30, 60, 90] : given.agingDays.map(Int.init)
    if aging.count > 8 || aging.contains(where: { $0 <= 0 || $0 > 3650 }) || aging != aging.sorted()
      || Set(aging).count != aging.count
    {
      violations.add(
        "settings.aging_days", "must be 1 to 8 ascending day counts between 1 and 3650, e.g. [30, 60, 90]", reason: "INVALID")
    }
    if given.creditHoldForLateness, !(0...3650).contains(given.creditHoldDaysOverdue) {
      violations.add("settings.credit_hold_days_overdue", "must be 0 to 3650", reason: "OUT_OF_RANGE")
    }
    if given.hasDisputeEvidenceWarningDays, !(0...60).contains(given.disputeEvidenceWarningDays) {
      violations.add("settings.dispute_evidence_warning_days", "must be 0 to 60", reason: "OUT_OF_RANGE")
    }
    try violations.check()
    let settings = BillingSettings(
      agingDays: aging, creditHoldDaysOverdue: given.creditHoldForLateness ? Int(given.creditHoldDaysOverdue) : nil,
      creditHoldOverLimit: given.creditHoldOverLimit,
      disputeEvidenceWarningDays: given.hasDisputeEvidenceWarningDays ? Int(given.disputeEvidenceWarningDays) : 3)
    return Crm_V1_BillingSettings(try await billing.setSettings(settings, principal: call.principal))
  }

  /// A read's key: `id`, or `source_system` with `external_id`.
  static func key(id: String, system: String, externalID: String) throws(CRMError) -> BillingStore.Key {
    var violations = Violations()
    if !id.isEmpty {
      if !system.isEmpty || !externalID.isEmpty {
        violations.add("id", "name the fact by id, or by source_system and external_id, not both", reason: "INVALID")
      }
      let parsed = RequestFields.id(id, field: "id", into: &violations)
      try violations.check()
      return .id(parsed!)
    }
    if system.isEmpty || externalID.isEmpty {
      violations.add(
        system.isEmpty ? "source_system" : "external_id", "name the fact by id, or by source_system and external_id",
        reason: "REQUIRED")
    } else if !BillingSource.isSystemName(system) {
      violations.add("source_system", "must be 1 to 64 of a-z, 0-9, \".\", \"_\", \"-\"", reason: "INVALID_FORMAT")
    } else if externalID.utf8.count > 255 {
      violations.add("external_id", "must be at most 255 characters", reason: "TOO_LONG")
    }
    try violations.check()
    return .source(system: system, externalID: externalID)
  }
}
