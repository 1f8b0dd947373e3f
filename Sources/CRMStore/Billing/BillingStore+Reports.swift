public import CRMCore
public import Foundation
import LibPQ

/// An account's consolidated statement: every invoice, payment, credit note and refund of the
/// account (and the accounts below it) between two days, with a running balance per currency.
public struct AccountStatement: Sendable, Hashable {
  /// What one line records: an invoice and a refund add to what is owed; a payment and a credit
  /// note take from it.
  public enum Kind: String, Sendable, Hashable {
    case invoice, payment
    case creditNote = "credit_note"
    case refund
  }

  public struct Line: Sendable, Hashable {
    public var date: CalendarDate
    public var kind: Kind
    public var recordID: UUID
    public var accountID: UUID
    /// The invoice or credit note number, the payment's reference, or the source's id.
    public var reference: String
    public var debit: Money
    public var credit: Money
    /// What the customer owes in this currency after the line.
    public var balance: Money
  }

  /// One currency's totals over the period.
  public struct Totals: Sendable, Hashable {
    public var currencyCode: String
    public var opening: Money
    public var debits: Money
    public var credits: Money
    public var closing: Money
  }

  public var accountID: UUID
  public var from: CalendarDate
  public var to: CalendarDate
  public var includeChildren: Bool
  public var totals: [Totals]
  public var lines: [Line]
  public var nextPageToken: String?
}

/// Metered usage per metric and period, with how the last period moved.
public struct UsageSummary: Sendable, Hashable {
  public enum Period: String, Sendable, Hashable {
    case month, quarter
  }

  public struct Value: Sendable, Hashable {
    public var start: CalendarDate
    public var end: CalendarDate
    /// A decimal numeral.
    public var quantity: String
    public var amount: Money?
  }

  public struct Series: Sendable, Hashable {
    public var metric: String
    public var unit: String?
    /// Oldest first, one per period (zero where nothing was used).
    public var values: [Value]
    /// The last period's quantity against the one before, in percent (one decimal), when that was
    /// not zero.
    public var changePercent: String?
    /// The last period's quantity against the average of the earlier ones, in percent.
    public var changeFromAveragePercent: String?
  }

  public var accountID: UUID
  public var period: Period
  public var series: [Series]
}

