public import Foundation

/// The SLA metrics a policy can target.
public enum SLAMetric: String, Sendable, Hashable, Codable, CaseIterable {
  /// Creation to the first public agent reply.
  case firstReply = "first_reply"
  /// The oldest unanswered customer comment to the next public agent reply (re-armed per comment).
  case nextReply = "next_reply"
  /// Creation to solved.
  case resolution
}

/// One metric's target under a policy: how long, measured in business or calendar time, and when to
/// warn before it runs out.
public struct SLATarget: Sendable, Hashable, Codable {
  /// The target, at least one minute.
  public var minutes: Int
  /// True to count only the calendar's open time; false for elapsed (calendar) time.
  public var businessHours: Bool
  /// Minutes before the due time at which the instance warns; `nil` for no warning.
  public var warningMinutes: Int?
  /// The business calendar business-hours targets count by (the policy's); `nil` for the tenant's
  /// default calendar.
  public var calendarID: UUID?

  /// A target; ``SLAClock`` treats fewer than one minute as one.
  public init(minutes: Int, businessHours: Bool, warningMinutes: Int? = nil, calendarID: UUID? = nil) {
    self.minutes = minutes
    self.businessHours = businessHours
    self.warningMinutes = warningMinutes
    self.calendarID = calendarID
  }
}

/// One entry of a metric instance's append-only clock log.
///
/// The log is the truth: due times, states, elapsed and paused time are derived from it by
/// ``SLAClock``, so a clock can be recomputed (after a holiday is added, say) and audited. `warned`
/// and `breached` are written by the job that fires them, once each, which is what keeps a
/// re-evaluation from firing them again.
public struct SLAClockEvent: Sendable, Hashable, Codable {
  /// What happened.
  public enum Kind: Sendable, Hashable, Codable {
    /// The instance starts, with its target.
    case activated(SLATarget)
    /// A pausing status began: time stops counting.
    case paused
    /// The pause ended.
    case resumed
    /// The policy or priority changed the target; time already counted and paused stays credited.
    case retargeted(SLATarget)
    /// An agent set the due time by hand (it sticks until cleared); `nil` clears it.
    case dueSet(Timestamp?)
    /// The metric was met (a reply, a solve).
    case fulfilled
    /// The instance no longer applies (no policy matches, the ticket was merged away).
    case cancelled
    /// The job recorded the warning it sent.
    case warned
    /// The job recorded the breach it announced.
    case breached
  }

  /// What happened.
  public var kind: Kind
  /// When.
  public var at: Timestamp

  /// An event.
  public init(_ kind: Kind, at: Timestamp) {
    self.kind = kind
    self.at = at
  }
}

/// Where a metric instance stands at one moment, derived from its log.
public struct SLAStatus: Sendable, Hashable {
  /// The instance's state.
  public enum State: String, Sendable, Hashable, CaseIterable {
    /// Counting.
    case active
    /// Stopped by a pausing status.
    case paused
    /// Met within its target.
    case achieved
    /// Past its target (permanent for the instance, met later or not).
    case breached
    /// No longer applies.
    case cancelled
  }

  /// The state at the moment asked about.
  public var state: State
  /// True while active past the warning time and not yet breached.
  public var isWarning: Bool
  /// The target in force.
  public var target: SLATarget
  /// When it runs out: the manual due time if one is set, else computed from the time counted so far.
  /// `nil` while paused (it moves with the pause) and once achieved or cancelled.
  public var dueTime: Timestamp?
  /// When the warning falls due (`nil` without a warning offset, or when there is no due time).
  public var warningTime: Timestamp?
  /// When the instance breached (`nil` if it has not).
  public var breachTime: Timestamp?
  /// Time counted against the target (business or calendar, as the target says).
  public var elapsed: Duration
  /// Time spent paused, measured the same way.
  public var paused: Duration
}

/// Derives an SLA metric instance's status from its clock log, with a business calendar.
///
/// Counting: time between activation and now (or fulfilment/cancellation) counts, except while
/// paused; it is measured with the calendar for business-hours targets and as elapsed time otherwise.
/// A re-target changes only the target: what was counted and paused stays credited (the GLPI bug of
/// recomputing from creation cannot happen). An instance activated and paused at the same instant
/// (a ticket created in a pausing status) has counted nothing until it resumes. A breach is permanent:
/// it happens the moment the counted time exceeds the target (or the manual due time passes) while
/// active, and a later fulfilment leaves it breached.
public enum SLAClock {
  /// The status at `now` of the instance whose log is `events` (in time order; later entries with
  /// equal times apply after earlier ones). `nil` when the log has no activation.
  public static func status(of events: [SLAClockEvent], calendar: BusinessCalendar, at now: Timestamp) -> SLAStatus? {
    status(of: events, calendars: { _ in calendar }, at: now)
  }

