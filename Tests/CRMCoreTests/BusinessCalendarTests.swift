import CRMCore
import Foundation
import PropertyBased
import Testing

@Suite("Business calendars")
struct BusinessCalendarTests {
  /// An instant from a UTC wall-clock time.
  static func utc(_ text: String) -> Timestamp {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    let date = formatter.date(from: text)!
    return Timestamp(microsecondsSinceEpoch: Int64(date.timeIntervalSince1970) * 1_000_000)
  }

  static func minutes(_ duration: Duration) -> Int64 { duration.components.seconds / 60 }

  /// Monday to Friday, `from` to `to` o'clock.
  static func weekdays(_ zone: String, from: Int = 9, to: Int = 17, holidays: Set<CalendarDate> = []) throws
    -> BusinessCalendar
  {
    try BusinessCalendar(
      timeZone: zone, intervals: (1...5).map { .init(weekday: $0, start: from * 60, minutes: (to - from) * 60) },
      holidays: holidays)
  }

  @Test("24×7 in UTC is exactly 1,440 minutes a day, midnight after midnight")
  func alwaysOpenDays() throws {
    let calendar = try BusinessCalendar.alwaysOpen()
    let start = Self.utc("2026-01-01T00:00:00Z")
    for days in [1, 2, 7, 30, 365] {
      let end = Timestamp(microsecondsSinceEpoch: start.microsecondsSinceEpoch + Int64(days) * 86_400_000_000)
      #expect(Self.minutes(calendar.businessTime(from: start, to: end)) == Int64(days) * 1_440)
      #expect(calendar.adding(.seconds(days * 86_400), to: start) == end)
    }
    #expect(calendar.isOpen(at: Self.utc("2026-05-03T23:59:59Z")) && calendar.isOpen(at: Self.utc("2026-05-04T00:00:00Z")))
  }

  @Test("24×7 in a zone with DST counts the real hours of the changeover days: 23 and 25")
  func alwaysOpenAcrossDST() throws {
    let berlin = try BusinessCalendar.alwaysOpen(timeZone: "Europe/Berlin")
    // Local midnight to local midnight on the two changeover days of 2026.
    #expect(Self.minutes(berlin.businessTime(from: Self.utc("2026-03-28T23:00:00Z"), to: Self.utc("2026-03-29T22:00:00Z"))) == 23 * 60)
    #expect(Self.minutes(berlin.businessTime(from: Self.utc("2026-10-24T22:00:00Z"), to: Self.utc("2026-10-25T23:00:00Z"))) == 25 * 60)
  }

  @Test("Berlin office hours across the spring change: Friday 15:00 CET + 8 h = Monday 15:00 CEST")
  func berlinSpring() throws {
    let berlin = try Self.weekdays("Europe/Berlin")
    // Friday 2026-03-27 15:00 CET = 14:00Z; the clocks go forward on Sunday the 29th.
    let due = try #require(berlin.adding(.seconds(8 * 3600), to: Self.utc("2026-03-27T14:00:00Z")))
    #expect(due == Self.utc("2026-03-30T13:00:00Z"))  // Monday 15:00 CEST
    #expect(Self.minutes(berlin.businessTime(from: Self.utc("2026-03-27T14:00:00Z"), to: due)) == 8 * 60)
  }

