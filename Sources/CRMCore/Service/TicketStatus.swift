/// Where a ticket is in its life.
public enum TicketStatus: String, Sendable, Hashable, Codable, CaseIterable {
  case new, open, pending, onHold = "on_hold", solved, closed

  /// Whether an agent (or an automation) may move a ticket from this status to `next`.
  ///
  /// Nothing returns to `new`; `closed` is final (a customer writing to a closed ticket gets a
  /// follow-up ticket instead); every other move is allowed, including solving straight from `new`.
  public func canMove(to next: TicketStatus) -> Bool {
    if self == next { return true }
    switch (self, next) {
    case (.closed, _): return false
    case (_, .new): return false
    default: return true
    }
  }

  /// The status after a customer's public comment: `pending`, `on_hold` and `solved` reopen to
  /// `open`; `new` and `open` stay; `nil` for `closed` (the comment starts a follow-up ticket).
  public var afterCustomerComment: TicketStatus? {
    switch self {
    case .new: .new
    case .open, .pending, .onHold, .solved: .open
    case .closed: nil
    }
  }

  /// True for the statuses in which the ticket is done with (no SLA counts after them).
  public var isResolved: Bool { self == .solved || self == .closed }
}

/// How urgent a ticket is; SLA targets are set per priority.
public enum TicketPriority: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
  case low, normal, high, urgent

  public static func < (lhs: TicketPriority, rhs: TicketPriority) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// What kind of request a ticket is.
public enum TicketType: String, Sendable, Hashable, Codable, CaseIterable {
  case question, incident, problem, task, dispute
}

/// Where a ticket came from.
public enum TicketChannel: String, Sendable, Hashable, Codable, CaseIterable {
  case email, webForm = "web_form", phone, chat, api
}