  /// The status at `now`, each span measured with the calendar of the target in force during it
  /// (`calendars` maps a target's ``SLATarget/calendarID`` to its calendar): a re-target onto another
  /// policy's calendar leaves the time counted under the old one as it was.
  public static func status(
    of events: [SLAClockEvent], calendars: (UUID?) -> BusinessCalendar, at now: Timestamp
  ) -> SLAStatus? {
    guard let first = events.firstIndex(where: { if case .activated = $0.kind { true } else { false } }),
      case .activated(let initial) = events[first].kind
    else { return nil }
    let elapsedCalendar = BusinessCalendar.elapsedTime
    var target = initial
    var calendar = calendars(initial.calendarID)
    func measure(_ from: Timestamp, _ to: Timestamp) -> Duration {
      (target.businessHours ? calendar : elapsedCalendar).businessTime(from: from, to: to)
    }
    var elapsed = Duration.zero
    var pausedTime = Duration.zero
    var isPaused = false
    var since = events[first].at
    var manualDue: Timestamp?
    var breachTime: Timestamp?
    var warningReachedAt: Timestamp?
    var ended: SLAStatus.State?

    /// When the warning falls due counting from `start` with the time counted so far: the warning
    /// offset before a manual due time, else when the counted time reaches the target less the offset.
    /// `nil` when the target has no warning.
    func warningTime(countingFrom start: Timestamp) -> Timestamp? {
      guard let offset = target.warningMinutes else { return nil }
      if let manualDue { return Timestamp(microsecondsSinceEpoch: manualDue.microsecondsSinceEpoch - Int64(offset) * 60_000_000) }
      let point = Duration.seconds(max(0, max(1, target.minutes) - offset) * 60)
      return (target.businessHours ? calendar : elapsedCalendar).adding(max(.zero, point - elapsed), to: start)
    }

    /// Counts the span up to `moment` (not past `now`), noting a breach inside it.
    func advance(to moment: Timestamp) {
      let until = min(moment, now)
      guard until > since else { return }
      if isPaused {
        pausedTime += measure(since, until)
      } else {
        if breachTime == nil, let due = manualDue ?? dueTime(after: elapsed, from: since), due < until {
          breachTime = due
        }
        if warningReachedAt == nil, let warnAt = warningTime(countingFrom: since), warnAt < until {
          warningReachedAt = max(warnAt, since)
        }
        elapsed += measure(since, until)
      }
      since = until
    }
    /// When the counted time would exceed the target, counting from `start` with `counted` so far.
    func dueTime(after counted: Duration, from start: Timestamp) -> Timestamp? {
      let total = Duration.seconds(max(1, target.minutes) * 60)
      let left = max(.zero, total - counted)
      return (target.businessHours ? calendar : elapsedCalendar).adding(left, to: start)
    }

    for event in events[(first + 1)...] where ended == nil {
      if event.at > now { break }
      advance(to: event.at)
      switch event.kind {
      case .activated(let newTarget), .retargeted(let newTarget):
        if newTarget.calendarID != target.calendarID { calendar = calendars(newTarget.calendarID) }
        target = newTarget
        // The warning point moves with the target (a warning already sent stays in the log).
        warningReachedAt = nil
      case .paused:
        isPaused = true
      case .resumed:
        isPaused = false
      case .dueSet(let due):
        manualDue = due
      case .fulfilled:
        ended = breachTime == nil ? .achieved : .breached
      case .cancelled:
        ended = .cancelled
      case .breached:
        // The job's record: it fired when the clock said so; keep the earliest.
        breachTime = breachTime ?? event.at
      case .warned:
        break
      }
    }
    if ended == nil { advance(to: now) }

    var status = SLAStatus(
      state: .active, isWarning: false, target: target, dueTime: nil, warningTime: warningReachedAt, breachTime: breachTime,
      elapsed: elapsed, paused: pausedTime)
    if let ended {
      status.state = ended
      return status
    }
    if breachTime != nil {
      status.state = .breached
      status.dueTime = manualDue ?? breachTime
      return status
    }
    if isPaused {
      status.state = .paused
      status.dueTime = manualDue
      return status
    }
    status.dueTime = manualDue ?? dueTime(after: elapsed, from: now)
    // Still ahead: when the counted time will reach it from now.
    if warningReachedAt == nil { status.warningTime = warningTime(countingFrom: now) }
    status.isWarning = status.warningTime.map { $0 <= now } ?? false
    return status
  }
}
