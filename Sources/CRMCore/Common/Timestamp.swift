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

  /// Orders by time.
  public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch }
}
