import CRMCore
import Foundation
import Testing

@Suite("SLA planner")
struct SLAPlannerTests {
  static let t0 = BusinessCalendarTests.utc("2026-06-01T07:00:00Z")
  static func at(minutes: Int) -> Timestamp {
    Timestamp(microsecondsSinceEpoch: t0.microsecondsSinceEpoch + Int64(minutes) * 60_000_000)
  }
  static let targets: [SLAMetric: SLATarget] = [
    .firstReply: .init(minutes: 60, businessHours: false, warningMinutes: 15),
    .nextReply: .init(minutes: 120, businessHours: false),
    .resolution: .init(minutes: 480, businessHours: false),
  ]

  /// Applies `appends` to `instances`, as the store does.
  static func apply(_ appends: [SLAAppend], to instances: inout [SLAInstance]) {
    for append in appends {
      if let index = instances.firstIndex(where: { $0.metric == append.metric && $0.number == append.number }) {
        instances[index].events.append(append.event)
      } else {
        instances.append(SLAInstance(metric: append.metric, number: append.number, events: [append.event]))
      }
    }
  }

  /// Plans at `now`, applies, and checks a second plan appends nothing (planning is idempotent).
  static func step(
    _ facts: SLATicketFacts, _ instances: inout [SLAInstance], at now: Timestamp,
    targets: [SLAMetric: SLATarget] = targets, cancelAll: Bool = false
  ) -> [SLAAppend] {
    let appends = SLAPlanner.plan(
      facts: facts, targets: targets, pauseRules: .standard, instances: instances, at: now, cancelAll: cancelAll)
    apply(appends, to: &instances)
    let again = SLAPlanner.plan(
      facts: facts, targets: targets, pauseRules: .standard, instances: instances, at: now, cancelAll: cancelAll)
    #expect(again.isEmpty, "planning twice appended \(again)")
    return appends
  }

  static func kinds(_ appends: [SLAAppend]) -> [String] {
    appends.map { "\($0.metric.rawValue)#\($0.number) \($0.event.kind)" }
  }

  @Test("a new ticket starts first reply and resolution; a ticket created pending starts resolution paused")
  func creation() {
    var instances: [SLAInstance] = []
    let facts = SLATicketFacts(status: .new, createdAt: Self.t0, openedAt: Self.t0)
    let appends = Self.step(facts, &instances, at: Self.t0)
    #expect(Set(appends.map(\.metric)) == [.firstReply, .resolution])
    #expect(appends.allSatisfy { $0.number == 1 && $0.event.at == Self.t0 })

    var pendingInstances: [SLAInstance] = []
    let pending = SLATicketFacts(status: .pending, createdAt: Self.t0, openedAt: Self.t0)
    _ = Self.step(pending, &pendingInstances, at: Self.t0)
    let resolution = pendingInstances.first { $0.metric == .resolution }!
    #expect(resolution.isPaused)
    let status = SLAClock.status(of: resolution.events, calendar: .elapsedTime, at: Self.at(minutes: 600))!
    #expect(status.state == .paused && status.elapsed == .zero, "a clock created paused never counted")
  }

  @Test("the first public agent reply fulfils first reply; a customer comment after it arms next reply, re-armed per reply")
  func replies() {
    var instances: [SLAInstance] = []
    var facts = SLATicketFacts(status: .new, createdAt: Self.t0, openedAt: Self.t0)
    _ = Self.step(facts, &instances, at: Self.t0)
    // A customer comment before any reply is covered by first reply.
    facts.awaitingReplySince = Self.at(minutes: 5)
    #expect(Self.step(facts, &instances, at: Self.at(minutes: 5)).isEmpty)
    facts.status = .open
    facts.firstRepliedAt = Self.at(minutes: 30)
    facts.awaitingReplySince = nil
    let reply = Self.step(facts, &instances, at: Self.at(minutes: 30))
    #expect(Self.kinds(reply) == ["first_reply#1 fulfilled"])
    facts.awaitingReplySince = Self.at(minutes: 40)
    let comment = Self.step(facts, &instances, at: Self.at(minutes: 40))
    #expect(comment.count == 1 && comment[0].metric == .nextReply && comment[0].number == 1)
    // A second customer comment while waiting keeps the oldest one's clock.
    #expect(Self.step(facts, &instances, at: Self.at(minutes: 50)).isEmpty)
    facts.awaitingReplySince = nil
    #expect(Self.kinds(Self.step(facts, &instances, at: Self.at(minutes: 70))) == ["next_reply#1 fulfilled"])
    facts.awaitingReplySince = Self.at(minutes: 90)
    let again = Self.step(facts, &instances, at: Self.at(minutes: 90))
    #expect(again.map(\.number) == [2] && again[0].event.at == Self.at(minutes: 90))
  }

