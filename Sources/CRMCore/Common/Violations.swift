/// Collects every validation failure of one request, so the caller hears about all of them at once.
///
/// It keeps the first ``limit`` failures and counts the rest, so that a request with a million bad
/// values costs a few kilobytes of error, not megabytes of trailers that clients refuse to read.
public struct Violations: Sendable {
  /// The most failures kept; later ones are only counted.
  public static let limit = 20

  /// The failures kept so far (at most ``limit``).
  public private(set) var all: [FieldViolation] = []
  /// Failures past ``limit``, counted but not kept.
  public private(set) var omitted = 0

  /// An empty collection.
  public init() {}

  /// True when nothing failed.
  public var isEmpty: Bool { all.isEmpty }

  /// Records a failure.
  public mutating func add(_ field: String, _ description: String, reason: String) {
    guard all.count < Self.limit else {
      omitted += 1
      return
    }
    all.append(FieldViolation(field: String(field.prefix(200)), description: String(description.prefix(300)), reason: reason))
  }

  /// Throws ``CRMError/invalidArgument(_:)`` if anything failed: the kept failures, then one that
  /// counts those left out.
  public func check() throws(CRMError) {
    if all.isEmpty { return }
    throw .invalidArgument(Self.bounded(all, omitted: omitted))
  }

  /// At most ``limit`` of `violations`, and a last entry counting the others when there are any.
  public static func bounded(_ violations: [FieldViolation], omitted: Int = 0) -> [FieldViolation] {
    let left = omitted + max(0, violations.count - limit)
    var kept = Array(violations.prefix(limit))
    if left > 0 {
      kept.append(
        FieldViolation(
          field: "request", description: "\(left) more violation(s) not listed: fix the ones above and send again",
          reason: "TOO_MANY_VIOLATIONS"))
    }
    return kept
  }

  /// Trims `value` and checks it is at most `maxLength` characters of clean text; `nil` for empty.
  public mutating func text(_ field: String, _ value: String, maxLength: Int, required: Bool = false) -> String? {
    let trimmed = value.trimmingWhitespace()
    if trimmed.isEmpty {
      if required { add(field, "is required", reason: "REQUIRED") }
      return nil
    }
    return clean(field, trimmed, maxLength: maxLength)
  }

  /// Like ``text(_:_:maxLength:required:)`` but keeps line breaks and tabs (descriptions, notes).
  public mutating func multilineText(_ field: String, _ value: String, maxLength: Int) -> String? {
    let trimmed = value.trimmingWhitespace()
    if trimmed.isEmpty { return nil }
    return clean(field, trimmed, maxLength: maxLength, allowingLineBreaks: true)
  }

  private mutating func clean(_ field: String, _ value: String, maxLength: Int, allowingLineBreaks: Bool = false) -> String? {
    if value.unicodeScalars.count > maxLength {
      add(field, "must be at most \(maxLength) characters", reason: "TOO_LONG")
      return nil
    }
    for scalar in value.unicodeScalars where scalar.properties.generalCategory == .control {
      if allowingLineBreaks, scalar == "\n" || scalar == "\r" || scalar == "\t" { continue }
      add(field, "must not contain control characters", reason: "INVALID_CHARACTERS")
      return nil
    }
    return value
  }
}

extension String {
  /// The string without leading and trailing white space (including non-breaking and ideographic spaces).
  public func trimmingWhitespace() -> String {
    // Most cells and fields start and end with a visible ASCII character: nothing to trim, and no
    // Unicode property lookups (they were a tenth of an import's CPU).
    if let first = utf8.first, let last = utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) {
      return self
    }
    let scalars = unicodeScalars
    guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
    let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
    return String(scalars[start...end])
  }
}

extension Substring {
  /// The text without leading and trailing white space, as a `String`.
  public func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}
