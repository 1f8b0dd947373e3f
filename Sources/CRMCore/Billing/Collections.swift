public import Foundation

/// Where an account stands in collections.
public enum CollectionStatus: String, Sendable, Hashable, CaseIterable {
  /// Nothing past due.
  case current
  /// Something past due, not escalated further.
  case needsAction = "needs_action"
  /// An open promise to pay that has not fallen due.
  case promiseToPay = "promise_to_pay"
  case inCollections = "in_collections"
  /// Past due only in amounts open disputes contest.
  case heldForDispute = "held_for_dispute"
  /// Written off, and owing nothing since.
  case writtenOff = "written_off"

  /// The escalations a collector or a dunning level may set; a higher one is never lowered by a level.
  public static let escalations: [CollectionStatus] = [.needsAction, .inCollections]

  /// The rank of an escalation (higher is further).
  public var escalationRank: Int { self == .inCollections ? 2 : self == .needsAction ? 1 : 0 }
}

/// Where a promise to pay stands.
public enum PromiseState: String, Sendable, Hashable, CaseIterable {
  case open, kept, broken, cancelled
}

/// A customer's promise to pay an amount by a day.
public struct PaymentPromise: Sendable, Hashable {
  public var amount: Money
  public var payBy: CalendarDate
  /// The day it was made: payments received from then count towards it.
  public var madeOn: CalendarDate
  public var note: String?
  public var state: PromiseState
  public var madeBy: UUID?
  /// Payments in its currency received from `madeOn` to `payBy` (or today, while open).
  public var paid: Money

  /// A promise.
  public init(
    amount: Money, payBy: CalendarDate, madeOn: CalendarDate, note: String?, state: PromiseState, madeBy: UUID?, paid: Money
  ) {
    self.amount = amount
    self.payBy = payBy
    self.madeOn = madeOn
    self.note = note
    self.state = state
    self.madeBy = madeBy
    self.paid = paid
  }

  /// Open and not yet fallen due on `day`: dunning waits.
  public func isPending(on day: CalendarDate) -> Bool { state == .open && payBy >= day }
}

/// An account's collection: who collects it, how far it is escalated, its promise; and the status
/// judged from those and what the account owes today.
public struct AccountCollection: Sendable, Hashable {
  public var accountID: UUID
  public var status: CollectionStatus
  /// Why, in words.
  public var statusReason: String
  public var collectorID: UUID?
  /// ``CollectionStatus/needsAction`` or ``CollectionStatus/inCollections``, when escalated.
  public var escalation: CollectionStatus?
  public var creditHold: Bool
  public var promise: PaymentPromise?
  public var lastDunningLevel: String?
  public var lastDunningAt: Timestamp?
  public var writtenOffAt: Timestamp?
  /// Past due today per currency (disputed amounts excluded), as the status was judged.
  public var overdue: [Money]
  /// 0 while no collection was ever recorded for the account.
  public var version: Int64
  public var updatedAt: Timestamp?

  /// A collection.
  public init(
    accountID: UUID, status: CollectionStatus, statusReason: String, collectorID: UUID?, escalation: CollectionStatus?,
    creditHold: Bool, promise: PaymentPromise?, lastDunningLevel: String?, lastDunningAt: Timestamp?,
    writtenOffAt: Timestamp?, overdue: [Money], version: Int64, updatedAt: Timestamp?
  ) {
    self.accountID = accountID
    self.status = status
    self.statusReason = statusReason
    self.collectorID = collectorID
    self.escalation = escalation
    self.creditHold = creditHold
    self.promise = promise
    self.lastDunningLevel = lastDunningLevel
    self.lastDunningAt = lastDunningAt
    self.writtenOffAt = writtenOffAt
    self.overdue = overdue
    self.version = version
    self.updatedAt = updatedAt
  }

  public var etag: String { Etag.make(version) }

  /// The status, judged in this order: with nothing collectible past due — held for dispute when
  /// open disputes contest past-due amounts, written off when it was and owes nothing since, else
  /// current; with something past due — promise to pay while a promise is pending, else the
  /// escalation (needs action when none).
  public static func judge(
    overdue: [Money], disputedOverdue: Bool, owesAnything: Bool, escalation: CollectionStatus?, promise: PaymentPromise?,
    writtenOff: Bool, on day: CalendarDate
  ) -> (status: CollectionStatus, reason: String) {
    let pastDue = overdue.filter(\.isPositive)
    if pastDue.isEmpty {
      if disputedOverdue { return (.heldForDispute, "past due only in amounts open disputes contest") }
      if writtenOff && !owesAnything { return (.writtenOff, "written off; nothing owed since") }
      return (.current, "nothing past due")
    }
    let owed = pastDue.map(\.formatted).joined(separator: ", ")
    if let promise, promise.isPending(on: day) {
      return (.promiseToPay, "\(owed) past due; promised \(promise.amount.formatted) by \(promise.payBy)")
    }
    if let escalation { return (escalation, "\(owed) past due; escalated to \(escalation.rawValue)") }
    return (.needsAction, "\(owed) past due")
  }

