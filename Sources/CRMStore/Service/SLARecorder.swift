import CRMCore
import Foundation
import LibPQ
import Synchronization

/// Writes tickets' SLA clocks: plans the events a change appends (``SLAPlanner``), folds each
/// instance's log into its state (``SLAClock``), and keeps `sla_instances` and the ticket's summary
/// (`sla_state`, `next_breach_at`) equal to what the logs say. Runs inside the caller's transaction.
enum SLARecorder {
  /// What evaluating a tenant's tickets needs: settings, the live policies in order, every calendar.
  struct Context {
    var settings: ServiceSettings
    var policies: [SLAPolicy]
    var calendars: [UUID: BusinessCalendar]

    /// The calendar a target counts by: its policy's, else the tenant's default, else 24×7 UTC.
    func calendar(_ id: UUID?) -> BusinessCalendar {
      if let id, let calendar = calendars[id] { return calendar }
      if let id = settings.defaultCalendarID, let calendar = calendars[id] { return calendar }
      return .elapsedTime
    }
  }

  static func context(_ connection: PostgresConnection, tenant: UUID) throws -> Context {
    try context(from: connection.pipeline(contextQueries(tenant: tenant))[...], tenant: tenant)
  }

  /// The three reads a ``Context`` is made of (settings, live policies, calendars), for a pipeline.
  static func contextQueries(tenant: UUID) -> [PostgresQuery] {
    [
      ServiceConfigStore.settingsQuery(tenant: tenant),
      ServiceConfigStore.policiesQuery(tenant: tenant, includeArchived: false),
      "SELECT \(unsafeSQL: ServiceConfigStore.calendarColumns) FROM business_calendars WHERE tenant_id = \(tenant)",
    ]
  }

  /// The context from the results of ``contextQueries(tenant:)``, in order. Every ticket write
  /// reads them, and decoding policies and calendars (JSON, time zones) was a quarter of AddComment's
  /// CPU in crmd: the last context decoded per tenant is kept with the exact bytes it came from and
  /// served while the rows read are byte for byte the same — so an edit on any node, committed or
  /// not yet, is never missed.
  static func context(from results: ArraySlice<PostgresResult>, tenant: UUID) throws -> Context {
    var contents: [UInt8] = []
    contents.reserveCapacity(1024)
    for result in results { result.appendContents(to: &contents) }
    if let context = contextCache.context(tenant: tenant, contents: contents) { return context }
    let context = try decodeContext(from: results)
    contextCache.keep(context, tenant: tenant, contents: contents)
    return context
  }

  /// The last decoded ``Context`` per tenant, keyed by the bytes it was decoded from.
  final class ContextCache: Sendable {
    private let entries = Mutex<[UUID: (contents: [UInt8], context: Context)]>([:])
    /// Tenants kept at most; past it the cache starts over (it only saves decoding).
    static let capacity = 1024

    func context(tenant: UUID, contents: [UInt8]) -> Context? {
      entries.withLock { entries in
        guard let entry = entries[tenant], entry.contents == contents else { return nil }
        return entry.context
      }
    }

    func keep(_ context: Context, tenant: UUID, contents: [UInt8]) {
      entries.withLock { entries in
        if entries.count >= Self.capacity, entries[tenant] == nil { entries.removeAll(keepingCapacity: true) }
        entries[tenant] = (contents, context)
      }
    }
  }

  static let contextCache = ContextCache()

  static func decodeContext(from results: ArraySlice<PostgresResult>) throws -> Context {
    let first = results.startIndex
    let settings = try ServiceConfigStore.settings(from: results[first])
    let policies = try results[first + 1].rows.map(ServiceConfigStore.policy(row:)).map(\.policy)
    var calendars: [UUID: BusinessCalendar] = [:]
    for row in results[first + 2].rows {
      let record = try ServiceConfigStore.calendar(row: row)
      calendars[record.id] = record.calendar
    }
    return Context(settings: settings, policies: policies, calendars: calendars)
  }

  /// The instances of `tickets` with their logs, in log order.
  static func instances(_ connection: PostgresConnection, tickets: [UUID], tenant: UUID) throws -> [UUID: [SLAInstance]] {
    try instances(from: connection.query(instancesQuery(tickets: tickets, tenant: tenant)))
  }

