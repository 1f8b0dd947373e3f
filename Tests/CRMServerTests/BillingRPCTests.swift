import CRMCore
import CRMProto
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: the billing link")
struct BillingRPCTests {
  typealias Client = Crm_V1_BillingService.Client<HTTP2ClientTransport.Posix>

  static func usd(_ units: Int64, _ nanos: Int32 = 0, _ currency: String = "USD") -> Crm_V1_Money {
    .with {
      $0.currencyCode = currency
      $0.units = units
      $0.nanos = nanos
    }
  }

  static func day(_ year: Int32, _ month: Int32, _ day: Int32) -> Crm_V1_Date {
    .with {
      $0.year = year
      $0.month = month
      $0.day = day
    }
  }

  static func invoice(
    _ external: String, version: Int64 = 1, account: String, customer: String = "", number: String? = nil,
    total: Crm_V1_Money = usd(100), issue: Crm_V1_Date = day(2027, 1, 2), due: Crm_V1_Date = day(2027, 2, 1),
    state: Crm_V1_InvoiceState = .open,
    lines: [Crm_V1_InvoiceLine]? = nil
  ) -> Crm_V1_UpsertInvoiceRequest {
    .with {
      $0.invoice = .with {
        $0.source = .with {
          $0.system = "stripe"
          $0.externalID = external
          $0.version = version
        }
        $0.account = .with {
          $0.accountID = account
          $0.customerExternalID = customer
        }
        $0.number = number ?? "INV-\(external)"
        $0.currencyCode = total.currencyCode
        $0.issueDate = issue
        $0.dueDate = due
        $0.vendorStatus = "open"
        $0.state = state
        $0.total = total
        $0.lines =
          lines ?? [
            .with {
              $0.description_p = "Pro plan"; $0.amount = total
            }
          ]
      }
    }
  }

  static func payment(
    _ external: String, version: Int64 = 1, account: String, amount: Crm_V1_Money, state: Crm_V1_PaymentState = .completed,
    received: Crm_V1_Date = day(2027, 1, 10), allocations: [(String, Crm_V1_Money)]
  ) -> Crm_V1_UpsertPaymentRequest {
    .with {
      $0.payment = .with {
        $0.source = .with {
          $0.system = "stripe"
          $0.externalID = external
          $0.version = version
        }
        $0.account.accountID = account
        $0.amount = amount
        $0.receivedDate = received
        $0.method = "card"
        $0.state = state
        $0.allocations = allocations.map { invoice, amount in
          .with {
            $0.invoiceExternalID = invoice
            $0.amount = amount
          }
        }
      }
    }
  }

