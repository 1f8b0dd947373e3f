import Crypto
import Foundation
public import LibPQ

/// Bearer token secrets: 256 random bits, shown once, stored only as their SHA-256.
public enum TokenSecret {
  /// A new secret: `crm_` and 43 base64url characters (32 random bytes).
  public static func generate() -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    let text = Data(bytes).base64EncodedString()
      .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    return "crm_" + text
  }

  /// True when `secret` has the shape ``generate()`` makes: `crm_` and 43 base64url characters. Anything
  /// else cannot be a token of ours and needs no database lookup.
  public static func isWellFormed(_ secret: String) -> Bool {
    let utf8 = secret.utf8
    guard utf8.count == 47, secret.hasPrefix("crm_") else { return false }
    return utf8.dropFirst(4).allSatisfy { byte in
      (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
  }

  /// The stored form of a secret.
  public static func hash(_ secret: String) -> PostgresBytes {
    PostgresBytes(Array(SHA256.hash(data: Data(secret.utf8))))
  }
}
