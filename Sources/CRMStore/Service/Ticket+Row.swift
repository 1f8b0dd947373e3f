import CRMCore
import Foundation
import LibPQ

extension Ticket: StoredRecord {
  /// The assignee: visibility follows it (unassigned tickets are in sight of everyone when tickets are
  /// shared publicly, the default, and of admins otherwise).
  var accessOwner: UUID? { fields.assigneeID }
  static let table = "tickets"
  static let recordType = RecordType.ticket
  static let noun = "ticket"
  static let nameSortKey = #"lower(subject) COLLATE "C""#
  static let constraintErrors: [String: CRMError] = [
    "tickets_external_id": .alreadyExists(field: "ticket.external_id", message: "another ticket has this external_id"),
    "tickets_tenant_id_requester_contact_id_fkey": .invalid(
      "ticket.requester_contact_id", "no such contact", reason: "NOT_FOUND"),
    "tickets_tenant_id_requester_lead_id_fkey": .invalid("ticket.requester_lead_id", "no such lead", reason: "NOT_FOUND"),
    "tickets_tenant_id_account_id_fkey": .invalid("ticket.account_id", "no such account", reason: "NOT_FOUND"),
    "tickets_tenant_id_assignee_id_fkey": .invalid("ticket.assignee_id", "no such user", reason: "NOT_FOUND"),
    "tickets_tenant_id_group_id_fkey": .invalid("ticket.group_id", "no such team", reason: "NOT_FOUND"),
  ]
  static let columns = """
    id, number, subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id,
    account_id, assignee_id, group_id, tags, follower_ids, opportunity_ids, invoice_lines, external_id, opened_at,
    first_response_at, awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
    merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_issued_at, satisfaction_rating, satisfaction_comment, version, created_at, updated_at,
    created_by, updated_by, archived_at
    """

