import CRMCore
import CRMProto
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: importing invoices and payments")
struct BillingImportRPCTests {
  static let invoiceColumns = [
    "System", "Invoice ID", "Version", "Customer", "Account", "Number", "Currency", "Issued", "Due", "State", "Description",
    "Amount", "Tax",
  ]
  static let invoiceMapping = ["Issued": "issue_date", "Due": "due_date", "Tax": "line_tax"]

  static func header(
    _ importID: String, type: Crm_V1_RecordType, columns: [String], mapping: [String: String] = [:]
  ) -> Crm_V1_ImportRequest {
    .with {
      $0.header = .with {
        $0.recordType = type
        $0.importID = importID
        $0.columns = columns
        $0.fieldMapping = mapping
        $0.sourceName = "billing-export.csv"
      }
    }
  }

  static func batch(_ rows: ArraySlice<[String]>, from start: Int) -> Crm_V1_ImportRequest {
    .with {
      $0.rows = .with {
        $0.rows = rows.enumerated().map { offset, values in
          .with {
            $0.index = Int64(start + offset)
            $0.values = values
          }
        }
      }
    }
  }

  /// The rows cut into batches at `cuts` (row indexes where a new batch starts).
  static func batches(_ rows: [[String]], cuts: [Int]) -> [Crm_V1_ImportRequest] {
    let bounds = [0] + cuts + [rows.count]
    return zip(bounds, bounds.dropFirst()).map { batch(rows[$0..<$1], from: $0) }
  }

  static func summary(_ answers: [Crm_V1_ImportResponse]) -> Crm_V1_ImportJob? {
    if case .summary(let summary) = answers.last?.message { return summary.job }
    return nil
  }

