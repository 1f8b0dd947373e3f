/// A phone number, normalized to E.164 (`+14155550100`) when its country is known.
///
/// A number written with a leading `+` (or `00`) is international already. Otherwise the country
/// (ISO 3166-1 alpha-2, from the record's address) supplies the calling code, and the national trunk
/// prefix `0` is dropped where the country uses one. With neither, the number is kept as its digits.
/// It does not check numbering plans beyond E.164's length limits.
public struct PhoneNumber: Sendable, Hashable, CustomStringConvertible {
  /// The normalized number: E.164 when ``isE164``, otherwise digits only.
  public let value: String
  /// True when ``value`` is in E.164.
  public let isE164: Bool

  /// Parses and normalizes; `nil` when the text is not a phone number.
  public init?(_ text: String, regionCode: String? = nil) {
    var digits = ""
    var international = false
    var sawDigit = false
    for (offset, character) in text.trimmingWhitespace().enumerated() {
      switch character {
      case "+" where offset == 0: international = true
      case "0"..."9":
        digits.append(character)
        sawDigit = true
      case " ", "-", ".", "(", ")", "/", "\u{00A0}": continue
      default:
        // Full-width digits (common in East Asian input) count as digits.
        if let value = character.wholeNumberValue, character.isNumber {
          digits.append(String(value))
          sawDigit = true
        } else {
          return nil
        }
      }
    }
    guard sawDigit else { return nil }
    if !international, digits.hasPrefix("00") {
      international = true
      digits.removeFirst(2)
    }
    if international {
      guard (7...15).contains(digits.count), !digits.hasPrefix("0") else { return nil }
      value = "+" + digits
      isE164 = true
      return
    }
    if let region = regionCode?.uppercased(), let plan = Self.plans[region] {
      var national = digits
      if plan.trunkPrefix, national.hasPrefix("0") { national.removeFirst() }
      guard national.count >= 4, (plan.code + national).count <= 15 else { return nil }
      value = "+" + plan.code + national
      isE164 = true
      return
    }
    guard (4...15).contains(digits.count) else { return nil }
    value = digits
    isE164 = false
  }

  /// The normalized number.
  public var description: String { value }

  /// Calling codes and whether the country's national format starts with a trunk prefix `0`.
  static let plans: [String: (code: String, trunkPrefix: Bool)] = [
    "US": ("1", false), "CA": ("1", false), "GB": ("44", true), "IE": ("353", true), "DE": ("49", true),
    "FR": ("33", true), "ES": ("34", false), "IT": ("39", false), "NL": ("31", true), "BE": ("32", true),
    "CH": ("41", true), "AT": ("43", true), "SE": ("46", true), "NO": ("47", false), "DK": ("45", false),
    "FI": ("358", true), "PL": ("48", false), "PT": ("351", false), "CZ": ("420", false), "GR": ("30", false),
    "CN": ("86", true), "HK": ("852", false), "TW": ("886", true), "JP": ("81", true), "KR": ("82", true),
    "SG": ("65", false), "MY": ("60", true), "TH": ("66", true), "VN": ("84", true), "ID": ("62", true),
    "PH": ("63", true), "IN": ("91", true), "AU": ("61", true), "NZ": ("64", true), "BR": ("55", true),
    "MX": ("52", false), "AR": ("54", true), "CL": ("56", false), "CO": ("57", false), "ZA": ("27", true),
    "NG": ("234", true), "EG": ("20", true), "AE": ("971", true), "SA": ("966", true), "IL": ("972", true),
    "TR": ("90", true), "RU": ("7", false), "UA": ("380", true),
  ]
}
