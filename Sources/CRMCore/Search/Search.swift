/// A record a search found.
public enum SearchRecord: Sendable {
  case lead(Lead)
  case contact(Contact)
  case account(Account)
  case opportunity(Opportunity)
  case ticket(Ticket)
}

/// One search result: the record, and how well it matched (higher first).
public struct SearchHit: Sendable {
  public var record: SearchRecord
  /// 2 and up: the text starts with the query; 1.5: a word does; 1: holds it; below 1: a near match.
  public var score: Double

  /// A hit.
  public init(record: SearchRecord, score: Double) {
    self.record = record
    self.score = score
  }
}

/// What `Search` looks for, already checked.
public struct SearchQuery: Sendable, Hashable {
  /// The text, trimmed: 2 to 200 characters.
  public var text: String
  /// The record types searched; all searchable ones when empty.
  public var types: [RecordType]

  /// The record types a search reaches.
  public static let searchable: [RecordType] = [.account, .contact, .lead, .opportunity, .ticket]
  /// The shortest query (a trigram index needs three characters; two still match, by a scan).
  public static let minLength = 2
  public static let maxLength = 200

  /// A query.
  public init(text: String, types: [RecordType]) {
    self.text = text
    self.types = types.isEmpty ? Self.searchable : Self.searchable.filter(types.contains)
  }

  /// A phone number (digits and + ( ) . - / and spaces, at least four digits) searches its digits.
  public var phoneDigits: String? {
    let allowed = Set("+()-./ 0123456789")
    guard text.allSatisfy(allowed.contains) else { return nil }
    let digits = text.filter(\.isASCII).filter(\.isNumber)
    return digits.count >= 4 ? digits : nil
  }

  /// The page token's binding to this query.
  public var fingerprint: String { "search|" + types.map(\.rawValue).joined(separator: ",") + "|" + text }
}
