public import CRMCore
public import Foundation
import LibPQ

/// An account's (and its hierarchy's) receivables on a day: the financial panel.
public struct AccountFinancials: Sendable, Hashable {
  public struct Bucket: Sendable, Hashable {
    public var label: String
    public var fromDays: Int
    public var toDays: Int?
    public var amount: Money
    public var count: Int
  }

  /// One currency's figures.
  public struct Currency: Sendable, Hashable {
    public var code: String
    /// What open and uncollectible invoices still owe.
    public var totalDue: Money
    /// The part of it past due.
    public var overdue: Money
    public var buckets: [Bucket]
    public var openInvoices: Int
    public var overdueInvoices: Int
    /// What open disputes contest (held out of overdue, aging and credit hold), and how many.
    public var disputed: Money
    public var disputes: Int
    /// Days past due of the oldest overdue invoice (0 when none).
    public var oldestDaysOverdue: Int
    /// Payments not allocated and adjustment credit notes not applied: the customer's credit.
    public var unallocatedCredit: Money
    public var creditLimit: Money?
    /// The limit less what is owed net of credit, when there is a limit in this currency.
    public var creditHeadroom: Money?
    /// Days sales outstanding over the trailing window: what is due ÷ what was invoiced × days.
    public var dsoDays: String?
    /// Average days from issue to the last payment, of invoices paid off in the window.
    public var averageDaysToPay: String?
    public var lastPaymentDate: CalendarDate?
    public var lastPaymentAmount: Money?
  }

  public var accountID: UUID
  public var asOf: CalendarDate
  public var includeChildren: Bool
  public var windowDays: Int
  public var currencies: [Currency]
  public var profile: BillingProfile?
  public var creditHold: Bool
  /// Why, in words, one per rule that holds.
  public var creditHoldReasons: [String]
  /// The account's collection on `asOf` (its own, not its hierarchy's).
  public var collection: AccountCollection
}

extension BillingStore {
  // MARK: - Settings and profiles