  @Test(
    "invoices: a row per line makes one invoice, across batch boundaries; totals from the lines; bad rows fail their invoice alone"
  )
  func importInvoices() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let acme = try await BillingRPCTests.account(client, "Acme", auth: admin)
      let globex = try await BillingRPCTests.account(client, "Globex", auth: admin)
      let nowhere = UUID().uuidString.lowercased()
      let rows: [[String]] = [
        // in_1: three lines; its own columns on the first row only, the last row's key blank too.
        ["stripe", "in_1", "1", "", acme, "INV-1", "usd", "2027-01-02", "2027-02-01", "open", "Pro plan", "100", "10"],
        ["stripe", "in_1", "", "", "", "", "", "", "", "", "Seats", "50", ""],
        ["", "", "", "", "", "", "", "", "", "", "Support", "25.50", ""],
        // in_2: two lines split by the first batch boundary, its columns repeated.
        ["stripe", "in_2", "1", "", acme, "INV-2", "USD", "2027-01-05", "2027-02-04", "open", "Pro plan", "80", ""],
        ["stripe", "in_2", "1", "", acme, "INV-2", "USD", "2027-01-05", "2027-02-04", "open", "Overage", "20", ""],
        // in_3: one unreadable amount fails the whole invoice.
        ["stripe", "in_3", "1", "", acme, "INV-3", "USD", "2027-01-06", "2027-02-05", "open", "Pro plan", "12,5", ""],
        ["stripe", "in_3", "", "", "", "", "", "", "", "", "Seats", "5", ""],
        // in_4 links the billing system's customer to Globex; in_5 names the customer only.
        ["stripe", "in_4", "1", "cus_9", globex, "INV-4", "EUR", "2027-01-07", "2027-02-06", "paid", "Plan", "40", ""],
        ["stripe", "in_5", "1", "cus_9", "", "INV-5", "EUR", "2027-01-08", "2027-02-07", "open", "Plan", "45", ""],
        // in_6: an account that does not exist.
        ["stripe", "in_6", "1", "", nowhere, "INV-6", "USD", "2027-01-09", "2027-02-08", "open", "Plan", "10", ""],
        // in_7: its second row disagrees about the number.
        ["stripe", "in_7", "1", "", acme, "INV-7", "USD", "2027-01-10", "2027-02-09", "open", "Plan", "10", ""],
        ["stripe", "in_7", "", "", "", "INV-7b", "", "", "", "", "Seats", "10", ""],
      ]
      let requests =
        [Self.header("inv-1", type: .invoice, columns: Self.invoiceColumns, mapping: Self.invoiceMapping)]
        + Self.batches(rows, cuts: [4, 9])
      let answers = try await ImportRPCTests.run(client, requests, auth: admin)
      let results = ImportRPCTests.results(answers)
      #expect(results.map(\.index) == Array(0..<12))
      let outcome = Dictionary(uniqueKeysWithValues: results.map { ($0.index, $0) })
      #expect([0, 1, 2, 3, 4, 7, 8].allSatisfy { outcome[$0]?.outcome == .created })
      #expect(Set([0, 1, 2].map { outcome[$0]!.recordID }).count == 1 && outcome[3]?.recordID == outcome[4]?.recordID)
      #expect(outcome[5]?.errors.map(\.field) == ["amount"] && outcome[5]?.errors.first?.column == "Amount")
      #expect(outcome[5]?.errors.first?.reason == "INVALID_FORMAT" && outcome[6]?.errors.first?.reason == "INVOICE_FAILED")
      #expect(outcome[9]?.outcome == .failed && outcome[9]?.errors.first?.reason == "NOT_FOUND")
      #expect(outcome[11]?.errors.first?.field == "number" && outcome[11]?.errors.first?.reason == "INCONSISTENT")
      #expect(outcome[10]?.errors.first?.reason == "INVOICE_FAILED")
      let job = try #require(Self.summary(answers))
      #expect(job.created == 7 && job.failed == 5 && job.nextIndex == 12 && job.recordType == .invoice)

      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let first = try await billing.getInvoice(.with { $0.id = outcome[0]!.recordID }, metadata: admin)
      #expect(first.lines.map(\.description_p) == ["Pro plan", "Seats", "Support"] && first.currencyCode == "USD")
      #expect(first.subtotal == BillingRPCTests.usd(175, 500_000_000) && first.tax == BillingRPCTests.usd(10))
      #expect(first.total == BillingRPCTests.usd(185, 500_000_000) && first.balance == first.total)
      #expect(first.lines[0].tax == BillingRPCTests.usd(10) && first.account.accountID == acme)
      #expect(try await billing.getInvoice(.with { $0.id = outcome[3]!.recordID }, metadata: admin).lines.count == 2)
      let fifth = try await billing.getInvoice(.with { $0.id = outcome[8]!.recordID }, metadata: admin)
      #expect(fifth.account.accountID == globex && fifth.total == BillingRPCTests.usd(45, 0, "EUR"))
      // Each new invoice has its creation in its history, as a push through UpsertInvoice would.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .invoice
          $0.recordID = outcome[0]!.recordID
        }, metadata: admin)
      #expect(history.entries.map(\.operation) == [.create])
      let changes = history.entries.first?.changes ?? []
      #expect(changes.map(\.field).prefix(5) == ["source_system", "external_id", "source_version", "account_id", "number"])
      #expect(changes.first { $0.field == "account_id" }?.newValue.stringValue == acme)
      #expect(changes.contains { $0.field == "total" })
      #expect(changes.first { $0.field == "line_count" }?.newValue.numberValue == 3)

      // The same stream again: every row answered from the ledger, nothing written twice.
      let again = try await ImportRPCTests.run(client, requests, auth: admin)
      #expect(ImportRPCTests.results(again).allSatisfy { $0.alreadyImported })
      #expect(Self.summary(again)?.created == 7)
      // The same file as a new import: the invoices are stored at that version already; a newer
      // version of in_1 with one line replaces its lines.
      var newer = Array(rows[0...4])
      newer[0][2] = "2"
      newer.remove(at: 2)
      newer.remove(at: 1)
      let second = try await ImportRPCTests.run(
        client,
        [Self.header("inv-2", type: .invoice, columns: Self.invoiceColumns, mapping: Self.invoiceMapping)]
          + Self.batches(newer, cuts: []), auth: admin)
      let secondResults = ImportRPCTests.results(second)
      #expect(secondResults.map(\.outcome) == [.updated, .duplicateSkipped, .duplicateSkipped])
      #expect(secondResults[1].matches.first?.recordID == outcome[3]!.recordID)
      let replaced = try await billing.getInvoice(.with { $0.id = outcome[0]!.recordID }, metadata: admin)
      #expect(replaced.lines.count == 1 && replaced.total == BillingRPCTests.usd(110) && replaced.source.version == 2)
      let listed = try await billing.listInvoices(.with { $0.accountID = acme }, metadata: admin)
      #expect(Set(listed.invoices.map(\.number)) == ["INV-1", "INV-2"])
    }
  }

  @Test("payments: a row per allocation; one that would overpay an invoice fails alone and writes nothing")
  func importPayments() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let account = try await BillingRPCTests.account(client, "Initech", auth: admin)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      for external in ["in_a", "in_b"] {
        _ = try await billing.upsertInvoice(BillingRPCTests.invoice(external, account: account), metadata: admin)
      }
      let columns = [
        "source_system", "external_id", "source_version", "account_id", "currency", "amount", "received_date",
        "method", "invoice_external_id", "allocated_amount",
      ]
      let rows: [[String]] = [
        ["stripe", "py_1", "1", account, "USD", "100", "2027-01-10", "card", "in_a", "60"],
        ["stripe", "py_1", "1", account, "USD", "100", "2027-01-10", "card", "in_b", "40"],
        ["stripe", "py_2", "1", account, "USD", "50", "2027-01-11", "card", "in_a", "50"],
        ["stripe", "py_3", "1", account, "USD", "30", "2027-01-12", "bank_transfer", "", ""],
        ["stripe", "py_4", "1", account, "USD", "30", "2027-01-12", "card", "in_zz", "30"],
      ]
      let answers = try await ImportRPCTests.run(
        client, [Self.header("pay-1", type: .payment, columns: columns)] + Self.batches(rows, cuts: [1]), auth: admin)
      let results = ImportRPCTests.results(answers)
      #expect(results.map(\.outcome) == [.created, .created, .failed, .created, .failed])
      #expect(results[2].errors.first?.reason == "FAILED_PRECONDITION")
      #expect(results[4].errors.first?.reason == "FAILED_PRECONDITION")
      let a = try await billing.getInvoice(
        .with {
          $0.externalID = "in_a"; $0.sourceSystem = "stripe"
        }, metadata: admin)
      #expect(a.amountPaid == BillingRPCTests.usd(60) && a.balance == BillingRPCTests.usd(40))
      let payments = try await billing.listPayments(.with { $0.accountID = account }, metadata: admin)
      #expect(Set(payments.payments.map(\.source.externalID)) == ["py_1", "py_3"])
      #expect(payments.payments.first { $0.source.externalID == "py_3" }?.unallocated == BillingRPCTests.usd(30))
    }
  }

  @Test("a billing import needs a billing writer and a header that names each fact; its columns are checked")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      func violations(_ request: Crm_V1_ImportRequest, auth: Metadata) async -> (RPCError.Code?, [String]) {
        do {
          _ = try await ImportRPCTests.run(client, [request], auth: auth)
          return (nil, [])
        } catch let error as RPCError {
          let status = try? error.unpackGoogleRPCStatus()
          return (error.code, status?.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field) ?? [])
        } catch {
          return (.unknown, [])
        }
      }
      let (code, fields) = await violations(
        Self.header("bad-1", type: .invoice, columns: ["Number", "Amount"], mapping: ["Amount": "total_amount"]),
        auth: admin)
      #expect(
        code == .invalidArgument && fields.contains("header.columns") && fields.contains("header.field_mapping[\"Amount\"]"))
      var blocked = Self.header("bad-2", type: .payment, columns: ["source_system", "external_id", "source_version"])
      blocked.header.duplicateAction = .block
      #expect(await violations(blocked, auth: admin).1 == ["header.duplicate_action"])
      #expect(
        await violations(Self.header("bad-3", type: .invoice, columns: Self.invoiceColumns), auth: TestServer.auth(repSecret)).0
          == .permissionDenied)
      var other = Self.header("bad-4", type: .opportunity, columns: Self.invoiceColumns)
      other.header.mode = .insert
      #expect(await violations(other, auth: admin).1 == ["header.record_type"])
    }
  }
}
