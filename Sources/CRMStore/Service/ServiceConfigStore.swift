public import CRMCore
public import Foundation
import LibPQ

/// SQL for the service configuration: the tenant's settings, business calendars and the ordered SLA
/// policies. Everyone reads them; admins change them. Editing a calendar (a holiday added while
/// tickets are open) recomputes the open clocks that count by it in the same transaction.
public struct ServiceConfigStore: Sendable {
  let database: Database
  let now: @Sendable () -> Timestamp

  /// A store over `database`; `now` is the SLA clock (tests move it).
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  // MARK: - Settings

  /// The tenant's settings (the defaults until an admin saves some).
  public func settings(principal: Principal) async throws -> ServiceSettings {
    try await database.withTenant(principal.tenantID) { connection in try Self.settings(connection, tenant: principal.tenantID) }
  }

  /// Replaces the settings. A new default calendar recomputes the open clocks that count by it.
  public func updateSettings(_ settings: ServiceSettings, expectedVersion: Int64?, context: ChangeLog.Context) async throws
    -> ServiceSettings
  {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    let at = now()
    return try await database.withTenant(tenant) { connection in
      let current = try Self.settings(connection, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if let calendar = settings.defaultCalendarID {
        let found = try connection.query(
          "SELECT archived_at IS NULL AS live FROM business_calendars WHERE tenant_id = \(tenant) AND id = \(calendar)")
        guard let row = found.first else {
          throw CRMError.invalid("settings.default_calendar_id", "no such calendar", reason: "NOT_FOUND")
        }
        if try !row.decode("live", as: Bool.self) {
          throw CRMError.failedPrecondition("calendar \(calendar.lowercasedString) is archived")
        }
      }
      try connection.query(
        """
        INSERT INTO service_settings (tenant_id, pause_rules, auto_close_days, unknown_sender, default_calendar_id, version,
          updated_by)
        VALUES (\(tenant), \(Self.pauseRulesJSON(settings.pauseRules))::jsonb, \(settings.autoCloseDays),
          \(settings.unknownSender.rawValue), \(settings.defaultCalendarID), 1, \(principal.userID))
        ON CONFLICT (tenant_id) DO UPDATE SET pause_rules = excluded.pause_rules, auto_close_days = excluded.auto_close_days,
          unknown_sender = excluded.unknown_sender, default_calendar_id = excluded.default_calendar_id,
          version = service_settings.version + 1, updated_at = now(), updated_by = excluded.updated_by
        """)
      if current.defaultCalendarID != settings.defaultCalendarID {
        try SLARecorder.recompute(connection, calendar: nil, tenant: tenant, at: at)
      }
      return try Self.settings(connection, tenant: tenant)
    }
  }

  static func settings(_ connection: PostgresConnection, tenant: UUID, lock: Bool = false) throws -> ServiceSettings {
    try settings(from: connection.query(settingsQuery(tenant: tenant, lock: lock)))
  }

  static func settingsQuery(tenant: UUID, lock: Bool = false) -> PostgresQuery {
    """
    SELECT pause_rules, auto_close_days, unknown_sender, default_calendar_id, version FROM service_settings
    WHERE tenant_id = \(tenant)\(unsafeSQL: lock ? " FOR UPDATE" : "")
    """
  }

  static func settings(from rows: PostgresResult) throws -> ServiceSettings {
    guard let row = rows.first else { return .standard }
    let stored = try StoredJSON.decode([String: [String]].self, from: row.decode("pause_rules")) ?? [:]
    var pausing: [SLAMetric: Set<TicketStatus>] = [:]
    for (metric, statuses) in stored {
      guard let metric = SLAMetric(rawValue: metric) else { continue }
      pausing[metric] = Set(statuses.compactMap(TicketStatus.init(rawValue:)))
    }
    return ServiceSettings(
      pauseRules: SLAPauseRules(pausing: pausing), autoCloseDays: try row.decode("auto_close_days"),
      unknownSender: RecordType(rawValue: try row.decode("unknown_sender")) ?? .contact,
      defaultCalendarID: try row.decode("default_calendar_id"), version: try row.decode("version"))
  }

  static func pauseRulesJSON(_ rules: SLAPauseRules) -> PostgresJSON? {
    var stored: [String: [String]] = [:]
    for (metric, statuses) in rules.pausing { stored[metric.rawValue] = statuses.map(\.rawValue).sorted() }
    return StoredJSON.encode(stored)
  }

  // MARK: - Calendars

  /// The tenant's calendars by name; archived ones only when asked.
  public func calendars(includeArchived: Bool, principal: Principal) async throws -> [CalendarRecord] {
    try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        SELECT \(unsafeSQL: Self.calendarColumns) FROM business_calendars
        WHERE tenant_id = \(principal.tenantID)\(unsafeSQL: includeArchived ? "" : " AND archived_at IS NULL")
        ORDER BY lower(name), id
        """
      ).rows.map(Self.calendar(row:))
    }
  }

  /// One calendar.
  public func calendar(_ id: UUID, principal: Principal) async throws -> CalendarRecord {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.loadCalendar(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Creates a calendar.
  public func createCalendar(name: String, calendar: BusinessCalendar, context: ChangeLog.Context) async throws
    -> CalendarRecord
  {
    let principal = context.principal
    try principal.requireAdmin()
    let id = UUID.v7()
    return try await database.withTenant(principal.tenantID) { connection in
      if let first = try RecordMechanics<Ticket>.claimRequestID(
        connection, method: "CreateBusinessCalendar", context: context, recordID: id)
      {
        return try Self.loadCalendar(connection, id: first, tenant: principal.tenantID)
      }
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          INSERT INTO business_calendars (tenant_id, id, name, time_zone, intervals, holidays, created_by, updated_by)
          VALUES (\(principal.tenantID), \(id), \(name), \(calendar.timeZone.identifier),
            \(StoredJSON.encode(calendar.intervals))::jsonb, \(calendar.holidays.sorted())::date[], \(principal.userID),
            \(principal.userID))
          """)
      }
      return try Self.loadCalendar(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Replaces a calendar's name, zone, hours and holidays, and recomputes the due and warning times
  /// of every open clock that counts by it.
  public func updateCalendar(
    _ id: UUID, name: String, calendar: BusinessCalendar, expectedVersion: Int64?, context: ChangeLog.Context
  ) async throws -> CalendarRecord {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    let at = now()
    return try await database.withTenant(tenant) { connection in
      let current = try Self.loadCalendar(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if current.archivedAt != nil { throw CRMError.failedPrecondition("calendar \(id.lowercasedString) is archived") }
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          UPDATE business_calendars SET name = \(name), time_zone = \(calendar.timeZone.identifier),
            intervals = \(StoredJSON.encode(calendar.intervals))::jsonb, holidays = \(calendar.holidays.sorted())::date[],
            version = version + 1, updated_at = now(), updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(id)
          """)
      }
      try SLARecorder.recompute(connection, calendar: id, tenant: tenant, at: at)
      return try Self.loadCalendar(connection, id: id, tenant: tenant)
    }
  }

  /// Archives a calendar no live policy and not the settings use.
  public func archiveCalendar(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> CalendarRecord {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.loadCalendar(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if current.archivedAt != nil { return current }
      let users = try connection.query(
        """
        SELECT (SELECT count(*) FROM sla_policies WHERE tenant_id = \(tenant) AND calendar_id = \(id) AND archived_at IS NULL)
                 AS policies,
               EXISTS (SELECT 1 FROM service_settings WHERE tenant_id = \(tenant) AND default_calendar_id = \(id)) AS is_default
        """)[0]
      let policies: Int64 = try users.decode("policies")
      if policies > 0 {
        throw CRMError.failedPrecondition("\(policies) SLA policies count by this calendar; point them at another one first")
      }
      if try users.decode("is_default", as: Bool.self) {
        throw CRMError.failedPrecondition("this is the tenant's default calendar; choose another default first")
      }
      try connection.query(
        """
        UPDATE business_calendars SET archived_at = now(), version = version + 1, updated_at = now(),
          updated_by = \(principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      return try Self.loadCalendar(connection, id: id, tenant: tenant)
    }
  }

  static let calendarColumns = "id, name, time_zone, intervals, holidays, version, created_at, updated_at, archived_at"

  static func calendar(row: PostgresRow) throws -> CalendarRecord {
    let intervals = try StoredJSON.decode([BusinessCalendar.Interval].self, from: row.decode("intervals")) ?? []
    let holidays: [CalendarDate] = try row.decode("holidays")
    let calendar: BusinessCalendar
    do {
      calendar = try BusinessCalendar(timeZone: try row.decode("time_zone"), intervals: intervals, holidays: Set(holidays))
    } catch {
      throw PostgresError(kind: .decoding, serverMessage: "cannot decode a business calendar: \(error)")
    }
    return CalendarRecord(
      id: try row.decode("id"), name: try row.decode("name"), calendar: calendar, version: try row.decode("version"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
      archivedAt: try row.decode("archived_at"))
  }

  static func loadCalendar(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool = false) throws
    -> CalendarRecord
  {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: calendarColumns) FROM business_calendars WHERE tenant_id = \(tenant) AND id = \(id)
      \(unsafeSQL: lock ? "FOR UPDATE" : "")
      """)
    guard let row = rows.first else { throw CRMError.notFound("calendar \(id.lowercasedString) not found") }
    return try calendar(row: row)
  }

  // MARK: - Policies

  /// The tenant's policies in the order they are tried; archived ones (last) only when asked.
  public func policies(includeArchived: Bool, principal: Principal) async throws -> [SLAPolicyRecord] {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.policies(connection, tenant: principal.tenantID, includeArchived: includeArchived)
    }
  }

  /// One policy.
  public func policy(_ id: UUID, principal: Principal) async throws -> SLAPolicyRecord {
    try await database.withTenant(principal.tenantID) { connection in
      try Self.loadPolicy(connection, id: id, tenant: principal.tenantID)
    }
  }

  /// Creates a policy at `position` (default: last); those at or after it move down one.
  public func createPolicy(_ policy: SLAPolicy, description: String?, position: Int?, context: ChangeLog.Context) async throws
    -> SLAPolicyRecord
  {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      if let first = try RecordMechanics<Ticket>.claimRequestID(
        connection, method: "CreateSLAPolicy", context: context, recordID: policy.id)
      {
        return try Self.loadPolicy(connection, id: first, tenant: tenant)
      }
      try Self.lockPolicyOrder(connection, tenant: tenant)
      let live = try Self.policies(connection, tenant: tenant, includeArchived: false)
      if live.count >= SLAPolicyRecord.maxPolicies {
        throw CRMError.failedPrecondition("a tenant keeps at most \(SLAPolicyRecord.maxPolicies) SLA policies; archive one first")
      }
      try Self.checkCalendar(connection, policy.calendarID, tenant: tenant)
      let at = min(max(0, position ?? live.count), live.count)
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          INSERT INTO sla_policies (tenant_id, id, name, description, position, calendar_id, conditions, targets,
            created_by, updated_by)
          VALUES (\(tenant), \(policy.id), \(policy.name), \(description), \(at), \(policy.calendarID),
            \(StoredPolicy.conditions(policy.conditions))::jsonb, \(StoredPolicy.targets(policy.targets))::jsonb,
            \(principal.userID), \(principal.userID))
          """)
      }
      var order = live.map(\.id)
      order.insert(policy.id, at: at)
      try Self.writeOrder(connection, order, tenant: tenant)
      return try Self.loadPolicy(connection, id: policy.id, tenant: tenant)
    }
  }

