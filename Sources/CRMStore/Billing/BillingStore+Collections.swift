public import CRMCore
public import Foundation
import LibPQ

/// What one pass of the collections job did.
public struct CollectionJobReport: Sendable, Hashable {
  /// Dunning levels applied to invoices.
  public var applied = 0
  /// Tasks raised (dunning and broken promises).
  public var tasks = 0
  public var promisesKept = 0
  public var promisesBroken = 0
  /// Escalations and holds cleared because nothing was past due any more.
  public var cleared = 0
  /// Disputes warned that their evidence falls due.
  public var evidenceWarnings = 0

  /// A report.
  public init(applied: Int = 0, tasks: Int = 0, promisesKept: Int = 0, promisesBroken: Int = 0, cleared: Int = 0) {
    self.applied = applied
    self.tasks = tasks
    self.promisesKept = promisesKept
    self.promisesBroken = promisesBroken
    self.cleared = cleared
  }

  /// Adds another pass's counts.
  public mutating func add(_ other: CollectionJobReport) {
    applied += other.applied
    tasks += other.tasks
    promisesKept += other.promisesKept
    promisesBroken += other.promisesBroken
    cleared += other.cleared
    evidenceWarnings += other.evidenceWarnings
  }
}

/// Collections: an account's collector, escalation, credit hold and promise to pay (migration 0054's
/// `account_collections`, one row per account once anything was recorded), the status judged from
/// them and what the account owes, write-offs, and the job that applies the tenant's dunning levels
/// and settles promises that fell due.
extension BillingStore {
  /// A collection's promise, as ``promise(_:)`` reads it (`c.` qualifies them for a join).
  static func promiseColumns(_ alias: String = "") -> String {
    let c = alias.isEmpty ? "" : alias + "."
    return """
      \(c)promise_currency, \(c)promise_amount::text AS promise_amount, \(c)promise_pay_by, \(c)promise_made_on,
      \(c)promise_note, \(c)promise_state, \(c)promise_made_by
      """
  }

  static let collectionColumns = """
    account_id, collector_id, escalation, credit_hold, \(promiseColumns()), last_dunning_level, last_dunning_at,
    written_off_at, version, updated_at
    """