extension BillingStore {
  /// The statement of `accountID` (with `includeChildren`, of the accounts below it too) from
  /// `from` to `to`: the totals per currency, and one page of lines in date order.
  ///
  /// Drafts, void invoices and credit notes and reversed payments are left out; a refund credit
  /// note is a credit (what it credits) and a refund (the money paid back).
  public func statement(
    accountID: UUID, from: CalendarDate, to: CalendarDate, includeChildren: Bool, pageSize: Int, pageToken: String,
    principal: Principal
  ) async throws -> AccountStatement {
    let tenant = principal.tenantID
    let fingerprint = "statement|\(accountID.lowercasedString)|\(from)|\(to)|\(includeChildren)"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    return try await database.withTenant(tenant) { connection in
      try Self.requireBillingReadable(connection, account: accountID, principal: principal)
      // The accounts once, as an array: each of the four parts below reads its facts by account index.
      let accounts = try Self.accountIDs(connection, accountID, includeChildren: includeChildren, principal: principal)
      let entries: PostgresQuery = """
        SELECT 'invoice' AS kind, 1 AS ord, i.id, i.account_id, i.issue_date AS day, i.number AS reference, i.currency,
          i.total AS debit, 0::numeric AS credit
        FROM invoices i WHERE i.tenant_id = \(tenant) AND i.account_id = ANY(\(accounts)::uuid[]) AND i.state NOT IN ('draft', 'void')
        UNION ALL
        SELECT 'credit_note', 2, c.id, c.account_id, c.issue_date, coalesce(c.number, c.external_id), c.currency, 0, c.amount
        FROM credit_notes c WHERE c.tenant_id = \(tenant) AND c.account_id = ANY(\(accounts)::uuid[]) AND c.state = 'issued'
        UNION ALL
        SELECT 'refund', 3, c.id, c.account_id, c.issue_date, coalesce(c.number, c.external_id), c.currency,
          c.amount_allocated, 0
        FROM credit_notes c
        WHERE c.tenant_id = \(tenant) AND c.account_id = ANY(\(accounts)::uuid[]) AND c.state = 'issued' AND c.kind = 'refund'
          AND c.amount_allocated > 0
        UNION ALL
        SELECT 'payment', 4, p.id, p.account_id, p.received_on, coalesce(p.reference, p.external_id), p.currency, 0, p.amount
        FROM payments p WHERE p.tenant_id = \(tenant) AND p.account_id = ANY(\(accounts)::uuid[]) AND p.state = 'completed'
        """
      let totals: PostgresQuery = """
        SELECT currency,
          sum(debit - credit) FILTER (WHERE day < \(from))::text AS opening,
          sum(debit) FILTER (WHERE day >= \(from))::text AS debits,
          sum(credit) FILTER (WHERE day >= \(from))::text AS credits,
          sum(debit - credit)::text AS closing
        FROM (\(entries)) e WHERE day <= \(to)
        GROUP BY currency ORDER BY currency
        """
      var lines: PostgresQuery = """
        SELECT kind, ord, id, account_id, day, reference, currency, debit::text AS debit, credit::text AS credit,
          balance::text AS balance
        FROM (
          SELECT e.*, sum(debit - credit) OVER (PARTITION BY currency ORDER BY day, ord, id) AS balance
          FROM (\(entries)) e WHERE day <= \(to)
        ) x
        WHERE day >= \(from)
        """
      if let token {
        let parts = token.key.split(separator: "|")
        guard parts.count == 2, let day = CalendarDate(String(parts[0])), let ord = Int(parts[1]) else {
          throw CRMError.invalid("page_token", "is malformed", reason: "INVALID_FORMAT")
        }
        lines.append(" AND (day, ord, id) > (\(day), \(ord), \(token.id))")
      }
      lines.append(" ORDER BY day, ord, id LIMIT \(pageSize + 1)")
      let sums = try connection.query(totals).rows.map { row -> AccountStatement.Totals in
        let currency: String = try row.decode("currency")
        func money(_ column: String) throws -> Money {
          try BillingRow.optionalMoney(row, column, currency: currency) ?? .zero(currency)
        }
        return AccountStatement.Totals(
          currencyCode: currency, opening: try money("opening"), debits: try money("debits"), credits: try money("credits"),
          closing: try money("closing"))
      }
      let rows = try connection.query(lines).rows
      var out = try rows.map { row -> AccountStatement.Line in
        let currency: String = try row.decode("currency")
        return AccountStatement.Line(
          date: try row.decode("day"), kind: AccountStatement.Kind(rawValue: try row.decode("kind")) ?? .invoice,
          recordID: try row.decode("id"), accountID: try row.decode("account_id"), reference: try row.decode("reference"),
          debit: try BillingRow.money(row, "debit", currency: currency),
          credit: try BillingRow.money(row, "credit", currency: currency),
          balance: try BillingRow.money(row, "balance", currency: currency))
      }
      var next: String?
      if out.count > pageSize {
        out.removeLast()
        let last = rows[pageSize - 1]
        let ord: Int = try last.decode("ord")
        next = tokens.encode(
          PageToken(key: "\(out[pageSize - 1].date)|\(ord)", id: out[pageSize - 1].recordID, query: fingerprint))
      }
      return AccountStatement(
        accountID: accountID, from: from, to: to, includeChildren: includeChildren, totals: sums, lines: out,
        nextPageToken: next)
    }
  }

