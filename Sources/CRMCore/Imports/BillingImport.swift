import Foundation

/// How a billing import's rows make facts: consecutive rows naming the same (source system, external
/// id) are one invoice (a row per line) or one payment (a row per allocation), the fact's own columns
/// repeated on each row or left empty after the first.
public enum BillingImportKind: Sendable, Hashable {
  case invoice, payment

  /// The record type the facts are.
  public var recordType: RecordType { self == .invoice ? .invoice : .payment }

  /// The prefix of the API's field paths for this fact (`invoice.`).
  var apiPrefix: String { self == .invoice ? "invoice." : "payment." }

  /// The repeated part of the fact in the API: `lines` or `allocations`.
  public var partsField: String { self == .invoice ? "lines" : "allocations" }

  /// The fields an import column may fill, in the order the docs list them: the fact's own, then
  /// those of a line or allocation.
  public var fields: [String] {
    let common = ["source_system", "external_id", "source_version", "account_id", "customer_external_id", "currency_code"]
    switch self {
    case .invoice:
      return common + ["number", "issue_date", "due_date", "payment_terms", "vendor_status", "state", "subtotal", "tax", "total"]
        + partFieldOrder
    case .payment:
      return common + ["amount", "received_date", "method", "reference", "state"] + partFieldOrder
    }
  }

  /// The fields that describe one line or allocation, in order.
  var partFieldOrder: [String] {
    switch self {
    case .invoice:
      [
        "line_external_id", "line_kind", "description", "product", "metric", "quantity", "unit", "unit_price", "amount",
        "line_tax", "period_start", "period_end",
      ]
    case .payment: ["invoice_id", "invoice_external_id", "allocated_amount"]
    }
  }

  /// The fields that describe one line or allocation; the rest describe the fact and repeat.
  public var partFields: Set<String> { Set(partFieldOrder) }

  /// Common column names for fields (normalized: lower case, `_` for spaces and dashes).
  public var aliases: [String: String] {
    var aliases = [
      "system": "source_system", "source": "source_system", "version": "source_version", "currency": "currency_code",
      "customer_id": "customer_external_id", "customer": "customer_external_id", "account": "account_id",
    ]
    switch self {
    case .invoice:
      aliases.merge(
        [
          "invoice": "external_id", "invoice_id": "external_id", "invoice_number": "number", "status": "vendor_status",
          "line_id": "line_external_id",
          "kind": "line_kind", "line_description": "description", "plan": "product", "line_amount": "amount",
          "price": "unit_price", "qty": "quantity",
        ]
      ) { first, _ in first }
    case .payment:
      aliases.merge(
        [
          "payment": "external_id", "payment_id": "external_id", "received_on": "received_date", "date": "received_date",
          "payment_method": "method", "allocation_amount": "allocated_amount",
        ]
      ) { first, _ in first }
    }
    return aliases
  }

  /// The import field an API path names, and which part (line or allocation) it belongs to:
  /// `invoice.lines[2].tax` → (`line_tax`, 2); `payment.amount.units` → (`amount`, nil).
  public func importField(_ path: String) -> (field: String, part: Int?) {
    // Every amount of a fact is in its one currency, which the first row names.
    if path.hasSuffix("currency_code") { return ("currency_code", nil) }
    var rest = Substring(path)
    if rest.hasPrefix(apiPrefix) { rest = rest.dropFirst(apiPrefix.count) }
    var part: Int?
    if rest.hasPrefix(partsField + "["), let close = rest.firstIndex(of: "]") {
      part = Int(rest[rest.index(rest.startIndex, offsetBy: partsField.count + 1)..<close])
      rest = rest[rest.index(after: close)...].drop { $0 == "." }
      if rest.isEmpty { return (partsField, part) }
    }
    let head = String(rest.prefix { $0 != "." && $0 != "[" })
    let tail = rest.dropFirst(head.count).drop { $0 == "." }
    switch (self, head, part != nil) {
    case (_, "source", _): return (["system": "source_system", "version": "source_version"][String(tail)] ?? "external_id", nil)
    case (_, "account", _): return (tail.hasPrefix("customer") ? "customer_external_id" : "account_id", nil)
    case (.invoice, "external_id", true): return ("line_external_id", part)
    case (.invoice, "kind", true): return ("line_kind", part)
    case (.invoice, "tax", true): return ("line_tax", part)
    case (.payment, "amount", true): return ("allocated_amount", part)
    case (.payment, "received_date", _): return ("received_date", nil)
    default: return (head, part)
    }
  }
}