  static func instancesQuery(tickets: [UUID], tenant: UUID) -> PostgresQuery {
    """
    SELECT ticket_id, metric, instance, kind, (target->>'minutes')::int AS target_minutes,
      (target->>'business_hours')::boolean AS target_business_hours, (target->>'warning_minutes')::int AS target_warning_minutes,
      (target->>'calendar_id')::uuid AS target_calendar_id, due_at, at
    FROM sla_events
    WHERE tenant_id = \(tenant) AND ticket_id \(isAnyOf: tickets, type: "uuid")
    ORDER BY ticket_id, metric, instance, at, sequence
    """
  }

  static func instances(from rows: PostgresResult) throws -> [UUID: [SLAInstance]] {
    var out: [UUID: [SLAInstance]] = [:]
    for row in rows.rows {
      let ticket: UUID = try row.decode("ticket_id")
      guard let metric = SLAMetric(rawValue: try row.decode("metric")) else { continue }
      let number: Int = try row.decode("instance")
      // The target's parts come as columns: PostgreSQL takes the jsonb apart for less than a
      // JSONDecoder per event costs.
      let target = try row.decode("target_minutes", as: Int?.self).map { minutes in
        SLATarget(
          minutes: minutes, businessHours: try row.decode("target_business_hours", as: Bool?.self) ?? false,
          warningMinutes: try row.decode("target_warning_minutes"), calendarID: try row.decode("target_calendar_id"))
      }
      let kind: SLAClockEvent.Kind
      switch try row.decode("kind", as: String.self) {
      case "activated": kind = .activated(target ?? SLATarget(minutes: 1, businessHours: false))
      case "retargeted": kind = .retargeted(target ?? SLATarget(minutes: 1, businessHours: false))
      case "paused": kind = .paused
      case "resumed": kind = .resumed
      case "due_set": kind = .dueSet(try row.decode("due_at"))
      case "fulfilled": kind = .fulfilled
      case "cancelled": kind = .cancelled
      case "warned": kind = .warned
      default: kind = .breached
      }
      let event = SLAClockEvent(kind, at: try row.decode("at"))
      var list = out[ticket, default: []]
      if let index = list.firstIndex(where: { $0.metric == metric && $0.number == number }) {
        list[index].events.append(event)
      } else {
        list.append(SLAInstance(metric: metric, number: number, events: [event]))
      }
      out[ticket] = list
    }
    return out
  }

  /// The statements that bring `ticket`'s clocks up to date after a change, setting its SLA fields
  /// (policy, summary, next breach) for the caller to write with it. `instances` are its logs so far.
  static func evaluate(
    _ ticket: inout Ticket, instances: [SLAInstance], context: Context, account: (tier: String?, tags: Set<String>),
    at now: Timestamp, cancelAll: Bool = false, actor: UUID?, note: String
  ) -> [PostgresQuery] {
    let subject = ticket.slaSubject(accountTier: account.tier, accountTags: account.tags)
    let policy = cancelAll ? nil : SLAPolicy.first(in: context.policies, matching: subject)
    ticket.slaPolicyID = policy?.id ?? (ticket.status.isResolved ? ticket.slaPolicyID : nil)
    let appends = SLAPlanner.plan(
      facts: ticket.slaFacts, targets: policy?.targets(for: subject) ?? [:], pauseRules: context.settings.pauseRules,
      instances: instances, at: now, cancelAll: cancelAll)
    var all = instances
    for append in appends {
      if let index = all.firstIndex(where: { $0.metric == append.metric && $0.number == append.number }) {
        all[index].events.append(append.event)
      } else {
        all.append(SLAInstance(metric: append.metric, number: append.number, events: [append.event]))
      }
    }
    let touched = Set(appends.map { "\($0.metric.rawValue)#\($0.number)" })
    let summary = summarize(all, context: context, at: now)
    ticket.slaState = summary.state
    ticket.nextBreachAt = summary.nextBreachAt
    var statements: [PostgresQuery] = []
    if !appends.isEmpty {
      statements.append(insertEvents(appends, ticket: ticket.id, policy: policy?.id, note: note, actor: actor))
    }
    let rows = summary.rows
    let changed = rows.filter { touched.contains("\($0.metric.rawValue)#\($0.number)") || $0.isOpen }
    if !changed.isEmpty { statements.append(upsert(changed, ticket: ticket.id)) }
    return statements
  }

  /// One instance's state as `sla_instances` keeps it.
  struct Row {
    var metric: SLAMetric
    var number: Int
    var status: SLAStatus
    var calendarID: UUID?
    var warned: Bool
    var breached: Bool
    var isOpen: Bool
    /// When the clock was fulfilled or cancelled.
    var endedAt: Timestamp?
  }