  /// Usage per metric over the `periods` months or quarters ending with the one holding `asOf`, from
  /// the usage lines of the account's invoices (and its children's), by each line's service period
  /// (or its invoice's issue date).
  public func usage(
    accountID: UUID, includeChildren: Bool, period: UsageSummary.Period, periods: Int, asOf: CalendarDate?,
    principal: Principal
  ) async throws -> UsageSummary {
    let tenant = principal.tenantID
    let day = asOf ?? today
    let starts = Self.periodStarts(ending: day, period: period, count: periods)
    let end = Self.periodEnd(starts.last!, period: period)
    return try await database.withTenant(tenant) { connection in
      try Self.requireBillingReadable(connection, account: accountID, principal: principal)
      let accounts = try Self.accountIDs(connection, accountID, includeChildren: includeChildren, principal: principal)
      let unit = period == .month ? "month" : "quarter"
      let query: PostgresQuery = """
        SELECT l.metric, min(l.unit) AS unit, date_trunc(\(unit), coalesce(l.period_start, i.issue_date))::date AS start,
          sum(l.quantity)::text AS quantity, i.currency, sum(l.amount)::text AS amount
        FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
        WHERE l.tenant_id = \(tenant) AND l.kind = 'usage' AND i.account_id = ANY(\(accounts)::uuid[])
          AND i.state NOT IN ('draft', 'void')
          AND coalesce(l.period_start, i.issue_date) BETWEEN \(starts[0]) AND \(end)
        GROUP BY l.metric, start, i.currency
        ORDER BY l.metric, start
        """
      var byMetric: [String: (unit: String?, values: [CalendarDate: (quantity: String, amount: Money?)])] = [:]
      for row in try connection.query(query).rows {
        let metric: String = try row.decode("metric")
        let start: CalendarDate = try row.decode("start")
        let currency: String = try row.decode("currency")
        let unit: String? = try row.decode("unit")
        var entry = byMetric[metric] ?? (unit, [:])
        // Usage billed in two currencies in one period adds its quantities; the amount is the first's.
        let quantity: String = try row.decode("quantity")
        let amount = try BillingRow.optionalMoney(row, "amount", currency: currency)
        if let existing = entry.values[start] {
          entry.values[start] = (Self.add(existing.quantity, quantity), existing.amount)
        } else {
          entry.values[start] = (quantity, amount)
        }
        byMetric[metric] = entry
      }
      let series = byMetric.keys.sorted().map { metric -> UsageSummary.Series in
        let entry = byMetric[metric]!
        let values = starts.map { start in
          UsageSummary.Value(
            start: start, end: Self.periodEnd(start, period: period),
            quantity: DecimalNumeral.trimmed(entry.values[start]?.quantity ?? "0"), amount: entry.values[start]?.amount)
        }
        let quantities = values.map { Decimal(string: $0.quantity) ?? 0 }
        var change: String?
        var fromAverage: String?
        if quantities.count >= 2 {
          let last = quantities[quantities.count - 1]
          let previous = quantities[quantities.count - 2]
          if previous != 0 { change = Self.percent((last - previous) / previous) }
          let earlier = quantities.dropLast()
          let average = earlier.reduce(0, +) / Decimal(earlier.count)
          if average != 0 { fromAverage = Self.percent((last - average) / average) }
        }
        return UsageSummary.Series(
          metric: metric, unit: entry.unit, values: values, changePercent: change, changeFromAveragePercent: fromAverage)
      }
      return UsageSummary(accountID: accountID, period: period, series: series)
    }
  }

  // MARK: - Helpers

  /// The accounts a report covers: `accountID`, with `includeChildren` every account below it, limited
  /// to those whose billing data the caller may read.
  static func accounts(_ accountID: UUID, includeChildren: Bool, principal: Principal) -> PostgresQuery {
    let tenant = principal.tenantID
    var query: PostgresQuery
    if includeChildren {
      query = """
        WITH RECURSIVE tree (id) AS (
          SELECT id FROM accounts WHERE tenant_id = \(tenant) AND id = \(accountID)
          UNION
          SELECT c.id FROM accounts c JOIN tree t ON c.parent_id = t.id WHERE c.tenant_id = \(tenant))
        SELECT a.id FROM accounts a WHERE a.tenant_id = \(tenant) AND a.id IN (SELECT id FROM tree)
        """
    } else {
      query = "SELECT a.id FROM accounts a WHERE a.tenant_id = \(tenant) AND a.id = \(accountID)"
    }
    if let readable = readableAccounts(principal) { query.append(" AND \(readable)") }
    return query
  }

  /// The condition limiting accounts `a` to those whose billing data the caller may read — owned in
  /// the caller's hierarchy or collected by it — or `nil` when the caller reads every account's.
  static func readableAccounts(_ principal: Principal) -> PostgresQuery? {
    guard let owners = principal.readableOwners(.invoice) else { return nil }
    return """
      (a.owner_id = ANY(\(owners)::uuid[]) OR EXISTS (
        SELECT 1 FROM account_collections c
        WHERE c.tenant_id = a.tenant_id AND c.account_id = a.id AND c.collector_id = ANY(\(owners)::uuid[])))
      """
  }

