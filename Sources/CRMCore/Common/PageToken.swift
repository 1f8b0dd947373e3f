public import Foundation

/// An opaque keyset cursor: the sort key and id of the last row of a page, bound to the filters that
/// produced it so that a token cannot be replayed against a different query.
///
/// Clients see it only signed (`PageTokenCodec` in CRMStore): its fields are server-made values.
public struct PageToken: Sendable, Hashable, Codable {
  /// The sort key of the last row (text form; the store knows its type).
  public var key: String
  /// The id of the last row, the tie-breaker.
  public var id: UUID
  /// A fingerprint of the filters and order of the request that made the token.
  public var query: String

  /// Makes a token.
  public init(key: String, id: UUID, query: String) {
    self.key = key
    self.id = id
    self.query = query
  }
}

/// Page-size rules shared by every list method: 0 means 50, at most 1,000.
public enum PageSize {
  /// The size used when the request says 0.
  public static let `default` = 50
  /// The largest page.
  public static let maximum = 1000

  /// The effective page size, or a violation for negative values.
  public static func resolve(_ requested: Int32, field: String = "page_size", into violations: inout Violations) -> Int {
    if requested < 0 {
      violations.add(field, "must not be negative", reason: "OUT_OF_RANGE")
      return `default`
    }
    if requested == 0 { return `default` }
    return min(Int(requested), maximum)
  }
}
