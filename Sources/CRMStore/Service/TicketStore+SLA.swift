public import CRMCore
public import Foundation
import LibPQ

/// One SLA metric instance of a ticket as `GetTicketSLA` shows it: where it stands now and its log.
public struct TicketSLAInstance: Sendable, Hashable {
  /// One entry of the instance's log, with why it was written.
  public struct Entry: Sendable, Hashable {
    public var event: SLAClockEvent
    public var policyID: UUID?
    public var note: String?
    public var actorID: UUID?
    /// When crmd wrote it (the event's own time is ``SLAClockEvent/at``).
    public var recordedAt: Timestamp
  }

  public var metric: SLAMetric
  public var number: Int
  public var status: SLAStatus
  public var policyID: UUID?
  public var entries: [Entry]
}

/// What one pass of the SLA job did.
public struct SLAJobReport: Sendable, Hashable {
  public var warned: Int
  public var breached: Int

  /// A report.
  public init(warned: Int, breached: Int) {
    self.warned = warned
    self.breached = breached
  }
}

extension TicketStore {
  // MARK: - Lists

  /// One page of tickets matching `filter`, in its order, keyset-paginated. "Next breach first" lists
  /// the tickets with a running clock by their due time (the overdue first), then the rest by id.
  public func list(_ filter: TicketFilter, pageSize: Int, pageToken: String, includeTotal: Bool, principal: Principal)
    async throws -> Page<Ticket>
  {
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: filter.fingerprint)
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let conditions = Self.conditions(filter, principal: principal)
      var total: Int64?
      if includeTotal {
        total = try connection.query("SELECT count(*) AS n FROM tickets WHERE \(conditions)")[0].decode("n")
      }
      var tickets: [Ticket] = []
      func fetch(_ extra: PostgresQuery, order: String, limit: Int) throws {
        let rows = try connection.query(
          "SELECT \(unsafeSQL: Ticket.columns) FROM tickets WHERE \(conditions)\(extra) ORDER BY \(unsafeSQL: order) LIMIT \(limit)"
        )
        tickets += try rows.rows.map(Ticket.init(row:))
      }
      switch filter.order {
      case .newest:
        let after: PostgresQuery = token.map { " AND (created_at, id) < (\($0.key)::timestamptz, \($0.id))" } ?? ""
        try fetch(after, order: "created_at DESC, id DESC", limit: pageSize + 1)
      case .updated:
        let after: PostgresQuery = token.map { " AND (updated_at, id) < (\($0.key)::timestamptz, \($0.id))" } ?? ""
        try fetch(after, order: "updated_at DESC, id DESC", limit: pageSize + 1)
      case .nextBreach:
        // A token with an empty key is inside the second segment (no running clock).
        if token?.key.isEmpty != true {
          let after: PostgresQuery =
            token.map { " AND next_breach_at IS NOT NULL AND (next_breach_at, id) > (\($0.key)::timestamptz, \($0.id))" }
            ?? " AND next_breach_at IS NOT NULL"
          try fetch(after, order: "next_breach_at, id", limit: pageSize + 1)
        }
        if tickets.count <= pageSize {
          let after: PostgresQuery =
            token.map { $0.key.isEmpty ? " AND next_breach_at IS NULL AND id > \($0.id)" : " AND next_breach_at IS NULL" }
            ?? " AND next_breach_at IS NULL"
          try fetch(after, order: "id", limit: pageSize + 1 - tickets.count)
        }
      }
      var next: String?
      if tickets.count > pageSize {
        tickets.removeLast(tickets.count - pageSize)
        let last = tickets[pageSize - 1]
        let key: String =
          switch filter.order {
          case .newest: last.createdAt.postgresText ?? ""
          case .updated: last.updatedAt.postgresText ?? ""
          case .nextBreach: last.nextBreachAt?.postgresText ?? ""
          }
        next = tokens.encode(PageToken(key: key, id: last.id, query: filter.fingerprint))
      }
      return Page(items: tickets, nextPageToken: next, totalSize: total)
    }
  }

  static func conditions(_ filter: TicketFilter, principal: Principal) -> PostgresQuery {
    var c: PostgresQuery = "tenant_id = \(principal.tenantID)"
    switch filter.archive {
    case .active: c.append(unsafeSQL: " AND archived_at IS NULL")
    case .archived: c.append(unsafeSQL: " AND archived_at IS NOT NULL")
    case .all: break
    }
    if let owners = principal.readableOwners(.ticket) { c.append(" AND assignee_id = ANY(\(owners)::uuid[])") }
    if !filter.statuses.isEmpty { c.append(" AND status = ANY(\(filter.statuses.map(\.rawValue))::text[])") }
    if !filter.priorities.isEmpty { c.append(" AND priority = ANY(\(filter.priorities.map(\.rawValue))::text[])") }
    if !filter.types.isEmpty { c.append(" AND type = ANY(\(filter.types.map(\.rawValue))::text[])") }
    if !filter.channels.isEmpty { c.append(" AND channel = ANY(\(filter.channels.map(\.rawValue))::text[])") }
    if !filter.slaStates.isEmpty { c.append(" AND sla_state = ANY(\(filter.slaStates.map(\.rawValue))::text[])") }
    if let assignee = filter.assigneeID { c.append(" AND assignee_id = \(assignee)") }
    if filter.unassigned { c.append(unsafeSQL: " AND assignee_id IS NULL") }
    if let group = filter.groupID { c.append(" AND group_id = \(group)") }
    if let account = filter.accountID { c.append(" AND account_id = \(account)") }
    switch filter.requester {
    case .contact(let id): c.append(" AND requester_contact_id = \(id)")
    case .lead(let id): c.append(" AND requester_lead_id = \(id)")
    case nil: break
    }
    if let tag = filter.tag { c.append(IndexedFilter.tag.condition(Ticket.table, tag)) }
    if let before = filter.breachesBefore { c.append(" AND next_breach_at < \(before)") }
    if let from = filter.createdFrom { c.append(" AND created_at >= \(from)") }
    if let to = filter.createdTo { c.append(" AND created_at < \(to)") }
    if let from = filter.updatedFrom { c.append(" AND updated_at >= \(from)") }
    if let to = filter.updatedTo { c.append(" AND updated_at < \(to)") }
    return c
  }

  // MARK: - SLA

  /// Every SLA metric instance of the ticket, folded at the SLA clock's now, with its log.
  public func sla(of ticketID: UUID, principal: Principal) async throws -> (ticket: Ticket, instances: [TicketSLAInstance]) {
    let at = now()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      guard let ticket = try Mechanics.fetch(connection, id: ticketID, principal: principal) else {
        throw Mechanics.notFound(ticketID)
      }
      let context = try SLARecorder.context(connection, tenant: tenant)
      let logs = try SLARecorder.instances(connection, tickets: [ticketID], tenant: tenant)[ticketID] ?? []
      let rows = try connection.query(
        """
        SELECT metric, instance, policy_id, note, actor_id, recorded_at FROM sla_events
        WHERE tenant_id = \(tenant) AND ticket_id = \(ticketID)
        ORDER BY metric, instance, at, sequence
        """)
      var details: [String: [(UUID?, String?, UUID?, Timestamp)]] = [:]
      for row in rows.rows {
        let key = "\(try row.decode("metric", as: String.self))#\(try row.decode("instance", as: Int.self))"
        details[key, default: []].append(
          (try row.decode("policy_id"), try row.decode("note"), try row.decode("actor_id"), try row.decode("recorded_at")))
      }
      let instances = logs.compactMap { instance -> TicketSLAInstance? in
        guard let status = SLAClock.status(of: instance.events, calendars: context.calendar, at: at) else { return nil }
        let extra = details["\(instance.metric.rawValue)#\(instance.number)"] ?? []
        let entries = instance.events.enumerated().map { index, event in
          let detail = index < extra.count ? extra[index] : (nil, nil, nil, event.at)
          return TicketSLAInstance.Entry(
            event: event, policyID: detail.0, note: detail.1, actorID: detail.2, recordedAt: detail.3)
        }
        return TicketSLAInstance(
          metric: instance.metric, number: instance.number, status: status,
          policyID: entries.last { $0.policyID != nil }?.policyID, entries: entries)
      }
      let order: [SLAMetric] = SLAMetric.allCases
      return (
        ticket,
        instances.sorted {
          ($0.number == $1.number && $0.metric == $1.metric)
            ? false
            : (order.firstIndex(of: $0.metric)!, $0.number) < (order.firstIndex(of: $1.metric)!, $1.number)
        }
      )
    }
  }

  /// Sets (or, with `nil`, clears) the due time of the ticket's running `metric` clock by hand; it
  /// sticks until cleared, whatever the policy says.
  ///
  /// - Throws: `failedPrecondition` when no clock of that metric runs.
  public func setDue(
    _ ticketID: UUID, metric: SLAMetric, due: Timestamp?, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> Ticket {
    let at = now()
    let principal = context.principal
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.lock(connection, id: ticketID, expectedVersion: expectedVersion, principal: principal)
      let logs = try SLARecorder.instances(connection, tickets: [ticketID], tenant: tenant)[ticketID] ?? []
      guard let open = logs.filter({ $0.metric == metric && $0.isOpen }).max(by: { $0.number < $1.number }) else {
        throw CRMError.failedPrecondition("ticket #\(current.number) has no running \(metric.rawValue) clock")
      }
      try connection.query(
        SLARecorder.insertEvents(
          [SLAAppend(metric: metric, number: open.number, event: SLAClockEvent(.dueSet(due), at: at))], ticket: ticketID,
          policy: current.slaPolicyID, note: due == nil ? "due time cleared" : "due time set by hand", actor: principal.userID))
      let change = FieldChange(
        field: "sla_due_time",
        oldValue: .null,
        newValue: .object([("metric", .string(metric.rawValue)), ("due", due.map { .string($0.rfc3339) } ?? .null)]))
      return try Self.save(
        connection, current, over: current, context: context, at: at, note: "due time", notes: [change], always: true)
    }
  }

  // MARK: - Jobs

  /// Fires the warnings and breaches that have fallen due by `now` (default: the SLA clock) across
  /// every tenant. Each transition is written once per instance — the `sla_events` unique index
  /// drops a second writer's row, and rows are claimed with `SKIP LOCKED` — so any number of nodes
  /// may run it. A fired transition lands in the ticket's change log (its history, timelines and the
  /// change feed); the ticket's version does not move (bookkeeping, not an edit).
  /// `only` limits the pass to one tenant (tests on a shared database).
  public func fireDueClocks(now moment: Timestamp? = nil, tenant only: UUID? = nil, batchSize: Int = 1000) async throws
    -> SLAJobReport
  {
    let at = moment ?? now()
    let tenants: [UUID] = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id FROM crm_sla_due_tenants(\(at))").rows.map { try $0.decode("tenant_id") }
    }
    var report = SLAJobReport(warned: 0, breached: 0)
    for tenant in tenants where only == nil || only == tenant {
      while true {
        let (warned, breached, claimed) = try await database.withTenant(tenant) { connection -> (Int, Int, Int) in
          try Self.fireBatch(connection, tenant: tenant, at: at, limit: batchSize)
        }
        report.warned += warned
        report.breached += breached
        if claimed < batchSize { break }
      }
    }
    return report
  }

  static func fireBatch(_ connection: PostgresConnection, tenant: UUID, at: Timestamp, limit: Int) throws -> (Int, Int, Int) {
    let due = try connection.query(
      """
      SELECT ticket_id, metric, instance, warn_at, due_at, breach_at,
             coalesce(NOT warned AND warn_at <= \(at), false) AS warn,
             coalesce(NOT breached AND due_at <= \(at), false) AS breach
      FROM sla_instances
      WHERE tenant_id = \(tenant) AND is_open
        AND ((NOT warned AND warn_at <= \(at)) OR (NOT breached AND due_at <= \(at)))
      LIMIT \(limit)
      FOR UPDATE SKIP LOCKED
      """)
    guard due.count > 0 else { return (0, 0, 0) }
    var tickets: [UUID] = []
    var metrics: [String] = []
    var numbers: [Int] = []
    var kinds: [String] = []
    var ats: [Timestamp] = []
    for row in due.rows {
      let ticket: UUID = try row.decode("ticket_id")
      let metric: String = try row.decode("metric")
      let number: Int = try row.decode("instance")
      // A clock past both points warns first: every transition happens, each once.
      if try row.decode("warn", as: Bool.self) {
        tickets.append(ticket)
        metrics.append(metric)
        numbers.append(number)
        kinds.append("warned")
        ats.append(try row.decode("warn_at"))
      }
      if try row.decode("breach", as: Bool.self) {
        tickets.append(ticket)
        metrics.append(metric)
        numbers.append(number)
        kinds.append("breached")
        ats.append(try row.decode("breach_at", as: Timestamp?.self) ?? row.decode("due_at"))
      }
    }
    let fired = try connection.query(
      """
      WITH fired AS (
        INSERT INTO sla_events (tenant_id, ticket_id, metric, instance, kind, at, note)
        SELECT \(tenant), u.t, u.m, u.i, u.k, u.a, 'job'
        FROM unnest(\(tickets)::uuid[], \(metrics)::text[], \(numbers)::int[], \(kinds)::text[], \(ats)::timestamptz[])
          AS u (t, m, i, k, a)
        ON CONFLICT DO NOTHING
        RETURNING ticket_id, metric, instance, kind, at
      ), logged AS (
        INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
        SELECT \(tenant), 'ticket', ticket_id, 'update', NULL, 'sla-job',
          jsonb_build_array(jsonb_build_object('field', 'sla_' || kind, 'old', NULL,
            'new', jsonb_build_object('metric', metric, 'instance', instance, 'at', at)))
        FROM fired
      )
      SELECT count(*) FILTER (WHERE kind = 'warned') AS warned, count(*) FILTER (WHERE kind = 'breached') AS breached
      FROM fired
      """)[0]
    let context = try SLARecorder.context(connection, tenant: tenant)
    let touched = Array(Set(tickets))
    for start in stride(from: 0, to: touched.count, by: 500) {
      try SLARecorder.refresh(
        connection, tickets: Array(touched[start..<min(start + 500, touched.count)]), context: context, tenant: tenant, at: at)
    }
    return (Int(try fired.decode("warned", as: Int64.self)), Int(try fired.decode("breached", as: Int64.self)), due.count)
  }

  /// Closes solved tickets whose tenant's auto-close days have passed by `now` (default: the SLA
  /// clock), in batches, across every tenant; safe on every node (`SKIP LOCKED`).
  public func closeSolved(now moment: Timestamp? = nil, tenant only: UUID? = nil, batchSize: Int = 500) async throws -> Int {
    let at = moment ?? now()
    let tenants: [(UUID, Int)] = try await database.pool.withTransaction { connection in
      try connection.query("SELECT tenant_id, auto_close_days FROM crm_auto_close_tenants(\(at))").rows.map {
        (try $0.decode("tenant_id"), try $0.decode("auto_close_days"))
      }
    }
    var closed = 0
    for (tenant, days) in tenants where only == nil || only == tenant {
      while true {
        let count = try await database.withTenant(tenant) { connection -> Int in
          let result = try connection.query(
            """
            WITH due AS (
              SELECT id FROM tickets
              WHERE tenant_id = \(tenant) AND status = 'solved' AND solved_at <= \(at)::timestamptz - make_interval(days => \(days))
              LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
            ), closed AS (
              UPDATE tickets t SET status = 'closed', closed_at = \(at), status_changed_at = \(at), version = t.version + 1,
                updated_at = now(), updated_by = NULL
              FROM due WHERE t.tenant_id = \(tenant) AND t.id = due.id
              RETURNING t.id
            ), logged AS (
              INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
              SELECT \(tenant), 'ticket', id, 'update', NULL, 'auto-close',
                '[{"field": "status", "old": "solved", "new": "closed"}]'::jsonb
              FROM closed
            )
            SELECT count(*) AS n FROM closed
            """)
          return Int(try result[0].decode("n", as: Int64.self))
        }
        closed += count
        if count < batchSize { break }
      }
    }
    return closed
  }
}

extension TicketStore {
  // MARK: - Satisfaction

  /// Records a customer's answer to a solved ticket's survey, found by its token (no sign-in: the
  /// token is the credential), once, within ``Ticket/satisfactionSurveyDays`` of its issue.
  ///
  /// - Throws: `notFound` for an unknown token; `failedPrecondition` once answered or expired.
  public func submitSatisfaction(token: String, rating: Int, comment: String?) async throws {
    let at = now()
    let outcome: String = try await database.pool.withTransaction { connection in
      try connection.query(
        """
        SELECT outcome FROM crm_submit_satisfaction(\(TokenSecret.hash(token))::bytea, \(rating), \(comment), \(at),
          \(Ticket.satisfactionSurveyDays))
        """)[0].decode("outcome")
    }
    switch outcome {
    case "ok": return
    case "answered": throw CRMError.failedPrecondition("this survey was already answered; thank you")
    case "expired":
      throw CRMError.failedPrecondition("this survey closed \(Ticket.satisfactionSurveyDays) days after the ticket was solved")
    default: throw CRMError.notFound("no such survey")
    }
  }
}
