public import Foundation

/// An opaque keyset cursor: the sort key and id of the last row of a page, bound to the filters that
/// produced it so that a token cannot be replayed against a different query.
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

  /// The token as clients see it: base64url JSON.
  public var encoded: String {
    let data = (try? JSONEncoder().encode(self)) ?? Data()
    return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  /// Decodes a token a client sent back, checking it belongs to the same query.
  ///
  /// - Throws: ``CRMError/invalidArgument(_:)`` naming `page_token` when it is malformed or was made
  ///   for other filters.
  public static func decode(_ text: String, query: String) throws(CRMError) -> PageToken? {
    if text.isEmpty { return nil }
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    guard text.count <= 1024, let data = Data(base64Encoded: base64),
      let token = try? JSONDecoder().decode(PageToken.self, from: data)
    else { throw .invalid("page_token", "is not a token this server issued", reason: "INVALID_FORMAT") }
    guard token.query == query else {
      throw .invalid("page_token", "was issued for different filters or order", reason: "MISMATCH")
    }
    return token
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