  init(row: PostgresRow) throws {
    var fields = TicketFields(subject: try row.decode("subject"))
    fields.description = try row.decode("description")
    fields.priority = TicketPriority(rawValue: try row.decode("priority")) ?? .normal
    fields.type = try row.decode("type", as: String?.self).flatMap(TicketType.init(rawValue:))
    fields.channel = TicketChannel(rawValue: try row.decode("channel")) ?? .api
    if let contact = try row.decode("requester_contact_id", as: UUID?.self) {
      fields.requester = .contact(contact)
    } else if let lead = try row.decode("requester_lead_id", as: UUID?.self) {
      fields.requester = .lead(lead)
    }
    fields.accountID = try row.decode("account_id")
    fields.assigneeID = try row.decode("assignee_id")
    fields.groupID = try row.decode("group_id")
    fields.tags = try row.decode("tags")
    fields.followerIDs = try row.decode("follower_ids")
    fields.opportunityIDs = try row.decode("opportunity_ids")
    fields.invoiceLines = try row.decode("invoice_lines", as: [String].self).compactMap(InvoiceLineRef.init)
    fields.externalID = try row.decode("external_id")
    self.init(
      id: try row.decode("id"), number: try row.decode("number"), version: try row.decode("version"), fields: fields,
      status: TicketStatus(rawValue: try row.decode("status")) ?? .open, openedAt: try row.decode("opened_at"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
    firstResponseAt = try row.decode("first_response_at")
    awaitingReplySince = try row.decode("awaiting_reply_since")
    solvedAt = try row.decode("solved_at")
    closedAt = try row.decode("closed_at")
    statusChangedAt = try row.decode("status_changed_at")
    slaPolicyID = try row.decode("sla_policy_id")
    slaState = TicketSLAState(rawValue: try row.decode("sla_state")) ?? .none
    nextBreachAt = try row.decode("next_breach_at")
    mergedIntoID = try row.decode("merged_into_id")
    followUpOfID = try row.decode("follow_up_of_id")
    satisfactionToken = try row.decode("satisfaction_token")
    satisfactionIssuedAt = try row.decode("satisfaction_issued_at")
    satisfactionRating = try row.decode("satisfaction_rating")
    satisfactionComment = try row.decode("satisfaction_comment")
    createdBy = try row.decode("created_by")
    updatedBy = try row.decode("updated_by")
    archivedAt = try row.decode("archived_at")
  }

  /// Tickets take part in no duplicate detection.
  var matchSubject: MatchSubject { MatchSubject() }

  static let writableColumns = """
    subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id, account_id,
    assignee_id, group_id, tags, follower_ids, opportunity_ids, invoice_lines, external_id, opened_at, first_response_at,
    awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
    merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_token_hash, satisfaction_issued_at, created_at
    """

  var writableValues: PostgresQuery {
    let f = fields
    var contact: UUID?
    var lead: UUID?
    switch f.requester {
    case .contact(let id): contact = id
    case .lead(let id): lead = id
    case nil: break
    }
    return """
      \(f.subject), \(f.description), \(status.rawValue), \(f.priority.rawValue), \(f.type?.rawValue), \(f.channel.rawValue),
      \(contact), \(lead), \(f.accountID), \(f.assigneeID), \(f.groupID), \(f.tags)::text[], \(f.followerIDs)::uuid[],
      \(f.opportunityIDs)::uuid[], \(f.invoiceLines.map(\.description))::text[], \(f.externalID), \(openedAt), \(firstResponseAt), \(awaitingReplySince), \(solvedAt),
      \(closedAt), \(statusChangedAt), \(slaPolicyID), \(slaState.rawValue), \(nextBreachAt), \(mergedIntoID),
      \(followUpOfID), \(satisfactionToken), \(satisfactionToken.map(TokenSecret.hash))::bytea, \(satisfactionIssuedAt),
      \(createdAt)
      """
  }
}

extension TicketComment {
  static let columns = """
    id, ticket_id, is_public, author_kind, author_user_id, author_contact_id, author_lead_id, body, channel, message_id,
    merged_from_ticket_id, created_at
    """

  init(row: PostgresRow) throws {
    let author: CommentAuthor
    switch try row.decode("author_kind", as: String.self) {
    case "agent": author = .agent(try row.decode("author_user_id"))
    case "customer":
      if let contact = try row.decode("author_contact_id", as: UUID?.self) {
        author = .customer(.contact(contact))
      } else if let lead = try row.decode("author_lead_id", as: UUID?.self) {
        author = .customer(.lead(lead))
      } else {
        author = .customer(nil)
      }
    default: author = .system
    }
    self.init(
      id: try row.decode("id"), ticketID: try row.decode("ticket_id"), author: author, isPublic: try row.decode("is_public"),
      body: try row.decode("body"), messageID: try row.decode("message_id"),
      channel: try row.decode("channel", as: String?.self).flatMap(TicketChannel.init(rawValue:)),
      mergedFromTicketID: try row.decode("merged_from_ticket_id"), createdAt: try row.decode("created_at"))
  }

  /// The INSERT of this comment (on `ticketID`, which may differ when a merge carries it over).
  func insert(tenant: UUID) -> PostgresQuery {
    var kind = "system"
    var user: UUID?
    var contact: UUID?
    var lead: UUID?
    switch author {
    case .agent(let id):
      kind = "agent"
      user = id
    case .customer(let requester):
      kind = "customer"
      switch requester {
      case .contact(let id): contact = id
      case .lead(let id): lead = id
      case nil: break
      }
    case .system: break
    }
    return """
      INSERT INTO ticket_comments (tenant_id, id, ticket_id, is_public, author_kind, author_user_id, author_contact_id,
        author_lead_id, body, channel, message_id, merged_from_ticket_id, created_at)
      VALUES (\(tenant), \(id), \(ticketID), \(isPublic), \(kind), \(user), \(contact), \(lead), \(body),
        \(channel?.rawValue), \(messageID), \(mergedFromTicketID), \(createdAt))
      """
  }
}
