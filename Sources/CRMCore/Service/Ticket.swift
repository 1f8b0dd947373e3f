public import Foundation

/// Who asked for help: a contact or a lead.
public enum TicketRequester: Sendable, Hashable {
  case contact(UUID)
  case lead(UUID)

  /// The record it names.
  public var link: RecordLink {
    switch self {
    case .contact(let id): RecordLink(type: .contact, id: id)
    case .lead(let id): RecordLink(type: .lead, id: id)
    }
  }
}

/// The fields of a ticket that callers set directly. Status moves through its own rules
/// (``TicketStatus/canMove(to:)``); the SLA times and the ticket number are the server's.
public struct TicketFields: Sendable, Hashable {
  /// 1 to 255 characters.
  public var subject: String
  /// The request as the requester put it; up to 100,000 characters.
  public var description: String?
  public var priority: TicketPriority
  public var type: TicketType?
  public var channel: TicketChannel
  public var requester: TicketRequester?
  /// Defaults to the requester contact's account.
  public var accountID: UUID?
  public var assigneeID: UUID?
  /// The team that works the ticket.
  public var groupID: UUID?
  public var tags: [String]
  /// Users who get the ticket's updates; up to 50.
  public var followerIDs: [UUID]
  /// Deals the ticket concerns; up to 20.
  public var opportunityIDs: [UUID]
  /// Invoices (line 0) or invoice lines the ticket concerns; up to 50.
  public var invoiceLines: [InvoiceLineRef]
  /// Unique in the tenant when set (the id the ticket has in another system).
  public var externalID: String?

  /// Fields with a subject, normal priority, created through the API.
  public init(subject: String) {
    self.subject = subject
    priority = .normal
    channel = .api
    tags = []
    followerIDs = []
    opportunityIDs = []
    invoiceLines = []
  }

  /// The most followers a ticket carries.
  public static let maxFollowers = 50
  /// The most deals a ticket links to.
  public static let maxOpportunities = 20
  /// The most invoice lines a ticket links to.
  public static let maxInvoiceLines = 50
  /// The longest description (and comment body).
  public static let maxBodyLength = 100_000

  /// Validates and normalizes the fields (those in `only` when given), recording violations under `prefix`.
  public func normalized(prefix: String, only: Set<TicketField>? = nil, into violations: inout Violations) -> TicketFields {
    func checks(_ field: TicketField) -> Bool { only?.contains(field) ?? true }
    var out = self
    if checks(.subject) { out.subject = violations.text("\(prefix).subject", subject, maxLength: 255, required: true) ?? "" }
    if checks(.description) {
      out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: Self.maxBodyLength)
    }
    if checks(.tags) { out.tags = Tags.normalize(tags, field: "\(prefix).tags", into: &violations) }
    if checks(.followerIDs) {
      out.followerIDs = Self.distinct(
        followerIDs, max: Self.maxFollowers, field: "\(prefix).follower_ids", noun: "followers", into: &violations)
    }
    if checks(.opportunityIDs) {
      out.opportunityIDs = Self.distinct(
        opportunityIDs, max: Self.maxOpportunities, field: "\(prefix).opportunity_ids", noun: "opportunities",
        into: &violations)
    }
    if checks(.invoiceLines) {
      if invoiceLines.count > Self.maxInvoiceLines {
        violations.add("\(prefix).invoice_lines", "at most \(Self.maxInvoiceLines) invoice lines", reason: "TOO_MANY")
        out.invoiceLines = []
      } else {
        for (index, line) in invoiceLines.enumerated() where line.lineNumber < 0 {
          violations.add(
            "\(prefix).invoice_lines[\(index)].line_number", "must be a line number, or 0 for the whole invoice",
            reason: "OUT_OF_RANGE")
        }
        var seen = Set<InvoiceLineRef>()
        out.invoiceLines = invoiceLines.filter { seen.insert($0).inserted }
      }
    }
    if checks(.externalID) { out.externalID = violations.text("\(prefix).external_id", externalID ?? "", maxLength: 255) }
    return out
  }

  /// `ids` without repeats, or a violation when there are more than `max`.
  private static func distinct(_ ids: [UUID], max: Int, field: String, noun: String, into violations: inout Violations)
    -> [UUID]
  {
    if ids.count > max {
      violations.add(field, "at most \(max) \(noun)", reason: "TOO_MANY")
      return []
    }
    var seen = Set<UUID>()
    return ids.filter { seen.insert($0).inserted }
  }

  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: TicketFields, mask: Set<TicketField>) -> TicketFields {
    var out = self
    for field in mask {
      switch field {
      case .subject: out.subject = patch.subject
      case .description: out.description = patch.description
      case .priority: out.priority = patch.priority
      case .type: out.type = patch.type
      case .channel: out.channel = patch.channel
      case .requester: out.requester = patch.requester
      case .accountID: out.accountID = patch.accountID
      case .assigneeID: out.assigneeID = patch.assigneeID
      case .groupID: out.groupID = patch.groupID
      case .tags: out.tags = patch.tags
      case .followerIDs: out.followerIDs = patch.followerIDs
      case .opportunityIDs: out.opportunityIDs = patch.opportunityIDs
      case .invoiceLines: out.invoiceLines = patch.invoiceLines
      case .externalID: out.externalID = patch.externalID
      case .status: break
      }
    }
    return out
  }
}

