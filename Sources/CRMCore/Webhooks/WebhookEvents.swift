import Foundation

/// A webhook event's type: the record type and what happened to it, `lead.created`, `ticket.updated`.
public enum WebhookEventType {
  /// The past-tense verb for an operation.
  public static func verb(_ operation: ChangeOperation) -> String {
    switch operation {
    case .create: "created"
    case .update: "updated"
    case .archive: "archived"
    case .restore: "restored"
    case .merge: "merged"
    case .event: "event"
    }
  }

  /// Every operation by its verb.
  static let operations: [String: ChangeOperation] = Dictionary(
    uniqueKeysWithValues: [ChangeOperation.create, .update, .archive, .restore, .merge, .event].map { (verb($0), $0) })

  /// The type of a change to a record of `recordType`.
  public static func name(_ recordType: RecordType, _ operation: ChangeOperation) -> String {
    "\(recordType.rawValue).\(verb(operation))"
  }
}

/// What a subscription asks for: an event type, or `*` in either half (`lead.*`, `*.archived`, `*`).
public struct WebhookEventPattern: Sendable, Hashable, CustomStringConvertible {
  /// The record type, or `nil` for any.
  public var recordType: RecordType?
  /// The operation, or `nil` for any.
  public var operation: ChangeOperation?

  /// A pattern from its text, or `nil` when it names no record type or operation that exists.
  public init?(_ text: String) {
    if text == "*" {
      self.init(recordType: nil, operation: nil)
      return
    }
    let halves = text.split(separator: ".", omittingEmptySubsequences: false)
    guard halves.count == 2 else { return nil }
    var type: RecordType?
    if halves[0] != "*" {
      guard let named = RecordType(rawValue: String(halves[0])) else { return nil }
      type = named
    }
    var operation: ChangeOperation?
    if halves[1] != "*" {
      guard let named = WebhookEventType.operations[String(halves[1])] else { return nil }
      operation = named
    }
    self.init(recordType: type, operation: operation)
  }

  /// A pattern from its halves.
  public init(recordType: RecordType?, operation: ChangeOperation?) {
    self.recordType = recordType
    self.operation = operation
  }

  public var description: String {
    if recordType == nil && operation == nil { return "*" }
    return "\(recordType?.rawValue ?? "*").\(operation.map(WebhookEventType.verb) ?? "*")"
  }

  /// True when a change of this type matches.
  public func matches(_ type: RecordType, _ operation: ChangeOperation) -> Bool {
    (recordType == nil || recordType == type) && (self.operation == nil || self.operation == operation)
  }

  /// Parses a subscription's patterns (1 to 50), naming each bad one in `violations` as `field[i]`.
  public static func parse(_ texts: [String], field: String, into violations: inout Violations) -> [WebhookEventPattern] {
    if texts.isEmpty {
      violations.add(field, "name at least one event type, e.g. \"lead.created\", \"ticket.*\" or \"*\"", reason: "REQUIRED")
    }
    if texts.count > 50 { violations.add(field, "at most 50 event types", reason: "TOO_MANY") }
    var patterns: [WebhookEventPattern] = []
    for (index, text) in texts.prefix(50).enumerated() {
      guard let pattern = WebhookEventPattern(text) else {
        let types = RecordType.allCases.map(\.rawValue).joined(separator: ", ")
        violations.add(
          "\(field)[\(index)]",
          "\"\(text.prefix(64))\" is not an event type: RECORD.VERB with RECORD one of \(types) or *, "
            + "and VERB one of created, updated, archived, restored, merged or *",
          reason: "INVALID")
        continue
      }
      if !patterns.contains(pattern) { patterns.append(pattern) }
    }
    return patterns
  }
}

/// When a failed delivery is tried again: Standard Webhooks' schedule (0 s, 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 14 h, 20 h, 24 h — ten attempts over about three days), each wait stretched by up to a
/// tenth at random so endpoints that failed together are not retried together, and never sooner than
/// the endpoint's `Retry-After` asked (capped at a day).
public enum WebhookRetrySchedule {
  /// The wait before attempt 2, 3, … 10 (the first goes at once).
  public static let waits: [Duration] = [
    .seconds(5), .seconds(5 * 60), .seconds(30 * 60), .seconds(2 * 3600), .seconds(5 * 3600), .seconds(10 * 3600),
    .seconds(14 * 3600), .seconds(20 * 3600), .seconds(24 * 3600),
  ]

  /// The most attempts an event gets.
  public static var attempts: Int { waits.count + 1 }

  /// The longest `Retry-After` honoured.
  public static let longestRetryAfter: Duration = .seconds(24 * 3600)

  /// How long to wait after failed attempt `attempt` (from 1), or `nil` when it was the last.
  /// `jitter` is in 0..<1 (a random draw; tests pass a fixed one).
  public static func wait(afterAttempt attempt: Int, jitter: Double, retryAfter: Duration? = nil) -> Duration? {
    guard attempt >= 1, attempt <= waits.count else { return nil }
    let base = waits[attempt - 1]
    let stretched = base + base * (min(max(jitter, 0), 0.999) / 10)
    guard let retryAfter else { return stretched }
    return max(stretched, min(retryAfter, longestRetryAfter))
  }

  /// The wait a `Retry-After` header asks for — delay-seconds or an HTTP date — or `nil` when it is
  /// neither (or already past).
  public static func retryAfter(_ header: String, now: Timestamp) -> Duration? {
    let text = header.trimmingCharacters(in: .whitespaces)
    if let seconds = Int64(text), seconds >= 0 { return .seconds(min(seconds, Int64(longestRetryAfter.components.seconds))) }
    guard let date = HTTPDate.parse(text) else { return nil }
    let seconds = date.seconds - now.seconds
    return seconds > 0 ? .seconds(seconds) : nil
  }
}

/// IMF-fixdate, the HTTP date format (`Sun, 06 Nov 1994 08:49:37 GMT`), to the second.
enum HTTPDate {
  static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

  static func parse(_ text: String) -> Timestamp? {
    let parts = text.split(separator: " ")
    guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
      let year = Int(parts[3])
    else { return nil }
    let clock = parts[4].split(separator: ":").compactMap { Int($0) }
    guard clock.count == 3, (0..<24).contains(clock[0]), (0..<60).contains(clock[1]), (0..<61).contains(clock[2]),
      let date = CalendarDate(year: year, month: month + 1, day: day)
    else { return nil }
    let seconds = Int64(date.daysSinceEpoch) * 86_400 + Int64(clock[0] * 3600 + clock[1] * 60 + clock[2])
    return Timestamp(seconds: seconds, nanos: 0)
  }
}
