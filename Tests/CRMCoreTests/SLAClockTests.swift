import CRMCore
import Foundation
import Testing

@Suite("SLA clocks")
struct SLAClockTests {
  static let utc = BusinessCalendarTests.utc
  /// Berlin, Monday to Friday 09:00–17:00. In June, 09:00 CEST is 07:00Z.
  static func berlin() throws -> BusinessCalendar { try BusinessCalendarTests.weekdays("Europe/Berlin") }
  static func status(_ events: [SLAClockEvent], _ calendar: BusinessCalendar, at now: String) throws -> SLAStatus {
    try #require(SLAClock.status(of: events, calendar: calendar, at: utc(now)))
  }
  static func hours(_ duration: Duration) -> Double { Double(duration.components.seconds) / 3600 }

  @Test("a business-hours target counts open time only: 4 h from Monday 09:00 is due 13:00, warns at 12:00")
  func plainTarget() throws {
    let events = [SLAClockEvent(.activated(.init(minutes: 240, businessHours: true, warningMinutes: 60)), at: Self.utc("2026-06-01T07:00:00Z"))]
    let early = try Self.status(events, Self.berlin(), at: "2026-06-01T08:00:00Z")
    #expect(early.state == .active && early.dueTime == Self.utc("2026-06-01T11:00:00Z"))
    #expect(early.warningTime == Self.utc("2026-06-01T10:00:00Z") && !early.isWarning && Self.hours(early.elapsed) == 1)
    let late = try Self.status(events, Self.berlin(), at: "2026-06-01T10:30:00Z")
    #expect(late.isWarning && late.state == .active && late.warningTime == Self.utc("2026-06-01T10:00:00Z"))
    let over = try Self.status(events, Self.berlin(), at: "2026-06-01T12:00:00Z")
    #expect(over.state == .breached && over.breachTime == Self.utc("2026-06-01T11:00:00Z"))
  }

  @Test("a pause stops the clock; a priority change while paused keeps the time counted and paused")
  func pauseAndRetarget() throws {
    let t0 = Self.utc("2026-06-01T07:00:00Z")  // Monday 09:00
    let events = [
      SLAClockEvent(.activated(.init(minutes: 240, businessHours: true)), at: t0),
      SLAClockEvent(.paused, at: Self.utc("2026-06-01T08:00:00Z")),  // pending at 10:00, 1 h counted
      SLAClockEvent(.retargeted(.init(minutes: 120, businessHours: true)), at: Self.utc("2026-06-01T09:00:00Z")),
      SLAClockEvent(.resumed, at: Self.utc("2026-06-01T12:00:00Z")),  // open again at 14:00
    ]
    let paused = try Self.status(Array(events.prefix(3)), Self.berlin(), at: "2026-06-01T10:00:00Z")
    #expect(paused.state == .paused && paused.dueTime == nil && Self.hours(paused.elapsed) == 1 && Self.hours(paused.paused) == 2)
    let resumed = try Self.status(events, Self.berlin(), at: "2026-06-01T12:30:00Z")
    // 2 h target, 1 h counted before the pause: due one open hour after the resume, 15:00 CEST.
    #expect(resumed.state == .active && resumed.dueTime == Self.utc("2026-06-01T13:00:00Z"))
    #expect(Self.hours(resumed.elapsed) == 1.5 && Self.hours(resumed.paused) == 4 && resumed.target.minutes == 120)
  }

  @Test("created in a pausing status: nothing counts until it resumes")
  func createdPaused() throws {
    let t0 = Self.utc("2026-06-01T07:00:00Z")
    let events = [
      SLAClockEvent(.activated(.init(minutes: 60, businessHours: false)), at: t0), SLAClockEvent(.paused, at: t0),
    ]
    let days = try Self.status(events, Self.berlin(), at: "2026-06-05T07:00:00Z")
    #expect(days.state == .paused && days.elapsed == .zero && days.breachTime == nil && Self.hours(days.paused) == 96)
  }

