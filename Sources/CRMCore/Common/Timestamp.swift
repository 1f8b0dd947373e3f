import Foundation

/// An instant with microsecond precision (PostgreSQL's), as microseconds since the Unix epoch.
///
/// Not `Date`: a `Date` is a `Double` and rounds, and a keyset cursor must compare equal to the
/// stored value it came from.
public struct Timestamp: Sendable, Hashable, Comparable, Codable {
  /// Microseconds since 1970-01-01T00:00:00Z.
  public var microsecondsSinceEpoch: Int64

  /// A timestamp from microseconds since the epoch.
  public init(microsecondsSinceEpoch: Int64) { self.microsecondsSinceEpoch = microsecondsSinceEpoch }

  /// A timestamp from seconds and nanoseconds (protobuf's representation), truncated to microseconds.
  public init(seconds: Int64, nanos: Int32) {
    microsecondsSinceEpoch = seconds * 1_000_000 + Int64(nanos) / 1000
  }

  /// The current time.
  public static var now: Timestamp {
    Timestamp(microsecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()))
  }

  /// Whole seconds since the epoch (floor).
  public var seconds: Int64 {
    microsecondsSinceEpoch >= 0 ? microsecondsSinceEpoch / 1_000_000 : (microsecondsSinceEpoch - 999_999) / 1_000_000
  }

  /// The nanoseconds past ``seconds``.
  public var nanos: Int32 { Int32((microsecondsSinceEpoch - seconds * 1_000_000) * 1000) }

  /// Midnight UTC at the start of `day`.
  public init(midnightOf day: CalendarDate) {
    self.init(microsecondsSinceEpoch: Int64(day.daysSinceEpoch) * 86_400 * 1_000_000)
  }

  /// The UTC day this instant falls on.
  public var utcDate: CalendarDate {
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let (year, month, day) = CalendarDate.civil(fromDaysSinceEpoch: days)
    return CalendarDate(year: Int(year), month: Int(month), day: Int(day)) ?? CalendarDate(year: 1970, month: 1, day: 1)!
  }

  /// RFC 3339 in UTC with microseconds, e.g. `2026-11-24T10:30:00.000000Z`.
  public var rfc3339: String {
    // Civil date from days since the epoch, no formatter needed.
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    let (year, month, day) = CalendarDate.civil(fromDaysSinceEpoch: days)
    func pad(_ value: Int64, _ width: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    let micros = microsecondsSinceEpoch - seconds * 1_000_000
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
      + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))Z"
  }

  /// The instant `duration` later (earlier when negative), to the microsecond.
  public static func + (lhs: Self, rhs: Duration) -> Self {
    let (seconds, attoseconds) = rhs.components
    return Self(microsecondsSinceEpoch: lhs.microsecondsSinceEpoch + seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
  }

  /// Orders by time.
  public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch }
}