  @Test("Berlin: an interval over the autumn change lasts an hour longer; New York's changes likewise")
  func changesInsideIntervals() throws {
    // Sunday 2026-10-25 00:00–06:00 local: the clocks go back at 03:00, so it is 7 real hours.
    let night = try BusinessCalendar(timeZone: "Europe/Berlin", intervals: [.init(weekday: 7, start: 0, minutes: 360)])
    #expect(Self.minutes(night.businessTime(from: Self.utc("2026-10-24T00:00:00Z"), to: Self.utc("2026-10-26T00:00:00Z"))) == 7 * 60)
    // Sunday 2026-03-29 00:00–06:00: forward at 02:00, 5 real hours.
    #expect(Self.minutes(night.businessTime(from: Self.utc("2026-03-28T00:00:00Z"), to: Self.utc("2026-03-30T00:00:00Z"))) == 5 * 60)
    let newYork = try BusinessCalendar(timeZone: "America/New_York", intervals: [.init(weekday: 7, start: 0, minutes: 1440)])
    #expect(Self.minutes(newYork.businessTime(from: Self.utc("2026-03-07T00:00:00Z"), to: Self.utc("2026-03-10T00:00:00Z"))) == 23 * 60)
    #expect(Self.minutes(newYork.businessTime(from: Self.utc("2026-10-31T00:00:00Z"), to: Self.utc("2026-11-03T00:00:00Z"))) == 25 * 60)
    // A New York office day after the change is 09:00–17:00 EDT = 13:00–21:00Z.
    let office = try Self.weekdays("America/New_York")
    #expect(office.nextOpening(atOrAfter: Self.utc("2026-03-07T12:00:00Z")) == Self.utc("2026-03-09T13:00:00Z"))
    #expect(office.nextOpening(atOrAfter: Self.utc("2026-03-06T12:00:00Z")) == Self.utc("2026-03-06T14:00:00Z"))
  }

  @Test("an interval may cross midnight: Friday 22:00 for 10 hours runs into Saturday")
  func crossingMidnight() throws {
    let nights = try BusinessCalendar(timeZone: "UTC", intervals: [.init(weekday: 5, start: 22 * 60, minutes: 600)])
    // Friday 2026-06-05 23:00 + 3 h = Saturday 02:00.
    #expect(nights.adding(.seconds(3 * 3600), to: Self.utc("2026-06-05T23:00:00Z")) == Self.utc("2026-06-06T02:00:00Z"))
    #expect(nights.isOpen(at: Self.utc("2026-06-06T07:59:59Z")) && !nights.isOpen(at: Self.utc("2026-06-06T08:00:00Z")))
    // What runs out at closing time is due at the next opening, a week later.
    #expect(nights.adding(.seconds(10 * 3600), to: Self.utc("2026-06-05T22:00:00Z")) == Self.utc("2026-06-12T22:00:00Z"))
  }

  @Test("holidays close their whole local day; the server's own zone plays no part")
  func holidays() throws {
    let christmas = [CalendarDate(year: 2026, month: 12, day: 24)!, CalendarDate(year: 2026, month: 12, day: 25)!]
    let shanghai = try Self.weekdays("Asia/Shanghai", holidays: Set(christmas))
    // Wednesday 2026-12-23 16:00 CST (08:00Z) + 2 h: one hour on Wednesday, the rest on Monday the 28th.
    #expect(shanghai.adding(.seconds(2 * 3600), to: Self.utc("2026-12-23T08:00:00Z")) == Self.utc("2026-12-28T02:00:00Z"))
    #expect(!shanghai.isOpen(at: Self.utc("2026-12-24T03:00:00Z")))
    #expect(Self.minutes(shanghai.businessTime(from: Self.utc("2026-12-21T00:00:00Z"), to: Self.utc("2026-12-28T00:00:00Z"))) == 3 * 8 * 60)
  }

