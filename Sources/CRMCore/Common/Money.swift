/// An amount of money in one currency: whole `units` plus `nanos` (billionths), with one sign.
public struct Money: Sendable, Hashable, Codable {
  /// ISO 4217 code, upper case.
  public var currencyCode: String
  /// Whole units.
  public var units: Int64
  /// Billionths of a unit, -999,999,999 to 999,999,999, with the sign of `units`.
  public var nanos: Int32

  /// Makes an amount without checking it; use ``validated(currencyCode:units:nanos:field:into:)`` on input.
  public init(currencyCode: String, units: Int64, nanos: Int32) {
    self.currencyCode = currencyCode
    self.units = units
    self.nanos = nanos
  }

  /// Checks an amount from input, recording violations under `field`.
  public static func validated(
    currencyCode: String, units: Int64, nanos: Int32, field: String, into violations: inout Violations
  ) -> Money? {
    let code = currencyCode.trimmingWhitespace().uppercased()
    var valid = true
    if code.count != 3 || !code.allSatisfy({ $0.isASCII && $0.isLetter }) {
      violations.add("\(field).currency_code", "must be a 3-letter ISO 4217 code", reason: "INVALID_FORMAT")
      valid = false
    }
    if !(-999_999_999...999_999_999).contains(nanos) {
      violations.add("\(field).nanos", "must be between -999999999 and 999999999", reason: "OUT_OF_RANGE")
      valid = false
    } else if (units > 0 && nanos < 0) || (units < 0 && nanos > 0) {
      violations.add("\(field).nanos", "must have the sign of units", reason: "INVALID")
      valid = false
    }
    return valid ? Money(currencyCode: code, units: units, nanos: nanos) : nil
  }
}

extension Money {
  /// Nothing, in `currencyCode`.
  public static func zero(_ currencyCode: String) -> Money { Money(currencyCode: currencyCode, units: 0, nanos: 0) }

  /// More than nothing.
  public var isPositive: Bool { units > 0 || nanos > 0 }

  /// Less than nothing.
  public var isNegative: Bool { units < 0 || nanos < 0 }

  /// The amount as an exact decimal numeral with nine fraction digits ("-12.500000000"), for
  /// `numeric` columns.
  public var numeral: String {
    let negative = isNegative
    let fraction = String(abs(Int64(nanos)))
    return (negative ? "-" : "") + String(units.magnitude) + "." + String(repeating: "0", count: 9 - fraction.count) + fraction
  }

  /// The amount for people: its currency and the exact amount with at least two decimals
  /// ("USD 1200.50", "JPY 300.00", "USD 0.125").
  public var formatted: String {
    var text = numeral
    while text.hasSuffix("0"), let dot = text.firstIndex(of: "."), text.distance(from: dot, to: text.endIndex) > 3 {
      text.removeLast()
    }
    return "\(currencyCode) \(text)"
  }

  /// An amount from a decimal numeral ("12.5", "-0.000000001", "7"); `nil` for anything else, more
  /// than nine fraction digits, or units beyond `Int64`.
  public init?(currencyCode: String, numeral: String) {
    var text = Substring(numeral)
    let negative = text.hasPrefix("-")
    if negative { text = text.dropFirst() }
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCII), let magnitude = Int64(whole) else { return nil }
    var nanos: Int64 = 0
    if parts.count == 2 {
      let fraction = parts[1]
      guard !fraction.isEmpty, fraction.count <= 9, fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
        let value = Int64(fraction)
      else { return nil }
      nanos = value
      for _ in fraction.count..<9 { nanos *= 10 }
    }
    self.init(currencyCode: currencyCode, units: negative ? -magnitude : magnitude, nanos: Int32(negative ? -nanos : nanos))
  }

  /// The sum, in this amount's currency (the caller keeps currencies apart; amounts within
  /// ``billingUnitsLimit`` cannot overflow).
  public func adding(_ other: Money) -> Money {
    var units = self.units + other.units
    var nanos = Int64(self.nanos) + Int64(other.nanos)
    units += nanos / 1_000_000_000
    nanos %= 1_000_000_000
    if units > 0, nanos < 0 {
      units -= 1
      nanos += 1_000_000_000
    } else if units < 0, nanos > 0 {
      units += 1
      nanos -= 1_000_000_000
    }
    return Money(currencyCode: currencyCode, units: units, nanos: Int32(nanos))
  }

  /// The difference, in this amount's currency.
  public func subtracting(_ other: Money) -> Money {
    adding(Money(currencyCode: other.currencyCode, units: -other.units, nanos: -other.nanos))
  }

  /// This amount × `percent` / 100, rounded half away from zero to the nano (a deal's amount weighted
  /// by its probability).
  public func scaled(byPercent percent: Int) -> Money { scaled(by: Int128(percent), over: 100) }

  /// This amount × `numerator` / `denominator` (positive), rounded half away from zero to the nano
  /// (averages, rates); the result saturates at the range of whole units.
  public func scaled(by numerator: Int128, over denominator: Int128) -> Money {
    precondition(denominator > 0, "scaled(by:over:) divides by a positive number")
    let (nanosTotal, overflow) = (Int128(units) * 1_000_000_000 + Int128(nanos)).multipliedReportingOverflow(by: numerator)
    guard !overflow else {
      let negative = (units < 0 || nanos < 0) != (numerator < 0)
      return Money(currencyCode: currencyCode, units: negative ? .min : .max, nanos: 0)
    }
    let (quotient, remainder) = nanosTotal.quotientAndRemainder(dividingBy: denominator)
    let rounded = quotient + (remainder.magnitude * 2 >= denominator.magnitude ? (nanosTotal < 0 ? -1 : 1) : 0)
    let (whole, fraction) = rounded.quotientAndRemainder(dividingBy: 1_000_000_000)
    guard let units = Int64(exactly: whole) else {
      return Money(currencyCode: currencyCode, units: whole < 0 ? .min : .max, nanos: 0)
    }
    return Money(currencyCode: currencyCode, units: units, nanos: Int32(fraction))
  }

  /// Whether this is more than `other` (same currency).
  public func isGreater(than other: Money) -> Bool { subtracting(other).isPositive }

  /// The largest whole units a billing amount may have (sums of many stay exact in `numeric(28,9)`).
  public static let billingUnitsLimit: Int64 = 999_999_999_999_999
}

/// Decimal quantities (usage, line quantities): numerals with at most 15 whole and 9 fraction digits.
public enum DecimalNumeral {
  /// Whether `text` is such a numeral ("1500", "-2", "12.75").
  public static func isValid(_ text: String) -> Bool {
    var text = Substring(text)
    if text.hasPrefix("-") { text = text.dropFirst() }
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    func digits(_ part: Substring, _ most: Int) -> Bool {
      !part.isEmpty && part.count <= most && part.allSatisfy { $0.isASCII && $0.isNumber }
    }
    return digits(parts[0], 15) && (parts.count == 1 || digits(parts[1], 9))
  }

  /// The numeral without trailing fraction zeros ("12.750000000" → "12.75", "3.000" → "3").
  public static func trimmed(_ text: String) -> String {
    guard text.contains(".") else { return text }
    var trimmed = Substring(text)
    while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
    if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
    return String(trimmed)
  }
}

extension Money {
  /// This amount ÷ `other` as a fraction (1.0 when equal), for ratios people read (attainment);
  /// never for amounts.
  public func ratio(to other: Money) -> Double {
    let numerator = Double(units) + Double(nanos) / 1_000_000_000
    let denominator = Double(other.units) + Double(other.nanos) / 1_000_000_000
    return denominator == 0 ? 0 : numerator / denominator
  }
}
