/// A syntactically valid email address, normalized: trimmed and lower-cased.
///
/// It checks syntax only (RFC 5321 limits, a dot-atom local part, a domain of valid labels with a
/// top-level domain); it does not look the domain up. Non-ASCII letters are allowed (internationalized
/// addresses); spaces, quotes and control characters are not.
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
  /// The normalized address.
  public let value: String

  /// Parses and normalizes; `nil` when the text is not a valid address.
  public init?(_ text: String) {
    let candidate = text.trimmingWhitespace().lowercased()
    guard candidate.utf8.count <= 254 else { return nil }
    let parts = candidate.split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count == 2 else { return nil }
    let local = parts[0]
    let domain = parts[1]
    guard !local.isEmpty, local.utf8.count <= 64, !local.hasPrefix("."), !local.hasSuffix("."),
      !local.contains("..")
    else { return nil }
    let allowedLocalPunctuation = Set("!#$%&'*+/=?^_`{|}~.-")
    for character in local {
      guard character.isLetter || character.isNumber || allowedLocalPunctuation.contains(character) else { return nil }
    }
    guard Self.isValidDomain(domain) else { return nil }
    value = candidate
  }

  /// The part after the `@`.
  public var domain: String { String(value[value.index(after: value.lastIndex(of: "@")!)...]) }

  /// The normalized address.
  public var description: String { value }

  static func isValidDomain(_ domain: Substring) -> Bool {
    guard !domain.isEmpty, domain.utf8.count <= 253 else { return false }
    let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
    guard labels.count >= 2 else { return false }
    for label in labels {
      guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-") else { return false }
      for character in label where !(character.isLetter || character.isNumber || character == "-") { return false }
    }
    guard let top = labels.last, top.count >= 2, top.allSatisfy({ $0.isLetter }) else { return false }
    return true
  }
}