  @Test("bad calendars name the offending field")
  func validation() {
    func fields(_ body: () throws -> BusinessCalendar) -> [String] {
      do {
        _ = try body()
        return []
      } catch let error as CRMError {
        guard case .invalidArgument(let violations) = error else { return ["?"] }
        return violations.map(\.field)
      } catch {
        return ["?"]
      }
    }
    #expect(fields { try BusinessCalendar(timeZone: "Mars/Olympus", intervals: [.init(weekday: 1, start: 0, minutes: 60)]) } == ["time_zone"])
    #expect(fields { try BusinessCalendar(timeZone: "UTC", intervals: []) } == ["intervals"])
    #expect(
      fields { try BusinessCalendar(timeZone: "UTC", intervals: [.init(weekday: 8, start: 1440, minutes: 0)]) }
        == ["intervals[0].weekday", "intervals[0].start", "intervals[0].minutes"])
  }

  @Test("identities over random calendars, zones and instants: add∘between, additivity, monotonicity")
  func identities() throws {
    var random = SplitMix64(seed: 0x5EED_CA1E)
    // Spans of up to 60 days around the 2026 changes, so DST days are in most of them.
    let bases = [Self.utc("2026-02-20T00:00:00Z"), Self.utc("2026-09-25T00:00:00Z")].map(\.microsecondsSinceEpoch)
    let span: Int64 = 60 * 86_400 * 1_000_000
    for round in 0..<60 {
      let base = bases[round % 2]
      let calendar = try Self.randomCalendar(&random)
      for _ in 0..<5 {
        var points = (0..<3).map { _ in Timestamp(microsecondsSinceEpoch: base + Int64(random.next(below: UInt64(span)))) }
        points.sort()
        let (t, u, v) = (points[0], points[1], points[2])
        let tu = calendar.businessTime(from: t, to: u)
        let uv = calendar.businessTime(from: u, to: v)
        let tv = calendar.businessTime(from: t, to: v)
        #expect(tu + uv == tv, "additivity")
        #expect(tu <= tv, "monotonic in the end")
        #expect(calendar.adding(tu, to: t) == calendar.nextOpening(atOrAfter: u), "add(t, between(t, u)) is u's next opening")
        if let due = calendar.adding(tu, to: t) {
          #expect(calendar.businessTime(from: t, to: due) == tu, "between(t, add(t, d)) = d")
          #expect(calendar.isOpen(at: due), "due times are open instants")
          #expect(calendar.adding(uv, to: due) == calendar.adding(tu + uv, to: t), "add(add(t, a), b) = add(t, a + b)")
        }
      }
    }
  }

  static let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "Asia/Shanghai"]

  /// A calendar of 1-5 intervals (some crossing midnight), up to 3 holidays in 2026, in one of `zones`.
  static func randomCalendar(_ random: inout SplitMix64) throws -> BusinessCalendar {
    let intervals = (0..<Int(random.next(below: 5)) + 1).map { _ in
      BusinessCalendar.Interval(
        weekday: Int(random.next(below: 7)) + 1, start: Int(random.next(below: 96)) * 15,
        minutes: Int(random.next(below: 72) + 1) * 15)
    }
    let holidays = Set(
      (0..<Int(random.next(below: 4))).map { _ in
        CalendarDate(year: 2026, month: Int(random.next(below: 12)) + 1, day: Int(random.next(below: 28)) + 1)!
      })
    return try BusinessCalendar(
      timeZone: zones[Int(random.next(below: UInt64(zones.count)))], intervals: intervals, holidays: holidays)
  }

  @Test("property (swift-property-based): add-between is the next opening, additivity, monotonicity, round trips")
  func identitiesProperty() async throws {
    let span = 60 * 86_400 * 1_000_000
    let base = Self.utc("2026-03-01T00:00:00Z").microsecondsSinceEpoch
    // The calendar comes from a generated seed (so a failure names it); the three instants are
    // generated offsets within 60 days of March or of late September (both DST changes in reach).
    await propertyCheck(
      count: 300, input: Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...span), Gen.int(in: 0...span), Gen.int(in: 0...span)
    ) { seed, a, b, c in
      var random = SplitMix64(seed: UInt64(seed))
      guard let calendar = try? Self.randomCalendar(&random) else {
        Issue.record("calendar \(seed) did not build")
        return
      }
      let start = base + (seed % 2 == 0 ? 0 : 210 * 86_400 * 1_000_000)
      let points = [a, b, c].sorted().map { Timestamp(microsecondsSinceEpoch: start + Int64($0)) }
      let (t, u, v) = (points[0], points[1], points[2])
      let tu = calendar.businessTime(from: t, to: u)
      let uv = calendar.businessTime(from: u, to: v)
      #expect(tu + uv == calendar.businessTime(from: t, to: v), "additivity")
      #expect(tu <= calendar.businessTime(from: t, to: v), "monotonicity")
      #expect(calendar.adding(tu, to: t) == calendar.nextOpening(atOrAfter: u), "add(t, between(t, u)) = u's next opening")
      if let due = calendar.adding(tu, to: t) {
        #expect(calendar.businessTime(from: t, to: due) == tu, "between(t, add(t, d)) = d")
      }
    }
  }
}

/// A small seeded generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
}