  /// Replaces a policy's name, description, calendar, conditions and targets. Tickets take the change
  /// the next time they change (a reply, a status, a field); their clocks keep the time counted.
  public func updatePolicy(_ policy: SLAPolicy, description: String?, expectedVersion: Int64?, context: ChangeLog.Context)
    async throws -> SLAPolicyRecord
  {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let current = try Self.loadPolicy(connection, id: policy.id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if current.archivedAt != nil { throw CRMError.failedPrecondition("policy \(policy.id.lowercasedString) is archived") }
      try Self.checkCalendar(connection, policy.calendarID, tenant: tenant)
      _ = try Self.translatingConstraints {
        try connection.query(
          """
          UPDATE sla_policies SET name = \(policy.name), description = \(description), calendar_id = \(policy.calendarID),
            conditions = \(StoredPolicy.conditions(policy.conditions))::jsonb,
            targets = \(StoredPolicy.targets(policy.targets))::jsonb, version = version + 1, updated_at = now(),
            updated_by = \(principal.userID)
          WHERE tenant_id = \(tenant) AND id = \(policy.id)
          """)
      }
      return try Self.loadPolicy(connection, id: policy.id, tenant: tenant)
    }
  }

  /// Archives a policy: it stops applying (tickets under it lose their clocks on their next change).
  public func archivePolicy(_ id: UUID, expectedVersion: Int64?, context: ChangeLog.Context) async throws -> SLAPolicyRecord {
    let principal = context.principal
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try Self.lockPolicyOrder(connection, tenant: tenant)
      let current = try Self.loadPolicy(connection, id: id, tenant: tenant, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      if current.archivedAt != nil { return current }
      try connection.query(
        """
        UPDATE sla_policies SET archived_at = now(), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
        WHERE tenant_id = \(tenant) AND id = \(id)
        """)
      try Self.writeOrder(
        connection, try Self.policies(connection, tenant: tenant, includeArchived: false).map(\.id), tenant: tenant)
      return try Self.loadPolicy(connection, id: id, tenant: tenant)
    }
  }

