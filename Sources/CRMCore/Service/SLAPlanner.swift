import Foundation

/// The ticket facts SLA clocks start, stop and pause on, kept on the ticket by the store.
public struct SLATicketFacts: Sendable, Hashable {
  public var status: TicketStatus
  /// Where the first-reply clock starts.
  public var createdAt: Timestamp
  /// Creation or the last reopen after a solve: where the resolution clock starts.
  public var openedAt: Timestamp
  /// The first public agent reply, if there was one.
  public var firstRepliedAt: Timestamp?
  /// The oldest customer comment no public agent reply has answered: where a next-reply clock starts.
  public var awaitingReplySince: Timestamp?

  /// Facts.
  public init(
    status: TicketStatus, createdAt: Timestamp, openedAt: Timestamp, firstRepliedAt: Timestamp? = nil,
    awaitingReplySince: Timestamp? = nil
  ) {
    self.status = status
    self.createdAt = createdAt
    self.openedAt = openedAt
    self.firstRepliedAt = firstRepliedAt
    self.awaitingReplySince = awaitingReplySince
  }
}

/// One metric instance of a ticket: its number (next reply and resolution start new instances as
/// they re-arm) and its clock log so far.
public struct SLAInstance: Sendable, Hashable {
  public var metric: SLAMetric
  /// 1 for the first instance of the metric on the ticket.
  public var number: Int
  public var events: [SLAClockEvent]

  /// An instance.
  public init(metric: SLAMetric, number: Int, events: [SLAClockEvent]) {
    self.metric = metric
    self.number = number
    self.events = events
  }

  /// True until fulfilled or cancelled.
  public var isOpen: Bool {
    !events.contains { event in
      switch event.kind {
      case .fulfilled, .cancelled: true
      default: false
      }
    }
  }

  /// True when it was met (a reply or a solve ended it).
  public var wasFulfilled: Bool { events.contains { $0.kind == .fulfilled } }

  /// The target in force: the last activation or re-target.
  public var target: SLATarget? {
    for event in events.reversed() {
      switch event.kind {
      case .activated(let target), .retargeted(let target): return target
      default: continue
      }
    }
    return nil
  }

  /// True while a pause has not been followed by a resume.
  public var isPaused: Bool {
    for event in events.reversed() {
      switch event.kind {
      case .paused: return true
      case .resumed, .activated: return false
      default: continue
      }
    }
    return false
  }
}

/// One entry to append to a metric instance's log.
public struct SLAAppend: Sendable, Hashable {
  public var metric: SLAMetric
  public var number: Int
  public var event: SLAClockEvent

  /// An append.
  public init(metric: SLAMetric, number: Int, event: SLAClockEvent) {
    self.metric = metric
    self.number = number
    self.event = event
  }
}

/// Decides what a change to a ticket does to its SLA clocks.
///
/// It is called after every change that can matter — create, status, priority, group, tags, type,
/// channel, account, a comment — with the ticket's facts as they are now, the targets of the policy
/// that matches now, and the instances so far; it returns the entries to append. Because it compares
/// what should be with what the logs say, calling it twice appends nothing the second time.
///
/// - First reply runs from creation until the first public agent reply (creating a ticket never
///   counts as one, so an agent who opens a ticket with a public comment still owes a reply).
/// - Next reply runs from the oldest unanswered customer comment after the first reply until the next
///   public agent reply; each customer comment after a reply starts a new instance.
/// - Resolution runs from creation (or the last reopen) until solved; a reopen starts a new instance.
/// - Solving or closing fulfils every running clock; a clock whose metric loses its target is
///   cancelled, one whose target changes is re-targeted (time counted and paused stays credited).
/// - The tenant's pause rules pause and resume clocks as the status changes; a ticket created in a
///   pausing status has clocks that start paused.
/// - A metric that gains a target later starts from where the metric starts (creation, the reopen,
///   the unanswered comment), so a late policy measures the same span an early one would have.
public enum SLAPlanner {
  /// The entries to append, in order. `cancelAll` ends every running clock (the ticket was merged away).
  public static func plan(
    facts: SLATicketFacts, targets: [SLAMetric: SLATarget], pauseRules: SLAPauseRules, instances: [SLAInstance],
    at now: Timestamp, cancelAll: Bool = false
  ) -> [SLAAppend] {
    var appends: [SLAAppend] = []
    let firstReplyDone =
      facts.firstRepliedAt != nil || instances.contains { $0.metric == .firstReply && $0.wasFulfilled }
    for metric in SLAMetric.allCases {
      let latest = instances.filter { $0.metric == metric }.max { $0.number < $1.number }
      // Where this metric's current span starts, or nil when it should not be running.
      let start: Timestamp?
      switch metric {
      case .firstReply:
        start = firstReplyDone || facts.status.isResolved ? nil : facts.createdAt
      case .nextReply:
        start = firstReplyDone && !facts.status.isResolved ? facts.awaitingReplySince : nil
      case .resolution:
        start = facts.status.isResolved ? nil : facts.openedAt
      }
      let pause = pauseRules.pauses(metric, in: facts.status)
      func append(_ number: Int, _ kind: SLAClockEvent.Kind, at moment: Timestamp = now) {
        appends.append(SLAAppend(metric: metric, number: number, event: SLAClockEvent(kind, at: moment)))
      }
      if let open = latest, open.isOpen {
        let started = open.events.first?.at ?? now
        if cancelAll {
          append(open.number, .cancelled)
        } else if start == nil || start.map({ $0 > started }) == true {
          // Met (a reply, a solve), or re-armed from a later point: this instance is done.
          append(open.number, .fulfilled)
          if let start, let target = targets[metric] { activate(open.number + 1, target, from: start, paused: pause) }
        } else if let target = targets[metric] {
          if open.target != target { append(open.number, .retargeted(target)) }
          if pause != open.isPaused { append(open.number, pause ? .paused : .resumed) }
        } else {
          append(open.number, .cancelled)
        }
      } else if !cancelAll, let start, let target = targets[metric] {
        // A met instance covers its span; only a later start (a new comment, a reopen) needs a new one.
        // A cancelled one (its policy stopped applying) is replaced when a target applies again.
        if let latest, latest.wasFulfilled, let started = latest.events.first?.at, start <= started { continue }
        activate((latest?.number ?? 0) + 1, target, from: start, paused: pause)
      }
      func activate(_ number: Int, _ target: SLATarget, from start: Timestamp, paused: Bool) {
        append(number, .activated(target), at: min(start, now))
        if paused { append(number, .paused) }
      }
    }
    return appends
  }
}