  /// The accounts whose billing data the caller may read, as a subquery for `account_id IN (…)`;
  /// `nil` when the caller reads every account's.
  static func readableAccountIDs(_ principal: Principal) -> PostgresQuery? {
    readableAccounts(principal).map { "SELECT a.id FROM accounts a WHERE a.tenant_id = \(principal.tenantID) AND \($0)" }
  }

  /// The ids ``accounts(_:includeChildren:principal:)`` selects, read first so that statements with
  /// several parts name them as an array: the planner then reads their invoices by index instead of
  /// scanning the tenant's (it cannot tell how many accounts a recursive query yields).
  static func accountIDs(_ connection: PostgresConnection, _ accountID: UUID, includeChildren: Bool, principal: Principal) throws
    -> [UUID]
  {
    try connection.query(accounts(accountID, includeChildren: includeChildren, principal: principal)).rows.map {
      try $0.decode("id")
    }
  }

  /// The account's owner, and whether the caller may read its billing data (admins, integrations,
  /// its collector, its owner and their managers); `nil` when the tenant has no such account.
  static func billingAccess(_ connection: PostgresConnection, account: UUID, principal: Principal) throws -> (
    owner: UUID?, readable: Bool
  )? {
    try connection.query(billingAccessQuery(account: account, principal: principal)).first.map {
      try billingAccess(row: $0, principal: principal)
    }
  }

  /// The account's owner and collector, read by ``billingAccess(row:principal:)``.
  static func billingAccessQuery(account: UUID, principal: Principal) -> PostgresQuery {
    """
    SELECT a.owner_id, c.collector_id FROM accounts a
    LEFT JOIN account_collections c ON c.tenant_id = a.tenant_id AND c.account_id = a.id
    WHERE a.tenant_id = \(principal.tenantID) AND a.id = \(account)
    """
  }

  static func billingAccess(row: PostgresRow, principal: Principal) throws -> (owner: UUID?, readable: Bool) {
    let owner = try row.decode("owner_id", as: UUID?.self)
    return (owner, principal.canReadBilling(accountOwner: owner, collector: try row.decode("collector_id", as: UUID?.self)))
  }

  /// Whether the account exists and the caller may read its billing data.
  static func billingReadable(_ connection: PostgresConnection, account: UUID, principal: Principal) throws -> Bool {
    try billingAccess(connection, account: account, principal: principal)?.readable ?? false
  }

  /// NOT_FOUND unless the account exists and the caller may read its billing data; returns its owner.
  @discardableResult
  static func requireBillingReadable(_ connection: PostgresConnection, account: UUID, principal: Principal) throws -> UUID? {
    guard let access = try billingAccess(connection, account: account, principal: principal), access.readable else {
      throw CRMError.notFound("account \(account.lowercasedString) not found")
    }
    return access.owner
  }

  /// The first days of the `count` periods ending with the one holding `day`, oldest first.
  static func periodStarts(ending day: CalendarDate, period: UsageSummary.Period, count: Int) -> [CalendarDate] {
    let months = period == .month ? 1 : 3
    let first = (day.month - 1) / months * months + 1
    var index = day.year * 12 + (first - 1)
    var starts: [CalendarDate] = []
    for _ in 0..<count {
      starts.append(CalendarDate(year: index / 12, month: index % 12 + 1, day: 1)!)
      index -= months
    }
    return starts.reversed()
  }

  /// The last day of the period starting on `start`.
  static func periodEnd(_ start: CalendarDate, period: UsageSummary.Period) -> CalendarDate {
    let months = period == .month ? 1 : 3
    let next = start.year * 12 + start.month - 1 + months
    return CalendarDate(year: next / 12, month: next % 12 + 1, day: 1)!.adding(days: -1)
  }

  /// `a + b` for decimal numerals.
  static func add(_ a: String, _ b: String) -> String {
    let sum = (Decimal(string: a) ?? 0) + (Decimal(string: b) ?? 0)
    return "\(sum)"
  }

  /// A ratio as a percent with one decimal ("12.5", "-40").
  static func percent(_ ratio: Decimal) -> String { rounded(ratio * 100) }
}