/// The fields a ticket update may name in its mask, by their API paths.
public enum TicketField: String, Sendable, Hashable, CaseIterable, Codable {
  case subject, description, priority, type, channel
  /// `requester_contact_id` and `requester_lead_id` together: setting one clears the other.
  case requester
  case accountID = "account_id"
  case assigneeID = "assignee_id"
  case groupID = "group_id"
  case tags
  case followerIDs = "follower_ids"
  case opportunityIDs = "opportunity_ids"
  case invoiceLines = "invoice_lines"
  case externalID = "external_id"
  case status
}

/// An invoice a ticket concerns: one of its lines, or line 0 for the invoice as a whole.
public struct InvoiceLineRef: Sendable, Hashable, CustomStringConvertible {
  public var invoiceID: UUID
  public var lineNumber: Int

  /// A reference.
  public init(invoiceID: UUID, lineNumber: Int) {
    self.invoiceID = invoiceID
    self.lineNumber = lineNumber
  }

  /// `INVOICE_ID:LINE` (how it is stored and logged).
  public var description: String { "\(invoiceID.lowercasedString):\(lineNumber)" }

  /// The reference `text` names, if it is one.
  public init?(_ text: String) {
    let parts = text.split(separator: ":")
    guard parts.count == 2, let id = UUID(uuidString: String(parts[0])), let line = Int(parts[1]) else { return nil }
    self.init(invoiceID: id, lineNumber: line)
  }
}

/// A support request, worked by an agent or a group until it is solved, with SLA clocks running.
public struct Ticket: Sendable, Hashable, Identifiable {
  public var id: UUID
  /// The short number people quote ("#1042"); it is also the token in mail subjects.
  public var number: Int64
  public var version: Int64
  public var fields: TicketFields
  public var status: TicketStatus
  /// The first public agent reply.
  public var firstResponseAt: Timestamp?
  /// The last time the ticket was solved (cleared when it reopens).
  public var solvedAt: Timestamp?
  /// When it closed for good.
  public var closedAt: Timestamp?
  /// Creation, or the last reopen after a solve: where the resolution clock starts.
  public var openedAt: Timestamp
  /// The oldest customer comment no public agent reply has answered yet.
  public var awaitingReplySince: Timestamp?
  /// When the status last changed (on the SLA clock).
  public var statusChangedAt: Timestamp
  /// The earliest due time among its running SLA clocks.
  public var nextBreachAt: Timestamp?
  /// A summary of its SLA clocks, for lists.
  public var slaState: TicketSLAState
  /// The SLA policy in force, if any matches.
  public var slaPolicyID: UUID?
  /// The ticket this one was merged into (it is closed).
  public var mergedIntoID: UUID?
  /// The closed ticket a customer wrote to, which this one follows up.
  public var followUpOfID: UUID?
  /// The CSAT survey token, once issued (on the first solve; never a second time).
  public var satisfactionToken: String?
  /// When the survey was issued; it can be answered for ``satisfactionSurveyDays`` after.
  public var satisfactionIssuedAt: Timestamp?
  public var satisfactionRating: Int?
  public var satisfactionComment: String?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?

