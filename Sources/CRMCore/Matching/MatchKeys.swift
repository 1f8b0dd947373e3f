/// The normalized keys duplicate detection compares, computed when a record is written.
///
/// Each key is a pure function of the input, so the same person entered twice produces the same keys
/// whatever the casing, punctuation or formatting. Comparing keys (and trigram similarity of names) is
/// the store's job; this only produces them.
public enum MatchKeys {
  /// An email's match key: lower case; with `ignoringPlusTags`, `name+tag@domain` becomes
  /// `name@domain` (a tenant setting: Gmail-style tags usually mean the same person).
  public static func email(_ address: EmailAddress, ignoringPlusTags: Bool) -> String {
    guard ignoringPlusTags, let at = address.value.lastIndex(of: "@") else { return address.value }
    let local = address.value[..<at]
    guard let plus = local.firstIndex(of: "+"), plus != local.startIndex else { return address.value }
    return String(local[..<plus]) + String(address.value[at...])
  }

  /// The email keys stored for an address: the address itself and, when it has a plus tag, the address
  /// without it — so a lookup can honor the tenant's plus-addressing setting, whichever it is today.
  public static func storedEmailKeys(_ addresses: [String]) -> [String] {
    var keys: [String] = []
    for text in addresses {
      guard let address = EmailAddress(text) else { continue }
      for key in [address.value, email(address, ignoringPlusTags: true)] where !keys.contains(key) { keys.append(key) }
    }
    return keys
  }

  /// Legal-form words removed from company names before comparing ("Acme Inc." = "ACME").
  static let legalSuffixes: Set<String> = [
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "ltd", "limited", "plc", "lp", "llp", "gmbh",
    "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "aps", "pty", "pvt", "kk", "group",
  ]

  /// Suffixes written without spaces in Chinese company names: 有限公司 (limited company) and the like.
  static let cjkSuffixes = ["股份有限公司", "有限责任公司", "有限公司", "集团", "公司"]

  /// A company name's match key: lower case, punctuation removed, runs of space collapsed, and trailing
  /// legal-form words ("Inc", "GmbH", "有限公司") dropped. `nil` when nothing is left.
  public static func companyName(_ name: String) -> String? {
    var text = name.lowercased()
    for suffix in cjkSuffixes where text.hasSuffix(suffix) && text.count > suffix.count {
      text.removeLast(suffix.count)
      break
    }
    var words: [String] = []
    var current = ""
    for scalar in text.unicodeScalars {
      if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
        current.unicodeScalars.append(scalar)
      } else if scalar == "&" {
        if !current.isEmpty { words.append(current) }
        current = ""
        words.append("and")
      } else if !current.isEmpty {
        words.append(current)
        current = ""
      }
    }
    if !current.isEmpty { words.append(current) }
    // "Müller GmbH & Co. KG": strip legal words and the connectors between them, from the end.
    while words.count > 1, let last = words.last, legalSuffixes.contains(last) || last == "and" { words.removeLast() }
    let key = words.joined(separator: " ")
    return key.isEmpty ? nil : key
  }

  /// A person's name key: "first last" lower-cased, punctuation removed, for trigram comparison.
  public static func personName(first: String?, last: String?) -> String? {
    let joined = [first, last].compactMap { $0 }.joined(separator: " ")
    var words: [String] = []
    var current = ""
    for scalar in joined.lowercased().unicodeScalars {
      if scalar.properties.isAlphabetic {
        current.unicodeScalars.append(scalar)
      } else if !current.isEmpty {
        words.append(current)
        current = ""
      }
    }
    if !current.isEmpty { words.append(current) }
    let key = words.joined(separator: " ")
    return key.isEmpty ? nil : key
  }

  /// A registration id's key (unified social credit code, VAT id): upper case, letters and digits only.
  public static func registrationID(_ id: String) -> String? {
    let key = String(
      id.uppercased().unicodeScalars.filter { $0.properties.isAlphabetic || ("0"..."9").contains($0) }.map(Character.init))
    return key.isEmpty ? nil : key
  }
}
