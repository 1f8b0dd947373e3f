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

  /// The stored form of a secret.
  public static func hash(_ secret: String) -> PostgresBytes {
    PostgresBytes(Array(SHA256.hash(data: Data(secret.utf8))))
  }
}
