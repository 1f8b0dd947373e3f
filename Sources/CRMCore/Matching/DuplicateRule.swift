/// What happens when a new record looks like existing ones.
public enum DuplicateAction: String, Sendable, Hashable, CaseIterable, Codable {
  /// Write it; say nothing.
  case allow
  /// Write it and list the matches in the answer.
  case warn
  /// Refuse it (ALREADY_EXISTS) and list the matches.
  case block
}

/// A match key a rule may count.
public enum MatchKey: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
  case email
  case phone
  case domain
  case companyName = "company_name"
  case personName = "person_name"
  /// A company registration id (unified social credit code, VAT id): exact after normalization.
  case registrationID = "registration_id"

  public static func < (lhs: MatchKey, rhs: MatchKey) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A tenant's duplicate rule for one record type: which keys count, where to look, from which score a
/// match counts, and the action on create, capture and import.
public struct DuplicateRule: Sendable, Hashable {
  /// The type of the record being written.
  public var recordType: RecordType
  public var action: DuplicateAction
  /// The keys compared; the others are ignored.
  public var keys: Set<MatchKey>
  /// Where matches are looked for.
  public var matchRecordTypes: [RecordType]
  /// Matches scoring below this (0…1) do not count.
  public var minScore: Double
  /// Treat `name+tag@domain` as `name@domain`.
  public var ignorePlusTags: Bool

  /// Makes a rule.
  public init(
    recordType: RecordType, action: DuplicateAction, keys: Set<MatchKey>, matchRecordTypes: [RecordType],
    minScore: Double, ignorePlusTags: Bool
  ) {
    self.recordType = recordType
    self.action = action
    self.keys = keys
    self.matchRecordTypes = matchRecordTypes
    self.minScore = minScore
    self.ignorePlusTags = ignorePlusTags
  }

  /// The rule a tenant has until an admin sets one: warn when a lead, contact or account shares an
  /// email, a phone or a registration id (score ≥ 0.8) — a new record is never lost to a guess, and the caller hears about
  /// a likely duplicate. Name similarity (company_name, person_name) is opt-in: a name alone is weak
  /// evidence, and it costs lookups on every write (as a tenant-wide trigram search it took
  /// CreateAccount from 1,730 to 81 RPS in `scripts/bench.sh`; by name block, migration 0014, it is a
  /// few index-only scans); `FindDuplicates` always compares names.
  public static func standard(for type: RecordType) -> DuplicateRule {
    DuplicateRule(
      recordType: type, action: .warn, keys: [.email, .phone, .domain, .registrationID],
      matchRecordTypes: [.lead, .contact, .account],
      minScore: 0.8, ignorePlusTags: false)
  }

  /// `subject` with only the keys this rule counts.
  public func restricting(_ subject: MatchSubject) -> MatchSubject {
    MatchSubject(
      emails: keys.contains(.email) ? subject.emails : [], phones: keys.contains(.phone) ? subject.phones : [],
      domain: keys.contains(.domain) ? subject.domain : nil,
      companyKey: keys.contains(.companyName) ? subject.companyKey : nil,
      personKey: keys.contains(.personName) ? subject.personKey : nil,
      registrationID: keys.contains(.registrationID) ? subject.registrationID : nil)
  }
}

/// What a duplicate check found for a record being written.
public struct DuplicateFindings: Sendable, Hashable {
  /// The action taken.
  public var action: DuplicateAction
  /// Matches the caller may see, best first.
  public var matches: [DuplicateMatch]
  /// Matches the caller may not see (counted, never named).
  public var hiddenMatchCount: Int

  /// Findings.
  public init(action: DuplicateAction, matches: [DuplicateMatch], hiddenMatchCount: Int) {
    self.action = action
    self.matches = matches
    self.hiddenMatchCount = hiddenMatchCount
  }

  /// Nothing found.
  public static let none = DuplicateFindings(action: .allow, matches: [], hiddenMatchCount: 0)

  /// True when anything matched.
  public var isEmpty: Bool { matches.isEmpty && hiddenMatchCount == 0 }
}
