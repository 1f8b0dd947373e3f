public import Foundation

/// A tenant's service configuration.
public struct ServiceSettings: Sendable, Hashable {
  /// Which statuses pause which SLA metric.
  public var pauseRules: SLAPauseRules
  /// Solved tickets close by themselves after this many days (1–365).
  public var autoCloseDays: Int
  /// What an unknown email sender becomes: a contact or a lead.
  public var unknownSender: RecordType
  /// The calendar business-hours targets use when their policy names none; `nil` for 24×7 UTC.
  public var defaultCalendarID: UUID?
  public var version: Int64

  /// The defaults a tenant starts with.
  public static let standard = ServiceSettings(
    pauseRules: .standard, autoCloseDays: 4, unknownSender: .contact, defaultCalendarID: nil, version: 0)

  /// Settings.
  public init(pauseRules: SLAPauseRules, autoCloseDays: Int, unknownSender: RecordType, defaultCalendarID: UUID?, version: Int64) {
    self.pauseRules = pauseRules
    self.autoCloseDays = autoCloseDays
    self.unknownSender = unknownSender
    self.defaultCalendarID = defaultCalendarID
    self.version = version
  }

  /// The etag; empty while the tenant runs on the defaults (nothing saved yet to be stale against).
  public var etag: String { version == 0 ? "" : Etag.make(version) }

  /// Checks the values, recording violations under `prefix`.
  public func validate(prefix: String, into violations: inout Violations) {
    if !(1...365).contains(autoCloseDays) {
      violations.add("\(prefix).auto_close_days", "must be 1 to 365", reason: "OUT_OF_RANGE")
    }
    if unknownSender != .contact && unknownSender != .lead {
      violations.add("\(prefix).unknown_sender", "must be a contact or a lead", reason: "INVALID")
    }
    for (metric, statuses) in pauseRules.pausing {
      if metric == .firstReply, !statuses.isEmpty {
        violations.add("\(prefix).pause_rules", "first reply never pauses: a customer waits for it whatever the status", reason: "INVALID")
      }
      if statuses.contains(where: \.isResolved) || statuses.contains(.new) {
        violations.add(
          "\(prefix).pause_rules", "only pending and on_hold can pause a clock (new, solved and closed cannot)",
          reason: "INVALID")
      }
    }
  }
}

/// A business calendar as a tenant keeps it: named, versioned, archivable.
public struct CalendarRecord: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var name: String
  public var calendar: BusinessCalendar
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var archivedAt: Timestamp?

  /// A record.
  public init(
    id: UUID, name: String, calendar: BusinessCalendar, version: Int64, createdAt: Timestamp, updatedAt: Timestamp,
    archivedAt: Timestamp?
  ) {
    self.id = id
    self.name = name
    self.calendar = calendar
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }
}

/// An SLA policy as a tenant keeps it: its place in the order, a description, its version.
public struct SLAPolicyRecord: Sendable, Hashable, Identifiable {
  public var policy: SLAPolicy
  public var description: String?
  /// 0 for the first policy tried.
  public var position: Int
  public var version: Int64
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var archivedAt: Timestamp?

  /// A record.
  public init(
    policy: SLAPolicy, description: String?, position: Int, version: Int64, createdAt: Timestamp, updatedAt: Timestamp,
    archivedAt: Timestamp?
  ) {
    self.policy = policy
    self.description = description
    self.position = position
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.archivedAt = archivedAt
  }

  public var id: UUID { policy.id }
  /// The etag.
  public var etag: String { Etag.make(version) }

  /// The most policies a tenant keeps.
  public static let maxPolicies = 200

  /// Checks a policy's name and targets, recording violations under `prefix`.
  public static func validate(_ policy: SLAPolicy, prefix: String, into violations: inout Violations) -> SLAPolicy {
    var out = policy
    out.name = violations.text("\(prefix).name", policy.name, maxLength: 100, required: true) ?? ""
    if policy.targets.values.allSatisfy(\.isEmpty) {
      violations.add("\(prefix).targets", "a policy needs at least one target", reason: "REQUIRED")
    }
    for (priority, metrics) in policy.targets {
      for (metric, target) in metrics {
        let path = "\(prefix).targets[\(priority.rawValue).\(metric.rawValue)]"
        if !(1...525_600).contains(target.minutes) {
          violations.add("\(path).minutes", "must be 1 to 525,600 (a year)", reason: "OUT_OF_RANGE")
        }
        if let warning = target.warningMinutes, !(1..<max(2, target.minutes)).contains(warning) {
          violations.add("\(path).warning_minutes", "must be at least 1 and less than the target", reason: "OUT_OF_RANGE")
        }
      }
    }
    out.conditions.tags = Set(Tags.normalize(Array(policy.conditions.tags), field: "\(prefix).conditions.tags", into: &violations))
    out.conditions.accountTags = Set(
      Tags.normalize(Array(policy.conditions.accountTags), field: "\(prefix).conditions.account_tags", into: &violations))
    return out
  }
}