  @Test("pending pauses next reply and resolution, not first reply; open resumes them")
  func pauses() {
    var instances: [SLAInstance] = []
    var facts = SLATicketFacts(status: .open, createdAt: Self.t0, openedAt: Self.t0)
    _ = Self.step(facts, &instances, at: Self.t0)
    facts.status = .pending
    #expect(Self.kinds(Self.step(facts, &instances, at: Self.at(minutes: 10))) == ["resolution#1 paused"])
    facts.status = .onHold
    #expect(Self.kinds(Self.step(facts, &instances, at: Self.at(minutes: 20))) == ["resolution#1 resumed"])
  }

  @Test("a priority change re-targets running clocks and keeps paused time credited")
  func retarget() {
    var instances: [SLAInstance] = []
    var facts = SLATicketFacts(status: .open, createdAt: Self.t0, openedAt: Self.t0)
    _ = Self.step(facts, &instances, at: Self.t0)
    facts.status = .pending
    _ = Self.step(facts, &instances, at: Self.at(minutes: 60))
    var urgent = Self.targets
    urgent[.resolution] = .init(minutes: 120, businessHours: false)
    let appends = Self.step(facts, &instances, at: Self.at(minutes: 90), targets: urgent)
    #expect(Self.kinds(appends).contains("resolution#1 retargeted(CRMCore.SLATarget(minutes: 120, businessHours: false, warningMinutes: nil, calendarID: nil))"))
    facts.status = .open
    _ = Self.step(facts, &instances, at: Self.at(minutes: 180), targets: urgent)
    let resolution = instances.first { $0.metric == .resolution }!
    let status = SLAClock.status(of: resolution.events, calendar: .elapsedTime, at: Self.at(minutes: 180))!
    // 60 min counted before the pause, 120 paused: due 60 min after the resume.
    #expect(status.elapsed == .seconds(3600) && status.paused == .seconds(7200) && status.dueTime == Self.at(minutes: 240))
  }

  @Test("losing the policy cancels; a policy applying later measures from creation, not from the change")
  func policyComesAndGoes() {
    var instances: [SLAInstance] = []
    let facts = SLATicketFacts(status: .open, createdAt: Self.t0, openedAt: Self.t0)
    #expect(Self.step(facts, &instances, at: Self.t0, targets: [:]).isEmpty)
    let late = Self.step(facts, &instances, at: Self.at(minutes: 90))
    #expect(late.allSatisfy { $0.event.at == Self.t0 } && late.count == 2)
    let firstReply = instances.first { $0.metric == .firstReply }!
    #expect(SLAClock.status(of: firstReply.events, calendar: .elapsedTime, at: Self.at(minutes: 90))!.state == .breached)
    let gone = Self.step(facts, &instances, at: Self.at(minutes: 100), targets: [:])
    #expect(gone.allSatisfy { $0.event.kind == .cancelled } && gone.count == 2)
    let back = Self.step(facts, &instances, at: Self.at(minutes: 110))
    #expect(back.filter { $0.event.kind != .cancelled }.map(\.number).allSatisfy { $0 == 2 } && back.count == 2)
  }

  @Test("solving fulfils every running clock; a reopen starts a new resolution instance; a merge cancels")
  func solveReopenMerge() {
    var instances: [SLAInstance] = []
    var facts = SLATicketFacts(status: .new, createdAt: Self.t0, openedAt: Self.t0)
    _ = Self.step(facts, &instances, at: Self.t0)
    facts.status = .solved
    let solved = Self.step(facts, &instances, at: Self.at(minutes: 30))
    #expect(Set(Self.kinds(solved)) == ["first_reply#1 fulfilled", "resolution#1 fulfilled"])
    facts.status = .open
    facts.openedAt = Self.at(minutes: 60)
    facts.awaitingReplySince = Self.at(minutes: 60)
    let reopened = Self.step(facts, &instances, at: Self.at(minutes: 60))
    // First reply was met by the solve: the reopening comment arms next reply, and resolution restarts.
    #expect(Set(Self.kinds(reopened).map { String($0.prefix(14)) }) == ["next_reply#1 a", "resolution#2 a"])
    facts.status = .closed
    let merged = Self.step(facts, &instances, at: Self.at(minutes: 70), cancelAll: true)
    #expect(merged.count == 2 && merged.allSatisfy { $0.event.kind == .cancelled })
  }
}
