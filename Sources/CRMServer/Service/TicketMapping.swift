import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

/// A domain enum whose proto twin lists the same cases, in the same order, after `…_UNSPECIFIED = 0`
/// (a test checks each pair by name), so the two convert by position.
protocol ProtoMirrored: CaseIterable, Equatable where AllCases == [Self] {
  /// What a violation calls the values, e.g. "NEW, OPEN, …".
  static var apiNoun: String { get }
}

extension ProtoMirrored {
  /// The domain value of `value`; `nil` for UNSPECIFIED (a violation when `required`) and for an
  /// unknown number (always a violation).
  init?<P: SwiftProtobuf.Enum>(_ value: P, field: String, required: Bool = false, into violations: inout Violations) {
    let index = value.rawValue - 1
    if value.rawValue == 0 {
      if required { violations.add(field, "is required (a \(Self.apiNoun))", reason: "REQUIRED") }
      return nil
    }
    guard Self.allCases.indices.contains(index) else {
      violations.add(field, "unknown \(Self.apiNoun) \(value.rawValue)", reason: "INVALID")
      return nil
    }
    self = Self.allCases[index]
  }

  /// Every value of a repeated enum field (unknown ones are violations).
  static func list<P: SwiftProtobuf.Enum>(_ values: [P], field: String, into violations: inout Violations) -> [Self] {
    values.enumerated().compactMap { index, value in
      Self(value, field: "\(field)[\(index)]", required: true, into: &violations)
    }
  }

  /// The proto twin.
  func proto<P: SwiftProtobuf.Enum>(_: P.Type = P.self) -> P { P(rawValue: Self.allCases.firstIndex(of: self)! + 1)! }
}

extension TicketStatus: ProtoMirrored { static var apiNoun: String { "ticket status" } }
extension TicketPriority: ProtoMirrored { static var apiNoun: String { "ticket priority" } }
extension TicketType: ProtoMirrored { static var apiNoun: String { "ticket type" } }
extension TicketChannel: ProtoMirrored { static var apiNoun: String { "ticket channel" } }
extension TicketSLAState: ProtoMirrored { static var apiNoun: String { "SLA state" } }
extension SLAMetric: ProtoMirrored { static var apiNoun: String { "SLA metric" } }
extension SLAStatus.State: ProtoMirrored { static var apiNoun: String { "SLA instance state" } }

extension Crm_V1_Ticket {
  /// The API form of a ticket.
  init(_ ticket: Ticket) {
    self.init()
    let f = ticket.fields
    id = ticket.id.lowercasedString
    etag = ticket.etag
    number = ticket.number
    createTime = .init(ticket.createdAt)
    updateTime = .init(ticket.updatedAt)
    if let archivedAt = ticket.archivedAt { archiveTime = .init(archivedAt) }
    subject = f.subject
    description_p = f.description ?? ""
    status = ticket.status.proto()
    priority = f.priority.proto()
    if let type = f.type { self.type = type.proto() }
    channel = f.channel.proto()
    switch f.requester {
    case .contact(let id): requesterContactID = id.lowercasedString
    case .lead(let id): requesterLeadID = id.lowercasedString
    case nil: break
    }
    accountID = f.accountID?.lowercasedString ?? ""
    assigneeID = f.assigneeID?.lowercasedString ?? ""
    groupID = f.groupID?.lowercasedString ?? ""
    tags = f.tags
    followerIds = f.followerIDs.map(\.lowercasedString)
    opportunityIds = f.opportunityIDs.map(\.lowercasedString)
    invoiceLines = f.invoiceLines.map { line in
      var ref = Crm_V1_InvoiceLineRef()
      ref.invoiceID = line.invoiceID.lowercasedString
      ref.lineNumber = Int32(clamping: line.lineNumber)
      return ref
    }
    externalID = f.externalID ?? ""
    if let at = ticket.firstResponseAt { firstResponseTime = .init(at) }
    if let at = ticket.solvedAt { solvedTime = .init(at) }
    if let at = ticket.closedAt { closedTime = .init(at) }
    if let at = ticket.nextBreachAt { nextBreachTime = .init(at) }
    statusChangeTime = .init(ticket.statusChangedAt)
    slaState = ticket.slaState.proto()
    slaPolicyID = ticket.slaPolicyID?.lowercasedString ?? ""
    mergedIntoID = ticket.mergedIntoID?.lowercasedString ?? ""
    followUpOfID = ticket.followUpOfID?.lowercasedString ?? ""
    satisfactionToken = ticket.satisfactionToken ?? ""
    satisfactionRating = Int32(ticket.satisfactionRating ?? 0)
    satisfactionComment = ticket.satisfactionComment ?? ""
    createUserID = ticket.createdBy?.lowercasedString ?? ""
    updateUserID = ticket.updatedBy?.lowercasedString ?? ""
  }