  /// Folds every instance at `now`: the rows, and the ticket's summary of its open ones.
  static func summarize(_ instances: [SLAInstance], context: Context, at now: Timestamp)
    -> (rows: [Row], state: TicketSLAState, nextBreachAt: Timestamp?)
  {
    var rows: [Row] = []
    for instance in instances {
      guard let status = SLAClock.status(of: instance.events, calendars: context.calendar, at: now) else { continue }
      rows.append(
        Row(
          metric: instance.metric, number: instance.number, status: status, calendarID: status.target.calendarID,
          warned: instance.events.contains { $0.kind == .warned }, breached: instance.events.contains { $0.kind == .breached },
          isOpen: instance.isOpen,
          endedAt: instance.events.first { $0.kind == .fulfilled || $0.kind == .cancelled }?.at))
    }
    let open = rows.filter(\.isOpen)
    return (
      rows, TicketSLAState.summary(open.map(\.status)),
      open.compactMap { row in row.status.state == .paused ? nil : row.status.dueTime }.min()
    )
  }

  static func insertEvents(_ appends: [SLAAppend], ticket: UUID, policy: UUID?, note: String, actor: UUID?) -> PostgresQuery {
    var metrics: [String] = []
    var numbers: [Int] = []
    var kinds: [String] = []
    var targets: [String] = []
    var dues: [String] = []
    var ats: [Timestamp] = []
    for append in appends {
      metrics.append(append.metric.rawValue)
      numbers.append(append.number)
      ats.append(append.event.at)
      var target = ""
      var due = ""
      let kind: String
      switch append.event.kind {
      case .activated(let value):
        kind = "activated"
        target = StoredTarget(value).json
      case .retargeted(let value):
        kind = "retargeted"
        target = StoredTarget(value).json
      case .paused: kind = "paused"
      case .resumed: kind = "resumed"
      case .dueSet(let value):
        kind = "due_set"
        due = value?.postgresText ?? ""
      case .fulfilled: kind = "fulfilled"
      case .cancelled: kind = "cancelled"
      case .warned: kind = "warned"
      case .breached: kind = "breached"
      }
      kinds.append(kind)
      targets.append(target)
      dues.append(due)
    }
    return """
      INSERT INTO sla_events (tenant_id, ticket_id, metric, instance, kind, target, due_at, policy_id, at, note, actor_id)
      SELECT crm_current_tenant(), \(ticket), u.m, u.i, u.k, NULLIF(u.t, '')::jsonb, NULLIF(u.d, '')::timestamptz,
        \(policy), u.a, \(note), \(actor)
      FROM unnest(\(metrics)::text[], \(numbers)::int[], \(kinds)::text[], \(targets)::text[], \(dues)::text[],
                  \(ats)::timestamptz[]) WITH ORDINALITY AS u (m, i, k, t, d, a, o)
      ORDER BY u.o
      ON CONFLICT DO NOTHING
      """
  }

  static func upsert(_ rows: [Row], ticket: UUID) -> PostgresQuery {
    upsert(rows.map { (ticket, $0) })
  }

  /// One statement writing the rows of any number of tickets' instances.
  static func upsert(_ rows: [(ticket: UUID, row: Row)]) -> PostgresQuery {
    func text(_ t: Timestamp?) -> String { t?.postgresText ?? "" }
    let tickets = rows.map(\.ticket)
    let rows = rows.map(\.row)
    return """
      INSERT INTO sla_instances (tenant_id, ticket_id, metric, instance, state, calendar_id, due_at, warn_at, breach_at,
        warned, breached, is_open, elapsed_seconds, ended_at, updated_at)
      SELECT crm_current_tenant(), u.t, u.m, u.i, u.s, NULLIF(u.c, '')::uuid, NULLIF(u.d, '')::timestamptz,
        NULLIF(u.w, '')::timestamptz, NULLIF(u.b, '')::timestamptz, u.wd, u.bd, u.o, u.e, NULLIF(u.x, '')::timestamptz, now()
      FROM unnest(\(tickets)::uuid[], \(rows.map(\.metric.rawValue))::text[], \(rows.map(\.number))::int[],
                  \(rows.map(\.status.state.rawValue))::text[], \(rows.map { $0.calendarID?.lowercasedString ?? "" })::text[],
                  \(rows.map { text($0.status.dueTime) })::text[], \(rows.map { text($0.status.warningTime) })::text[],
                  \(rows.map { text($0.status.breachTime) })::text[], \(rows.map(\.warned))::boolean[],
                  \(rows.map(\.breached))::boolean[], \(rows.map(\.isOpen))::boolean[],
                  \(rows.map { $0.status.elapsed.components.seconds })::bigint[], \(rows.map { text($0.endedAt) })::text[])
        AS u (t, m, i, s, c, d, w, b, wd, bd, o, e, x)
      ON CONFLICT (tenant_id, ticket_id, metric, instance) DO UPDATE SET state = excluded.state,
        calendar_id = excluded.calendar_id, due_at = excluded.due_at, warn_at = excluded.warn_at,
        breach_at = excluded.breach_at, warned = excluded.warned, breached = excluded.breached, is_open = excluded.is_open,
        elapsed_seconds = excluded.elapsed_seconds, ended_at = excluded.ended_at, updated_at = now()
      """
  }

