public import Foundation

/// What assignment criteria look at in a lead or an account.
public struct AssignmentSubject: Sendable, Hashable {
  public var source: LeadSource?
  public var regionCode: String?
  public var industry: String?
  public var companySize: Int?
  /// Leads only.
  public var score: Int?
  public var tags: [String]
  /// Tickets only.
  public var channel: TicketChannel?
  public var ticketType: TicketType?
  public var priority: TicketPriority?

  /// A subject.
  public init(
    source: LeadSource?, regionCode: String?, industry: String?, companySize: Int?, score: Int? = nil, tags: [String]
  ) {
    self.score = score
    self.source = source
    self.regionCode = regionCode
    self.industry = industry
    self.companySize = companySize
    self.tags = tags
  }

  /// A lead's routing fields.
  public init(_ lead: LeadFields) {
    self.init(
      source: lead.source, regionCode: lead.regionCode, industry: lead.industry, companySize: lead.companySize.map(Int.init),
      score: lead.score.map(Int.init), tags: lead.tags)
  }

  /// A ticket's routing fields: channel, type, priority and tags.
  public init(_ ticket: TicketFields) {
    self.init(source: nil, regionCode: nil, industry: nil, companySize: nil, tags: ticket.tags)
    channel = ticket.channel
    ticketType = ticket.type
    priority = ticket.priority
  }

  /// An account's routing fields (accounts have no source).
  public init(_ account: AccountFields) {
    let region = account.billingAddress?.regionCode ?? account.shippingAddress?.regionCode
    self.init(
      source: nil, regionCode: region.flatMap { $0.isEmpty ? nil : $0 }, industry: account.industry,
      companySize: account.employeeCount.map(Int.init), tags: account.tags)
  }
}

/// Conditions on a record's fields; an empty criterion matches every record.
public struct AssignmentCriteria: Sendable, Hashable {
  public var sources: [LeadSource] = []
  /// ISO 3166 country codes.
  public var regionCodes: [String] = []
  /// Compared case-insensitively.
  public var industries: [String] = []
  public var companySizeMin: Int?
  public var companySizeMax: Int?
  /// Leads: the score range, inclusive (a lead without a score does not match).
  public var scoreMin: Int?
  public var scoreMax: Int?
  /// Any of these tags.
  public var tags: [String] = []
  /// Tickets: any of these channels, types, priorities.
  public var channels: [TicketChannel] = []
  public var ticketTypes: [TicketType] = []
  public var priorities: [TicketPriority] = []

  /// No conditions.
  public init() {}

  /// Whether `subject` meets every criterion, and for each one that was checked, what matched or not.
  public func evaluate(_ subject: AssignmentSubject) -> (matches: Bool, reasons: [String]) {
    var reasons: [String] = []
    var matches = true
    func check(_ ok: Bool, _ text: String) {
      reasons.append((ok ? "✓ " : "✗ ") + text)
      if !ok { matches = false }
    }
    if !sources.isEmpty {
      check(
        subject.source.map(sources.contains) ?? false,
        "source \(subject.source?.rawValue ?? "none") in [\(sources.map(\.rawValue).joined(separator: ", "))]")
    }
    if !regionCodes.isEmpty {
      check(
        subject.regionCode.map(regionCodes.contains) ?? false,
        "region \(subject.regionCode ?? "none") in [\(regionCodes.joined(separator: ", "))]")
    }
    if !industries.isEmpty {
      let industry = subject.industry?.lowercased()
      check(
        industry.map { value in industries.contains { $0.lowercased() == value } } ?? false,
        "industry \(subject.industry ?? "none") in [\(industries.joined(separator: ", "))]")
    }
    if companySizeMin != nil || companySizeMax != nil {
      let size = subject.companySize
      let ok = size.map { ($0 >= (companySizeMin ?? .min)) && ($0 <= (companySizeMax ?? .max)) } ?? false
      check(
        ok,
        "company size \(size.map(String.init) ?? "unknown") in \(companySizeMin.map(String.init) ?? "…")–\(companySizeMax.map(String.init) ?? "…")"
      )
    }
    if scoreMin != nil || scoreMax != nil {
      let score = subject.score
      let ok = score.map { ($0 >= (scoreMin ?? .min)) && ($0 <= (scoreMax ?? .max)) } ?? false
      check(
        ok, "score \(score.map(String.init) ?? "none") in \(scoreMin.map(String.init) ?? "…")–\(scoreMax.map(String.init) ?? "…")"
      )
    }
    if !tags.isEmpty {
      check(!Set(tags).isDisjoint(with: subject.tags), "tags include any of [\(tags.joined(separator: ", "))]")
    }
    if !channels.isEmpty {
      check(
        subject.channel.map(channels.contains) ?? false,
        "channel \(subject.channel?.rawValue ?? "none") in [\(channels.map(\.rawValue).joined(separator: ", "))]")
    }
    if !ticketTypes.isEmpty {
      check(
        subject.ticketType.map(ticketTypes.contains) ?? false,
        "type \(subject.ticketType?.rawValue ?? "none") in [\(ticketTypes.map(\.rawValue).joined(separator: ", "))]")
    }
    if !priorities.isEmpty {
      check(
        subject.priority.map(priorities.contains) ?? false,
        "priority \(subject.priority?.rawValue ?? "none") in [\(priorities.map(\.rawValue).joined(separator: ", "))]")
    }
    if reasons.isEmpty { reasons.append("✓ no criteria: matches every record") }
    return (matches, reasons)
  }