  @Test("met in time is achieved; met late stays breached; cancelled is cancelled")
  func endings() throws {
    let t0 = Self.utc("2026-06-01T07:00:00Z")
    let target = SLATarget(minutes: 30, businessHours: false)
    let inTime = [SLAClockEvent(.activated(target), at: t0), SLAClockEvent(.fulfilled, at: Self.utc("2026-06-01T07:20:00Z"))]
    #expect(try Self.status(inTime, Self.berlin(), at: "2026-06-02T00:00:00Z").state == .achieved)
    let late = [SLAClockEvent(.activated(target), at: t0), SLAClockEvent(.fulfilled, at: Self.utc("2026-06-01T08:00:00Z"))]
    let lateStatus = try Self.status(late, Self.berlin(), at: "2026-06-02T00:00:00Z")
    #expect(lateStatus.state == .breached && lateStatus.breachTime == Self.utc("2026-06-01T07:30:00Z"))
    // A later re-target that would have allowed it does not undo the breach.
    let undo = late + [SLAClockEvent(.retargeted(.init(minutes: 600, businessHours: false)), at: Self.utc("2026-06-01T09:00:00Z"))]
    #expect(try Self.status(undo, Self.berlin(), at: "2026-06-02T00:00:00Z").state == .breached)
    let cancelled = [SLAClockEvent(.activated(target), at: t0), SLAClockEvent(.cancelled, at: Self.utc("2026-06-01T07:10:00Z"))]
    #expect(try Self.status(cancelled, Self.berlin(), at: "2026-06-02T00:00:00Z").state == .cancelled)
  }

  @Test("a due time set by hand sticks through re-targets until it is cleared")
  func manualDue() throws {
    let t0 = Self.utc("2026-06-01T07:00:00Z")
    let manual = Self.utc("2026-06-03T15:00:00Z")
    var events = [
      SLAClockEvent(.activated(.init(minutes: 60, businessHours: true)), at: t0),
      SLAClockEvent(.dueSet(manual), at: Self.utc("2026-06-01T07:30:00Z")),
      SLAClockEvent(.retargeted(.init(minutes: 30, businessHours: true)), at: Self.utc("2026-06-01T07:40:00Z")),
    ]
    let held = try Self.status(events, Self.berlin(), at: "2026-06-02T07:00:00Z")
    #expect(held.state == .active && held.dueTime == manual)
    events.append(SLAClockEvent(.dueSet(nil), at: Self.utc("2026-06-02T07:00:00Z")))
    // Cleared: the 30-minute target was spent long ago (counted since Monday 09:00).
    #expect(try Self.status(events, Self.berlin(), at: "2026-06-02T07:10:00Z").state == .breached)
  }

  @Test("calendar-time targets count elapsed time across a DST change: 24 h from Saturday noon is Sunday 13:00 in Berlin")
  func elapsedAcrossDST() throws {
    let events = [SLAClockEvent(.activated(.init(minutes: 24 * 60, businessHours: false)), at: Self.utc("2026-03-28T11:00:00Z"))]
    let status = try Self.status(events, Self.berlin(), at: "2026-03-28T12:00:00Z")
    // Saturday 12:00 CET (11:00Z) + 24 real hours = Sunday 11:00Z, 13:00 CEST: the lost hour is not counted.
    #expect(status.dueTime == Self.utc("2026-03-29T11:00:00Z"))
  }

  @Test("the job's records do not fire twice: a breach noted in the log is the breach")
  func recordedTransitions() throws {
    let t0 = Self.utc("2026-06-01T07:00:00Z")
    let events = [
      SLAClockEvent(.activated(.init(minutes: 30, businessHours: false, warningMinutes: 10)), at: t0),
      SLAClockEvent(.warned, at: Self.utc("2026-06-01T07:20:00Z")),
      SLAClockEvent(.breached, at: Self.utc("2026-06-01T07:30:00Z")),
    ]
    let status = try Self.status(events, Self.berlin(), at: "2026-06-01T08:00:00Z")
    #expect(status.state == .breached && status.breachTime == Self.utc("2026-06-01T07:30:00Z"))
    #expect(status.warningTime == Self.utc("2026-06-01T07:20:00Z"))
    #expect(SLAClock.status(of: [SLAClockEvent(.paused, at: t0)], calendar: try Self.berlin(), at: t0) == nil)
  }
}
