/// A record a search found.
public enum SearchRecord: Sendable {
  case lead(Lead)
  case contact(Contact)
  case account(Account)
  case opportunity(Opportunity)
  case ticket(Ticket)
  case invoice(Invoice)
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

/// A page of search results.
public struct SearchPage: Sendable {
  public var hits: [SearchHit]
  /// Where the next page starts; nil on the last.
  public var nextPageToken: String?
  /// Some record type had more matches than a search ranks (1,000): the results are the best of the
  /// first 1,000 found, and a longer query narrows them.
  public var sampled: Bool

  /// A page.
  public init(hits: [SearchHit], nextPageToken: String?, sampled: Bool) {
    self.hits = hits
    self.nextPageToken = nextPageToken
    self.sampled = sampled
  }
}

/// What `Search` looks for, already checked.
public struct SearchQuery: Sendable, Hashable {
  /// The text, trimmed: 2 to 200 characters.
  public var text: String
  /// The record types searched; all searchable ones when empty.
  public var types: [RecordType]

  /// The record types a search reaches.
  public static let searchable: [RecordType] = [.account, .contact, .lead, .opportunity, .ticket, .invoice]
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

  /// A whole email address (normalized) is looked up exactly first.
  public var emailAddress: String? { EmailAddress(text)?.value }

  /// The page token's binding to this query.
  public var fingerprint: String { "search|" + types.map(\.rawValue).joined(separator: ",") + "|" + text }
}

/// What a query word that no record uses was meant to be (the near-match phase of a search).
public enum SearchCorrection {
  /// The candidates with the fewest edits from `word`, at most `limit`, in the candidates' order (the
  /// store's: fewest plain edits, then most trigrams shared).
  public static func nearest(to word: String, among candidates: [String], limit: Int = 3) -> [String] {
    let distances = candidates.map { distance(word, $0) }
    guard let best = distances.min() else { return [] }
    return Array(zip(candidates, distances).filter { $0.1 == best }.map(\.0).prefix(limit))
  }

  /// Edits between two words: inserting, deleting or replacing a character, or swapping two neighbours
  /// ("jonh" → "john"), each count one (optimal string alignment distance).
  public static func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    // Three rows of the table: two back (for swaps), the previous one and the current one.
    var twoBack = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
          current[j] = min(current[j], twoBack[j - 2] + 1)
        }
      }
      (twoBack, previous, current) = (previous, current, twoBack)
    }
    return previous[b.count]
  }
}