/// One invoice or payment of a billing import: the rows it came from, and its fields or every row's
/// errors.
public struct BillingImportGroup<Fields: Sendable & Hashable>: Sendable {
  public var kind: BillingImportKind
  /// The rows, in file order.
  public var indexes: [Int64]
  /// The row each line (allocation) came from, in the fact's order.
  public var partRows: [Int64]
  /// The column each field came from (for naming it in errors).
  public var columns: [String: String]
  /// The fact, when every row was good.
  public var fields: Fields?
  /// Why rows failed, by row index; when any row failed, every row of the group has an entry.
  public var errors: [Int64: [ImportFieldError]]

  public init(
    kind: BillingImportKind, indexes: [Int64], partRows: [Int64], columns: [String: String], fields: Fields?,
    errors: [Int64: [ImportFieldError]]
  ) {
    self.kind = kind
    self.indexes = indexes
    self.partRows = partRows
    self.columns = columns
    self.fields = fields
    self.errors = errors
  }

  /// The errors of each row when the fact as a whole failed with `error` (validation, a check in the
  /// database, an unknown account): each violation on the row it names, the rest on the first row,
  /// and every other row told which row failed.
  public func rowErrors(_ error: CRMError) -> [Int64: [ImportFieldError]] {
    var errors: [Int64: [ImportFieldError]] = [:]
    let first = indexes.first ?? 0
    switch error {
    case .invalidArgument(let violations):
      for violation in violations {
        let (field, part) = kind.importField(violation.field)
        let row = part.flatMap { $0 < partRows.count ? partRows[$0] : nil } ?? first
        errors[row, default: []].append(
          ImportFieldError(
            field: field, column: columns[field] ?? "", reason: violation.reason, description: violation.description))
      }
    case .notFound(let message):
      errors[first] = [ImportFieldError(field: "", column: "", reason: "NOT_FOUND", description: message)]
    case .alreadyExists(let field, let message):
      errors[first] = [
        ImportFieldError(field: field, column: columns[field] ?? "", reason: "ALREADY_EXISTS", description: message)
      ]
    case .failedPrecondition(let message):
      errors[first] = [ImportFieldError(field: "", column: "", reason: "FAILED_PRECONDITION", description: message)]
    case .permissionDenied(let message):
      errors[first] = [ImportFieldError(field: "", column: "", reason: "PERMISSION_DENIED", description: message)]
    case .aborted(let message):
      errors[first] = [ImportFieldError(field: "", column: "", reason: "ABORTED", description: message)]
    default:
      errors[first] = [ImportFieldError(field: "", column: "", reason: "FAILED", description: "\(error)")]
    }
    completeErrors(&errors)
    return errors
  }

  /// Gives every row of the group without an error of its own one that names the rows that failed:
  /// a fact is written whole or not at all.
  public func completeErrors(_ errors: inout [Int64: [ImportFieldError]]) {
    let failing = indexes.filter { errors[$0] != nil }
    guard !failing.isEmpty else { return }
    let noun = kind == .invoice ? "invoice" : "payment"
    let named = failing.prefix(5).map { "row \($0)" }.joined(separator: ", ") + (failing.count > 5 ? ", …" : "")
    for index in indexes where errors[index] == nil {
      errors[index] = [
        ImportFieldError(
          field: "", column: "", reason: "\(noun.uppercased())_FAILED",
          description: "this row's \(noun) was not written: \(named) of it failed")
      ]
    }
  }
}
