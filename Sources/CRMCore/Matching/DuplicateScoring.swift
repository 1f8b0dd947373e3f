public import Foundation

/// The keys a record (or a candidate) is matched by.
public struct MatchSubject: Sendable, Hashable {
  /// Email keys (see ``MatchKeys/storedEmailKeys(_:)``), as entered and normalized.
  public var emails: [String]
  /// E.164 (or digits-only) phone numbers.
  public var phones: [String]
  public var domain: String?
  public var companyKey: String?
  public var personKey: String?
  /// A registration id's key (``MatchKeys/registrationID(_:)``).
  public var registrationID: String?

  /// A subject from its keys.
  public init(
    emails: [String] = [], phones: [String] = [], domain: String? = nil, companyKey: String? = nil, personKey: String? = nil,
    registrationID: String? = nil
  ) {
    self.registrationID = registrationID
    self.emails = emails
    self.phones = phones
    self.domain = domain
    self.companyKey = companyKey
    self.personKey = personKey
  }

  /// True when there is nothing to match on.
  public var isEmpty: Bool {
    emails.isEmpty && phones.isEmpty && domain == nil && companyKey == nil && personKey == nil && registrationID == nil
  }
}

/// Why a record matched.
public struct MatchReason: Sendable, Hashable {
  /// How the values compare.
  public enum Kind: String, Sendable, Hashable {
    case exact, normalized, similar
  }

  /// `email`, `phone`, `domain`, `company_name` or `person_name`.
  public var key: String
  public var kind: Kind
  /// Trigram similarity for `.similar`; 1 otherwise.
  public var similarity: Double
  /// The stored value that matched.
  public var value: String

  /// Makes a reason.
  public init(key: String, kind: Kind, similarity: Double, value: String) {
    self.key = key
    self.kind = kind
    self.similarity = similarity
    self.value = value
  }

  /// How much this reason alone says "same": an email is nearly certain, a similar name much less so.
  public var weight: Double { Self.weight(of: key, similarity: similarity) }

  /// The weight of a reason on `key` at `similarity` (names scale with it; other keys match or not).
  public static func weight(of key: String, similarity: Double = 1) -> Double {
    switch key {
    case "email": return 0.95
    case "registration_id": return 0.95
    case "phone": return 0.85
    case "domain": return 0.5
    case "company_name": return 0.75 * similarity
    case "person_name": return 0.55 * similarity
    default: return 0
    }
  }
}

/// One record that looks like the subject.
public struct DuplicateMatch: Sendable, Hashable {
  public var recordType: RecordType
  public var recordID: UUID
  public var displayName: String
  public var reasons: [MatchReason]
  /// The matched record's owner (`nil` while it sits in a shared pool).
  public var ownerID: UUID?

  /// Makes a match.
  public init(recordType: RecordType, recordID: UUID, displayName: String, reasons: [MatchReason], ownerID: UUID? = nil) {
    self.recordType = recordType
    self.recordID = recordID
    self.displayName = displayName
    self.reasons = reasons
    self.ownerID = ownerID
  }

  /// 1 - Π(1 - weight): independent evidence adds up, and no pile of weak reasons reaches 1.
  public var score: Double {
    1 - reasons.reduce(1) { $0 * (1 - $1.weight) }
  }

  /// Best first; ties by type and id so answers are stable.
  ///
  /// Scores and id strings are computed once per match, not in every comparison: a common name brings
  /// a few hundred candidates, and recomputing them in the comparator was ~9% of crmd's CPU time in
  /// FindDuplicates (perf).
  public static func ranked(_ matches: [DuplicateMatch], minScore: Double, limit: Int) -> [DuplicateMatch] {
    let kept = matches.compactMap { match -> (score: Double, id: String, match: DuplicateMatch)? in
      let score = match.score
      return score >= minScore ? (score, match.recordID.lowercasedString, match) : nil
    }
    return kept.sorted {
      if $0.score != $1.score { return $0.score > $1.score }
      if $0.match.recordType != $1.match.recordType { return $0.match.recordType.rawValue < $1.match.recordType.rawValue }
      return $0.id < $1.id
    }
    .prefix(limit).map(\.match)
  }
}
