/// Normalizes a list of tags: trimmed, lower-cased, de-duplicated in first-seen order.
public enum Tags {
  /// The most tags one record may carry.
  public static let maxCount = 50
  /// The longest tag, in characters.
  public static let maxLength = 64

  /// Validates and normalizes `tags`, recording violations under `field`.
  public static func normalize(_ tags: [String], field: String, into violations: inout Violations) -> [String] {
    if tags.count > maxCount {
      violations.add(field, "at most \(maxCount) tags", reason: "TOO_MANY")
      return []
    }
    var seen = Set<String>()
    var result: [String] = []
    for (index, tag) in tags.enumerated() {
      guard let clean = violations.text("\(field)[\(index)]", tag, maxLength: maxLength, required: true) else { continue }
      let lowered = clean.lowercased()
      if seen.insert(lowered).inserted { result.append(lowered) }
    }
    return result
  }
}
