public import Foundation

/// The facts about a ticket that SLA policies match on.
public struct SLASubject: Sendable, Hashable {
  public var priority: TicketPriority
  public var type: TicketType?
  public var channel: TicketChannel
  public var groupID: UUID?
  public var tags: Set<String>
  /// The requester's account's tier (e.g. "gold"), if it has one.
  public var accountTier: String?
  public var accountTags: Set<String>

  /// A subject.
  public init(
    priority: TicketPriority, type: TicketType? = nil, channel: TicketChannel, groupID: UUID? = nil, tags: Set<String> = [],
    accountTier: String? = nil, accountTags: Set<String> = []
  ) {
    self.priority = priority
    self.type = type
    self.channel = channel
    self.groupID = groupID
    self.tags = tags
    self.accountTier = accountTier
    self.accountTags = accountTags
  }
}

/// One SLA policy: conditions that select tickets, and per priority a target for each metric.
///
/// Conditions combine with AND; inside one condition the listed values combine with OR (any of the
/// priorities, any of the tags). An empty condition matches everything, so a policy without conditions
/// is a catch-all, which belongs last.
public struct SLAPolicy: Sendable, Hashable, Identifiable {
  /// What a policy selects on.
  public struct Conditions: Sendable, Hashable {
    public var priorities: Set<TicketPriority> = []
    public var types: Set<TicketType> = []
    public var channels: Set<TicketChannel> = []
    public var groupIDs: Set<UUID> = []
    /// Any of these tags on the ticket.
    public var tags: Set<String> = []
    public var accountTiers: Set<String> = []
    /// Any of these tags on the requester's account.
    public var accountTags: Set<String> = []

    /// Conditions; all empty matches every ticket.
    public init(
      priorities: Set<TicketPriority> = [], types: Set<TicketType> = [], channels: Set<TicketChannel> = [],
      groupIDs: Set<UUID> = [], tags: Set<String> = [], accountTiers: Set<String> = [], accountTags: Set<String> = []
    ) {
      self.priorities = priorities
      self.types = types
      self.channels = channels
      self.groupIDs = groupIDs
      self.tags = tags
      self.accountTiers = accountTiers
      self.accountTags = accountTags
    }

    /// True when `subject` meets every non-empty condition.
    public func match(_ subject: SLASubject) -> Bool {
      (priorities.isEmpty || priorities.contains(subject.priority))
        && (types.isEmpty || subject.type.map(types.contains) == true)
        && (channels.isEmpty || channels.contains(subject.channel))
        && (groupIDs.isEmpty || subject.groupID.map(groupIDs.contains) == true)
        && (tags.isEmpty || !tags.isDisjoint(with: subject.tags))
        && (accountTiers.isEmpty || subject.accountTier.map(accountTiers.contains) == true)
        && (accountTags.isEmpty || !accountTags.isDisjoint(with: subject.accountTags))
    }
  }

  public let id: UUID
  public var name: String
  public var conditions: Conditions
  /// Targets by priority, then metric; a missing entry means the metric is not tracked at that priority.
  public var targets: [TicketPriority: [SLAMetric: SLATarget]]
  /// The business calendar its business-hours targets count by; `nil` for the tenant's default.
  public var calendarID: UUID?

  /// A policy.
  public init(
    id: UUID, name: String, conditions: Conditions, targets: [TicketPriority: [SLAMetric: SLATarget]],
    calendarID: UUID? = nil
  ) {
    self.id = id
    self.name = name
    self.conditions = conditions
    self.targets = targets
    self.calendarID = calendarID
  }

  /// The first policy in `policies` (in their order) whose conditions match `subject`, if any.
  public static func first(in policies: [SLAPolicy], matching subject: SLASubject) -> SLAPolicy? {
    policies.first { $0.conditions.match(subject) }
  }

  /// The targets this policy sets for `subject`'s priority, each naming the policy's calendar.
  public func targets(for subject: SLASubject) -> [SLAMetric: SLATarget] {
    (targets[subject.priority] ?? [:]).mapValues { target in
      var target = target
      target.calendarID = calendarID
      return target
    }
  }
}

/// Which statuses stop which metric's clock: tenant configuration, with the usual default.
public struct SLAPauseRules: Sendable, Hashable {
  /// For each metric, the statuses that pause it.
  public var pausing: [SLAMetric: Set<TicketStatus>]

  /// `pending` pauses next reply and resolution; `on_hold` pauses nothing; first reply never pauses.
  public static let standard = SLAPauseRules(pausing: [.nextReply: [.pending], .resolution: [.pending]])

  /// Rules from a table.
  public init(pausing: [SLAMetric: Set<TicketStatus>]) { self.pausing = pausing }

  /// True when a ticket in `status` does not count time for `metric`.
  public func pauses(_ metric: SLAMetric, in status: TicketStatus) -> Bool { pausing[metric]?.contains(status) ?? false }
}
