public import Foundation

/// When a team works: an IANA time zone, weekly working intervals and dated holidays. SLA clocks
/// measure business time with it and compute due times from it.
///
/// Intervals are wall-clock times in the calendar's zone and may cross midnight (Friday 22:00 for
/// 10 hours ends Saturday 08:00); 24×7 is one interval of a whole week, so it has no gap at midnight
/// (the "1 minute lost per day" of calendars written as 00:00–23:59). An interval's start and end are
/// turned into instants in the zone, so a DST change inside an interval makes it an hour shorter or
/// longer, as the clock on the wall does. A holiday closes its whole local day. Nothing here reads the
/// process's time zone or clock.
///
/// The arithmetic is exact to the microsecond and pure: ``businessTime(from:to:)`` is the open time
/// between two instants; ``adding(_:to:)`` is the first open instant at which that much business time
/// has passed — so a target that runs out exactly at closing time is due at the next opening, the
/// first moment the target can be exceeded — and `adding(businessTime(from: t, to: u), to: t)` is the
/// first open instant at or after `u`.
public struct BusinessCalendar: Sendable, Hashable {
  /// A weekly working interval: from `start` (minutes after local midnight) on `weekday`, for `minutes`.
  public struct Interval: Sendable, Hashable, Codable {
    /// ISO weekday: 1 Monday … 7 Sunday.
    public var weekday: Int
    /// Minutes after local midnight, 0 ..< 1440.
    public var start: Int
    /// Length in wall-clock minutes, 1 … 10,080 (a week).
    public var minutes: Int

    /// An interval; see the properties for the ranges ``BusinessCalendar/init(timeZone:intervals:holidays:)`` accepts.
    public init(weekday: Int, start: Int, minutes: Int) {
      self.weekday = weekday
      self.start = start
      self.minutes = minutes
    }
  }

  /// The IANA zone the intervals and holidays are in.
  public let timeZone: TimeZone
  /// The weekly intervals (they may overlap; overlapping ones count once).
  public let intervals: [Interval]
  /// Whole local days on which nothing is open.
  public let holidays: Set<CalendarDate>
  let calendar: Calendar

  /// How far ahead ``adding(_:to:)`` and ``nextOpening(atOrAfter:)`` look before giving up (a calendar
  /// whose every working day is a holiday).
  static let searchLimitDays = 3_660

  /// A calendar, checked: a known IANA zone, at least one interval, each in range.
  ///
  /// - Throws: ``CRMError/invalidArgument(_:)`` naming `time_zone` or `intervals[i]`.
  public init(timeZone identifier: String, intervals: [Interval], holidays: Set<CalendarDate> = []) throws(CRMError) {
    var violations = Violations()
    let zone = TimeZone(identifier: identifier)
    if zone == nil || identifier.isEmpty {
      violations.add("time_zone", "must be an IANA time zone such as Europe/Berlin", reason: "INVALID_FORMAT")
    }
    if intervals.isEmpty { violations.add("intervals", "name at least one working interval", reason: "REQUIRED") }
    for (index, interval) in intervals.enumerated() {
      if !(1...7).contains(interval.weekday) {
        violations.add("intervals[\(index)].weekday", "must be 1 (Monday) to 7 (Sunday)", reason: "OUT_OF_RANGE")
      }
      if !(0..<1440).contains(interval.start) {
        violations.add("intervals[\(index)].start", "must be 0 to 1439 minutes after midnight", reason: "OUT_OF_RANGE")
      }
      if !(1...10_080).contains(interval.minutes) {
        violations.add("intervals[\(index)].minutes", "must be 1 to 10080 (a week)", reason: "OUT_OF_RANGE")
      }
    }
    try violations.check()
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = zone!
    self.timeZone = zone!
    self.intervals = intervals
    self.holidays = holidays
    self.calendar = calendar
  }

  /// Open all the time, in `timeZone` (which then only matters for holidays).
  public static func alwaysOpen(timeZone identifier: String = "UTC", holidays: Set<CalendarDate> = []) throws(CRMError)
    -> BusinessCalendar
  {
    try BusinessCalendar(timeZone: identifier, intervals: [Interval(weekday: 1, start: 0, minutes: 10_080)], holidays: holidays)
  }

  /// Elapsed time: open all the time in UTC, no holidays. (Cannot fail: a known zone, one valid interval.)
  public static let elapsedTime: BusinessCalendar = try! alwaysOpen()

  /// True when `instant` is inside a working interval and not on a holiday.
  public func isOpen(at instant: Timestamp) -> Bool {
    let time = instant.microsecondsSinceEpoch
    return windows(from: time, to: time + 1).contains { $0.contains(time) }
  }

