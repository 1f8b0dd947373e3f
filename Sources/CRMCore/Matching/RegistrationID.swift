/// Company registration ids: a unified social credit code (统一社会信用代码), a VAT id, a company number.
public enum RegistrationID {
  /// The longest id kept, after normalization.
  public static let maxLength = 64

  /// `text` as stored and compared: upper case, letters and digits only (`91350211-m000 0xxxx` →
  /// `91350211M0000XXXX`); `nil` for empty; a violation for text with no letters or digits or too long.
  public static func normalized(_ text: String?, field: String, into violations: inout Violations) -> String? {
    guard let text, !text.trimmingWhitespace().isEmpty else { return nil }
    guard let key = MatchKeys.registrationID(text) else {
      violations.add(field, "must contain letters or digits, e.g. 91350211M000100Y43 or DE123456789", reason: "INVALID_FORMAT")
      return nil
    }
    guard key.count <= maxLength else {
      violations.add(field, "must be at most \(maxLength) letters and digits", reason: "TOO_LONG")
      return nil
    }
    return key
  }
}
