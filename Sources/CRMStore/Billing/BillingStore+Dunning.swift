import CRMCore
public import Foundation
import LibPQ

/// The collections job: settles promises that fell due, clears escalations and holds once nothing is
/// past due, and applies the tenant's dunning levels to overdue invoices.
///
/// Every node runs it. Each level is applied to an invoice once: its firing row is inserted before the
/// actions run, in their transaction, so a second node (or pass) finds it and does nothing; promises
/// are settled under `FOR UPDATE SKIP LOCKED` and re-checked after the lock. Dunning counts days, so a
/// tenant's invoices are gone through once a day by the store's clock, and again the same day only
/// when an open invoice was pushed, a promise withdrawn or the levels changed since.
extension BillingStore {
  /// One pass over every tenant with dunning levels or collections to watch (`only`: one tenant).
  public func runCollections(tenant only: UUID? = nil, batchSize: Int = 500) async throws -> CollectionJobReport {
    let day = today
    let at = now()
    let tenants: [UUID] = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id FROM crm_collection_tenants()").rows.map { try $0.decode("tenant_id") }
    }
    var report = CollectionJobReport()
    for tenant in tenants where only == nil || only == tenant {
      let context = ChangeLog.Context(
        principal: Principal(tenantID: tenant, userID: PoolStore.systemActor, role: .admin, ownersInHierarchy: []),
        requestID: "collections")
      report.add(
        try await database.withTenant(tenant) { connection in
          var part = CollectionJobReport()
          try Self.settlePromises(connection, on: day, at: at, context: context, into: &part)
          try Self.clearSettled(connection, on: day, context: context, into: &part)
          try Self.warnEvidenceDue(connection, on: day, at: at, context: context, into: &part)
          return part
        })
      // Due unless gone through today with nothing invoiced since; the flag is lowered before the
      // pass, so an invoice pushed during it raises it again.
      let due = try await database.withTenant(tenant) { connection in
        try connection.query(
          """
          INSERT INTO dunning_runs (tenant_id, completed_on, stale) VALUES (\(tenant), '-infinity', false)
          ON CONFLICT (tenant_id) DO UPDATE SET stale = false
          WHERE dunning_runs.stale OR dunning_runs.completed_on < \(day)
          RETURNING tenant_id
          """
        ).first != nil
      }
      guard due else { continue }
      while true {
        let (looked, part) = try await database.withTenant(tenant) { connection in
          var part = CollectionJobReport()
          let looked = try Self.dunningBatch(connection, on: day, at: at, limit: batchSize, context: context, into: &part)
          return (looked, part)
        }
        report.add(part)
        if looked < batchSize { break }
      }
      try await database.withTenant(tenant) { connection in
        _ = try connection.query(
          """
          INSERT INTO dunning_runs (tenant_id, completed_on) VALUES (\(tenant), \(day))
          ON CONFLICT (tenant_id) DO UPDATE SET completed_on = greatest(dunning_runs.completed_on, EXCLUDED.completed_on)
          """)
      }
    }
    return report
  }

  /// Marks the tenant's invoices as worth going through again today (an open invoice was pushed, a
  /// promise withdrawn). Once raised the flag is only read, so concurrent pushes do not queue on it.
  static func markDunningStale(_ connection: PostgresConnection, tenant: UUID) throws {
    try connection.query("UPDATE dunning_runs SET stale = true WHERE tenant_id = \(tenant) AND NOT stale")
  }

  /// Promises whose day passed: kept when the payments since they were made reach the amount, else
  /// broken, which raises a task for the collector (or the owner).
  static func settlePromises(
    _ connection: PostgresConnection, on day: CalendarDate, at: Timestamp, context: ChangeLog.Context,
    into report: inout CollectionJobReport
  ) throws {
    let tenant = context.principal.tenantID
    let due = try connection.query(
      """
      SELECT account_id FROM account_collections
      WHERE tenant_id = \(tenant) AND promise_state = 'open' AND promise_pay_by < \(day)
      ORDER BY account_id FOR UPDATE SKIP LOCKED
      """)
    for row in due.rows {
      let account: UUID = try row.decode("account_id")
      // Locked above; read as GetCollection reads it, the promise's payments (up to its day) with it.
      let current = try readCollection(connection, account: account, on: day, tenant: tenant)
      guard var promise = current.promise, promise.state == .open, promise.payBy < day else { continue }
      promise.state = promise.amount.isGreater(than: promise.paid) ? .broken : .kept
      var next = current
      next.promise = promise
      try writeCollection(connection, next, over: current, context: context)
      if promise.state == .kept {
        report.promisesKept += 1
        continue
      }
      report.promisesBroken += 1
      let facts = try accountFacts(connection, account, tenant: tenant)
      if let assignee = current.collectorID ?? facts.owner {
        report.tasks += try raiseTask(
          connection, assignee: assignee, account: account, kind: .brokenPromise,
          key: "broken_promise:\(account.lowercasedString):\(promise.madeOn):\(promise.payBy)",
          subject: "Broken promise: \(facts.name) promised \(promise.amount.formatted) by \(promise.payBy)",
          description:
            "Paid \(promise.paid.formatted) of the \(promise.amount.formatted) promised on \(promise.madeOn) for \(promise.payBy). "
            + "Dunning resumes; call the customer or escalate.",
          at: at, context: context)
      }
    }
  }

  /// Warns of disputes whose evidence falls due within the tenant's warning days (or is past due):
  /// an internal note on the dispute's ticket (unless it was closed) and a task for its assignee, else
  /// the account's collector, else its owner — once per evidence due date, claimed on the dispute.
  static func warnEvidenceDue(
    _ connection: PostgresConnection, on day: CalendarDate, at: Timestamp, context: ChangeLog.Context,
    into report: inout CollectionJobReport
  ) throws {
    let tenant = context.principal.tenantID
    let days = try settings(connection, tenant: tenant).disputeEvidenceWarningDays
    let due = try connection.query(
      """
      WITH claimed AS (
        UPDATE invoice_disputes d SET evidence_warned_for = d.evidence_due
        WHERE d.tenant_id = \(tenant) AND d.state = 'needs_response' AND d.evidence_due <= \(day.adding(days: days))
          AND d.evidence_warned_for IS DISTINCT FROM d.evidence_due
        RETURNING d.id, d.ticket_id, d.account_id, d.invoice_id, d.evidence_due, d.amount::text AS amount, d.currency
      )
      SELECT c.*, i.number, t.assignee_id, t.status, a.name, a.owner_id, ac.collector_id FROM claimed c
      JOIN invoices i ON i.tenant_id = \(tenant) AND i.id = c.invoice_id
      JOIN tickets t ON t.tenant_id = \(tenant) AND t.id = c.ticket_id
      JOIN accounts a ON a.tenant_id = \(tenant) AND a.id = c.account_id
      LEFT JOIN account_collections ac ON ac.tenant_id = \(tenant) AND ac.account_id = c.account_id
      ORDER BY c.evidence_due, c.id
      """)
    for row in due.rows {
      let dispute: UUID = try row.decode("id")
      let evidenceDue: CalendarDate = try row.decode("evidence_due")
      let amount = try BillingRow.money(row, "amount", currency: try row.decode("currency"))
      let number: String = try row.decode("number")
      let left = evidenceDue.days(since: day)
      let when = left > 0 ? "is due \(evidenceDue) (in \(left) days)" : left == 0 ? "is due today" : "was due \(evidenceDue)"
      let body =
        "The evidence for the dispute of invoice \(number) (\(amount.formatted)) \(when): submit it and move the dispute to "
        + "under review, or it is likely lost."
      if try row.decode("status", as: String.self) != TicketStatus.closed.rawValue {
        _ = try TicketStore.addComment(
          connection, try row.decode("ticket_id"), .init(fromCustomer: false, isPublic: false, body: body, status: nil),
          expectedVersion: nil, context: context, at: at)
      }
      let assignee: UUID? =
        try row.decode("assignee_id") ?? row.decode("collector_id") ?? row.decode("owner_id")
      if let assignee {
        report.tasks += try raiseTask(
          connection, assignee: assignee, account: try row.decode("account_id"), kind: .disputeEvidence,
          key: "dispute_evidence:\(dispute.lowercasedString):\(evidenceDue)",
          subject:
            "Dispute evidence \(left >= 0 ? "due \(evidenceDue)" : "overdue"): \(try row.decode("name", as: String.self)), invoice \(number)",
          description: body, at: at, context: context)
      }
      report.evidenceWarnings += 1
    }
  }

  /// Clears the escalation and credit hold of accounts that owe nothing past due any more.
  static func clearSettled(
    _ connection: PostgresConnection, on day: CalendarDate, context: ChangeLog.Context, into report: inout CollectionJobReport
  ) throws {
    let tenant = context.principal.tenantID
    let settled = try connection.query(
      """
      SELECT c.account_id FROM account_collections c
      WHERE c.tenant_id = \(tenant) AND (c.escalation IS NOT NULL OR c.credit_hold)
        AND NOT EXISTS (
          SELECT 1 FROM invoices i
          WHERE i.tenant_id = c.tenant_id AND i.account_id = c.account_id AND i.state IN ('open', 'uncollectible')
            AND i.balance > i.amount_disputed AND i.collect_due < \(day))
      ORDER BY c.account_id FOR UPDATE OF c SKIP LOCKED
      """)
    for row in settled.rows {
      let current = try storedCollection(connection, account: try row.decode("account_id"), tenant: tenant)
      var next = current
      next.escalation = nil
      next.creditHold = false
      try writeCollection(connection, next, over: current, context: context)
      report.cleared += 1
    }
  }

  /// Claims up to `limit` (invoice, level) pairs due on `day` — for each overdue invoice of an account
  /// without a pending promise, the highest level reached that neither it nor a higher one was applied
  /// — and acts on them per account and level: one task naming the invoices, the tag, the hold, the
  /// escalation. Returns how many pairs were looked at (a full batch means look again). An account
  /// with more invoices reaching one level on one day than a batch holds gets its task from the first
  /// batch; the later ones are applied all the same.
  static func dunningBatch(
    _ connection: PostgresConnection, on day: CalendarDate, at: Timestamp, limit: Int, context: ChangeLog.Context,
    into report: inout CollectionJobReport
  ) throws -> Int {
    let tenant = context.principal.tenantID
    let levels = try dunningLevels(connection, tenant: tenant)
    guard let earliest = levels.first?.daysAfterDue else { return 0 }
    let candidates = try connection.query(
      """
      SELECT i.id, i.account_id, i.number, i.currency, (i.balance - i.amount_disputed)::text AS owed,
        \(day) - i.collect_due AS days, l.name, l.days_after_due
      FROM invoices i
      CROSS JOIN LATERAL (
        SELECT name, days_after_due FROM dunning_levels l
        WHERE l.tenant_id = i.tenant_id AND l.days_after_due <= \(day) - i.collect_due
        ORDER BY days_after_due DESC LIMIT 1) l
      WHERE i.tenant_id = \(tenant) AND i.state IN ('open', 'uncollectible') AND i.collect_due <= \(day.adding(days: -earliest))
        AND i.balance > i.amount_disputed AND i.issue_date <= \(day)
        AND NOT EXISTS (
          SELECT 1 FROM dunning_firings f
          WHERE f.tenant_id = i.tenant_id AND f.invoice_id = i.id AND f.level_days >= l.days_after_due)
        AND NOT EXISTS (
          SELECT 1 FROM account_collections c
          WHERE c.tenant_id = i.tenant_id AND c.account_id = i.account_id AND c.promise_state = 'open'
            AND c.promise_pay_by >= \(day))
      ORDER BY i.account_id, i.collect_due, i.id
      LIMIT \(limit)
      """)
    guard !candidates.rows.isEmpty else { return 0 }
    // A full batch leaves its last account to the next one (unless it is the only one), so that an
    // account's invoices reaching a level on a day make one task.
    var rows = candidates.rows
    if rows.count == limit, let last = try rows.last?.decode("account_id", as: UUID.self) {
      let others = try rows.filter { try $0.decode("account_id", as: UUID.self) != last }
      if !others.isEmpty { rows = others }
    }
    var ids: [UUID] = []
    var names: [String] = []
    var days: [Int] = []
    for row in rows {
      ids.append(try row.decode("id"))
      names.append(try row.decode("name"))
      days.append(try row.decode("days_after_due"))
    }
    // The claim: a pair another node (or pass) applied already is not returned.
    let claimed = Set(
      try connection.query(
        """
        INSERT INTO dunning_firings (tenant_id, invoice_id, level_name, level_days, fired_on)
        SELECT \(tenant), f.invoice, f.name, f.days, \(day)
        FROM unnest(\(ids)::uuid[], \(names)::text[], \(days)::integer[]) AS f (invoice, name, days)
        ON CONFLICT DO NOTHING
        RETURNING invoice_id
        """
      ).rows.map { try $0.decode("invoice_id", as: UUID.self) })
    report.applied += claimed.count
    // Per account and level, in a fixed order (locks are taken account by account).
    var groups: [String: (account: UUID, level: String, invoices: [PostgresRow])] = [:]
    for row in rows where claimed.contains(try row.decode("id", as: UUID.self)) {
      let account: UUID = try row.decode("account_id")
      let level: String = try row.decode("name")
      groups["\(account.lowercasedString)|\(level)", default: (account, level, [])].invoices.append(row)
    }
    // Account by account (the order locks are taken in), each account's levels from the lowest, so
    // that the last one applied is the furthest.
    let byName = Dictionary(uniqueKeysWithValues: levels.map { ($0.name, $0) })
    let ordered = groups.values.compactMap { group in byName[group.level].map { (group, $0) } }.sorted {
      ($0.0.account.lowercasedString, $0.1.daysAfterDue) < ($1.0.account.lowercasedString, $1.1.daysAfterDue)
    }
    for (group, level) in ordered {
      try applyLevel(connection, level, account: group.account, invoices: group.invoices, at: at, context: context, into: &report)
    }
    return candidates.rows.count
  }

  /// One level's actions on one account for the invoices it reached.
  static func applyLevel(
    _ connection: PostgresConnection, _ level: DunningLevel, account: UUID, invoices: [PostgresRow], at: Timestamp,
    context: ChangeLog.Context, into report: inout CollectionJobReport
  ) throws {
    let tenant = context.principal.tenantID
    let current = try storedCollection(connection, account: account, tenant: tenant, lock: true)
    let facts = try accountFacts(connection, account, tenant: tenant)
    var totals: [String: Money] = [:]
    var lines: [String] = []
    for row in invoices {
      let currency: String = try row.decode("currency")
      let owed = try BillingRow.money(row, "owed", currency: currency)
      totals[currency] = (totals[currency] ?? .zero(currency)).adding(owed)
      let days: Int = try row.decode("days")
      let timing = days >= 0 ? "\(days) days past due" : "due in \(-days) days"
      lines.append("Invoice \(try row.decode("number", as: String.self)): \(owed.formatted), \(timing)")
    }
    let owed = totals.keys.sorted().map { totals[$0]!.formatted }.joined(separator: ", ")
    let assignee: UUID? =
      switch level.taskFor {
      case .none: nil
      case .owner: facts.owner
      case .collector: current.collectorID ?? facts.owner
      }
    if let assignee {
      report.tasks += try raiseTask(
        connection, assignee: assignee, account: account, kind: .dunning,
        key: "dunning:\(account.lowercasedString):\(level.name):\(at.utcDate)",
        subject: level.taskSubject
          ?? "\(level.name.replacingOccurrences(of: "_", with: " ").capitalized): \(facts.name) owes \(owed)",
        description: "Dunning level \(level.name) (\(level.daysAfterDue) days after due):\n" + lines.joined(separator: "\n"),
        at: at, context: context)
    }
    if let tag = level.addTag { try tagAccount(connection, account, tag: tag, context: context) }
    var next = current
    next.lastDunningLevel = level.name
    next.lastDunningAt = at
    if level.creditHold { next.creditHold = true }
    if let escalation = level.escalateTo, escalation.escalationRank > (current.escalation?.escalationRank ?? 0) {
      next.escalation = escalation
    }
    try writeCollection(connection, next, over: current, context: context)
  }

  /// An account's name and owner.
  static func accountFacts(_ connection: PostgresConnection, _ account: UUID, tenant: UUID) throws -> (name: String, owner: UUID?)
  {
    let row = try connection.query("SELECT name, owner_id FROM accounts WHERE tenant_id = \(tenant) AND id = \(account)")[0]
    return (try row.decode("name"), try row.decode("owner_id"))
  }

  /// Raises a task on the account, once per `key`, and logs it; returns 1 when raised.
  static func raiseTask(
    _ connection: PostgresConnection, assignee: UUID, account: UUID, kind: AlertKind, key: String, subject: String,
    description: String, at: Timestamp, context: ChangeLog.Context
  ) throws -> Int {
    let tenant = context.principal.tenantID
    let id = UUID.v7()
    let due = Timestamp(microsecondsSinceEpoch: at.microsecondsSinceEpoch + 86_400_000_000)
    let raised = try connection.query(
      """
      WITH raised AS (
        INSERT INTO tasks (tenant_id, id, owner_id, subject, description, due_at, priority, related_type, related_id, alert_kind,
          alert_key, created_by, updated_by)
        VALUES (\(tenant), \(id), \(assignee), \(String(subject.prefix(255))), \(String(description.prefix(10_000))), \(due), 'high',
          'account', \(account), \(kind.rawValue), \(String(key.prefix(200))), \(context.principal.userID), \(context.principal.userID))
        ON CONFLICT (tenant_id, alert_key) WHERE alert_key IS NOT NULL DO NOTHING
        RETURNING id, owner_id, subject
      )
      \(TaskStore.logCreated(context))
      """)
    return try raised[0].decode("n")
  }

  /// Adds `tag` to the account through its normal write (version, history), unless it has it, is
  /// archived, or carries the most tags a record may.
  static func tagAccount(_ connection: PostgresConnection, _ account: UUID, tag: String, context: ChangeLog.Context) throws {
    let tenant = context.principal.tenantID
    try connection.query("SELECT 1 FROM accounts WHERE tenant_id = \(tenant) AND id = \(account) FOR UPDATE")
    guard let current = try RecordMechanics<Account>.fetch(connection, id: account, principal: context.principal),
      current.archivedAt == nil, !current.fields.tags.contains(tag), current.fields.tags.count < Tags.maxCount
    else { return }
    var next = current
    next.fields.tags.append(tag)
    _ = try RecordMechanics<Account>.write(connection, next, over: current, context: context)
  }
}