  /// The fields the request sets (those in `only` when given), validated under `ticket.`.
  func fields(only: Set<TicketField>?, into violations: inout Violations) -> TicketFields {
    func checks(_ field: TicketField) -> Bool { only?.contains(field) ?? true }
    var out = TicketFields(subject: subject)
    out.description = description_p
    if checks(.priority) {
      out.priority = TicketPriority(priority, field: "ticket.priority", required: only != nil, into: &violations) ?? .normal
    }
    if checks(.type) { out.type = TicketType(type, field: "ticket.type", into: &violations) }
    if checks(.channel) {
      out.channel = TicketChannel(channel, field: "ticket.channel", required: only != nil, into: &violations) ?? .api
    }
    if checks(.requester) {
      let contact = RequestFields.optionalID(requesterContactID, field: "ticket.requester_contact_id", into: &violations)
      let lead = RequestFields.optionalID(requesterLeadID, field: "ticket.requester_lead_id", into: &violations)
      if contact != nil, lead != nil {
        violations.add("ticket.requester_lead_id", "a ticket has one requester: a contact or a lead", reason: "INVALID")
      }
      out.requester = contact.map(TicketRequester.contact) ?? lead.map(TicketRequester.lead)
    }
    if checks(.accountID) { out.accountID = RequestFields.optionalID(accountID, field: "ticket.account_id", into: &violations) }
    if checks(.assigneeID) {
      out.assigneeID = RequestFields.optionalID(assigneeID, field: "ticket.assignee_id", into: &violations)
    }
    if checks(.groupID) { out.groupID = RequestFields.optionalID(groupID, field: "ticket.group_id", into: &violations) }
    out.tags = tags
    if checks(.followerIDs) {
      out.followerIDs = RequestFields.ids(followerIds, field: "ticket.follower_ids", required: false, into: &violations)
    }
    if checks(.opportunityIDs) {
      out.opportunityIDs = RequestFields.ids(opportunityIds, field: "ticket.opportunity_ids", required: false, into: &violations)
    }
    if checks(.invoiceLines) {
      out.invoiceLines = invoiceLines.prefix(TicketFields.maxInvoiceLines + 1).enumerated().compactMap { index, line in
        RequestFields.id(line.invoiceID, field: "ticket.invoice_lines[\(index)].invoice_id", into: &violations).map {
          InvoiceLineRef(invoiceID: $0, lineNumber: Int(line.lineNumber))
        }
      }
    }
    out.externalID = externalID
    return out.normalized(prefix: "ticket", only: only, into: &violations)
  }
}

extension Crm_V1_TicketComment {
  /// The API form of a comment.
  init(_ comment: TicketComment) {
    self.init()
    id = comment.id.lowercasedString
    ticketID = comment.ticketID.lowercasedString
    switch comment.author {
    case .agent(let user):
      authorKind = .agent
      authorUserID = user.lowercasedString
    case .customer(let requester):
      authorKind = .customer
      switch requester {
      case .contact(let id): authorContactID = id.lowercasedString
      case .lead(let id): authorLeadID = id.lowercasedString
      case nil: break
      }
    case .system:
      authorKind = .system
    }
    `public` = comment.isPublic
    body = comment.body
    messageID = comment.messageID ?? ""
    if let channel = comment.channel { self.channel = channel.proto() }
    if let source = comment.mergedFromTicketID { mergedFromTicketID = source.lowercasedString }
    createTime = .init(comment.createdAt)
  }
}

extension Google_Protobuf_Duration {
  /// A protobuf duration from a Swift one (microsecond precision).
  init(_ duration: Duration) {
    let parts = duration.components
    self.init(microseconds: parts.seconds * 1_000_000 + parts.attoseconds / 1_000_000_000_000)
  }
}

extension Crm_V1_SLATarget {
  init(_ target: SLATarget) {
    self.init()
    minutes = Int32(clamping: target.minutes)
    businessHours = target.businessHours
    warningMinutes = Int32(clamping: target.warningMinutes ?? 0)
  }

  /// The domain target.
  var domain: SLATarget {
    SLATarget(minutes: Int(minutes), businessHours: businessHours, warningMinutes: warningMinutes > 0 ? Int(warningMinutes) : nil)
  }
}

extension Crm_V1_SLAInstance {
  init(_ instance: TicketSLAInstance) {
    self.init()
    metric = instance.metric.proto()
    self.instance = Int32(clamping: instance.number)
    let status = instance.status
    state = status.state.proto()
    warning = status.isWarning
    target = .init(status.target)
    if let at = status.dueTime { dueTime = .init(at) }
    if let at = status.warningTime { warningTime = .init(at) }
    if let at = status.breachTime { breachTime = .init(at) }
    elapsed = .init(status.elapsed)
    paused = .init(status.paused)
    policyID = instance.policyID?.lowercasedString ?? ""
    entries = instance.entries.map { entry in
      .with {
        $0.time = .init(entry.event.at)
        $0.note = entry.note ?? ""
        $0.policyID = entry.policyID?.lowercasedString ?? ""
        $0.actorID = entry.actorID?.lowercasedString ?? ""
        $0.recordTime = .init(entry.recordedAt)
        switch entry.event.kind {
        case .activated(let target):
          $0.kind = .activated
          $0.target = .init(target)
        case .retargeted(let target):
          $0.kind = .retargeted
          $0.target = .init(target)
        case .paused: $0.kind = .paused
        case .resumed: $0.kind = .resumed
        case .dueSet(let due):
          $0.kind = .dueSet
          if let due { $0.dueTime = .init(due) }
        case .fulfilled: $0.kind = .fulfilled
        case .cancelled: $0.kind = .cancelled
        case .warned: $0.kind = .warned
        case .breached: $0.kind = .breached
        }
      }
    }
  }
}