  /// Puts the live policies in the order given, which must name each exactly once.
  public func reorderPolicies(_ ids: [UUID], principal: Principal) async throws -> [SLAPolicyRecord] {
    try principal.requireAdmin()
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      try Self.lockPolicyOrder(connection, tenant: tenant)
      let live = try Self.policies(connection, tenant: tenant, includeArchived: false)
      guard Set(ids) == Set(live.map(\.id)), ids.count == live.count else {
        throw CRMError.invalid("policy_ids", "must name every live policy exactly once (\(live.count) of them)")
      }
      try Self.writeOrder(connection, ids, tenant: tenant)
      return try Self.policies(connection, tenant: tenant, includeArchived: false)
    }
  }

  static let policyColumns = """
    id, name, description, position, calendar_id, conditions, targets, version, created_at, updated_at, archived_at
    """

  static func policies(_ connection: PostgresConnection, tenant: UUID, includeArchived: Bool) throws -> [SLAPolicyRecord] {
    try connection.query(policiesQuery(tenant: tenant, includeArchived: includeArchived)).rows.map(Self.policy(row:))
  }

  static func policiesQuery(tenant: UUID, includeArchived: Bool) -> PostgresQuery {
    """
    SELECT \(unsafeSQL: policyColumns) FROM sla_policies
    WHERE tenant_id = \(tenant)\(unsafeSQL: includeArchived ? "" : " AND archived_at IS NULL")
    ORDER BY archived_at IS NOT NULL, position, created_at, id
    """
  }

  static func loadPolicy(_ connection: PostgresConnection, id: UUID, tenant: UUID, lock: Bool = false) throws
    -> SLAPolicyRecord
  {
    let rows = try connection.query(
      """
      SELECT \(unsafeSQL: policyColumns) FROM sla_policies WHERE tenant_id = \(tenant) AND id = \(id)
      \(unsafeSQL: lock ? "FOR UPDATE" : "")
      """)
    guard let row = rows.first else { throw CRMError.notFound("SLA policy \(id.lowercasedString) not found") }
    return try policy(row: row)
  }

  static func policy(row: PostgresRow) throws -> SLAPolicyRecord {
    let policy = SLAPolicy(
      id: try row.decode("id"), name: try row.decode("name"),
      conditions: try StoredPolicy.conditions(from: row.decode("conditions")),
      targets: try StoredPolicy.targets(from: row.decode("targets")), calendarID: try row.decode("calendar_id"))
    return SLAPolicyRecord(
      policy: policy, description: try row.decode("description"), position: try row.decode("position"),
      version: try row.decode("version"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
      archivedAt: try row.decode("archived_at"))
  }

  /// Serializes changes to the policy order within the tenant.
  static func lockPolicyOrder(_ connection: PostgresConnection, tenant: UUID) throws {
    try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('sla-policy-order:' || \(tenant), 0))")
  }

  static func writeOrder(_ connection: PostgresConnection, _ ids: [UUID], tenant: UUID) throws {
    try connection.query(
      """
      UPDATE sla_policies p SET position = o.position - 1
      FROM unnest(\(ids)::uuid[]) WITH ORDINALITY AS o (id, position)
      WHERE p.tenant_id = \(tenant) AND p.id = o.id AND p.position <> o.position - 1
      """)
  }

  static func checkCalendar(_ connection: PostgresConnection, _ id: UUID?, tenant: UUID) throws {
    guard let id else { return }
    let rows = try connection.query(
      "SELECT archived_at IS NULL AS live FROM business_calendars WHERE tenant_id = \(tenant) AND id = \(id)")
    guard let row = rows.first else { throw CRMError.invalid("policy.calendar_id", "no such calendar", reason: "NOT_FOUND") }
    if try !row.decode("live", as: Bool.self) {
      throw CRMError.failedPrecondition("calendar \(id.lowercasedString) is archived")
    }
  }

  static func translatingConstraints<T>(_ body: () throws -> T) throws -> T {
    try CRMStore.translatingConstraints(
      [
        "business_calendars_name": .alreadyExists(field: "calendar.name", message: "another calendar has this name"),
        "sla_policies_name": .alreadyExists(field: "policy.name", message: "another SLA policy has this name"),
      ], body)
  }
}

