import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.SLAService`: business calendars, SLA policies and the tenant's service settings.
public struct SLAService: Crm_V1_SLAService.SimpleServiceProtocol {
  let config: ServiceConfigStore
  let escalations: EscalationStore
  let tickets: TicketStore

  /// A service over the configuration, escalation and ticket stores.
  public init(config: ServiceConfigStore, escalations: EscalationStore, tickets: TicketStore) {
    self.config = config
    self.escalations = escalations
    self.tickets = tickets
  }

  public func runSLAJob(request: Crm_V1_RunSLAJobRequest, context: ServerContext) async throws -> Crm_V1_RunSLAJobResponse {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    let tenant = call.principal.tenantID
    let fired = try await tickets.fireDueClocks(tenant: tenant)
    let escalated = try await escalations.run(tenant: tenant)
    let closed = try await tickets.closeSolved(tenant: tenant)
    return .with {
      $0.warned = Int64(fired.warned)
      $0.breached = Int64(fired.breached)
      $0.escalations = Int64(escalated)
      $0.closed = Int64(closed)
    }
  }

  // MARK: - Calendars

  public func createBusinessCalendar(request: Crm_V1_CreateBusinessCalendarRequest, context: ServerContext) async throws
    -> Crm_V1_BusinessCalendar
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasCalendar { violations.add("calendar", "is required", reason: "REQUIRED") }
    let definition = request.calendar.definition(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_BusinessCalendar(
      try await config.createCalendar(
        name: definition!.name, calendar: definition!.calendar, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getBusinessCalendar(request: Crm_V1_GetBusinessCalendarRequest, context: ServerContext) async throws
    -> Crm_V1_BusinessCalendar
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_BusinessCalendar(try await config.calendar(id!, principal: call.principal))
  }

  public func listBusinessCalendars(request: Crm_V1_ListBusinessCalendarsRequest, context: ServerContext) async throws
    -> Crm_V1_ListBusinessCalendarsResponse
  {
    let call = try RequestContext.require()
    let found = try await config.calendars(includeArchived: request.includeArchived, principal: call.principal)
    return .with { $0.calendars = found.map(Crm_V1_BusinessCalendar.init) }
  }

  public func updateBusinessCalendar(request: Crm_V1_UpdateBusinessCalendarRequest, context: ServerContext) async throws
    -> Crm_V1_BusinessCalendar
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.calendar.id, field: "calendar.id", into: &violations)
    let expected = RequestFields.etag(request.calendar.etag, field: "calendar.etag", into: &violations)
    let definition = request.calendar.definition(into: &violations)
    try violations.check()
    return Crm_V1_BusinessCalendar(
      try await config.updateCalendar(
        id!, name: definition!.name, calendar: definition!.calendar, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteBusinessCalendar(request: Crm_V1_DeleteBusinessCalendarRequest, context: ServerContext) async throws
    -> Crm_V1_BusinessCalendar
  {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: "")
    return Crm_V1_BusinessCalendar(
      try await config.archiveCalendar(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: nil)))
  }

  // MARK: - Policies

  public func createSLAPolicy(request: Crm_V1_CreateSLAPolicyRequest, context: ServerContext) async throws -> Crm_V1_SLAPolicy {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasPolicy { violations.add("policy", "is required", reason: "REQUIRED") }
    let policy = request.policy.domain(id: UUID.v7(), into: &violations)
    let description = violations.multilineText("policy.description", request.policy.description_p, maxLength: 1000)
    if request.policy.hasPosition, request.policy.position < 0 {
      violations.add("policy.position", "must not be negative", reason: "OUT_OF_RANGE")
    }
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let created = try await config.createPolicy(
      policy, description: description, position: request.policy.hasPosition ? Int(request.policy.position) : nil,
      context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_SLAPolicy(created)
  }

  public func getSLAPolicy(request: Crm_V1_GetSLAPolicyRequest, context: ServerContext) async throws -> Crm_V1_SLAPolicy {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_SLAPolicy(try await config.policy(id!, principal: call.principal))
  }

  public func listSLAPolicies(request: Crm_V1_ListSLAPoliciesRequest, context: ServerContext) async throws
    -> Crm_V1_ListSLAPoliciesResponse
  {
    let call = try RequestContext.require()
    let found = try await config.policies(includeArchived: request.includeArchived, principal: call.principal)
    return .with { $0.policies = found.map(Crm_V1_SLAPolicy.init) }
  }

  public func updateSLAPolicy(request: Crm_V1_UpdateSLAPolicyRequest, context: ServerContext) async throws -> Crm_V1_SLAPolicy {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.policy.id, field: "policy.id", into: &violations)
    let expected = RequestFields.etag(request.policy.etag, field: "policy.etag", into: &violations)
    let policy = request.policy.domain(id: id ?? UUID.v7(), into: &violations)
    let description = violations.multilineText("policy.description", request.policy.description_p, maxLength: 1000)
    try violations.check()
    return Crm_V1_SLAPolicy(
      try await config.updatePolicy(
        policy, description: description, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteSLAPolicy(request: Crm_V1_DeleteSLAPolicyRequest, context: ServerContext) async throws -> Crm_V1_SLAPolicy {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: "")
    return Crm_V1_SLAPolicy(
      try await config.archivePolicy(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: nil)))
  }

  public func reorderSLAPolicies(request: Crm_V1_ReorderSLAPoliciesRequest, context: ServerContext) async throws
    -> Crm_V1_ListSLAPoliciesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.policyIds, field: "policy_ids", into: &violations)
    if Set(ids).count != ids.count { violations.add("policy_ids", "names a policy twice", reason: "DUPLICATE") }
    try violations.check()
    let ordered = try await config.reorderPolicies(ids, principal: call.principal)
    return .with { $0.policies = ordered.map(Crm_V1_SLAPolicy.init) }
  }

  // MARK: - Escalation rules

  public func createEscalationRule(request: Crm_V1_CreateEscalationRuleRequest, context: ServerContext) async throws
    -> Crm_V1_EscalationRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRule { violations.add("rule", "is required", reason: "REQUIRED") }
    let definition = request.rule.definition(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_EscalationRule(
      try await escalations.create(definition!, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func listEscalationRules(request: Crm_V1_ListEscalationRulesRequest, context: ServerContext) async throws
    -> Crm_V1_ListEscalationRulesResponse
  {
    let call = try RequestContext.require()
    let rules = try await escalations.list(principal: call.principal)
    return .with { $0.rules = rules.map(Crm_V1_EscalationRule.init) }
  }

  public func updateEscalationRule(request: Crm_V1_UpdateEscalationRuleRequest, context: ServerContext) async throws
    -> Crm_V1_EscalationRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.rule.id, field: "rule.id", into: &violations)
    let expected = RequestFields.etag(request.rule.etag, field: "rule.etag", into: &violations)
    let definition = request.rule.definition(into: &violations)
    try violations.check()
    return Crm_V1_EscalationRule(
      try await escalations.update(
        id!, definition!, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteEscalationRule(request: Crm_V1_DeleteEscalationRuleRequest, context: ServerContext) async throws
    -> Crm_V1_DeleteEscalationRuleResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    try await escalations.archive(id!, context: .init(principal: call.principal, requestID: nil))
    return .init()
  }

  // MARK: - Settings

  public func getServiceSettings(request: Crm_V1_GetServiceSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ServiceSettings
  {
    let call = try RequestContext.require()
    return Crm_V1_ServiceSettings(try await config.settings(principal: call.principal))
  }

  public func updateServiceSettings(request: Crm_V1_UpdateServiceSettingsRequest, context: ServerContext) async throws
    -> Crm_V1_ServiceSettings
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let message = request.settings
    let expected = RequestFields.etag(message.etag, field: "settings.etag", into: &violations)
    var pausing: [SLAMetric: Set<TicketStatus>] = [:]
    pausing[.nextReply] = Set(TicketStatus.list(message.nextReplyPausedIn, field: "settings.next_reply_paused_in", into: &violations))
    pausing[.resolution] = Set(
      TicketStatus.list(message.resolutionPausedIn, field: "settings.resolution_paused_in", into: &violations))
    let sender: RecordType
    switch message.unknownSender {
    case .unspecified, .contact: sender = .contact
    case .lead: sender = .lead
    default:
      violations.add("settings.unknown_sender", "must be RECORD_TYPE_CONTACT or RECORD_TYPE_LEAD", reason: "INVALID")
      sender = .contact
    }
    let settings = ServiceSettings(
      pauseRules: SLAPauseRules(pausing: pausing), autoCloseDays: message.autoCloseDays == 0 ? 4 : Int(message.autoCloseDays),
      unknownSender: sender,
      defaultCalendarID: RequestFields.optionalID(message.defaultCalendarID, field: "settings.default_calendar_id", into: &violations),
      version: 0)
    settings.validate(prefix: "settings", into: &violations)
    try violations.check()
    return Crm_V1_ServiceSettings(
      try await config.updateSettings(
        settings, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }
}

extension Crm_V1_BusinessCalendar {
  init(_ record: CalendarRecord) {
    self.init()
    id = record.id.lowercasedString
    etag = record.etag
    createTime = .init(record.createdAt)
    updateTime = .init(record.updatedAt)
    if let archivedAt = record.archivedAt { archiveTime = .init(archivedAt) }
    name = record.name
    timeZone = record.calendar.timeZone.identifier
    let alwaysOpen = record.calendar.intervals.count == 1 && record.calendar.intervals[0].minutes == 7 * 24 * 60
    intervals =
      alwaysOpen
      ? []
      : record.calendar.intervals.map { interval in
        .with {
          $0.weekday = Int32(interval.weekday)
          $0.startMinute = Int32(interval.start)
          $0.minutes = Int32(interval.minutes)
        }
      }
    holidays = record.calendar.holidays.sorted().map(Crm_V1_Date.init)
  }

  /// The name and calendar an admin sent, validated.
  func definition(into violations: inout Violations) -> (name: String, calendar: BusinessCalendar)? {
    let name = violations.text("calendar.name", name, maxLength: 100, required: true)
    if timeZone.isEmpty { violations.add("calendar.time_zone", "is required: an IANA zone such as Europe/Berlin", reason: "REQUIRED") }
    if intervals.count > 100 { violations.add("calendar.intervals", "at most 100 intervals", reason: "TOO_MANY") }
    if holidays.count > 1000 { violations.add("calendar.holidays", "at most 1,000 holidays", reason: "TOO_MANY") }
    var days: Set<CalendarDate> = []
    for (index, day) in holidays.prefix(1000).enumerated() {
      if let date = day.domain(field: "calendar.holidays[\(index)]", into: &violations) { days.insert(date) }
    }
    let spans = intervals.prefix(100).map {
      BusinessCalendar.Interval(weekday: Int($0.weekday), start: Int($0.startMinute), minutes: Int($0.minutes))
    }
    guard let name, !timeZone.isEmpty, intervals.count <= 100 else { return nil }
    do {
      let calendar =
        spans.isEmpty
        ? try BusinessCalendar.alwaysOpen(timeZone: timeZone, holidays: days)
        : try BusinessCalendar(timeZone: timeZone, intervals: spans, holidays: days)
      return (name, calendar)
    } catch .invalidArgument(let found) {
      for violation in found {
        let field = violation.field.hasSuffix(".start") ? violation.field + "_minute" : violation.field
        violations.add("calendar.\(field)", violation.description, reason: violation.reason)
      }
      return nil
    } catch {
      violations.add("calendar", "\(error)", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_SLAPolicy {
  init(_ record: SLAPolicyRecord) {
    self.init()
    let policy = record.policy
    id = policy.id.lowercasedString
    etag = record.etag
    createTime = .init(record.createdAt)
    updateTime = .init(record.updatedAt)
    if let archivedAt = record.archivedAt { archiveTime = .init(archivedAt) }
    name = policy.name
    description_p = record.description ?? ""
    position = Int32(record.position)
    calendarID = policy.calendarID?.lowercasedString ?? ""
    conditions = .init(policy.conditions)
    targets = TicketPriority.allCases.compactMap { priority in
      guard let metrics = policy.targets[priority], !metrics.isEmpty else { return nil }
      return .with {
        $0.priority = priority.proto()
        if let target = metrics[.firstReply] { $0.firstReply = .init(target) }
        if let target = metrics[.nextReply] { $0.nextReply = .init(target) }
        if let target = metrics[.resolution] { $0.resolution = .init(target) }
      }
    }
  }

  /// The policy an admin sent, validated.
  func domain(id: UUID, into violations: inout Violations) -> SLAPolicy {
    let c = conditions.domain(prefix: "policy.conditions", into: &violations)
    var byPriority: [TicketPriority: [SLAMetric: SLATarget]] = [:]
    for (index, row) in targets.prefix(10).enumerated() {
      guard let priority = TicketPriority(row.priority, field: "policy.targets[\(index)].priority", required: true, into: &violations)
      else { continue }
      if byPriority[priority] != nil {
        violations.add("policy.targets[\(index)].priority", "lists a priority twice", reason: "DUPLICATE")
      }
      var metrics: [SLAMetric: SLATarget] = [:]
      if row.hasFirstReply { metrics[.firstReply] = row.firstReply.domain }
      if row.hasNextReply { metrics[.nextReply] = row.nextReply.domain }
      if row.hasResolution { metrics[.resolution] = row.resolution.domain }
      byPriority[priority] = metrics
    }
    let policy = SLAPolicy(
      id: id, name: name, conditions: c, targets: byPriority,
      calendarID: RequestFields.optionalID(calendarID, field: "policy.calendar_id", into: &violations))
    return SLAPolicyRecord.validate(policy, prefix: "policy", into: &violations)
  }
}

extension Crm_V1_ServiceSettings {
  init(_ settings: ServiceSettings) {
    self.init()
    etag = settings.etag
    nextReplyPausedIn = TicketStatus.allCases.filter { settings.pauseRules.pauses(.nextReply, in: $0) }.map { $0.proto() }
    resolutionPausedIn = TicketStatus.allCases.filter { settings.pauseRules.pauses(.resolution, in: $0) }.map { $0.proto() }
    autoCloseDays = Int32(settings.autoCloseDays)
    unknownSender = settings.unknownSender == .lead ? .lead : .contact
    defaultCalendarID = settings.defaultCalendarID?.lowercasedString ?? ""
  }
}

extension Crm_V1_EscalationRule {
  init(_ rule: EscalationRule) {
    self.init()
    id = rule.id.lowercasedString
    etag = rule.etag
    createTime = .init(rule.createdAt)
    updateTime = .init(rule.updatedAt)
    name = rule.name
    position = Int32(rule.position)
    disabled = !rule.isActive
    switch rule.trigger {
    case .warning(let metric): warning = .with { $0.metric = metric.proto() }
    case .breach(let metric, let level, let after):
      breach = .with {
        $0.metric = metric.proto()
        $0.level = Int32(level)
        $0.afterMinutes = Int32(after)
      }
    case .age(let status, let minutes):
      age = .with {
        $0.status = status.proto()
        $0.minutes = Int32(minutes)
      }
    }
    conditions = .init(rule.conditions)
    actions = .with {
      $0.assigneeID = rule.actions.assigneeID?.lowercasedString ?? ""
      $0.groupID = rule.actions.groupID?.lowercasedString ?? ""
      if let priority = rule.actions.raisePriorityTo { $0.raisePriorityTo = priority.proto() }
      $0.addTag = rule.actions.addTag ?? ""
      $0.taskForManager = rule.actions.taskForManager
    }
  }

  /// The definition an admin sent, validated.
  func definition(into violations: inout Violations) -> EscalationStore.Definition? {
    let ruleName = violations.text("rule.name", name, maxLength: 100, required: true)
    var trigger: EscalationTrigger?
    switch self.trigger {
    case .warning(let warning):
      trigger = SLAMetric(warning.metric, field: "rule.warning.metric", required: true, into: &violations).map { .warning($0) }
    case .breach(let breach):
      if let metric = SLAMetric(breach.metric, field: "rule.breach.metric", required: true, into: &violations) {
        trigger = .breach(metric, level: Int(breach.level), afterMinutes: Int(breach.afterMinutes))
      }
    case .age(let age):
      if let status = TicketStatus(age.status, field: "rule.age.status", required: true, into: &violations) {
        trigger = .age(status, minutes: Int(age.minutes))
      }
    case nil:
      violations.add("rule.trigger", "is required: warning, breach or age", reason: "REQUIRED")
    }
    let path: String =
      switch self.trigger {
      case .breach: "rule.breach"
      case .age: "rule.age"
      default: "rule.warning"
      }
    trigger?.validate(prefix: path, into: &violations)
    var parsed = conditions.domain(prefix: "rule.conditions", into: &violations)
    parsed.tags = Set(Tags.normalize(Array(parsed.tags), field: "rule.conditions.tags", into: &violations))
    parsed.accountTags = Set(Tags.normalize(Array(parsed.accountTags), field: "rule.conditions.account_tags", into: &violations))
    var actions = EscalationActions()
    actions.assigneeID = RequestFields.optionalID(self.actions.assigneeID, field: "rule.actions.assignee_id", into: &violations)
    actions.groupID = RequestFields.optionalID(self.actions.groupID, field: "rule.actions.group_id", into: &violations)
    actions.raisePriorityTo = TicketPriority(self.actions.raisePriorityTo, field: "rule.actions.raise_priority_to", into: &violations)
    if !self.actions.addTag.isEmpty {
      actions.addTag = Tags.normalize([self.actions.addTag], field: "rule.actions.add_tag", into: &violations).first
    }
    actions.taskForManager = self.actions.taskForManager
    if actions.isEmpty { violations.add("rule.actions", "name at least one action", reason: "REQUIRED") }
    guard let ruleName, let trigger else { return nil }
    return EscalationStore.Definition(
      name: ruleName, isActive: !disabled, trigger: trigger, conditions: parsed, actions: actions)
  }
}

extension Crm_V1_SLAConditions {
  init(_ c: SLAPolicy.Conditions) {
    self.init()
    priorities = TicketPriority.allCases.filter(c.priorities.contains).map { $0.proto() }
    types = TicketType.allCases.filter(c.types.contains).map { $0.proto() }
    channels = TicketChannel.allCases.filter(c.channels.contains).map { $0.proto() }
    groupIds = c.groupIDs.map(\.lowercasedString).sorted()
    tags = c.tags.sorted()
    accountTiers = c.accountTiers.sorted()
    accountTags = c.accountTags.sorted()
  }

  /// The conditions a request sent, validated under `prefix` (tags are normalized by the caller's
  /// validation of the whole policy or rule).
  func domain(prefix: String, into violations: inout Violations) -> SLAPolicy.Conditions {
    var c = SLAPolicy.Conditions()
    c.priorities = Set(TicketPriority.list(priorities, field: "\(prefix).priorities", into: &violations))
    c.types = Set(TicketType.list(types, field: "\(prefix).types", into: &violations))
    c.channels = Set(TicketChannel.list(channels, field: "\(prefix).channels", into: &violations))
    c.groupIDs = Set(RequestFields.ids(groupIds, field: "\(prefix).group_ids", required: false, into: &violations))
    c.tags = Set(tags)
    let tiers = ["strategic", "key", "standard", "long_tail"]
    for (index, tier) in accountTiers.enumerated() where !tiers.contains(tier) {
      violations.add("\(prefix).account_tiers[\(index)]", "must be one of \(tiers.joined(separator: ", "))", reason: "INVALID")
    }
    c.accountTiers = Set(accountTiers.filter(tiers.contains))
    c.accountTags = Set(accountTags)
    return c
  }
}
