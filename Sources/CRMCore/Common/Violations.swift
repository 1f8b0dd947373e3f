/// Collects every validation failure of one request, so the caller hears about all of them at once.
public struct Violations: Sendable {
  /// The failures so far.
  public private(set) var all: [FieldViolation] = []

  /// An empty collection.
  public init() {}

  /// True when nothing failed.
  public var isEmpty: Bool { all.isEmpty }

  /// Records a failure.
  public mutating func add(_ field: String, _ description: String, reason: String) {
    all.append(FieldViolation(field: field, description: description, reason: reason))
  }

  /// Throws ``CRMError/invalidArgument(_:)`` if anything failed.
  public func check() throws(CRMError) {
    if !all.isEmpty { throw .invalidArgument(all) }
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