  /// The business time between two instants (zero when `end` is not after `start`).
  public func businessTime(from start: Timestamp, to end: Timestamp) -> Duration {
    guard end > start else { return .zero }
    let micros = windows(from: start.microsecondsSinceEpoch, to: end.microsecondsSinceEpoch)
      .reduce(Int64(0)) { $0 + ($1.upperBound - $1.lowerBound) }
    return .microseconds(micros)
  }

  /// The first open instant at or after `instant`; `nil` if nothing opens within ten years.
  public func nextOpening(atOrAfter instant: Timestamp) -> Timestamp? {
    adding(.zero, to: instant)
  }

  /// The first open instant by which `businessTime` of open time has passed since `start`; `nil` if
  /// the calendar does not open enough within ten years. A negative duration counts as zero.
  public func adding(_ businessTime: Duration, to start: Timestamp) -> Timestamp? {
    var remaining = max(0, Self.microseconds(businessTime))
    var cursor = start.microsecondsSinceEpoch
    let chunk: Int64 = 14 * 86_400 * 1_000_000
    let limit = cursor + Int64(Self.searchLimitDays) * 86_400 * 1_000_000
    while cursor < limit {
      for window in windows(from: cursor, to: cursor + chunk) {
        let length = window.upperBound - window.lowerBound
        if remaining < length {
          return Timestamp(microsecondsSinceEpoch: window.lowerBound + remaining)
        }
        remaining -= length
      }
      cursor += chunk
    }
    return nil
  }

  static func microseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
  }

  // MARK: - Open windows

  /// The open time between two instants (microseconds), as sorted, disjoint, non-empty ranges clipped
  /// to `[start, end)`.
  func windows(from start: Int64, to end: Int64) -> [Range<Int64>] {
    guard end > start else { return [] }
    // An interval lasts up to a week and may start on the local day before: look a week and a day back.
    let first = localDate(start).adding(days: -8)
    let last = localDate(end).adding(days: 1)
    var open: [Range<Int64>] = []
    var day = first
    while day <= last {
      for interval in intervals where interval.weekday == day.isoWeekday {
        let opens = instant(day, minute: interval.start)
        let endMinute = interval.start + interval.minutes
        let closes = instant(day.adding(days: endMinute / 1440), minute: endMinute % 1440)
        if closes > opens { open.append(opens..<closes) }
      }
      day = day.adding(days: 1)
    }
    var merged = Self.merge(open)
    if !holidays.isEmpty {
      let closed = holidays.filter { $0 >= first && $0 <= last.adding(days: 8) }.sorted().map { holiday in
        instant(holiday, minute: 0)..<instant(holiday.adding(days: 1), minute: 0)
      }
      merged = Self.subtract(Self.merge(closed), from: merged)
    }
    return merged.compactMap { window in
      let clipped = max(window.lowerBound, start)..<max(min(window.upperBound, end), max(window.lowerBound, start))
      return clipped.isEmpty ? nil : clipped
    }
  }

  /// Sorted ranges with overlapping and touching ones joined.
  static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
    var result: [Range<Int64>] = []
    for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !range.isEmpty {
      if let last = result.last, range.lowerBound <= last.upperBound {
        result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
      } else {
        result.append(range)
      }
    }
    return result
  }

  /// `ranges` without the parts covered by `holes` (both sorted and disjoint).
  static func subtract(_ holes: [Range<Int64>], from ranges: [Range<Int64>]) -> [Range<Int64>] {
    var result: [Range<Int64>] = []
    for range in ranges {
      var pieces = [range]
      for hole in holes where hole.overlaps(range) {
        pieces = pieces.flatMap { piece -> [Range<Int64>] in
          guard hole.overlaps(piece) else { return [piece] }
          return [piece.lowerBound..<max(piece.lowerBound, hole.lowerBound), min(piece.upperBound, hole.upperBound)..<piece.upperBound]
            .filter { !$0.isEmpty }
        }
      }
      result += pieces
    }
    return result
  }

  /// The local date of an instant, in the calendar's zone.
  func localDate(_ micros: Int64) -> CalendarDate {
    let date = Date(timeIntervalSince1970: Double(micros.dividedRoundingDown(by: 1_000_000)))
    let parts = calendar.dateComponents([.year, .month, .day], from: date)
    return CalendarDate(year: parts.year!, month: parts.month!, day: parts.day!)!
  }

  /// The instant of a local wall-clock time. A time in a spring-forward gap maps to the instant the
  /// zone's rules give it (the hour after); one repeated by a fall-back maps to its first occurrence.
  func instant(_ date: CalendarDate, minute: Int) -> Int64 {
    let components = DateComponents(
      calendar: calendar, timeZone: timeZone, year: date.year, month: date.month, day: date.day, hour: minute / 60,
      minute: minute % 60)
    let seconds = calendar.date(from: components)!.timeIntervalSince1970
    return Int64(seconds.rounded()) * 1_000_000
  }
}

extension Int64 {
  /// Floor division.
  func dividedRoundingDown(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
  }
}
