public import CRMCore
import Crypto
import Foundation

/// Turns page tokens into the opaque text clients carry, and back, tamper-evident.
///
/// A token is base64url JSON (the sort key and id of the last row, and a fingerprint of the filters)
/// followed by `.` and a truncated HMAC-SHA256 of that JSON under the database's page-token key
/// (`crm_page_token_key()`, one key per database, so every node accepts every node's tokens). A token
/// that was edited, forged, cut, or issued by another database fails the check and answers
/// `INVALID_ARGUMENT` on `page_token` before any of it reaches SQL. It does not encrypt: the position
/// in a list is not a secret from the caller who was shown that list.
public struct PageTokenCodec: Sendable {
  let key: SymmetricKey

  /// Bytes of the HMAC kept in a token: 128 bits.
  static let macBytes = 16
  /// The longest token accepted; issued ones are far shorter.
  static let maxLength = 2048

  /// A codec that signs with `secret`.
  public init(secret: [UInt8]) { key = SymmetricKey(data: secret) }

  /// The token as clients see it.
  public func encode(_ token: PageToken) -> String {
    let payload = (try? JSONEncoder().encode(token)) ?? Data()
    return Self.base64URL(payload) + "." + Self.base64URL(mac(payload))
  }

  /// Decodes and checks a token a client sent back: `nil` for an empty one.
  ///
  /// - Throws: ``CRMError/invalidArgument(_:)`` naming `page_token` when it is malformed, was not
  ///   issued by this database, or was issued for other filters or another order.
  public func decode(_ text: String, query: String) throws(CRMError) -> PageToken? {
    if text.isEmpty { return nil }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard text.utf8.count <= Self.maxLength, parts.count == 2, let payload = Self.data(base64URL: parts[0]),
      let tag = Self.data(base64URL: parts[1]), Self.constantTimeEqual(mac(payload), tag),
      let token = try? JSONDecoder().decode(PageToken.self, from: payload)
    else {
      throw .invalid(
        "page_token", "is not a token this server issued: pass next_page_token back unchanged", reason: "INVALID_FORMAT")
    }
    guard token.query == query else {
      throw .invalid("page_token", "was issued for different filters or order", reason: "MISMATCH")
    }
    return token
  }

  func mac(_ payload: Data) -> Data {
    Data(HMAC<SHA256>.authenticationCode(for: payload, using: key).prefix(Self.macBytes))
  }

  static func constantTimeEqual(_ left: Data, _ right: Data) -> Bool {
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for (a, b) in zip(left, right) { difference |= a ^ b }
    return difference == 0
  }

  static func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  static func data(base64URL text: Substring) -> Data? {
    guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
  }
}
