import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm billing …`
struct Billing: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Invoices, payments and credit notes from the billing system.",
    subcommands: [
      Invoices.self, Invoice.self, Payments.self, Statement.self, Usage.self, Financials.self, Aging.self, Profile.self,
      Push.self,
    ])

  /// An account's financial panel as a person reads it.
  static func printPanel(_ panel: Crm_V1_AccountFinancials) {
    print("As of \(Output.date(panel.asOf))\(panel.creditHold ? "  CREDIT HOLD" : "")")
    for reason in panel.creditHoldReasons { print("  hold: \(reason)") }
    if panel.hasProfile {
      let terms = Output.name(panel.profile.paymentTerms) + (panel.profile.netDays > 0 ? " net \(panel.profile.netDays)" : "")
      print(
        "terms: \(terms)\(panel.profile.hasCreditLimit ? ", credit limit \(Output.money(panel.profile.creditLimit))" : "")")
    }
    guard let first = panel.currencies.first else { return print("nothing billed") }
    print("")
    Output.printTable(
      ["CURRENCY", "DUE", "OVERDUE", "DISPUTED"] + first.aging.map { $0.label.uppercased() }
        + ["CREDIT", "HEADROOM", "DSO", "DAYS TO PAY", "LAST PAYMENT"],
      panel.currencies.map { c in
        [
          c.currencyCode, Output.money(c.totalDue), Output.money(c.overdue),
          c.disputeCount > 0 ? "\(Output.money(c.disputedAmount)) (\(c.disputeCount))" : "",
        ] + c.aging.map { Output.money($0.amount) }
          + [
            Output.money(c.unallocatedCredit), c.hasCreditHeadroom ? Output.money(c.creditHeadroom) : "", c.dsoDays,
            c.averageDaysToPay,
            c.hasLastPaymentDate ? "\(Output.date(c.lastPaymentDate)) \(Output.money(c.lastPaymentAmount))" : "",
          ]
      })
  }

  struct Invoices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List invoices, newest first (or by due date).",
      discussion: "Example: crm billing invoices --account ACCOUNT_ID --children --overdue")
    @OptionGroup var client: ClientOptions
    @Option(help: "The account's invoices.") var account: String?
    @Flag(help: "With --account: also the invoices of every account below it.") var children = false
    @Flag(help: "Only open or uncollectible invoices past their due date with a balance.") var overdue = false
    @Option(help: "Only this state: draft, open, paid, void, uncollectible or written_off (repeatable).") var state: [String] = []
    @Flag(help: "Earliest due date first.") var byDue = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let states = try state.map(Billing.state)
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).listInvoices(
            .with {
              $0.accountID = account ?? ""
              $0.includeChildren = children
              $0.overdue = overdue
              $0.states = states
              $0.order = byDue ? .dueDate : .unspecified
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(response.nextPageToken)
        if client.json { return try Output.printJSON(response.invoices) }
        Output.printTable(
          ["NUMBER", "ISSUED", "DUE", "STATE", "", "TOTAL", "BALANCE", "ACCOUNT", "ID"],
          response.invoices.map {
            [
              $0.number, Output.date($0.issueDate), Output.date($0.dueDate), Output.name($0.state), $0.overdue ? "OVERDUE" : "",
              Output.money($0.total), Output.money($0.balance), String($0.account.accountID.prefix(8)), $0.id,
            ]
          })
      }
    }
  }

  struct Invoice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show one invoice with its lines, by id or by the billing system's id.",
      discussion: "Examples: crm billing invoice INVOICE_ID; crm billing invoice --source stripe in_1Q2w3e")
    @OptionGroup var client: ClientOptions
    @Option(help: "The billing system (with its id of the invoice as the argument).") var source: String?
    @Argument(help: "The invoice's id (or the billing system's, with --source).") var id: String

    func run() async throws {
      try await runReportingErrors {
        let invoice = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).getInvoice(
            .with {
              if let source {
                $0.sourceSystem = source
                $0.externalID = id
              } else {
                $0.id = id
              }
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([invoice]) }
        Output.printRecord([
          ("number", invoice.number), ("id", invoice.id),
          ("source", "\(invoice.source.system) \(invoice.source.externalID) (version \(invoice.source.version))"),
          ("account", invoice.account.accountID), ("issued", Output.date(invoice.issueDate)),
          ("due", Output.date(invoice.dueDate) + (invoice.overdue ? "  OVERDUE" : "")), ("terms", invoice.paymentTerms),
          ("state", "\(Output.name(invoice.state)) (\(invoice.vendorStatus))"), ("subtotal", Output.money(invoice.subtotal)),
          ("tax", Output.money(invoice.tax)), ("total", Output.money(invoice.total)),
          ("paid", Output.money(invoice.amountPaid)), ("credited", Output.money(invoice.amountCredited)),
          ("refunded", Output.money(invoice.amountRefunded)), ("balance", Output.money(invoice.balance)),
        ])
        guard !invoice.lines.isEmpty else { return }
        print("")
        Output.printTable(
          ["#", "KIND", "DESCRIPTION", "QUANTITY", "UNIT PRICE", "AMOUNT", "TAX", "PERIOD"],
          invoice.lines.map { line in
            [
              String(line.lineNumber), Output.name(line.kind),
              [line.product, line.description_p, line.metric].filter { !$0.isEmpty }.joined(separator: " · "),
              [line.quantity, line.unit].filter { !$0.isEmpty }.joined(separator: " "), Output.money(line.unitPrice),
              Output.money(line.amount), Output.money(line.tax),
              line.hasPeriodStart ? "\(Output.date(line.periodStart))…\(Output.date(line.periodEnd))" : "",
            ]
          })
      }
    }
  }

  struct Payments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List payments, newest first, with what they paid.")
    @OptionGroup var client: ClientOptions
    @Option(help: "The account's payments.") var account: String?
    @Flag(help: "With --account: also those of every account below it.") var children = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).listPayments(
            .with {
              $0.accountID = account ?? ""
              $0.includeChildren = children
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(response.nextPageToken)
        if client.json { return try Output.printJSON(response.payments) }
        Output.printTable(
          ["RECEIVED", "AMOUNT", "UNALLOCATED", "METHOD", "STATE", "PAID INVOICES", "ID"],
          response.payments.map {
            [
              Output.date($0.receivedDate), Output.money($0.amount), Output.money($0.unallocated), $0.method,
              Output.name($0.state),
              $0.allocations.map { "\($0.invoiceExternalID) \(Output.money($0.amount))" }.joined(separator: ", "), $0.id,
            ]
          })
      }
    }
  }

  struct Statement: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "An account's statement: invoices, credits, refunds and payments with a running balance per currency.",
      discussion: "Example: crm billing statement ACCOUNT_ID --from 2027-01-01 --to 2027-03-31 --children")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Option(help: "First day, YYYY-MM-DD (default: 90 days before --to).") var from: String?
    @Option(help: "Last day, YYYY-MM-DD (default: today).") var to: String?
    @Flag(help: "One statement for the account and every account below it.") var children = false
    @Option(help: "Lines per page (1-1000).") var limit: Int32 = 1000
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let from = try from.map { try OpportunityFieldOptions.date($0, option: "--from") }
        let to = try to.map { try OpportunityFieldOptions.date($0, option: "--to") }
        let statement = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).getAccountStatement(
            .with {
              $0.accountID = account
              if let from { $0.from = from }
              if let to { $0.to = to }
              $0.includeChildren = children
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(statement.nextPageToken)
        if client.json { return try Output.printJSON([statement]) }
        print(
          "Statement \(Output.date(statement.from)) to \(Output.date(statement.to))\(children ? " (with the accounts below)" : "")"
        )
        for total in statement.totals {
          print(
            "\(total.currencyCode): opening \(Output.money(total.openingBalance)), charged \(Output.money(total.totalDebits)), "
              + "credited \(Output.money(total.totalCredits)), closing \(Output.money(total.closingBalance))")
        }
        print("")
        Output.printTable(
          ["DATE", "KIND", "REFERENCE", "DEBIT", "CREDIT", "BALANCE", "ACCOUNT"],
          statement.lines.map {
            [
              Output.date($0.date), Output.name($0.kind), $0.reference,
              $0.debit.units == 0 && $0.debit.nanos == 0 ? "" : Output.money($0.debit),
              $0.credit.units == 0 && $0.credit.nanos == 0 ? "" : Output.money($0.credit), Output.money($0.balance),
              String($0.accountID.prefix(8)),
            ]
          })
      }
    }
  }

  struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Metered usage per metric and month (or quarter), with how the last period moved.",
      discussion: "Example: crm billing usage ACCOUNT_ID --periods 12")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Flag(help: "Also the accounts below it.") var children = false
    @Flag(help: "Quarters instead of months.") var quarters = false
    @Option(help: "How many periods (1-36).") var periods: Int32 = 6

    func run() async throws {
      try await runReportingErrors {
        let summary = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).getUsageSummary(
            .with {
              $0.accountID = account
              $0.includeChildren = children
              $0.period = quarters ? .quarter : .month
              $0.periods = periods
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([summary]) }
        guard let first = summary.series.first else { return print("no usage in these periods") }
        Output.printTable(
          ["METRIC", "UNIT"] + first.values.map { Output.date($0.periodStart) } + ["CHANGE", "VS AVERAGE"],
          summary.series.map { series in
            [series.metric, series.unit] + series.values.map(\.quantity)
              + [
                series.changePercent.isEmpty ? "" : series.changePercent + "%",
                series.changeFromAveragePercent.isEmpty ? "" : series.changeFromAveragePercent + "%",
              ]
          })
      }
    }
  }

  struct Financials: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "An account's financial panel: due, overdue, aging, credit and limit, DSO, days to pay, credit hold.",
      discussion: "Example: crm billing financials ACCOUNT_ID --children")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Flag(help: "Also the accounts below it.") var children = false
    @Option(help: "The day, YYYY-MM-DD (default: today).") var asOf: String?

    func run() async throws {
      try await runReportingErrors {
        let asOf = try asOf.map { try OpportunityFieldOptions.date($0, option: "--as-of") }
        let panel = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).getAccountFinancials(
            .with {
              $0.accountID = account
              $0.includeChildren = children
              if let asOf { $0.asOf = asOf }
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([panel]) }
        Billing.printPanel(panel)
      }
    }
  }

  struct Aging: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The aging report: every account owed anything, most overdue first.",
      discussion: "Example: crm billing aging --overdue --currency USD")
    @OptionGroup var client: ClientOptions
    @Flag(help: "Only accounts owing something past due.") var overdue = false
    @Option(help: "Only this currency.") var currency: String?
    @Option(help: "The day, YYYY-MM-DD (default: today).") var asOf: String?
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let asOf = try asOf.map { try OpportunityFieldOptions.date($0, option: "--as-of") }
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).listReceivables(
            .with {
              if let asOf { $0.asOf = asOf }
              $0.currencyCode = currency ?? ""
              $0.overdueOnly = overdue
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        Output.more(response.nextPageToken)
        if client.json { return try Output.printJSON(response.receivables) }
        guard let first = response.receivables.first else { return print("nothing owed") }
        Output.printTable(
          ["ACCOUNT", "DUE", "OVERDUE"] + first.aging.map { $0.label.uppercased() } + ["INVOICES", "OLDEST", "ID"],
          response.receivables.map { r in
            [r.accountName, Output.money(r.totalDue), Output.money(r.overdue)] + r.aging.map { Output.money($0.amount) }
              + [String(r.openInvoiceCount), r.oldestDaysOverdue > 0 ? "\(r.oldestDaysOverdue)d" : "", r.accountID]
          })
      }
    }
  }

  struct Profile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set an account's credit limit and payment terms.",
      discussion: "Example: crm billing profile ACCOUNT_ID --credit-limit \"USD 50000\" --terms postpaid --net-days 30")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account.") var account: String
    @Option(help: "The credit limit, e.g. \"USD 50000\" (omit for none).") var creditLimit: String?
    @Option(help: "prepaid, postpaid or instalments.") var terms: String = "postpaid"
    @Option(help: "Postpaid: days from issue to due.") var netDays: Int32 = 0

    func run() async throws {
      try await runReportingErrors {
        let limit = try creditLimit.map { try AccountFieldOptions.money($0) }
        let kinds: [String: Crm_V1_PaymentTerms] = ["prepaid": .prepaid, "postpaid": .postpaid, "instalments": .instalments]
        guard let kind = kinds[terms] else { throw ValidationError("--terms must be prepaid, postpaid or instalments") }
        let profile = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).setAccountBillingProfile(
            .with {
              $0.profile.accountID = account
              if let limit { $0.profile.creditLimit = limit }
              $0.profile.paymentTerms = kind
              $0.profile.netDays = netDays
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([profile]) }
        Output.printRecord([
          ("account", profile.accountID), ("credit limit", Output.money(profile.creditLimit)),
          ("terms", Output.name(profile.paymentTerms)), ("net days", profile.netDays > 0 ? String(profile.netDays) : ""),
          ("etag", profile.etag),
        ])
      }
    }
  }

  struct Push: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Push an invoice, payment or credit note from a JSON file (the API's JSON form), as a billing system would.",
      discussion: """
        The file holds one Invoice, Payment or CreditNote message in protobuf JSON. Example invoice:
          {"source": {"system": "stripe", "externalId": "in_1", "version": 1},
           "account": {"accountId": "ACCOUNT_ID", "customerExternalId": "cus_9"},
           "number": "INV-0001", "currencyCode": "USD", "issueDate": {"year": 2027, "month": 1, "day": 5},
           "dueDate": {"year": 2027, "month": 2, "day": 4}, "vendorStatus": "open", "state": "INVOICE_STATE_OPEN",
           "total": {"currencyCode": "USD", "units": "1200"},
           "lines": [{"description": "Pro plan", "amount": {"currencyCode": "USD", "units": "1200"}}]}
        Pushing the same version again changes nothing; an older version is ignored.
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "invoice, payment or credit-note.") var kind: String
    @Argument(help: "The JSON file (- for standard input).") var file: String

    func run() async throws {
      try await runReportingErrors {
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        let text = String(decoding: data, as: UTF8.self)
        let (outcome, summary): (Crm_V1_UpsertOutcome, String) = try await client.withClient { grpc, metadata in
          let billing = Crm_V1_BillingService.Client(wrapping: grpc)
          switch kind {
          case "invoice":
            let request = Crm_V1_UpsertInvoiceRequest.with { $0.invoice = (try? .init(jsonString: text)) ?? .init() }
            guard request.invoice.hasSource else { throw ValidationError("\(file) is not an Invoice in protobuf JSON") }
            let response = try await billing.upsertInvoice(request, metadata: metadata)
            if client.json { try Output.printJSON([response.invoice]) }
            return (
              response.outcome,
              "invoice \(response.invoice.number) \(response.invoice.id), balance \(Output.money(response.invoice.balance))"
            )
          case "payment":
            let request = Crm_V1_UpsertPaymentRequest.with { $0.payment = (try? .init(jsonString: text)) ?? .init() }
            guard request.payment.hasSource else { throw ValidationError("\(file) is not a Payment in protobuf JSON") }
            let response = try await billing.upsertPayment(request, metadata: metadata)
            if client.json { try Output.printJSON([response.payment]) }
            return (response.outcome, "payment \(response.payment.id), unallocated \(Output.money(response.payment.unallocated))")
          case "credit-note":
            let request = Crm_V1_UpsertCreditNoteRequest.with { $0.creditNote = (try? .init(jsonString: text)) ?? .init() }
            guard request.creditNote.hasSource else { throw ValidationError("\(file) is not a CreditNote in protobuf JSON") }
            let response = try await billing.upsertCreditNote(request, metadata: metadata)
            if client.json { try Output.printJSON([response.creditNote]) }
            return (response.outcome, "credit note \(response.creditNote.id)")
          default:
            throw ValidationError("the kind must be invoice, payment or credit-note")
          }
        }
        if !client.json { print("\(Output.name(outcome)): \(summary)") }
      }
    }
  }

  static func state(_ text: String) throws -> Crm_V1_InvoiceState {
    let states: [String: Crm_V1_InvoiceState] = [
      "draft": .draft, "open": .open, "paid": .paid, "void": .void, "uncollectible": .uncollectible, "written_off": .writtenOff,
    ]
    guard let state = states[text] else {
      throw ValidationError("--state must be draft, open, paid, void, uncollectible or written_off")
    }
    return state
  }
}

/// `crm disputes …`
struct Disputes: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Invoice disputes, worked as service tickets: open one, list them, move one on.",
    subcommands: [Open.self, List.self, Resolve.self])

  static func printDisputes(_ disputes: [Crm_V1_Dispute], json: Bool) throws {
    if json { return try Output.printJSON(disputes) }
    Output.printTable(
      ["OPENED", "STATE", "AMOUNT", "REASON", "LINES", "EVIDENCE DUE", "INVOICE", "TICKET", "ID"],
      disputes.map {
        [
          Output.time($0.createTime), Output.name($0.state), Output.money($0.amount), $0.reason,
          $0.lineNumbers.map(String.init).joined(separator: ","), Output.date($0.evidenceDueDate), String($0.invoiceID.prefix(8)),
          String($0.ticketID.prefix(8)), $0.id,
        ]
      })
  }

  struct Open: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Open a dispute on an invoice: a ticket of type dispute, the amount held out of overdue and credit hold.",
      discussion: "Example: crm disputes open INVOICE_ID --lines 2 --reason product_not_received --evidence-due 2027-01-15")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The invoice's id (or the billing system's, with --source).") var invoice: String
    @Option(help: "The billing system, when the argument is its invoice id.") var source: String?
    @Option(help: "The lines disputed, e.g. 2,3.") var lines: String?
    @Option(help: "Or the amount disputed, e.g. \"USD 40\".") var amount: String?
    @Option(help: "Why, e.g. product_not_received, duplicate, fraudulent.") var reason: String = "general"
    @Option(help: "When the evidence is due, YYYY-MM-DD.") var evidenceDue: String?
    @Option(help: "What the customer says.") var description: String?

    func run() async throws {
      try await runReportingErrors {
        let numbers = try (lines ?? "").split(separator: ",").map {
          guard let number = Int32($0.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("--lines must be like 2,3")
          }
          return number
        }
        let money = try amount.map { try AccountFieldOptions.money($0) }
        let due = try evidenceDue.map { try OpportunityFieldOptions.date($0, option: "--evidence-due") }
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).openDispute(
            .with {
              if let source {
                $0.sourceSystem = source
                $0.externalID = invoice
              } else {
                $0.invoiceID = invoice
              }
              $0.lineNumbers = numbers
              if let money { $0.amount = money }
              $0.reason = reason
              if let due { $0.evidenceDueDate = due }
              $0.description_p = description ?? ""
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        print("dispute \(response.dispute.id) for \(Output.money(response.dispute.amount)), ticket #\(response.ticketNumber)")
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List disputes, newest first.")
    @OptionGroup var client: ClientOptions
    @Option(help: "An account's disputes.") var account: String?
    @Option(help: "An invoice's disputes.") var invoice: String?
    @Flag(help: "Only open ones.") var open = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).listDisputes(
            .with {
              $0.accountID = account ?? ""
              $0.invoiceID = invoice ?? ""
              $0.openOnly = open
              $0.pageSize = limit
              $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        try Disputes.printDisputes(response.disputes, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }

  struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Move a dispute on: under_review, won, lost (issues a credit note) or withdrawn.",
      discussion: "Example: crm disputes resolve DISPUTE_ID lost --note \"Carrier could not prove delivery\"")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The dispute.") var id: String
    @Argument(help: "under_review, won, lost or withdrawn.") var state: String
    @Option(help: "A note for the ticket.") var note: String?

    func run() async throws {
      try await runReportingErrors {
        let states: [String: Crm_V1_DisputeState] = [
          "under_review": .underReview, "won": .won, "lost": .lost, "withdrawn": .withdrawn,
        ]
        guard let target = states[state] else { throw ValidationError("the state must be under_review, won, lost or withdrawn") }
        let dispute = try await client.withClient { grpc, metadata in
          try await Crm_V1_BillingService.Client(wrapping: grpc).moveDispute(
            .with {
              $0.id = id
              $0.state = target
              $0.note = note ?? ""
            }, metadata: metadata)
        }
        try Disputes.printDisputes([dispute], json: client.json)
        if !dispute.creditNoteID.isEmpty, !client.json { print("credit note \(dispute.creditNoteID) issued") }
      }
    }
  }
}