  /// A ticket value.
  public init(
    id: UUID, number: Int64, version: Int64, fields: TicketFields, status: TicketStatus, openedAt: Timestamp,
    createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.id = id
    self.number = number
    self.version = version
    self.fields = fields
    self.status = status
    self.openedAt = openedAt
    statusChangedAt = createdAt
    slaState = .none
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// How long a CSAT survey can be answered.
  public static let satisfactionSurveyDays = 28

  /// The facts SLA policies match on (the account's tier and tags come from the account).
  public func slaSubject(accountTier: String?, accountTags: Set<String>) -> SLASubject {
    SLASubject(
      priority: fields.priority, type: fields.type, channel: fields.channel, groupID: fields.groupID,
      tags: Set(fields.tags), accountTier: accountTier, accountTags: accountTags)
  }

  /// The facts the SLA planner works from.
  public var slaFacts: SLATicketFacts {
    SLATicketFacts(
      status: status, createdAt: createdAt, openedAt: openedAt, firstRepliedAt: firstResponseAt,
      awaitingReplySince: awaitingReplySince)
  }

  /// Fields and status as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    let f = fields
    func id(_ value: UUID?) -> JSONValue { value.map { .string($0.lowercasedString) } ?? .null }
    var contact: UUID?
    var lead: UUID?
    switch f.requester {
    case .contact(let value): contact = value
    case .lead(let value): lead = value
    case nil: break
    }
    return [
      "subject": .string(f.subject),
      "description": .optional(f.description),
      "status": .string(status.rawValue),
      "priority": .string(f.priority.rawValue),
      "type": .optional(f.type?.rawValue),
      "channel": .string(f.channel.rawValue),
      "requester_contact_id": id(contact),
      "requester_lead_id": id(lead),
      "account_id": id(f.accountID),
      "assignee_id": id(f.assigneeID),
      "group_id": id(f.groupID),
      "tags": .array(f.tags.map { .string($0) }),
      "follower_ids": .array(f.followerIDs.map { .string($0.lowercasedString) }),
      "opportunity_ids": .array(f.opportunityIDs.map { .string($0.lowercasedString) }),
      "invoice_lines": .array(f.invoiceLines.map { .string($0.description) }),
      "external_id": .optional(f.externalID),
      "sla_policy_id": id(slaPolicyID),
      "merged_into_id": id(mergedIntoID),
    ]
  }

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "subject", "description", "status", "priority", "type", "channel", "requester_contact_id", "requester_lead_id",
    "account_id", "assignee_id", "group_id", "tags", "follower_ids", "opportunity_ids", "invoice_lines", "external_id",
    "sla_policy_id", "merged_into_id",
  ]
}

/// A ticket's SLA clocks summed up in one word, for lists and filters.
public enum TicketSLAState: String, Sendable, Hashable, CaseIterable {
  /// No clock runs (no policy applies, or every clock ended achieved or cancelled).
  case none
  /// A clock runs, none is past its warning time.
  case active
  /// Every unfinished clock is paused.
  case paused
  /// A running clock is past its warning time.
  case warning
  /// A clock that has not ended is breached.
  case breached

  /// The summary of instances' states: breached beats warning beats active beats paused.
  public static func summary(_ statuses: [SLAStatus]) -> TicketSLAState {
    var state = TicketSLAState.none
    func rank(_ s: TicketSLAState) -> Int { [.none, .paused, .active, .warning, .breached].firstIndex(of: s)! }
    for status in statuses {
      let this: TicketSLAState =
        switch status.state {
        case .active: status.isWarning ? .warning : .active
        case .paused: .paused
        case .breached: .breached
        case .achieved, .cancelled: .none
        }
      if rank(this) > rank(state) { state = this }
    }
    return state
  }
}