  /// Validated and normalized criteria (upper-case regions, lower-case tags).
  public func normalized(prefix: String, into violations: inout Violations) -> AssignmentCriteria {
    var out = self
    out.regionCodes = regionCodes.enumerated().compactMap { index, code in
      let upper = code.trimmingWhitespace().uppercased()
      guard upper.count == 2, upper.allSatisfy({ $0.isASCII && $0.isLetter }) else {
        violations.add("\(prefix).region_codes[\(index)]", "must be an ISO 3166 code such as US", reason: "INVALID_FORMAT")
        return nil
      }
      return upper
    }
    out.industries = industries.enumerated().compactMap { index, industry in
      violations.text("\(prefix).industries[\(index)]", industry, maxLength: 100, required: true)
    }
    out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations)
    if let low = companySizeMin, let high = companySizeMax, low > high {
      violations.add("\(prefix).company_size_max", "must not be below company_size_min", reason: "OUT_OF_RANGE")
    }
    if let low = scoreMin, let high = scoreMax, low > high {
      violations.add("\(prefix).score_max", "must not be below score_min", reason: "OUT_OF_RANGE")
    }
    for (value, field) in [(scoreMin, "score_min"), (scoreMax, "score_max")] where value.map({ !(0...100).contains($0) }) ?? false
    {
      violations.add("\(prefix).\(field)", "must be 0 to 100", reason: "OUT_OF_RANGE")
    }
    if (companySizeMin ?? 0) < 0 || (companySizeMax ?? 0) < 0 {
      violations.add("\(prefix).company_size_min", "must not be negative", reason: "OUT_OF_RANGE")
    }
    return out
  }
}

/// A member of a team rule's rotation.
public struct RotationMember: Sendable, Hashable {
  public var userID: UUID
  /// 1–100: a member with weight 2 gets twice the records of one with weight 1.
  public var weight: Int
  /// Records the rule has given this member so far.
  public var assigned: Int64

  /// A member.
  public init(userID: UUID, weight: Int, assigned: Int64 = 0) {
    self.userID = userID
    self.weight = weight
    self.assigned = assigned
  }
}

/// What a rule does with a matching record.
public enum AssignmentAction: Sendable, Hashable {
  /// Give it to this user.
  case user(UUID)
  /// Rotate through these members by weight, skipping inactive or out-of-office ones and those at
  /// `openRecordCap` open records.
  case team(members: [RotationMember], openRecordCap: Int?)
  /// Put it, unowned, in this shared pool.
  case pool(UUID)
}

/// One assignment rule.
public struct AssignmentRule: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var recordType: RecordType
  public var name: String
  public var position: Int
  public var isActive: Bool
  public var criteria: AssignmentCriteria
  public var action: AssignmentAction
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  /// A rule.
  public init(
    id: UUID, version: Int64, recordType: RecordType, name: String, position: Int, isActive: Bool,
    criteria: AssignmentCriteria, action: AssignmentAction, createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.version = version
    self.recordType = recordType
    self.name = name
    self.position = position
    self.isActive = isActive
    self.criteria = criteria
    self.action = action
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }
}

/// Where the rules sent a record.
public enum AssignmentOutcome: Sendable, Hashable {
  case user(UUID)
  case pool(UUID)
}

/// What routing decided, and why: the rule that fired, what it matched, and the rules passed over.
public struct AssignmentDecision: Sendable, Hashable {
  public var rule: AssignmentRule?
  public var outcome: AssignmentOutcome?
  /// The fired rule's criteria checks.
  public var reasons: [String]
  /// Rules tried before it: name and why it did not fire.
  public var skipped: [(String, String)]

  /// A decision.
  public init(rule: AssignmentRule?, outcome: AssignmentOutcome?, reasons: [String], skipped: [(String, String)]) {
    self.rule = rule
    self.outcome = outcome
    self.reasons = reasons
    self.skipped = skipped
  }

  public static func == (lhs: AssignmentDecision, rhs: AssignmentDecision) -> Bool {
    lhs.rule == rhs.rule && lhs.outcome == rhs.outcome && lhs.reasons == rhs.reasons
      && lhs.skipped.map { $0.0 + "|" + $0.1 } == rhs.skipped.map { $0.0 + "|" + $0.1 }
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(rule)
    hasher.combine(outcome)
  }
}