  /// The order fields appear in change-log entries.
  public static let changeLogOrder = [
    "collector_id", "escalation", "credit_hold", "promise", "last_dunning_level", "written_off_at",
  ]

  /// The stored fields, for the change log (not the judged status, which moves with the day).
  public var snapshot: [String: JSONValue] {
    [
      "collector_id": collectorID.map { .string($0.lowercasedString) } ?? .null,
      "escalation": escalation.map { .string($0.rawValue) } ?? .null, "credit_hold": .bool(creditHold),
      "promise": promise.map { promise in
        .object([
          ("amount", .money(promise.amount)), ("pay_by", .string(promise.payBy.description)),
          ("made_on", .string(promise.madeOn.description)), ("state", .string(promise.state.rawValue)),
          ("note", promise.note.map(JSONValue.string) ?? .null),
        ])
      } ?? .null,
      "last_dunning_level": lastDunningLevel.map(JSONValue.string) ?? .null,
      "written_off_at": writtenOffAt.map { .string($0.rfc3339) } ?? .null,
    ]
  }
}

/// Whom a dunning level's task goes to.
public enum DunningTaskFor: String, Sendable, Hashable, CaseIterable {
  case none, owner
  /// The account's collector, or its owner when none is assigned.
  case collector
}

/// One step of a tenant's dunning: what happens to an invoice a number of days after it fell due.
public struct DunningLevel: Sendable, Hashable {
  /// Lower-case words joined by `_`; unique in the tenant.
  public var name: String
  /// Negative: before the due date.
  public var daysAfterDue: Int
  public var taskFor: DunningTaskFor
  public var taskSubject: String?
  public var addTag: String?
  public var creditHold: Bool
  /// ``CollectionStatus/needsAction`` or ``CollectionStatus/inCollections``.
  public var escalateTo: CollectionStatus?

  /// A level.
  public init(
    name: String, daysAfterDue: Int, taskFor: DunningTaskFor, taskSubject: String? = nil, addTag: String? = nil,
    creditHold: Bool = false, escalateTo: CollectionStatus? = nil
  ) {
    self.name = name
    self.daysAfterDue = daysAfterDue
    self.taskFor = taskFor
    self.taskSubject = taskSubject
    self.addTag = addTag
    self.creditHold = creditHold
    self.escalateTo = escalateTo
  }

  /// The most levels a tenant keeps.
  public static let maxCount = 10

  /// Validates a tenant's levels, recording violations under `field` (`levels[2].name`, …); returns
  /// them by `daysAfterDue`.
  public static func validate(_ levels: [DunningLevel], field: String, into violations: inout Violations) -> [DunningLevel] {
    if levels.count > maxCount { violations.add(field, "at most \(maxCount) dunning levels", reason: "TOO_MANY") }
    var names = Set<String>()
    var days = Set<Int>()
    var out: [DunningLevel] = []
    for (index, level) in levels.enumerated() {
      let at = "\(field)[\(index)]"
      var level = level
      if !CreditNoteFields.isReason(level.name) {
        violations.add(
          "\(at).name", "lower-case letters, digits and _, starting with a letter, at most 50", reason: "INVALID_FORMAT")
      } else if !names.insert(level.name).inserted {
        violations.add("\(at).name", "\"\(level.name)\" names two levels", reason: "DUPLICATE")
      }
      if !(-365...3650).contains(level.daysAfterDue) {
        violations.add("\(at).days_after_due", "must be between -365 and 3650", reason: "OUT_OF_RANGE")
      } else if !days.insert(level.daysAfterDue).inserted {
        violations.add("\(at).days_after_due", "two levels fall on day \(level.daysAfterDue)", reason: "DUPLICATE")
      }
      level.taskSubject = violations.text("\(at).task_subject", level.taskSubject ?? "", maxLength: 200, required: false)
      if let tag = level.addTag, !tag.isEmpty {
        level.addTag = violations.text("\(at).add_tag", tag, maxLength: Tags.maxLength, required: true)?.lowercased()
      } else {
        level.addTag = nil
      }
      if let escalation = level.escalateTo, !CollectionStatus.escalations.contains(escalation) {
        violations.add("\(at).escalate_to", "must be NEEDS_ACTION or IN_COLLECTIONS", reason: "INVALID_VALUE")
      }
      out.append(level)
    }
    return out.sorted { $0.daysAfterDue < $1.daysAfterDue }
  }
}