/// Who wrote a comment.
public enum CommentAuthor: Sendable, Hashable {
  /// A user of the tenant.
  case agent(UUID)
  /// The requester (or another customer on the thread), by the contact or lead they are.
  case customer(TicketRequester?)
  /// crmd itself (merges, automations).
  case system
}

/// One comment on a ticket: a public reply the customer sees, or an internal note.
public struct TicketComment: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var ticketID: UUID
  public var author: CommentAuthor
  /// False for internal notes.
  public var isPublic: Bool
  public var body: String
  /// The channel's message id (an email's Message-ID), unique per tenant.
  public var messageID: String?
  public var channel: TicketChannel?
  /// Set when the comment was carried over from a ticket merged into this one.
  public var mergedFromTicketID: UUID?
  /// When it was written, on the SLA clock.
  public var createdAt: Timestamp

  /// A comment.
  public init(
    id: UUID, ticketID: UUID, author: CommentAuthor, isPublic: Bool, body: String, messageID: String? = nil,
    channel: TicketChannel? = nil, mergedFromTicketID: UUID? = nil, createdAt: Timestamp
  ) {
    self.id = id
    self.ticketID = ticketID
    self.author = author
    self.isPublic = isPublic
    self.body = body
    self.messageID = messageID
    self.channel = channel
    self.mergedFromTicketID = mergedFromTicketID
    self.createdAt = createdAt
  }

  /// True for a public comment by an agent: what first and next reply clocks wait for.
  public var isPublicAgentReply: Bool {
    if case .agent = author { return isPublic }
    return false
  }

  /// True for a comment by the customer (always public).
  public var isFromCustomer: Bool {
    if case .customer = author { return true }
    return false
  }
}

/// The order a ticket list comes in.
public enum TicketOrder: String, Sendable, Hashable, CaseIterable {
  /// Newest first (by creation).
  case newest
  /// The earliest due SLA clock first; tickets without one last.
  case nextBreach = "next_breach"
  /// Most recently updated first.
  case updated
}

/// What a list of tickets is narrowed to.
public struct TicketFilter: Sendable, Hashable {
  public var statuses: [TicketStatus] = []
  public var priorities: [TicketPriority] = []
  public var types: [TicketType] = []
  public var channels: [TicketChannel] = []
  public var assigneeID: UUID?
  /// Only tickets without an assignee.
  public var unassigned = false
  public var groupID: UUID?
  public var accountID: UUID?
  public var requester: TicketRequester?
  public var tag: String?
  public var slaStates: [TicketSLAState] = []
  /// Tickets with a running clock due before this instant.
  public var breachesBefore: Timestamp?
  public var createdFrom: Timestamp?
  public var createdTo: Timestamp?
  public var updatedFrom: Timestamp?
  public var updatedTo: Timestamp?
  public var archive: ArchiveFilter = .active
  public var order: TicketOrder = .newest

  /// No narrowing.
  public init() {}

  /// The page token's binding to this filter.
  public var fingerprint: String {
    func stamp(_ t: Timestamp?) -> String { t.map { String($0.microsecondsSinceEpoch) } ?? "" }
    let parts: [String] = [
      "tickets", statuses.map(\.rawValue).joined(separator: ","), priorities.map(\.rawValue).joined(separator: ","),
      types.map(\.rawValue).joined(separator: ","), channels.map(\.rawValue).joined(separator: ","),
      assigneeID?.lowercasedString ?? "", unassigned ? "u" : "", groupID?.lowercasedString ?? "",
      accountID?.lowercasedString ?? "", requester?.link.key ?? "", tag ?? "",
      slaStates.map(\.rawValue).joined(separator: ","), stamp(breachesBefore), stamp(createdFrom), stamp(createdTo),
      stamp(updatedFrom), stamp(updatedTo), archive.rawValue, order.rawValue,
    ]
    return parts.joined(separator: "|")
  }
}