/// How policies' conditions and targets are stored (jsonb).
enum StoredPolicy {
  struct Conditions: Codable {
    var priorities: [String]?
    var types: [String]?
    var channels: [String]?
    var groupIds: [UUID]?
    var tags: [String]?
    var accountTiers: [String]?
    var accountTags: [String]?
  }

  struct Target: Codable {
    var priority: String
    var metric: String
    var minutes: Int
    var businessHours: Bool
    var warningMinutes: Int?
  }

  static func conditions(_ c: SLAPolicy.Conditions) -> PostgresJSON? {
    StoredJSON.encode(
      Conditions(
        priorities: c.priorities.map(\.rawValue).sorted(), types: c.types.map(\.rawValue).sorted(),
        channels: c.channels.map(\.rawValue).sorted(), groupIds: c.groupIDs.sorted { $0.lowercasedString < $1.lowercasedString },
        tags: c.tags.sorted(), accountTiers: c.accountTiers.sorted(), accountTags: c.accountTags.sorted()))
  }

  static func conditions(from json: PostgresJSON?) throws -> SLAPolicy.Conditions {
    let stored = try StoredJSON.decode(Conditions.self, from: json)
    return SLAPolicy.Conditions(
      priorities: Set((stored?.priorities ?? []).compactMap(TicketPriority.init(rawValue:))),
      types: Set((stored?.types ?? []).compactMap(TicketType.init(rawValue:))),
      channels: Set((stored?.channels ?? []).compactMap(TicketChannel.init(rawValue:))),
      groupIDs: Set(stored?.groupIds ?? []), tags: Set(stored?.tags ?? []), accountTiers: Set(stored?.accountTiers ?? []),
      accountTags: Set(stored?.accountTags ?? []))
  }

  static func targets(_ targets: [TicketPriority: [SLAMetric: SLATarget]]) -> PostgresJSON? {
    var rows: [Target] = []
    for priority in TicketPriority.allCases {
      for metric in SLAMetric.allCases {
        guard let target = targets[priority]?[metric] else { continue }
        rows.append(
          Target(
            priority: priority.rawValue, metric: metric.rawValue, minutes: target.minutes, businessHours: target.businessHours,
            warningMinutes: target.warningMinutes))
      }
    }
    return StoredJSON.encode(rows)
  }

  static func targets(from json: PostgresJSON?) throws -> [TicketPriority: [SLAMetric: SLATarget]] {
    var out: [TicketPriority: [SLAMetric: SLATarget]] = [:]
    for row in try StoredJSON.decode([Target].self, from: json) ?? [] {
      guard let priority = TicketPriority(rawValue: row.priority), let metric = SLAMetric(rawValue: row.metric) else { continue }
      out[priority, default: [:]][metric] = SLATarget(
        minutes: row.minutes, businessHours: row.businessHours, warningMinutes: row.warningMinutes)
    }
    return out
  }
}
