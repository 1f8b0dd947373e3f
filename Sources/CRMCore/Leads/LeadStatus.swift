/// Where a lead stands. Moves only along the edges ``LeadStatus/canMove(to:)`` allows.
///
/// `converted` is reached only by converting the lead (which creates the account, contact and
/// opportunity), never by setting the status; `disqualified` needs a reason; a disqualified lead can be
/// reopened into `working`; a converted lead is final.
public enum LeadStatus: String, Sendable, Hashable, CaseIterable, Codable {
  case new
  case working
  case nurturing
  case qualified
  case converted
  case disqualified

  /// The statuses a lead may be set to from this one by a status change (not by conversion).
  public var allowedNext: Set<LeadStatus> {
    switch self {
    case .new: return [.working, .nurturing, .qualified, .disqualified]
    case .working: return [.nurturing, .qualified, .disqualified]
    case .nurturing: return [.working, .qualified, .disqualified]
    case .qualified: return [.working, .nurturing, .disqualified]
    case .disqualified: return [.working]
    case .converted: return []
    }
  }

  /// True when a status change may move a lead from this status to `next`.
  public func canMove(to next: LeadStatus) -> Bool { allowedNext.contains(next) }

  /// True for statuses a lead no longer leaves on its own.
  public var isClosed: Bool { self == .converted || self == .disqualified }

  /// Checks a requested status change.
  ///
  /// - Throws: ``CRMError/failedPrecondition(_:)`` for a move the lifecycle does not allow,
  ///   ``CRMError/invalidArgument(_:)`` for disqualifying without a reason.
  public func transition(to next: LeadStatus, reason: String?) throws(CRMError) -> LeadStatus {
    if next == .converted {
      throw .failedPrecondition("a lead becomes converted only by converting it (ConvertLead)")
    }
    guard canMove(to: next) else {
      throw .failedPrecondition("a \(rawValue) lead cannot move to \(next.rawValue)")
    }
    if next == .disqualified, (reason?.trimmingWhitespace() ?? "").isEmpty {
      throw .invalid("disqualified_reason", "is required to disqualify a lead", reason: "REQUIRED")
    }
    return next
  }
}

/// The channel a lead came in through.
public enum LeadSource: String, Sendable, Hashable, CaseIterable, Codable {
  case unspecified
  case webForm = "web_form"
  case email
  case phone
  case chat
  case event
  case partner
  case `import`
  case api
}