  static func account(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>, _ name: String, owner: String = "", parent: String = "", auth: Metadata
  )
    async throws -> String
  {
    try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
      .with {
        $0.account = .with {
          $0.name = name
          $0.ownerID = owner
          $0.parentID = parent
        }
      }, metadata: auth
    ).id
  }

  /// The numbers of the invoices a list request shows.
  static func numbers(_ billing: Client, _ request: Crm_V1_ListInvoicesRequest, _ auth: Metadata) async throws -> [String] {
    try await billing.listInvoices(request, metadata: auth).invoices.map(\.number)
  }

  static func code(_ body: () async throws -> Void) async -> RPCError.Code? {
    do {
      try await body()
      return nil
    } catch let error as RPCError {
      return error.code
    } catch {
      return .unknown
    }
  }

  @Test(
    "a push is an idempotent upsert: the same version changes nothing, an older one is ignored, a newer one replaces the lines")
  func upserts() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Acme Textiles", auth: admin)
      let lines: [Crm_V1_InvoiceLine] = [
        .with {
          $0.product = "pro"
          $0.description_p = "Pro plan, January"
          $0.quantity = "3"
          $0.unitPrice = Self.usd(25)
          $0.amount = Self.usd(75)
          $0.periodStart = Self.day(2027, 1, 1)
          $0.periodEnd = Self.day(2027, 1, 31)
        },
        .with {
          $0.kind = .usage
          $0.metric = "api_calls"
          $0.quantity = "125000.5"
          $0.unit = "call"
          $0.amount = Self.usd(25, 10_000_000)
        },
      ]
      let v2 = Self.invoice(
        "in_1", version: 2, account: account, customer: "cus_1", total: Self.usd(100, 10_000_000), lines: lines)
      let created = try await billing.upsertInvoice(v2, metadata: admin)
      #expect(created.outcome == .created)
      #expect(created.invoice.lines.map(\.lineNumber) == [1, 2] && created.invoice.lines[1].quantity == "125000.5")
      #expect(created.invoice.balance == Self.usd(100, 10_000_000) && created.invoice.account.accountID == account)
      // The same push again, and an older version: nothing written.
      let again = try await billing.upsertInvoice(v2, metadata: admin)
      #expect(again.outcome == .unchanged && again.invoice.etag == created.invoice.etag)
      let old = try await billing.upsertInvoice(
        Self.invoice("in_1", version: 1, account: account, number: "OLD", total: Self.usd(5)), metadata: admin)
      #expect(
        old.outcome == .stale && old.invoice.number == created.invoice.number && old.invoice.total == Self.usd(100, 10_000_000))
      // A newer version replaces the invoice and its lines.
      let newer = try await billing.upsertInvoice(
        Self.invoice("in_1", version: 3, account: account, total: Self.usd(120), state: .open), metadata: admin)
      #expect(newer.outcome == .updated && newer.invoice.lines.count == 1 && newer.invoice.total == Self.usd(120))
      #expect(newer.invoice.etag != created.invoice.etag)
      // Read back by our id and by the source's; the history has the create and one update.
      let byID = try await billing.getInvoice(.with { $0.id = created.invoice.id }, metadata: admin)
      let bySource = try await billing.getInvoice(
        .with {
          $0.sourceSystem = "stripe"
          $0.externalID = "in_1"
        }, metadata: admin)
      #expect(byID == bySource && byID.lines.count == 1)
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .invoice
          $0.recordID = created.invoice.id
        }, metadata: admin)
      #expect(history.entries.map(\.operation) == [.update, .create])
      #expect(Set(history.entries[0].changes.map(\.field)) == ["source_version", "total", "line_count", "subtotal"])
      // The first push linked the billing system's customer: later pushes may name only it.
      let linked = try await billing.upsertInvoice(
        Self.invoice("in_2", account: "", customer: "cus_1"), metadata: admin)
      #expect(linked.invoice.account.accountID == account)
      let unknown = try await #require(throws: RPCError.self) {
        try await billing.upsertInvoice(Self.invoice("in_3", account: "", customer: "cus_unknown"), metadata: admin)
      }
      #expect(unknown.code == .failedPrecondition && unknown.message.contains("cus_unknown"))
    }
  }

  @Test("payments and credit notes allocate exactly; an allocation that would overpay is refused and writes nothing")
  func allocations() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Okafor Mills", auth: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("in_a", account: account, total: Self.usd(100, 100_000_000)), metadata: admin)
      // 100.10 owed; 70.05 paid, 60.05 of it to the invoice: 40.05 owed, 10.00 left as credit.
      let paid = try await billing.upsertPayment(
        Self.payment(
          "py_1", account: account, amount: Self.usd(70, 50_000_000), allocations: [("in_a", Self.usd(60, 50_000_000))]),
        metadata: admin)
      #expect(paid.outcome == .created && paid.payment.unallocated == Self.usd(10))
      var invoice = try await billing.getInvoice(.with { $0.id = paid.payment.allocations[0].invoiceID }, metadata: admin)
      #expect(invoice.amountPaid == Self.usd(60, 50_000_000) && invoice.balance == Self.usd(40, 50_000_000))
      // Another 50.00 would overpay the 40.05 still owed: refused, and the payment is not stored.
      let over = try await #require(throws: RPCError.self) {
        try await billing.upsertPayment(
          Self.payment("py_2", account: account, amount: Self.usd(50), allocations: [("in_a", Self.usd(50))]), metadata: admin)
      }
      #expect(over.code == .failedPrecondition && over.message.contains("INV-in_a"), "\(over.message)")
      #expect(
        await Self.code {
          _ = try await billing.getPayment(
            .with {
              $0.sourceSystem = "stripe"
              $0.externalID = "py_2"
            }, metadata: admin)
        } == .notFound)
      // Allocations past the payment's own amount, or in another currency, name their field.
      let tooMuch = try await #require(throws: RPCError.self) {
        try await billing.upsertPayment(
          Self.payment("py_3", account: account, amount: Self.usd(5), allocations: [("in_a", Self.usd(6))]), metadata: admin)
      }
      #expect(tooMuch.code == .invalidArgument && tooMuch.message.contains("payment.allocations"))
      _ = try await billing.upsertInvoice(
        Self.invoice("in_eur", account: account, total: Self.usd(10, 0, "EUR")), metadata: admin)
      let currency = try await #require(throws: RPCError.self) {
        try await billing.upsertPayment(
          Self.payment("py_4", account: account, amount: Self.usd(5), allocations: [("in_eur", Self.usd(5))]), metadata: admin)
      }
      #expect(currency.code == .invalidArgument && currency.message.contains("payment.allocations[0].amount.currency_code"))
      // A refund of 30 of what was paid: credited and refunded, the balance unchanged.
      let refund = try await billing.upsertCreditNote(
        .with {
          $0.creditNote = .with {
            $0.source = .with {
              $0.system = "stripe"
              $0.externalID = "cn_1"
              $0.version = 1
            }
            $0.account.accountID = account
            $0.amount = Self.usd(30)
            $0.issueDate = Self.day(2027, 1, 12)
            $0.kind = .refund
            $0.reason = "product_unsatisfactory"
            $0.allocations = [
              .with {
                $0.invoiceExternalID = "in_a"; $0.amount = Self.usd(30)
              }
            ]
          }
        }, metadata: admin)
      #expect(refund.creditNote.amountAllocated == Self.usd(30))
      invoice = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: admin)
      #expect(invoice.amountCredited == Self.usd(30) && invoice.amountRefunded == Self.usd(30))
      #expect(invoice.balance == Self.usd(40, 50_000_000))
      // The payment reversed (a chargeback): it pays nothing, and the refund it paid for cannot stand.
      let reversal = try await #require(throws: RPCError.self) {
        try await billing.upsertPayment(
          Self.payment("py_1", version: 2, account: account, amount: Self.usd(70, 50_000_000), state: .reversed, allocations: []),
          metadata: admin)
      }
      #expect(reversal.code == .failedPrecondition && reversal.message.contains("refunded"))
      // Corrected instead: all 70.05 of the payment to the invoice, 30.05 still owed.
      let corrected = try await billing.upsertPayment(
        Self.payment(
          "py_1", version: 3, account: account, amount: Self.usd(70, 50_000_000),
          allocations: [("in_a", Self.usd(70, 50_000_000))]),
        metadata: admin)
      #expect(corrected.outcome == .updated && corrected.payment.unallocated == Self.usd(0))
      invoice = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: admin)
      #expect(invoice.balance == Self.usd(30, 50_000_000) && invoice.amountPaid == Self.usd(70, 50_000_000))
      // The database agrees with the sums, whatever wrote the allocations.
      let owner = try TestDatabase.ownerConnection()
      defer { owner.close() }
      let sums = try owner.query(
        """
        SELECT count(*) AS wrong FROM invoices i
        WHERE i.tenant_id = \(tenant.tenantID) AND (
          i.amount_paid <> coalesce((SELECT sum(amount) FROM payment_allocations a WHERE a.tenant_id = i.tenant_id AND a.invoice_id = i.id), 0)
          OR i.amount_credited <> coalesce((SELECT sum(amount) FROM credit_note_allocations a WHERE a.tenant_id = i.tenant_id AND a.invoice_id = i.id), 0))
        """)
      #expect(try sums[0].decode("wrong", as: Int64.self) == 0)
    }
  }

  @Test("billing data is read by admins, integrations and the account's owner and managers; pushes need an admin or integration")
  func visibility() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep)
    let (_, integrationSecret) = try await tenant.makeUser(.integration)
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Rep's customer", owner: rep.userID.lowercasedString, auth: admin)
      let pushed = try await billing.upsertInvoice(
        Self.invoice("in_v", account: account), metadata: TestServer.auth(integrationSecret))
      let id = pushed.invoice.id
      // The owner reads it; a peer who may read the account itself may not, nor another tenant.
      #expect(try await billing.getInvoice(.with { $0.id = id }, metadata: TestServer.auth(repSecret)).id == id)
      #expect(
        try await billing.listInvoices(.with { $0.accountID = account }, metadata: TestServer.auth(repSecret)).invoices.count == 1
      )
      #expect(
        await Self.code { _ = try await billing.getInvoice(.with { $0.id = id }, metadata: TestServer.auth(peerSecret)) }
          == .notFound)
      #expect(try await billing.listInvoices(.with { _ in }, metadata: TestServer.auth(peerSecret)).invoices.isEmpty)
      #expect(
        await Self.code { _ = try await billing.getInvoice(.with { $0.id = id }, metadata: TestServer.auth(other.adminSecret)) }
          == .notFound)
      #expect(
        try await Crm_V1_AccountService.Client(wrapping: client).getAccount(
          .with { $0.id = account }, metadata: TestServer.auth(peerSecret)
        ).id
          == account, "the account itself is public")
      // A rep cannot push.
      #expect(
        await Self.code {
          _ = try await billing.upsertInvoice(Self.invoice("in_r", account: account), metadata: TestServer.auth(repSecret))
        }
          == .permissionDenied)
      // The account's timeline shows the invoice to the owner, not to the peer; so does the feed.
      let timeline = Crm_V1_InteractionService.Client(wrapping: client)
      func invoiceEntries(_ secret: String) async throws -> Int {
        try await timeline.getTimeline(
          .with {
            $0.record = .with {
              $0.recordType = .account; $0.recordID = account
            }
          }, metadata: TestServer.auth(secret)
        ).entries.filter { $0.record.recordType == .invoice }.count
      }
      #expect(try await invoiceEntries(repSecret) == 1)
      #expect(try await invoiceEntries(peerSecret) == 0)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      let seen = try await ChangeFeedTests.events(changes, types: [.invoice], metadata: TestServer.auth(repSecret)) {
        !$0.isEmpty
      }
      #expect(seen.events.map(\.change.recordID) == [id])
      let peer = try await changes.listChanges(.with { $0.recordTypes = [.invoice] }, metadata: TestServer.auth(peerSecret))
      #expect(peer.events.isEmpty)
    }
  }

  @Test("lists: an account with the accounts below it, overdue on a day, due ranges and keyset pages")
  func lists() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let parent = try await Self.account(client, "Holding", auth: admin)
      let child = try await Self.account(client, "Subsidiary", parent: parent, auth: admin)
      let grandchild = try await Self.account(client, "Branch", parent: child, auth: admin)
      let unrelated = try await Self.account(client, "Elsewhere", auth: admin)
      _ = try await billing.upsertInvoice(Self.invoice("p1", account: parent, due: Self.day(2027, 1, 20)), metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("c1", account: child, due: Self.day(2027, 3, 1)), metadata: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("g1", account: grandchild, due: Self.day(2027, 1, 25), state: .paid), metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("u1", account: unrelated), metadata: admin)
      #expect(try await Self.numbers(billing, .with { $0.accountID = parent }, admin) == ["INV-p1"])
      #expect(
        Set(
          try await Self.numbers(
            billing,
            .with {
              $0.accountID = parent; $0.includeChildren = true
            }, admin))
          == ["INV-p1", "INV-c1", "INV-g1"])
      // Overdue on 2027-02-15: open, due before it, with a balance (the paid one is not).
      // (Built field by field: Swift 6.3.1 dropped all but the first assignment of a multi-line
      // `.with` closure here, in this test's async closure; the compiler crashed on variants of it.)
      var request = Crm_V1_ListInvoicesRequest()
      request.accountID = parent
      request.includeChildren = true
      request.overdue = true
      request.asOf = Self.day(2027, 2, 15)
      let overdue = try await billing.listInvoices(request, metadata: admin)
      #expect(overdue.invoices.map(\.number) == ["INV-p1"] && overdue.invoices[0].overdue)
      #expect(
        try await Self.numbers(
          billing,
          .with {
            $0.accountID = parent; $0.includeChildren = true; $0.order = .dueDate; $0.dueFrom = Self.day(2027, 1, 21)
          }, admin) == ["INV-g1", "INV-c1"])
      // Pages of two by due date, each invoice once.
      var seen: [String] = []
      var token = ""
      repeat {
        let page = try await billing.listInvoices(
          .with {
            $0.order = .dueDate
            $0.pageSize = 2
            $0.pageToken = token
          }, metadata: admin)
        seen += page.invoices.map(\.number)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(seen == ["INV-p1", "INV-g1", "INV-u1", "INV-c1"])
    }
  }

  @Test("bad pushes name their fields")
  func badInput() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Strict Ltd", auth: admin)
      func violation(_ request: Crm_V1_UpsertInvoiceRequest) async throws -> String {
        let error = try await #require(throws: RPCError.self) { try await billing.upsertInvoice(request, metadata: admin) }
        #expect(error.code == .invalidArgument)
        return error.message
      }
      var request = Self.invoice("bad", account: account)
      request.invoice.source.version = 0
      #expect(try await violation(request).contains("invoice.source.version"))
      request = Self.invoice("bad", account: account)
      request.invoice.source.system = "Stripe Inc"
      #expect(try await violation(request).contains("invoice.source.system"))
      request = Self.invoice("bad", account: account, due: Self.day(2026, 12, 1))
      #expect(try await violation(request).contains("invoice.due_date"))
      request = Self.invoice(
        "bad", account: account,
        lines: [
          .with {
            $0.kind = .usage; $0.amount = Self.usd(1)
          }
        ])
      let usage = try await violation(request)
      #expect(usage.contains("invoice.lines[0].metric") && usage.contains("invoice.lines[0].quantity"))
      request = Self.invoice("bad", account: account, lines: [.with { $0.amount = Self.usd(1, 0, "EUR") }])
      #expect(try await violation(request).contains("invoice.lines[0].amount.currency_code"))
      request = Self.invoice("bad'; DROP TABLE invoices; --", account: account, total: Self.usd(-1))
      #expect(try await violation(request).contains("invoice.total"))
      #expect(
        await Self.code {
          _ = try await billing.upsertInvoice(Self.invoice("x", account: UUID.v7().lowercasedString), metadata: admin)
        }
          == .notFound)
    }
  }

  @Test("one statement over a hierarchy: opening balance, lines in date order with a running balance per currency, closing")
  func statement() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let parent = try await Self.account(client, "Holding", auth: admin)
      let child = try await Self.account(client, "Subsidiary", parent: parent, auth: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("old", account: parent, total: Self.usd(40), issue: Self.day(2026, 12, 15), due: Self.day(2027, 1, 14)),
        metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("p1", account: parent, total: Self.usd(100)), metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("c1", account: child, total: Self.usd(50)), metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("c2", account: child, total: Self.usd(20, 0, "EUR")), metadata: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("draft", account: child, total: Self.usd(999), state: .draft), metadata: admin)
      _ = try await billing.upsertPayment(
        Self.payment("py", account: parent, amount: Self.usd(30), allocations: [("p1", Self.usd(30))]), metadata: admin)
      var credit = Crm_V1_UpsertCreditNoteRequest()
      credit.creditNote.source = .with {
        $0.system = "stripe"; $0.externalID = "cn"; $0.version = 1
      }
      credit.creditNote.account.accountID = child
      credit.creditNote.number = "CN-1"
      credit.creditNote.amount = Self.usd(10)
      credit.creditNote.issueDate = Self.day(2027, 1, 12)
      credit.creditNote.kind = .adjustment
      credit.creditNote.allocations = [
        .with {
          $0.invoiceExternalID = "c1"; $0.amount = Self.usd(10)
        }
      ]
      _ = try await billing.upsertCreditNote(credit, metadata: admin)
      var request = Crm_V1_GetAccountStatementRequest()
      request.accountID = parent
      request.from = Self.day(2027, 1, 1)
      request.to = Self.day(2027, 1, 31)
      request.includeChildren = true
      let statement = try await billing.getAccountStatement(request, metadata: admin)
      #expect(statement.totals.map(\.currencyCode) == ["EUR", "USD"])
      let usd = statement.totals[1]
      #expect(usd.openingBalance == Self.usd(40) && usd.totalDebits == Self.usd(150) && usd.totalCredits == Self.usd(40))
      #expect(usd.closingBalance == Self.usd(150) && statement.totals[0].closingBalance == Self.usd(20, 0, "EUR"))
      let usdLines = statement.lines.filter { $0.debit.currencyCode == "USD" }
      #expect(usdLines.map(\.reference) == ["INV-p1", "INV-c1", "py", "CN-1"])
      #expect(usdLines.map(\.balance) == [Self.usd(140), Self.usd(190), Self.usd(160), Self.usd(150)])
      #expect(usdLines.map(\.kind) == [.invoice, .invoice, .payment, .creditNote])
      #expect(statement.lines.count == 5 && !statement.lines.contains { $0.reference == "INV-draft" })
      // Page by page: the same lines, each once.
      request.pageSize = 2
      var paged: [String] = []
      repeat {
        let page = try await billing.getAccountStatement(request, metadata: admin)
        paged += page.lines.map(\.reference)
        request.pageToken = page.nextPageToken
      } while !request.pageToken.isEmpty
      #expect(paged == statement.lines.map(\.reference))
      // Without the children: the parent's own.
      request.includeChildren = false
      request.pageSize = 0
      let own = try await billing.getAccountStatement(request, metadata: admin)
      #expect(own.lines.map(\.reference) == ["INV-p1", "py"] && own.totals.map(\.closingBalance) == [Self.usd(110)])
    }
  }

  @Test("usage per metric and month from usage lines, with the last month against the one before and the average")
  func usage() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Metered", auth: admin)
      for (month, calls) in [(1, "1000"), (2, "1500"), (3, "3000")] {
        var line = Crm_V1_InvoiceLine()
        line.kind = .usage
        line.metric = "api_calls"
        line.unit = "call"
        line.quantity = calls
        line.amount = Self.usd(Int64(calls)! / 100)
        line.periodStart = Self.day(2027, Int32(month), 1)
        line.periodEnd = Self.day(2027, Int32(month), 28)
        _ = try await billing.upsertInvoice(
          Self.invoice(
            "u\(month)", account: account, total: Self.usd(Int64(calls)! / 100), issue: Self.day(2027, Int32(month), 28),
            due: Self.day(2027, Int32(month), 28), lines: [line]), metadata: admin)
      }
      var request = Crm_V1_GetUsageSummaryRequest()
      request.accountID = account
      request.periods = 4
      request.asOf = Self.day(2027, 3, 15)
      let summary = try await billing.getUsageSummary(request, metadata: admin)
      #expect(summary.series.map(\.metric) == ["api_calls"])
      let series = summary.series[0]
      #expect(series.values.map(\.quantity) == ["0", "1000", "1500", "3000"])
      #expect(series.values.map { $0.periodStart.month } == [12, 1, 2, 3] && series.values[3].periodEnd.day == 31)
      #expect(series.values[3].amount == Self.usd(30) && series.unit == "call")
      #expect(series.changePercent == "100" && series.changeFromAveragePercent == "260")
      request.period = .quarter
      request.periods = 1
      let quarter = try await billing.getUsageSummary(request, metadata: admin)
      #expect(quarter.series[0].values.map(\.quantity) == ["5500"] && quarter.series[0].changePercent.isEmpty)
    }
  }

  @Test("payments racing for one invoice never overpay it: as many succeed as it owes, the rest are refused")
  func concurrentPayments() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Busy", auth: admin)
      _ = try await billing.upsertInvoice(Self.invoice("race", account: account, total: Self.usd(100)), metadata: admin)
      let codes = try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
        for index in 0..<8 {
          group.addTask {
            await Self.code {
              _ = try await billing.upsertPayment(
                Self.payment("py\(index)", account: account, amount: Self.usd(20), allocations: [("race", Self.usd(20))]),
                metadata: admin)
            }
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      #expect(codes.filter { $0 == nil }.count == 5 && codes.filter { $0 == .failedPrecondition }.count == 3, "\(codes)")
      let invoice = try await billing.getInvoice(
        .with {
          $0.sourceSystem = "stripe"; $0.externalID = "race"
        }, metadata: admin)
      #expect(invoice.balance == Self.usd(0) && invoice.amountPaid == Self.usd(100))
    }
  }

  @Test("the financial panel: due, overdue and aging per currency, credit, limit and headroom, DSO, days to pay, credit hold")
  func financials() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Panel", auth: admin)
      let child = try await Self.account(client, "Panel branch", parent: account, auth: admin)
      for (external, owner, total, issue, due) in [
        ("i1", account, Self.usd(100), Self.day(2026, 12, 20), Self.day(2027, 1, 5)),
        ("i2", account, Self.usd(200), Self.day(2027, 2, 1), Self.day(2027, 3, 1)),
        ("i3", account, Self.usd(300), Self.day(2027, 3, 1), Self.day(2027, 3, 31)),
        ("i4", child, Self.usd(80), Self.day(2027, 1, 10), Self.day(2027, 2, 9)),
        ("i5", account, Self.usd(60), Self.day(2027, 1, 5), Self.day(2027, 1, 20)),
        ("e1", account, Self.usd(40, 0, "EUR"), Self.day(2027, 3, 1), Self.day(2027, 4, 1)),
      ] {
        _ = try await billing.upsertInvoice(
          Self.invoice(external, account: owner, total: total, issue: issue, due: due), metadata: admin)
      }
      var late = Self.payment("p1", account: account, amount: Self.usd(70), allocations: [("i2", Self.usd(50))])
      late.payment.receivedDate = Self.day(2027, 3, 10)
      _ = try await billing.upsertPayment(late, metadata: admin)
      var early = Self.payment("p2", account: account, amount: Self.usd(60), allocations: [("i5", Self.usd(60))])
      early.payment.receivedDate = Self.day(2027, 1, 25)
      _ = try await billing.upsertPayment(early, metadata: admin)
      var profile = Crm_V1_SetAccountBillingProfileRequest()
      profile.profile.accountID = account
      profile.profile.creditLimit = Self.usd(500)
      profile.profile.paymentTerms = .postpaid
      profile.profile.netDays = 30
      let stored = try await billing.setAccountBillingProfile(profile, metadata: admin)
      #expect(stored.etag == "1" && stored.netDays == 30)
      var settings = Crm_V1_SetBillingSettingsRequest()
      settings.settings.agingDays = [30, 60, 90]
      settings.settings.creditHoldForLateness = true
      settings.settings.creditHoldDaysOverdue = 60
      settings.settings.creditHoldOverLimit = true
      _ = try await billing.setBillingSettings(settings, metadata: admin)

      var request = Crm_V1_GetAccountFinancialsRequest()
      request.accountID = account
      request.asOf = Self.day(2027, 3, 15)
      let panel = try await billing.getAccountFinancials(request, metadata: admin)
      #expect(panel.currencies.map(\.currencyCode) == ["EUR", "USD"])
      let usd = panel.currencies[1]
      #expect(usd.totalDue == Self.usd(550) && usd.overdue == Self.usd(250))
      #expect(usd.openInvoiceCount == 3 && usd.overdueInvoiceCount == 2 && usd.oldestDaysOverdue == 69)
      #expect(usd.aging.map(\.label) == ["current", "1-30", "31-60", "61-90", "90+"])
      #expect(usd.aging.map(\.amount) == [Self.usd(300), Self.usd(150), Self.usd(0), Self.usd(100), Self.usd(0)])
      #expect(usd.unallocatedCredit == Self.usd(20) && usd.creditLimit == Self.usd(500) && usd.creditHeadroom == Self.usd(-30))
      #expect(usd.dsoDays == "75" && usd.averageDaysToPay == "20", "\(usd.dsoDays) \(usd.averageDaysToPay)")
      #expect(usd.lastPaymentDate == Self.day(2027, 3, 10) && usd.lastPaymentAmount == Self.usd(70))
      #expect(panel.currencies[0].totalDue == Self.usd(40, 0, "EUR") && panel.currencies[0].aging[0].invoiceCount == 1)
      #expect(panel.creditHold && panel.creditHoldReasons.count == 2, "\(panel.creditHoldReasons)")
      #expect(panel.creditHoldReasons.contains { $0.contains("69 days past due") })
      #expect(panel.creditHoldReasons.contains { $0.contains("USD 530.00") && $0.contains("USD 500.00") })
      // With the branch: its overdue invoice lands in 31-60.
      request.includeChildren = true
      let group = try await billing.getAccountFinancials(request, metadata: admin)
      #expect(group.currencies[1].totalDue == Self.usd(630) && group.currencies[1].aging[2].amount == Self.usd(80))
      // A raised limit and no lateness rule: no hold.
      settings.settings.creditHoldForLateness = false
      _ = try await billing.setBillingSettings(settings, metadata: admin)
      profile.profile.creditLimit = Self.usd(1000)
      profile.profile.etag = stored.etag
      _ = try await billing.setAccountBillingProfile(profile, metadata: admin)
      request.includeChildren = false
      let cleared = try await billing.getAccountFinancials(request, metadata: admin)
      #expect(!cleared.creditHold && cleared.currencies[1].creditHeadroom == Self.usd(470))
      // A stale etag, a rep, bad settings.
      #expect(await Self.code { _ = try await billing.setAccountBillingProfile(profile, metadata: admin) } == .aborted)
      profile.profile.etag = ""
      #expect(
        await Self.code { _ = try await billing.setAccountBillingProfile(profile, metadata: TestServer.auth(repSecret)) }
          == .permissionDenied)
      #expect(
        await Self.code { _ = try await billing.getAccountFinancials(request, metadata: TestServer.auth(repSecret)) } == .notFound
      )
      settings.settings.agingDays = [60, 30]
      #expect(await Self.code { _ = try await billing.setBillingSettings(settings, metadata: admin) } == .invalidArgument)
      // The profile change is in the account's history.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .account; $0.recordID = account
        }, metadata: admin)
      #expect(history.entries.first?.changes.map(\.field) == ["credit_limit"])
    }
  }

  @Test("the aging report lists every account owed anything, most overdue first, page by page, as far as the caller may see")
  func receivables() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let late = try await Self.account(client, "Late Ltd", auth: admin)
      let early = try await Self.account(client, "Early Ltd", auth: admin)
      let reps = try await Self.account(client, "Rep's Ltd", owner: rep.userID.lowercasedString, auth: admin)
      let due = Self.day(2027, 2, 1)
      _ = try await billing.upsertInvoice(Self.invoice("l1", account: late, total: Self.usd(100), due: due), metadata: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("l2", account: late, total: Self.usd(40, 0, "EUR"), due: Self.day(2027, 4, 1)), metadata: admin)
      _ = try await billing.upsertInvoice(
        Self.invoice("e1", account: early, total: Self.usd(300), due: Self.day(2027, 4, 1)), metadata: admin)
      _ = try await billing.upsertInvoice(Self.invoice("r1", account: reps, total: Self.usd(50), due: due), metadata: admin)
      var request = Crm_V1_ListReceivablesRequest()
      request.asOf = Self.day(2027, 3, 13)
      request.pageSize = 3
      let first = try await billing.listReceivables(request, metadata: admin)
      #expect(first.receivables.map(\.accountName) == ["Late Ltd", "Rep's Ltd", "Early Ltd"])
      #expect(first.receivables[0].overdue == Self.usd(100) && first.receivables[0].oldestDaysOverdue == 40)
      #expect(first.receivables[0].aging.map(\.label) == ["current", "1-30", "31-60", "61-90", "90+"])
      #expect(first.receivables[0].aging[2].amount == Self.usd(100) && first.receivables[2].aging[0].amount == Self.usd(300))
      request.pageToken = first.nextPageToken
      let second = try await billing.listReceivables(request, metadata: admin)
      #expect(second.receivables.map(\.currencyCode) == ["EUR"] && second.nextPageToken.isEmpty)
      request.pageToken = ""
      request.overdueOnly = true
      #expect(try await billing.listReceivables(request, metadata: admin).receivables.map(\.accountID) == [late, reps])
      request.overdueOnly = false
      request.currencyCode = "EUR"
      #expect(try await billing.listReceivables(request, metadata: admin).receivables.map(\.accountID) == [late])
      request.currencyCode = ""
      #expect(
        try await billing.listReceivables(request, metadata: TestServer.auth(repSecret)).receivables.map(\.accountID) == [reps])
    }
  }

  @Test("a dispute is a ticket; its lines leave overdue and credit hold while open; lost issues a credit note, won releases them")
  func disputes() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Contested", auth: admin)
      let lines: [Crm_V1_InvoiceLine] = [
        .with {
          $0.description_p = "Bolts"; $0.amount = Self.usd(60)
        },
        .with {
          $0.description_p = "Freight"; $0.amount = Self.usd(30); $0.tax = Self.usd(10)
        },
      ]
      let pushed = try await billing.upsertInvoice(
        Self.invoice(
          "d1", account: account, total: Self.usd(100), issue: Self.day(2026, 10, 2), due: Self.day(2026, 11, 1), lines: lines),
        metadata: admin)
      var settings = Crm_V1_SetBillingSettingsRequest()
      settings.settings.creditHoldForLateness = true
      settings.settings.creditHoldDaysOverdue = 10
      settings.settings.creditHoldOverLimit = true
      _ = try await billing.setBillingSettings(settings, metadata: admin)
      var open = Crm_V1_OpenDisputeRequest()
      open.invoiceID = pushed.invoice.id
      open.lineNumbers = [2]
      open.reason = "product_not_received"
      open.evidenceDueDate = Self.day(2027, 1, 15)
      open.description_p = "The freight never arrived."
      let opened = try await billing.openDispute(open, metadata: admin)
      let dispute = opened.dispute
      #expect(dispute.amount == Self.usd(40) && dispute.state == .needsResponse && dispute.lineNumbers == [2])
      // The ticket: type dispute, on the account.
      let ticket = try await Crm_V1_TicketService.Client(wrapping: client).getTicket(
        .with { $0.id = opened.ticketID }, metadata: admin)
      #expect(ticket.type == .dispute && ticket.accountID == account && ticket.subject.contains("INV-d1"))
      #expect(ticket.invoiceLines.map { "\($0.invoiceID):\($0.lineNumber)" } == ["\(pushed.invoice.id):2"])
      // 40 of the 100 held out of overdue and aging; the lateness hold sees the 60 left.
      var panelRequest = Crm_V1_GetAccountFinancialsRequest()
      panelRequest.accountID = account
      var panel = try await billing.getAccountFinancials(panelRequest, metadata: admin)
      #expect(panel.currencies[0].totalDue == Self.usd(100) && panel.currencies[0].overdue == Self.usd(60))
      #expect(panel.currencies[0].disputedAmount == Self.usd(40) && panel.currencies[0].disputeCount == 1)
      let invoice = try await billing.getInvoice(.with { $0.id = pushed.invoice.id }, metadata: admin)
      #expect(invoice.amountDisputed == Self.usd(40) && invoice.overdue)
      var disputedOnly = Crm_V1_ListInvoicesRequest()
      disputedOnly.disputed = true
      #expect(try await billing.listInvoices(disputedOnly, metadata: admin).invoices.map(\.id) == [pushed.invoice.id])
      // More than is left to dispute, lines it does not have, a rep: refused.
      var tooMuch = Crm_V1_OpenDisputeRequest()
      tooMuch.invoiceID = pushed.invoice.id
      tooMuch.amount = Self.usd(70)
      #expect(await Self.code { _ = try await billing.openDispute(tooMuch, metadata: admin) } == .invalidArgument)
      tooMuch.amount = Self.usd(0)
      tooMuch.lineNumbers = [9]
      tooMuch.clearAmount()
      #expect(await Self.code { _ = try await billing.openDispute(tooMuch, metadata: admin) } == .invalidArgument)
      #expect(await Self.code { _ = try await billing.openDispute(open, metadata: TestServer.auth(repSecret)) } == .notFound)
      // Evidence in, then lost: a credit note of 40 adjusts the invoice, the ticket is solved.
      var move = Crm_V1_MoveDisputeRequest()
      move.id = dispute.id
      move.state = .underReview
      move.note = "Carrier's proof of delivery attached."
      let review = try await billing.moveDispute(move, metadata: admin)
      #expect(review.state == .underReview)
      move.state = .lost
      move.etag = dispute.etag
      #expect(await Self.code { _ = try await billing.moveDispute(move, metadata: admin) } == .aborted)
      move.etag = review.etag
      let lost = try await billing.moveDispute(move, metadata: admin)
      #expect(lost.state == .lost && !lost.creditNoteID.isEmpty && lost.hasResolveTime)
      let note = try await billing.getCreditNote(.with { $0.id = lost.creditNoteID }, metadata: admin)
      #expect(note.amount == Self.usd(40) && note.kind == .adjustment && note.reason == "dispute_lost")
      let after = try await billing.getInvoice(.with { $0.id = pushed.invoice.id }, metadata: admin)
      #expect(after.balance == Self.usd(60) && after.amountDisputed == Self.usd(0) && after.amountCredited == Self.usd(40))
      let solved = try await Crm_V1_TicketService.Client(wrapping: client).getTicket(
        .with { $0.id = opened.ticketID }, metadata: admin)
      #expect(solved.status == .solved)
      // Final: no second outcome.
      move.etag = ""
      move.state = .won
      #expect(await Self.code { _ = try await billing.moveDispute(move, metadata: admin) } == .failedPrecondition)
      // A second dispute on the rest, won: released, nothing credited.
      open.lineNumbers = [1]
      let second = try await billing.openDispute(open, metadata: admin).dispute
      move.id = second.id
      move.state = .won
      _ = try await billing.moveDispute(move, metadata: admin)
      panel = try await billing.getAccountFinancials(panelRequest, metadata: admin)
      #expect(panel.currencies[0].overdue == Self.usd(60) && panel.currencies[0].disputeCount == 0)
      // A dispute whose ticket was closed meanwhile still resolves (closed tickets are final).
      open.lineNumbers = []
      open.amount = Self.usd(10)
      let third = try await billing.openDispute(open, metadata: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      var close = Crm_V1_UpdateTicketRequest()
      close.ticket.id = third.ticketID
      close.ticket.status = .closed
      close.updateMask.paths = ["status"]
      _ = try await tickets.updateTicket(close, metadata: admin)
      move.id = third.dispute.id
      move.state = .withdrawn
      #expect(try await billing.moveDispute(move, metadata: admin).state == .withdrawn)
      let listed = try await billing.listDisputes(.with { $0.accountID = account }, metadata: admin)
      #expect(listed.disputes.map(\.state) == [.withdrawn, .won, .lost])
      // The dispute's history and the account's timeline carry it.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .dispute; $0.recordID = dispute.id
        }, metadata: admin)
      #expect(history.entries.count == 3)
    }
  }

  @Test("an instalment plan: each instalment ages on its own due date, payments cover the earliest first, bad plans are refused")
  func instalments() async throws {
    let tenant = try await TestTenant.make()
    let clock = ManualWallClock(CollectionRPCTests.utc("2027-03-01T09:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await Self.account(client, "Pays In Parts", auth: admin)
      var push = Self.invoice(
        "plan-1", account: account, total: Self.usd(300), issue: Self.day(2027, 1, 1), due: Self.day(2027, 3, 15))
      push.invoice.instalments = [(Self.day(2027, 1, 15), 100), (Self.day(2027, 2, 15), 100), (Self.day(2027, 3, 15), 100)].map {
        day, units in
        var instalment = Crm_V1_InvoiceInstalment()
        instalment.dueDate = day
        instalment.amount = Self.usd(Int64(units))
        return instalment
      }
      // A plan that does not add up, or ends before the due date: refused, naming the field.
      var bad = push
      bad.invoice.instalments[2].amount = Self.usd(90)
      #expect(await Self.code { _ = try await billing.upsertInvoice(bad, metadata: admin) } == .invalidArgument)
      bad = push
      bad.invoice.instalments[2].dueDate = Self.day(2027, 3, 10)
      #expect(await Self.code { _ = try await billing.upsertInvoice(bad, metadata: admin) } == .invalidArgument)
      let invoice = try await billing.upsertInvoice(push, metadata: admin).invoice
      #expect(invoice.instalments.map(\.owed) == [Self.usd(100), Self.usd(100), Self.usd(100)])
      #expect(invoice.instalments.map(\.overdue) == [true, true, false] && invoice.overdue)
      #expect(invoice.collectDueDate == Self.day(2027, 1, 15))
      // On 1 March: 45 days past the first, 14 past the second, the third not yet due.
      var panelRequest = Crm_V1_GetAccountFinancialsRequest()
      panelRequest.accountID = account
      var panel = try await billing.getAccountFinancials(panelRequest, metadata: admin).currencies[0]
      #expect(panel.totalDue == Self.usd(300) && panel.overdue == Self.usd(200) && panel.oldestDaysOverdue == 45)
      #expect(panel.aging.map(\.amount) == [Self.usd(100), Self.usd(100), Self.usd(100), Self.usd(0), Self.usd(0)])
      // 150 paid: the first instalment and half the second.
      _ = try await billing.upsertPayment(
        Self.payment("plan-pay", account: account, amount: Self.usd(150), allocations: [("plan-1", Self.usd(150))]),
        metadata: admin)
      let paid = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: admin)
      #expect(paid.instalments.map(\.owed) == [Self.usd(0), Self.usd(50), Self.usd(100)])
      #expect(paid.instalments.map(\.overdue) == [false, true, false] && paid.collectDueDate == Self.day(2027, 2, 15))
      panel = try await billing.getAccountFinancials(panelRequest, metadata: admin).currencies[0]
      #expect(panel.overdue == Self.usd(50) && panel.oldestDaysOverdue == 14)
      #expect(panel.aging.map(\.amount) == [Self.usd(100), Self.usd(50), Self.usd(0), Self.usd(0), Self.usd(0)])
      let report = try await billing.listReceivables(.init(), metadata: admin).receivables
      #expect(report.map(\.overdue) == [Self.usd(50)])
      // An amount in dispute is held out of what falls due first: 30 collectible, on the last instalment.
      var open = Crm_V1_OpenDisputeRequest()
      open.invoiceID = invoice.id
      open.amount = Self.usd(120)
      _ = try await billing.openDispute(open, metadata: admin)
      let disputed = try await billing.getInvoice(.with { $0.id = invoice.id }, metadata: admin)
      #expect(disputed.instalments.map(\.collectible) == [Self.usd(0), Self.usd(0), Self.usd(30)])
      #expect(!disputed.overdue && disputed.collectDueDate == Self.day(2027, 3, 15))
    }
  }

  @Test("tickets name the invoice lines they concern: lines that exist, on invoices the caller may see")
  func ticketInvoiceLines() async throws {
    let tenant = try await TestTenant.make()
    let (_, agentSecret) = try await tenant.makeUser(.serviceAgent)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let account = try await Self.account(client, "Asks About A Bill", auth: admin)
      let invoice = try await billing.upsertInvoice(Self.invoice("t-1", account: account), metadata: admin).invoice
      func ref(_ line: Int32) -> Crm_V1_InvoiceLineRef {
        var ref = Crm_V1_InvoiceLineRef()
        ref.invoiceID = invoice.id
        ref.lineNumber = line
        return ref
      }
      var create = Crm_V1_CreateTicketRequest()
      create.ticket.subject = "Why was I charged twice?"
      create.ticket.accountID = account
      create.ticket.invoiceLines = [ref(1), ref(1)]
      let ticket = try await tickets.createTicket(create, metadata: admin)
      #expect(ticket.invoiceLines == [ref(1)])
      // A line the invoice does not have; an agent who may not see the account's billing data.
      create.ticket.invoiceLines = [ref(9)]
      #expect(await Self.code { _ = try await tickets.createTicket(create, metadata: admin) } == .invalidArgument)
      create.ticket.invoiceLines = [ref(0)]
      #expect(await Self.code { _ = try await tickets.createTicket(create, metadata: TestServer.auth(agentSecret)) } == .notFound)
      // Through the mask: the whole invoice instead.
      var update = Crm_V1_UpdateTicketRequest()
      update.ticket.id = ticket.id
      update.ticket.invoiceLines = [ref(0)]
      update.updateMask.paths = ["invoice_lines"]
      #expect(try await tickets.updateTicket(update, metadata: admin).invoiceLines == [ref(0)])
    }
  }
}