  /// The stored collection of `account` (defaults, version 0, when none was recorded); the judged
  /// fields are left for ``collection(from:account:on:)``.
  static func storedCollection(_ connection: PostgresConnection, account: UUID, tenant: UUID, lock: Bool = false) throws
    -> AccountCollection
  {
    if lock {
      // Version 0 until the first write: the etag a read of a never-written collection gave ("0")
      // stays good for that write.
      try connection.query(
        """
        INSERT INTO account_collections (tenant_id, account_id, version) VALUES (\(tenant), \(account), 0)
        ON CONFLICT DO NOTHING
        """)
    }
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: collectionColumns) FROM account_collections
      WHERE tenant_id = \(tenant) AND account_id = \(account)\(unsafeSQL: lock ? " FOR UPDATE" : "")
      """)
    return try storedCollection(rows.first, account: account)
  }

  /// The stored collection a row of ``collectionColumns`` holds; defaults (version 0) for none.
  static func storedCollection(_ row: PostgresRow?, account: UUID) throws -> AccountCollection {
    guard let row else {
      return AccountCollection(
        accountID: account, status: .current, statusReason: "", collectorID: nil, escalation: nil, creditHold: false,
        promise: nil, lastDunningLevel: nil, lastDunningAt: nil, writtenOffAt: nil, overdue: [], version: 0, updatedAt: nil)
    }
    let promise = try Self.promise(row)
    return AccountCollection(
      accountID: account, status: .current, statusReason: "", collectorID: try row.decode("collector_id"),
      escalation: try row.decode("escalation", as: String?.self).flatMap(CollectionStatus.init(rawValue:)),
      creditHold: try row.decode("credit_hold"), promise: promise, lastDunningLevel: try row.decode("last_dunning_level"),
      lastDunningAt: try row.decode("last_dunning_at"), writtenOffAt: try row.decode("written_off_at"), overdue: [],
      version: try row.decode("version"), updatedAt: try row.decode("updated_at"))
  }

  /// The account's collection on `day`: what is stored, what it owes past due (per currency, disputes
  /// excluded), what its promise has been paid, and the status judged from them — three reads in one
  /// round trip (``collectionReads(account:on:tenant:)``).
  static func readCollection(_ connection: PostgresConnection, account: UUID, on day: CalendarDate, tenant: UUID) throws
    -> AccountCollection
  {
    try collection(
      from: connection.pipeline(collectionReads(account: account, on: day, tenant: tenant)), account: account, on: day)
  }

  /// The stored promise in a row selecting ``promiseColumns`` (its payments not yet read), if any.
  static func promise(_ row: PostgresRow) throws -> PaymentPromise? {
    guard let currency: String = try row.decode("promise_currency") else { return nil }
    return PaymentPromise(
      amount: try BillingRow.money(row, "promise_amount", currency: currency), payBy: try row.decode("promise_pay_by"),
      madeOn: try row.decode("promise_made_on"), note: try row.decode("promise_note"),
      state: PromiseState(rawValue: try row.decode("promise_state")) ?? .open, madeBy: try row.decode("promise_made_by"),
      paid: .zero(currency))
  }

  /// The reads ``collection(from:account:on:)`` judges from, for a caller's pipeline (the financial
  /// panel's): the stored row, what is owed per currency, the promise's payments.
  static func collectionReads(account: UUID, on day: CalendarDate, tenant: UUID) -> [PostgresQuery] {
    [
      """
      SELECT \(unsafeSQL: collectionColumns) FROM account_collections WHERE tenant_id = \(tenant) AND account_id = \(account)
      """,
      """
      SELECT currency,
        coalesce(sum(balance - amount_disputed) FILTER (WHERE due_date < \(day) AND balance > amount_disputed), 0)::text AS overdue,
        coalesce(bool_or(due_date < \(day) AND amount_disputed > 0), false) AS disputed_overdue
      FROM (\(dueItems(tenant: tenant, on: day, where: "i.account_id = \(account)"))) d
      GROUP BY currency ORDER BY currency
      """,
      """
      SELECT coalesce(sum(p.amount), 0)::text AS paid FROM account_collections c
      JOIN payments p ON p.tenant_id = c.tenant_id AND p.account_id = c.account_id AND p.currency = c.promise_currency
        AND p.state = 'completed' AND p.received_on BETWEEN c.promise_made_on AND least(c.promise_pay_by, \(day))
      WHERE c.tenant_id = \(tenant) AND c.account_id = \(account)
      """,
    ]
  }

  /// The collection judged from the results of ``collectionReads(account:on:tenant:)``, in order.
  static func collection(from results: [PostgresResult], account: UUID, on day: CalendarDate) throws -> AccountCollection {
    var collection = try storedCollection(results[0].first, account: account)
    var disputedOverdue = false
    for row in results[1].rows {
      let currency: String = try row.decode("currency")
      let overdue = try BillingRow.money(row, "overdue", currency: currency)
      if overdue.isPositive { collection.overdue.append(overdue) }
      if try row.decode("disputed_overdue", as: Bool.self) { disputedOverdue = true }
    }
    if var promise = collection.promise {
      promise.paid = try BillingRow.money(results[2][0], "paid", currency: promise.amount.currencyCode)
      collection.promise = promise
    }
    (collection.status, collection.statusReason) = AccountCollection.judge(
      overdue: collection.overdue, disputedOverdue: disputedOverdue, owesAnything: !results[1].rows.isEmpty,
      escalation: collection.escalation, promise: collection.promise, writtenOff: collection.writtenOffAt != nil, on: day)
    return collection
  }

  /// Writes `next` over `current` (both stored, `current` locked) and logs what changed.
  static func writeCollection(
    _ connection: PostgresConnection, _ next: AccountCollection, over current: AccountCollection, context: ChangeLog.Context,
    notes: [FieldChange] = []
  ) throws {
    let changes = FieldChange.diff(fields: AccountCollection.changeLogOrder, old: current.snapshot, new: next.snapshot)
    guard !changes.isEmpty || !notes.isEmpty else { return }
    let tenant = context.principal.tenantID
    let promise = next.promise
    try connection.query(
      """
      UPDATE account_collections SET collector_id = \(next.collectorID), escalation = \(next.escalation?.rawValue),
        credit_hold = \(next.creditHold), promise_currency = \(promise?.amount.currencyCode),
        promise_amount = \(promise?.amount.numeral)::numeric, promise_pay_by = \(promise?.payBy),
        promise_made_on = \(promise?.madeOn), promise_note = \(promise?.note), promise_state = \(promise?.state.rawValue),
        promise_made_by = \(promise?.madeBy), last_dunning_level = \(next.lastDunningLevel),
        last_dunning_at = \(next.lastDunningAt), written_off_at = \(next.writtenOffAt), version = version + 1,
        updated_at = now(), updated_by = \(context.principal.userID)
      WHERE tenant_id = \(tenant) AND account_id = \(current.accountID)
      """)
    try ChangeLog.append(
      connection, context: context, recordType: .collection, recordID: current.accountID,
      operation: current.version == 0 ? .create : .update, changes: changes + notes)
  }

  /// The account's collection on `day` (default today), if the caller may read its billing data.
  public func collection(accountID: UUID, on day: CalendarDate? = nil, principal: Principal) async throws -> AccountCollection {
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try Self.requireBillingReadable(connection, account: accountID, principal: principal)
      return try Self.readCollection(connection, account: accountID, on: day ?? today, tenant: tenant)
    }
  }

  /// What ``updateCollection(accountID:_:expectedVersion:context:)`` changes: `nil` leaves a field.
  public struct CollectionUpdate: Sendable, Hashable {
    /// `.some(nil)` unassigns.
    public var collectorID: UUID??
    /// `.some(nil)` clears the escalation.
    public var escalation: CollectionStatus??
    public var creditHold: Bool?

    /// An update.
    public init(collectorID: UUID?? = nil, escalation: CollectionStatus?? = nil, creditHold: Bool? = nil) {
      self.collectorID = collectorID
      self.escalation = escalation
      self.creditHold = creditHold
    }
  }

  /// Assigns the collector (admins; a user with the collector or admin role), escalates or holds
  /// credit (admins and the assigned collector).
  ///
  /// - Throws: `notFound` for an account out of sight; `permissionDenied`; `invalid` for a collector
  ///   who is no active collector; `staleEtag`.
  public func updateCollection(
    accountID: UUID, _ update: CollectionUpdate, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> AccountCollection {
    let principal = context.principal
    let tenant = principal.tenantID
    let day = today
    return try await database.withTenant(tenant) { connection in
      try Self.requireBillingReadable(connection, account: accountID, principal: principal)
      let current = try Self.storedCollection(connection, account: accountID, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      var next = current
      if let collector = update.collectorID {
        try principal.requireAdmin()
        if let collector {
          let row = try connection.query(
            "SELECT role, is_active FROM users WHERE tenant_id = \(tenant) AND id = \(collector)"
          ).first
          guard let row, try row.decode("is_active", as: Bool.self),
            [Role.collector.rawValue, Role.admin.rawValue].contains(try row.decode("role", as: String.self))
          else {
            throw CRMError.invalid(
              "collection.collector_id", "must be an active user with the collector or admin role", reason: "NOT_FOUND")
          }
        }
        next.collectorID = collector
      }
      if update.escalation != nil || update.creditHold != nil {
        try Self.requireCollector(principal, of: current, doing: "escalate or hold an account's credit")
      }
      if let escalation = update.escalation {
        if let escalation, !CollectionStatus.escalations.contains(escalation) {
          throw CRMError.invalid("collection.escalation", "must be NEEDS_ACTION, IN_COLLECTIONS or unspecified (none)")
        }
        next.escalation = escalation
      }
      if let hold = update.creditHold { next.creditHold = hold }
      try Self.writeCollection(connection, next, over: current, context: context)
      return try Self.readCollection(connection, account: accountID, on: day, tenant: tenant)
    }
  }

  /// PERMISSION_DENIED unless the caller is an admin or the account's assigned collector.
  static func requireCollector(_ principal: Principal, of collection: AccountCollection, doing what: String) throws {
    guard principal.isAdmin || (collection.collectorID == principal.userID && principal.role == .collector) else {
      throw CRMError.permissionDenied("only an admin or the account's assigned collector may \(what)")
    }
  }

  /// Records the customer's promise to pay `amount` by `payBy` (today or later), replacing an open
  /// one (logged as cancelled). Admins, the assigned collector, and the account's owner and managers.
  ///
  /// - Throws: `invalid` for a day past or an amount in a currency the account owes nothing in;
  ///   `permissionDenied`; `staleEtag`.
  public func promiseToPay(
    accountID: UUID, amount: Money, payBy: CalendarDate, note: String?, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> AccountCollection {
    let principal = context.principal
    let tenant = principal.tenantID
    let day = today
    guard payBy >= day else { throw CRMError.invalid("pay_by_date", "must be today (\(day)) or later") }
    return try await database.withTenant(tenant) { connection in
      let current = try Self.lockForPromise(
        connection, account: accountID, expectedVersion: expectedVersion, principal: principal, doing: "record a promise")
      let owes = try connection.query(
        """
        SELECT 1 FROM invoices
        WHERE tenant_id = \(tenant) AND account_id = \(accountID) AND currency = \(amount.currencyCode)
          AND state IN ('open', 'uncollectible') AND balance > amount_disputed
        LIMIT 1
        """)
      guard owes.first != nil else {
        throw CRMError.invalid("amount.currency_code", "the account owes nothing undisputed in \(amount.currencyCode)")
      }
      var next = current
      var notes: [FieldChange] = []
      if let open = current.promise, open.state == .open {
        notes.append(
          FieldChange(
            field: "replaced_promise", oldValue: .string("\(open.amount.formatted) by \(open.payBy)"),
            newValue: .string("cancelled")))
      }
      next.promise = PaymentPromise(
        amount: amount, payBy: payBy, madeOn: day, note: note, state: .open, madeBy: principal.userID,
        paid: .zero(amount.currencyCode))
      try Self.writeCollection(connection, next, over: current, context: context, notes: notes)
      return try Self.readCollection(connection, account: accountID, on: day, tenant: tenant)
    }
  }

  /// Withdraws the open promise: dunning resumes.
  public func cancelPromise(accountID: UUID, note: String?, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> AccountCollection
  {
    let principal = context.principal
    let tenant = principal.tenantID
    let day = today
    return try await database.withTenant(tenant) { connection in
      let current = try Self.lockForPromise(
        connection, account: accountID, expectedVersion: expectedVersion, principal: principal, doing: "cancel a promise")
      guard var promise = current.promise, promise.state == .open else {
        throw CRMError.failedPrecondition("the account has no open promise to pay")
      }
      promise.state = .cancelled
      try Self.markDunningStale(connection, tenant: tenant)
      var next = current
      next.promise = promise
      try Self.writeCollection(
        connection, next, over: current, context: context,
        notes: note.map { [FieldChange(field: "note", oldValue: .null, newValue: .string($0))] } ?? [])
      return try Self.readCollection(connection, account: accountID, on: day, tenant: tenant)
    }
  }

  /// The account's stored collection, locked for a promise: NOT_FOUND unless the caller may read the
  /// account's billing data, PERMISSION_DENIED unless it is an admin, the collector, or the account's
  /// owner or a manager above them; ABORTED on a stale etag.
  static func lockForPromise(
    _ connection: PostgresConnection, account: UUID, expectedVersion: Int64?, principal: Principal, doing what: String
  ) throws -> AccountCollection {
    let owner = try requireBillingReadable(connection, account: account, principal: principal)
    let current = try storedCollection(connection, account: account, tenant: principal.tenantID, lock: true)
    if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
    guard principal.isAdmin || current.collectorID == principal.userID || owner.map(principal.ownersInHierarchy.contains) == true
    else {
      throw CRMError.permissionDenied("only an admin, the account's collector or its owner and managers may \(what)")
    }
    return current
  }

  /// Writes off what the account's invoices still owe, less what open disputes contest: the named
  /// ones (our ids), or every one past due. One credit note per invoice (source `crm`, reason
  /// `write_off`); nothing is written unless every invoice can be. Admins and the assigned collector.
  ///
  /// - Throws: `invalid` naming an invoice that is not the account's or owes nothing undisputed;
  ///   `failedPrecondition` when nothing is past due; `permissionDenied`.
  public func writeOff(accountID: UUID, invoiceIDs: [UUID], note: String?, context: ChangeLog.Context) async throws -> (
    creditNotes: [CreditNote], collection: AccountCollection
  ) {
    let principal = context.principal
    let tenant = principal.tenantID
    let day = today
    let at = now()
    return try await database.withTenant(tenant) { connection in
      try Self.requireBillingReadable(connection, account: accountID, principal: principal)
      let current = try Self.storedCollection(connection, account: accountID, tenant: tenant, lock: true)
      try Self.requireCollector(principal, of: current, doing: "write off")
      var selection: PostgresQuery = """
        SELECT id, number, account_id, currency, state, (balance - amount_disputed)::text AS owed FROM invoices
        WHERE tenant_id = \(tenant)
        """
      if invoiceIDs.isEmpty {
        selection.append(
          """
           AND account_id = \(accountID) AND state IN ('open', 'uncollectible') AND balance > amount_disputed
            AND collect_due < \(day)
          """)
      } else {
        selection.append(" AND id = ANY(\(invoiceIDs)::uuid[])")
      }
      selection.append(" ORDER BY id FOR UPDATE")
      let rows = try connection.query(selection).rows
      if invoiceIDs.isEmpty, rows.isEmpty {
        throw CRMError.failedPrecondition("the account owes nothing undisputed past due; name the invoices to write off")
      }
      var found: [UUID: PostgresRow] = [:]
      for row in rows { found[try row.decode("id")] = row }
      var notes: [CreditNote] = []
      var written: [JSONValue] = []
      let named = invoiceIDs.isEmpty ? try rows.map { try $0.decode("id", as: UUID.self) } : invoiceIDs
      for (index, id) in named.enumerated() {
        let field = "invoice_ids[\(index)]"
        guard let row = found[id], try row.decode("account_id", as: UUID.self) == accountID else {
          throw CRMError.invalid(field, "the account has no invoice \(id.lowercasedString)", reason: "NOT_FOUND")
        }
        let number: String = try row.decode("number")
        let state: String = try row.decode("state")
        let owed = try BillingRow.money(row, "owed", currency: try row.decode("currency"))
        guard [InvoiceState.open.rawValue, InvoiceState.uncollectible.rawValue].contains(state), owed.isPositive else {
          throw CRMError.invalid(field, "invoice \(number) owes nothing undisputed to write off")
        }
        let creditNote = try Self.issueCreditNote(
          connection, account: accountID, invoice: id, amount: owed, kind: .adjustment, reason: "write_off",
          key: "write-off-" + UUID.v7().lowercasedString, number: "WRITE-OFF " + number, on: day, context: context)
        notes.append(creditNote)
        written.append(.object([("invoice", .string(number)), ("amount", .money(owed))]))
      }
      var next = current
      next.writtenOffAt = at
      try Self.writeCollection(
        connection, next, over: current, context: context,
        notes: [FieldChange(field: "write_off", oldValue: .null, newValue: .array(written))]
          + (note.map { [FieldChange(field: "note", oldValue: .null, newValue: .string($0))] } ?? []))
      let collection = try Self.readCollection(connection, account: accountID, on: day, tenant: tenant)
      return (notes, collection)
    }
  }

  // MARK: - Dunning levels

  /// The tenant's dunning levels by `daysAfterDue`.
  public func dunningLevels(principal: Principal) async throws -> [DunningLevel] {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.dunningLevels(connection, tenant: principal.tenantID)
    }
  }

  static func dunningLevels(_ connection: PostgresConnection, tenant: UUID) throws -> [DunningLevel] {
    try connection.query(
      """
      SELECT name, days_after_due, task_for, task_subject, add_tag, credit_hold, escalate_to FROM dunning_levels
      WHERE tenant_id = \(tenant) ORDER BY days_after_due
      """
    ).rows.map { row in
      DunningLevel(
        name: try row.decode("name"), daysAfterDue: try row.decode("days_after_due"),
        taskFor: DunningTaskFor(rawValue: try row.decode("task_for")) ?? .none, taskSubject: try row.decode("task_subject"),
        addTag: try row.decode("add_tag"), creditHold: try row.decode("credit_hold"),
        escalateTo: try row.decode("escalate_to", as: String?.self).flatMap(CollectionStatus.init(rawValue:)))
    }
  }

  /// Replaces the tenant's dunning levels (admins; validated by ``DunningLevel/validate(_:field:into:)``);
  /// the job goes through the invoices again at its next pass.
  public func setDunningLevels(_ levels: [DunningLevel], principal: Principal) async throws -> [DunningLevel] {
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try connection.query("DELETE FROM dunning_levels WHERE tenant_id = \(tenant)")
      if !levels.isEmpty {
        try connection.query(
          """
          INSERT INTO dunning_levels (tenant_id, name, days_after_due, task_for, task_subject, add_tag, credit_hold, escalate_to)
          SELECT \(tenant), l.name, l.days, l.task_for, nullif(l.subject, ''), nullif(l.tag, ''), l.hold, nullif(l.escalate, '')
          FROM unnest(\(levels.map(\.name))::text[], \(levels.map(\.daysAfterDue))::integer[],
            \(levels.map(\.taskFor.rawValue))::text[], \(levels.map { $0.taskSubject ?? "" })::text[],
            \(levels.map { $0.addTag ?? "" })::text[], \(levels.map(\.creditHold))::boolean[],
            \(levels.map { $0.escalateTo?.rawValue ?? "" })::text[]) AS l (name, days, task_for, subject, tag, hold, escalate)
          """)
      }
      try connection.query("DELETE FROM dunning_runs WHERE tenant_id = \(tenant)")
      return try Self.dunningLevels(connection, tenant: tenant)
    }
  }
}