  /// The tenant's receivables settings.
  public func settings(principal: Principal) async throws -> BillingSettings {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.settings(connection, tenant: principal.tenantID)
    }
  }

  static func settings(_ connection: PostgresConnection, tenant: UUID) throws -> BillingSettings {
    try settings(row: try connection.query(settingsQuery(tenant: tenant))[0])
  }

  /// The tenant's receivables settings, read by ``settings(row:)``.
  static func settingsQuery(tenant: UUID) -> PostgresQuery {
    """
    SELECT array_to_string(billing_aging_days, ',') AS aging, credit_hold_days_overdue, credit_hold_over_limit,
      dispute_evidence_warning_days
    FROM tenants WHERE id = \(tenant)
    """
  }

  static func settings(row: PostgresRow) throws -> BillingSettings {
    let aging: String = try row.decode("aging")
    return BillingSettings(
      agingDays: aging.split(separator: ",").compactMap { Int($0) },
      creditHoldDaysOverdue: try row.decode("credit_hold_days_overdue"),
      creditHoldOverLimit: try row.decode("credit_hold_over_limit"),
      disputeEvidenceWarningDays: try row.decode("dispute_evidence_warning_days"))
  }

  /// Replaces the tenant's receivables settings (admins).
  public func setSettings(_ settings: BillingSettings, principal: Principal) async throws -> BillingSettings {
    try principal.requireAdmin()
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        UPDATE tenants SET billing_aging_days = \(settings.agingDays.map(String.init))::integer[],
          credit_hold_days_overdue = \(settings.creditHoldDaysOverdue.map(String.init)), credit_hold_over_limit = \(settings.creditHoldOverLimit),
          dispute_evidence_warning_days = \(settings.disputeEvidenceWarningDays)
        WHERE id = \(principal.tenantID)
        """)
      return try Self.settings(connection, tenant: principal.tenantID)
    }
  }

  /// Sets what the tenant agreed with an account (admins and integrations); `expectedVersion` guards
  /// against a concurrent edit.
  public func setProfile(
    accountID: UUID, creditLimit: Money?, paymentTerms: PaymentTerms, netDays: Int?, expectedVersion: Int64?,
    principal: Principal
  ) async throws -> BillingProfile {
    try principal.requireBillingWriter()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      guard
        try connection.query("SELECT 1 FROM accounts WHERE tenant_id = \(tenant) AND id = \(accountID) FOR SHARE").first != nil
      else { throw CRMError.notFound("account \(accountID.lowercasedString) not found") }
      let current = try Self.profile(connection, account: accountID, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != (current?.version ?? 0) {
        throw CRMError.staleEtag(current: current?.etag ?? "")
      }
      let row = try connection.query(
        """
        INSERT INTO account_billing_profiles (tenant_id, account_id, credit_limit_currency, credit_limit, payment_terms, net_days, updated_by)
        VALUES (\(tenant), \(accountID), \(creditLimit?.currencyCode), \(creditLimit?.numeral)::numeric, \(paymentTerms.rawValue),
          \(netDays), \(principal.userID))
        ON CONFLICT (tenant_id, account_id) DO UPDATE SET credit_limit_currency = EXCLUDED.credit_limit_currency,
          credit_limit = EXCLUDED.credit_limit, payment_terms = EXCLUDED.payment_terms, net_days = EXCLUDED.net_days,
          version = account_billing_profiles.version + 1, updated_at = now(), updated_by = EXCLUDED.updated_by
        RETURNING \(unsafeSQL: Self.profileColumns)
        """)[0]
      let profile = try Self.profile(row)
      try ChangeLog.append(
        connection, context: .init(principal: principal, requestID: nil), recordType: .account, recordID: accountID,
        operation: .update,
        changes: FieldChange.diff(
          fields: ["credit_limit", "payment_terms", "net_days"], old: current.map(Self.snapshot) ?? [:],
          new: Self.snapshot(profile)))
      return profile
    }
  }

  static let profileColumns =
    "account_id, credit_limit_currency, credit_limit::text AS credit_limit, payment_terms, net_days, version, updated_at"

  static func profile(_ row: PostgresRow) throws -> BillingProfile {
    let currency: String? = try row.decode("credit_limit_currency")
    let terms: String = try row.decode("payment_terms")
    return BillingProfile(
      accountID: try row.decode("account_id"),
      creditLimit: try currency.flatMap { try BillingRow.optionalMoney(row, "credit_limit", currency: $0) },
      paymentTerms: PaymentTerms(rawValue: terms) ?? .postpaid, netDays: try row.decode("net_days"),
      version: try row.decode("version"), updatedAt: try row.decode("updated_at"))
  }

  static func profile(_ connection: PostgresConnection, account: UUID, tenant: UUID, lock: Bool = false) throws -> BillingProfile?
  {
    try connection.query(profileQuery(account: account, tenant: tenant, lock: lock)).first.map(profile)
  }

  /// The account's billing profile row, if it has one.
  static func profileQuery(account: UUID, tenant: UUID, lock: Bool = false) -> PostgresQuery {
    """
    SELECT \(unsafeSQL: profileColumns) FROM account_billing_profiles
    WHERE tenant_id = \(tenant) AND account_id = \(account)\(unsafeSQL: lock ? " FOR UPDATE" : "")
    """
  }

  /// The profile as the account's change-log entries record it.
  static func snapshot(_ profile: BillingProfile) -> [String: JSONValue] {
    [
      "credit_limit": profile.creditLimit.map(JSONValue.money) ?? .null, "payment_terms": .string(profile.paymentTerms.rawValue),
      "net_days": profile.netDays.map { .int(Int64($0)) } ?? .null,
    ]
  }

  // MARK: - The financial panel

  /// What `accountID` (with `includeChildren`, its hierarchy) owes on `asOf`, per currency: due,
  /// overdue, aging buckets, credit, limit and headroom, DSO and days to pay over the trailing
  /// `windowDays`, the last payment; and whether the tenant's rules put it on credit hold.
  public func financials(
    accountID: UUID, asOf: CalendarDate?, includeChildren: Bool, windowDays: Int, principal: Principal
  ) async throws -> AccountFinancials {
    let tenant = principal.tenantID
    let day = asOf ?? today
    let windowStart = day.adding(days: -(windowDays - 1))
    return try await database.withTenant(tenant) { connection in
      // Who may read it, the tenant's settings, the profile and the hierarchy's ids: one round trip
      // (nothing of it leaves the transaction unless the caller may read the account's billing).
      let first = try connection.pipeline([
        Self.billingAccessQuery(account: accountID, principal: principal), Self.settingsQuery(tenant: tenant),
        Self.profileQuery(account: accountID, tenant: tenant),
        Self.accounts(accountID, includeChildren: includeChildren, principal: principal),
      ])
      guard let access = try first[0].first.map({ try Self.billingAccess(row: $0, principal: principal) }), access.readable
      else { throw CRMError.notFound("account \(accountID.lowercasedString) not found") }
      let settings = try Self.settings(row: first[1][0])
      let profile = try first[2].first.map(Self.profile)
      let accounts: [UUID] = try first[3].rows.map { try $0.decode("id") }
      let open: PostgresQuery = """
        SELECT currency, greatest(\(day) - due_date, 0) AS days, sum(balance)::text AS amount,
          sum(balance - amount_disputed)::text AS collectible, sum(amount_disputed)::text AS disputed, count(*) AS n,
          count(*) FILTER (WHERE balance > amount_disputed) AS collectible_n
        FROM (\(Self.dueItems(tenant: tenant, on: day, where: "i.account_id = ANY(\(accounts)::uuid[])"))) d
        GROUP BY currency, days
        """
      let credit: PostgresQuery = """
        SELECT currency, sum(amount)::text AS amount FROM (
          SELECT currency, amount - amount_allocated AS amount FROM payments
          WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND state = 'completed'
            AND amount > amount_allocated AND received_on <= \(day)
          UNION ALL
          SELECT currency, amount - amount_allocated FROM credit_notes
          WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND state = 'issued' AND kind = 'adjustment'
            AND amount > amount_allocated AND issue_date <= \(day)
        ) c GROUP BY currency
        """
      let sales: PostgresQuery = """
        SELECT currency, sum(total)::text AS amount FROM invoices
        WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND state NOT IN ('draft', 'void')
          AND issue_date BETWEEN \(windowStart) AND \(day)
        GROUP BY currency
        """
      let daysToPay: PostgresQuery = """
        SELECT currency, round(avg(paid_on - issue_date), 1)::text AS days FROM invoices
        WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND paid_on BETWEEN \(windowStart) AND \(day)
        GROUP BY currency
        """
      let disputes: PostgresQuery = """
        SELECT currency, count(*) AS n FROM invoice_disputes
        WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND state IN ('needs_response', 'under_review')
        GROUP BY currency
        """
      // The last day per currency first (index-only), then that day's payments: no sort of them all.
      let lastPayment: PostgresQuery = """
        WITH last AS (
          SELECT currency, max(received_on) AS day FROM payments
          WHERE tenant_id = \(tenant) AND account_id = ANY(\(accounts)::uuid[]) AND state = 'completed' AND received_on <= \(day)
          GROUP BY currency)
        SELECT DISTINCT ON (p.currency) p.currency, p.received_on, p.amount::text AS amount FROM last
        JOIN payments p ON p.tenant_id = \(tenant) AND p.account_id = ANY(\(accounts)::uuid[]) AND p.state = 'completed'
          AND p.currency = last.currency AND p.received_on = last.day
        ORDER BY p.currency, p.id DESC
        """
      // One round trip for the six reads and the account's collection's three.
      let results = try connection.pipeline(
        [open, credit, sales, daysToPay, disputes, lastPayment]
          + Self.collectionReads(account: accountID, on: day, tenant: tenant))
      var figures: [String: AccountFinancials.Currency] = [:]
      func entry(_ currency: String) -> AccountFinancials.Currency {
        figures[currency]
          ?? AccountFinancials.Currency(
            code: currency, totalDue: .zero(currency), overdue: .zero(currency),
            buckets: settings.buckets.map {
              AccountFinancials.Bucket(
                label: $0.label, fromDays: $0.fromDays, toDays: $0.toDays, amount: .zero(currency), count: 0)
            }, openInvoices: 0, overdueInvoices: 0, disputed: .zero(currency), disputes: 0, oldestDaysOverdue: 0,
            unallocatedCredit: .zero(currency))
      }
      for row in results[0].rows {
        let currency: String = try row.decode("currency")
        let days: Int = try row.decode("days")
        // Disputed amounts stay in what is due, and out of overdue, aging and credit hold.
        let amount = try BillingRow.money(row, "amount", currency: currency)
        let collectible = try BillingRow.money(row, "collectible", currency: currency)
        let count: Int = try row.decode("collectible_n")
        var figure = entry(currency)
        figure.totalDue = figure.totalDue.adding(amount)
        figure.disputed = figure.disputed.adding(try BillingRow.money(row, "disputed", currency: currency))
        figure.openInvoices += try row.decode("n", as: Int.self)
        if days > 0, count > 0 {
          figure.overdue = figure.overdue.adding(collectible)
          figure.overdueInvoices += count
          figure.oldestDaysOverdue = max(figure.oldestDaysOverdue, days)
        }
        if count > 0, let index = figure.buckets.firstIndex(where: { days >= $0.fromDays && days <= ($0.toDays ?? Int.max) }) {
          figure.buckets[index].amount = figure.buckets[index].amount.adding(collectible)
          figure.buckets[index].count += count
        }
        figures[currency] = figure
      }
      for row in results[1].rows {
        let currency: String = try row.decode("currency")
        var figure = entry(currency)
        figure.unallocatedCredit = try BillingRow.money(row, "amount", currency: currency)
        figures[currency] = figure
      }
      var invoiced: [String: Money] = [:]
      for row in results[2].rows {
        let currency: String = try row.decode("currency")
        invoiced[currency] = try BillingRow.money(row, "amount", currency: currency)
      }
      for row in results[3].rows {
        let currency: String = try row.decode("currency")
        var figure = entry(currency)
        figure.averageDaysToPay = DecimalNumeral.trimmed(try row.decode("days"))
        figures[currency] = figure
      }
      for row in results[4].rows {
        let currency: String = try row.decode("currency")
        var figure = entry(currency)
        figure.disputes = try row.decode("n")
        figures[currency] = figure
      }
      for row in results[5].rows {
        let currency: String = try row.decode("currency")
        var figure = entry(currency)
        figure.lastPaymentDate = try row.decode("received_on")
        figure.lastPaymentAmount = try BillingRow.money(row, "amount", currency: currency)
        figures[currency] = figure
      }
      if let limit = profile?.creditLimit { figures[limit.currencyCode] = entry(limit.currencyCode) }
      var reasons: [String] = []
      for (currency, var figure) in figures {
        if let sold = invoiced[currency], sold.isPositive {
          let ratio = (Decimal(string: figure.totalDue.numeral) ?? 0) / (Decimal(string: sold.numeral) ?? 1)
          figure.dsoDays = Self.rounded(ratio * Decimal(windowDays))
        }
        if let limit = profile?.creditLimit, limit.currencyCode == currency {
          figure.creditLimit = limit
          let exposure = figure.totalDue.subtracting(figure.disputed).subtracting(figure.unallocatedCredit)
          figure.creditHeadroom = limit.subtracting(exposure)
          if settings.creditHoldOverLimit, exposure.isGreater(than: limit) {
            reasons.append("owes \(exposure.formatted) net of credit and disputes, over its credit limit of \(limit.formatted)")
          }
        }
        if let grace = settings.creditHoldDaysOverdue, figure.oldestDaysOverdue > grace {
          reasons.append(
            "an invoice in \(currency) is \(figure.oldestDaysOverdue) days past due (more than the \(grace) days allowed)")
        }
        figures[currency] = figure
      }
      let collection = try Self.collection(from: Array(results[6...]), account: accountID, on: day)
      if collection.creditHold, !collection.overdue.isEmpty {
        reasons.append(
          "held by collections" + (collection.lastDunningLevel.map { " (last dunning level: \($0))" } ?? "")
            + " while anything is past due")
      }
      return AccountFinancials(
        accountID: accountID, asOf: day, includeChildren: includeChildren, windowDays: windowDays,
        currencies: figures.keys.sorted().map { figures[$0]! }, profile: profile, creditHold: !reasons.isEmpty,
        creditHoldReasons: reasons.sorted(), collection: collection)
    }
  }

  // MARK: - The aging report

  /// One account's receivables in one currency, as the aging report lists them.
  public struct Receivable: Sendable, Hashable {
    public var accountID: UUID
    public var accountName: String
    public var currencyCode: String
    public var totalDue: Money
    public var overdue: Money
    public var buckets: [AccountFinancials.Bucket]
    public var openInvoices: Int
    public var oldestDaysOverdue: Int
    public var collectorID: UUID?
    /// Judged on this row's currency (``AccountCollection/judge(overdue:disputedOverdue:owesAnything:escalation:promise:writtenOff:on:)``).
    public var collectionStatus: CollectionStatus
  }

  /// The tenant's aging report on `asOf`: one row per account and currency that is owed anything,
  /// most overdue first (then most due), limited to the accounts whose billing data the caller may
  /// read; `currency` narrows it, `overdueOnly` leaves out accounts owing nothing past due.
  public func receivables(
    asOf: CalendarDate?, currency: String?, overdueOnly: Bool, collectorID: UUID? = nil, pageSize: Int, pageToken: String,
    principal: Principal
  ) async throws -> Page<Receivable> {
    let tenant = principal.tenantID
    let day = asOf ?? today
    let fingerprint = "receivables|\(day)|\(currency ?? "")|\(overdueOnly)|\(collectorID?.lowercasedString ?? "")"
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: fingerprint)
    var scope: PostgresQuery = "true"
    if let currency { scope.append(" AND i.currency = \(currency)") }
    if let readable = Self.readableAccountIDs(principal) { scope.append(" AND i.account_id IN (\(readable))") }
    if let collectorID {
      scope.append(
        " AND i.account_id IN (SELECT account_id FROM account_collections WHERE tenant_id = \(tenant) AND collector_id = \(collectorID))"
      )
    }
    var page: PostgresQuery = overdueOnly ? "r.overdue > 0" : "true"
    if let token {
      let parts = token.key.split(separator: "|", maxSplits: 2).map(String.init)
      guard parts.count == 3, Money(currencyCode: "XXX", numeral: parts[0]) != nil,
        Money(currencyCode: "XXX", numeral: parts[1]) != nil
      else { throw CRMError.invalid("page_token", "is malformed", reason: "INVALID_FORMAT") }
      page.append(
        " AND (r.overdue, r.due, r.account_id, r.currency) < (\(parts[0])::numeric, \(parts[1])::numeric, \(token.id), \(parts[2]))"
      )
    }
    let (scoped, conditions) = (scope, page)
    return try await database.withTenant(tenant) { connection in
      let settings = try Self.settings(connection, tenant: tenant)
      // Without instalment invoices the items are the invoices alone, aggregated in the collectible
      // index's order (with the instalments' branch appended, PostgreSQL sorts the tenant's 666,000
      // open invoices first: +10%, BENCHMARKS.md "Billing").
      let source: PostgresQuery = """
        SELECT account_id, currency, greatest(\(day) - due_date, 0) AS days, balance, balance - amount_disputed AS collectible
        FROM (\(Self.dueItems(tenant: tenant, on: day, where: scoped, instalments: try Self.hasInstalments(connection, tenant: tenant)))) d
        """
      let buckets = settings.buckets
      // One row per account and currency; each bucket a filtered sum and count.
      var columns = PostgresQuery(unsafeSQL: "")
      for (index, bucket) in buckets.enumerated() {
        columns.append(
          """
          , coalesce(sum(collectible) FILTER (
                WHERE collectible > 0 AND days BETWEEN \(bucket.fromDays) AND \(bucket.toDays ?? Int(Int32.max))), 0)::text
              AS \(unsafeSQL: "b\(index)"),
            count(*) FILTER (
              WHERE collectible > 0 AND days BETWEEN \(bucket.fromDays) AND \(bucket.toDays ?? Int(Int32.max)))
              AS \(unsafeSQL: "c\(index)")
          """)
      }
      let rows = try connection.query(
        """
        SELECT r.*, r.due::text AS due_text, r.overdue::text AS overdue_text, a.name, c.collector_id, c.escalation,
          \(unsafeSQL: Self.promiseColumns("c")), c.written_off_at IS NOT NULL AS written_off
        FROM (
          SELECT account_id, currency, sum(balance) AS due,
            coalesce(sum(collectible) FILTER (WHERE days > 0 AND collectible > 0), 0) AS overdue, count(*) AS n,
            coalesce(max(days) FILTER (WHERE collectible > 0), 0) AS oldest,
            coalesce(bool_or(days > 0 AND collectible < balance), false) AS disputed_overdue\(columns)
          FROM (\(source)) i
          GROUP BY account_id, currency
        ) r JOIN accounts a ON a.tenant_id = \(tenant) AND a.id = r.account_id
        LEFT JOIN account_collections c ON c.tenant_id = \(tenant) AND c.account_id = r.account_id
        WHERE \(conditions)
        ORDER BY r.overdue DESC, r.due DESC, r.account_id DESC, r.currency DESC
        LIMIT \(pageSize + 1)
        """)
      var items: [Receivable] = []
      for row in rows.rows {
        let currency: String = try row.decode("currency")
        let amounts = try buckets.indices.map { index in
          AccountFinancials.Bucket(
            label: buckets[index].label, fromDays: buckets[index].fromDays, toDays: buckets[index].toDays,
            amount: try BillingRow.money(row, "b\(index)", currency: currency), count: try row.decode("c\(index)"))
        }
        let overdue = try BillingRow.money(row, "overdue_text", currency: currency)
        let promise = try Self.promise(row)
        let status = AccountCollection.judge(
          overdue: [overdue], disputedOverdue: try row.decode("disputed_overdue"), owesAnything: true,
          escalation: try row.decode("escalation", as: String?.self).flatMap(CollectionStatus.init(rawValue:)),
          promise: promise, writtenOff: try row.decode("written_off", as: Bool?.self) ?? false, on: day
        ).status
        items.append(
          Receivable(
            accountID: try row.decode("account_id"), accountName: try row.decode("name"), currencyCode: currency,
            totalDue: try BillingRow.money(row, "due_text", currency: currency), overdue: overdue, buckets: amounts,
            openInvoices: try row.decode("n"), oldestDaysOverdue: try row.decode("oldest"),
            collectorID: try row.decode("collector_id"), collectionStatus: status))
      }
      var next: String?
      if items.count > pageSize {
        items.removeLast()
        let last = items[pageSize - 1]
        next = tokens.encode(
          PageToken(
            key: "\(last.overdue.numeral)|\(last.totalDue.numeral)|\(last.currencyCode)", id: last.accountID, query: fingerprint))
      }
      return Page(items: items, nextPageToken: next)
    }
  }

  /// What is owed on `day`, item by item — each invoice without instalments, and each instalment
  /// still owing something of an invoice with them — as rows of account_id, currency, due_date,
  /// balance and amount_disputed, for the invoices `i` that `condition` selects. Invoices without
  /// instalments read index-only from `invoices_collectible_by_account`.
  /// `instalments: false` leaves the instalments' branch out (no invoice of the tenant has any).
  static func dueItems(tenant: UUID, on day: CalendarDate, where condition: PostgresQuery, instalments: Bool = true)
    -> PostgresQuery
  {
    let invoices: PostgresQuery = """
      SELECT i.account_id, i.currency, i.due_date, i.balance, i.amount_disputed FROM invoices i
      WHERE i.tenant_id = \(tenant) AND \(condition) AND i.state IN ('open', 'uncollectible') AND i.balance > 0
        AND i.issue_date <= \(day) AND NOT i.has_instalments
      """
    guard instalments else { return invoices }
    return """
      \(invoices)
      UNION ALL
      SELECT i.account_id, i.currency, s.due_date, s.owed, s.owed - s.collectible FROM invoices i
      JOIN invoice_instalments s ON s.tenant_id = i.tenant_id AND s.invoice_id = i.id
      WHERE i.tenant_id = \(tenant) AND \(condition) AND i.state IN ('open', 'uncollectible') AND i.balance > 0
        AND i.issue_date <= \(day) AND i.has_instalments AND s.owed > 0
      """
  }

  /// Whether any collectible invoice of the tenant has instalments (a probe of `invoices_with_instalments`).
  static func hasInstalments(_ connection: PostgresConnection, tenant: UUID) throws -> Bool {
    try connection.query(
      """
      SELECT EXISTS (
        SELECT 1 FROM invoices
        WHERE tenant_id = \(tenant) AND has_instalments AND state IN ('open', 'uncollectible') AND balance > 0) AS any
      """
    )[0].decode("any")
  }

  /// A decimal with one fraction digit at most ("45", "12.5").
  static func rounded(_ value: Decimal) -> String {
    var value = value
    var out = Decimal()
    NSDecimalRound(&out, &value, 1, .plain)
    return "\(out)"
  }
}
