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