  /// Re-folds the open clocks of `tickets` at `now` (a calendar changed, the job fired something) and
  /// writes their rows and the tickets' summaries, without touching the tickets' versions: the
  /// summary is bookkeeping derived from the logs, not an edit.
  static func refresh(_ connection: PostgresConnection, tickets: [UUID], context: Context, tenant: UUID, at now: Timestamp)
    throws
  {
    guard !tickets.isEmpty else { return }
    let logs = try instances(connection, tickets: tickets, tenant: tenant)
    var states: [String] = []
    var breaches: [String] = []
    var rows: [(ticket: UUID, row: Row)] = []
    for id in tickets {
      let summary = summarize(logs[id] ?? [], context: context, at: now)
      rows += summary.rows.filter(\.isOpen).map { (id, $0) }
      states.append(summary.state.rawValue)
      breaches.append(summary.nextBreachAt?.postgresText ?? "")
    }
    // One statement for the batch's rows (it was one per ticket: 100,000 round trips for 100,000 due
    // clocks, 48.8 s in bench-service.sh).
    if !rows.isEmpty { try connection.query(upsert(rows)) }
    try connection.query(
      """
      UPDATE tickets t SET sla_state = u.s, next_breach_at = NULLIF(u.b, '')::timestamptz
      FROM unnest(\(tickets)::uuid[], \(states)::text[], \(breaches)::text[]) AS u (id, s, b)
      WHERE t.tenant_id = \(tenant) AND t.id = u.id
        AND (t.sla_state, t.next_breach_at) IS DISTINCT FROM (u.s, NULLIF(u.b, '')::timestamptz)
      """)
  }

  /// Re-folds every open clock that counts by `calendar` (`nil`: by the tenant's default).
  static func recompute(_ connection: PostgresConnection, calendar: UUID?, tenant: UUID, at now: Timestamp) throws {
    let context = try context(connection, tenant: tenant)
    var condition: PostgresQuery = "calendar_id IS NULL"
    if let calendar {
      condition =
        context.settings.defaultCalendarID == calendar
        ? "(calendar_id = \(calendar) OR calendar_id IS NULL)" : "calendar_id = \(calendar)"
    }
    let tickets: [UUID] = try connection.query(
      "SELECT DISTINCT ticket_id FROM sla_instances WHERE tenant_id = \(tenant) AND is_open AND \(condition)"
    ).rows.map { try $0.decode("ticket_id") }
    for start in stride(from: 0, to: tickets.count, by: 500) {
      try refresh(
        connection, tickets: Array(tickets[start..<min(start + 500, tickets.count)]), context: context, tenant: tenant, at: now)
    }
  }
}

/// A target as `sla_events.target` stores it: `{"minutes", "business_hours", "warning_minutes", "calendar_id"}`.
struct StoredTarget: Codable {
  var minutes: Int
  var businessHours: Bool
  var warningMinutes: Int?
  var calendarId: UUID?

  init(_ target: SLATarget) {
    minutes = target.minutes
    businessHours = target.businessHours
    warningMinutes = target.warningMinutes
    calendarId = target.calendarID
  }

  var target: SLATarget {
    SLATarget(minutes: minutes, businessHours: businessHours, warningMinutes: warningMinutes, calendarID: calendarId)
  }

  /// The jsonb text `JSONEncoder` would write (snake-case keys, sorted, no nulls), spelled out: every
  /// member is a number, a boolean or a UUID, which need no escaping, and each clock event writes one.
  var json: String {
    var members = ["\"business_hours\": \(businessHours)"]
    if let calendarId { members.append("\"calendar_id\": \"\(calendarId.lowercasedString)\"") }
    members.append("\"minutes\": \(minutes)")
    if let warningMinutes { members.append("\"warning_minutes\": \(warningMinutes)") }
    return "{" + members.joined(separator: ", ") + "}"
  }
}
