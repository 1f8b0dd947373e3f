public import CRMCore
import Foundation
import LibPQ

/// What an inbound support email did.
public struct EmailCaptureResult: Sendable, Hashable {
  public enum Outcome: String, Sendable, Hashable {
    /// A new ticket.
    case created
    /// A comment on the ticket the mail threads onto (reopening it when it was pending or solved).
    case commented
    /// The ticket it threads onto was closed: a follow-up ticket opened.
    case followUp = "follow_up"
    /// The same Message-ID was captured before: nothing written.
    case duplicate
  }

  public var outcome: Outcome
  public var ticket: Ticket
  public var comment: TicketComment
  /// The requester the sender was matched to, or created as.
  /// The sender as requester; `nil` only for a duplicate of a message that was not a customer's
  /// (an agent reply's own Message-ID coming back, e.g. a copy of outbound mail) on a ticket without one.
  public var requester: TicketRequester?
  /// True when the sender was unknown and became a new contact or lead.
  public var requesterCreated: Bool
}

extension TicketStore {
  /// Turns one inbound support email into a ticket, or a comment on the ticket it threads onto.
  ///
  /// Threading, in order: a `[#1042]` token in the subject or a plus-address (`support+1042@…`),
  /// honoured only when the sender is that ticket's requester (a token is guessable; a stranger's
  /// mail must not land on someone else's ticket); then `In-Reply-To`; then each `References` id,
  /// newest first, against the Message-IDs tickets have seen or sent. Mail for a merged ticket lands
  /// on the ticket it was merged into. The same Message-ID twice is a no-op.
  ///
  /// The sender is matched to a contact or lead with the capture machinery (the tenant's lead
  /// duplicate rule, keys locked so two mails from one new person create one record); an unknown
  /// sender becomes a contact, or a lead when the tenant's service settings say so.
  public func captureEmail(raw: [UInt8], context: ChangeLog.Context) async throws -> EmailCaptureResult {
    let email = try InboundEmail(raw: raw, field: "email.raw")
    let at = now()
    let principal = context.principal
    let tenant = principal.tenantID
    let messageID =
      email.messageID.isEmpty ? CaptureStore.digest("support|" + String(decoding: raw, as: UTF8.self)) : email.messageID
    let text = String(email.body.trimmingWhitespace().unicodeScalars.prefix(TicketFields.maxBodyLength))
    let body = text.isEmpty ? "(no text)" : text
    return try await database.withTenant(tenant) { connection in
      try connection.query(
        "SELECT pg_advisory_xact_lock(hashtextextended(\(tenant.lowercasedString + "|ticket-mail|" + messageID), 0))")
      if let seen = try Self.seenMessage(connection, messageID, tenant: tenant) {
        let replay = try Self.replayComment(connection, seen, principal: principal)
        let requester: TicketRequester? =
          if case .customer(let who?) = replay.comment.author { who } else { replay.ticket.fields.requester }
        return EmailCaptureResult(
          outcome: .duplicate, ticket: replay.ticket, comment: replay.comment, requester: requester, requesterCreated: false)
      }
      let (requester, created) = try Self.sender(connection, email, context: context)

      var ticket: Ticket?
      if let number = TicketThreading.number(inSubject: email.subject) ?? TicketThreading.number(inRecipients: email.recipients),
        let found = try Self.ticket(connection, number: number, tenant: tenant), found.fields.requester == requester
      {
        ticket = found
      }
      if ticket == nil {
        for candidate in TicketThreading.candidates(email) {
          let rows = try connection.query(
            "SELECT ticket_id FROM ticket_message_ids WHERE tenant_id = \(tenant) AND message_id = \(candidate)")
          if let id = try rows.first?.decode("ticket_id", as: UUID.self) {
            ticket = try Mechanics.fetch(connection, id: id, principal: principal)
            if ticket != nil { break }
          }
        }
      }
      // A merged ticket's mail goes to the ticket it was merged into.
      var hops = 0
      while let merged = ticket?.mergedIntoID, hops < 10 {
        ticket = try Mechanics.fetch(connection, id: merged, principal: principal)
        hops += 1
      }

      if let ticket {
        let result = try Self.addComment(
          connection, ticket.id,
          NewComment(fromCustomer: true, customer: requester, isPublic: true, body: body, messageID: messageID, channel: .email),
          expectedVersion: nil, context: context, at: at)
        return EmailCaptureResult(
          outcome: result.openedFollowUp ? .followUp : .commented, ticket: result.ticket, comment: result.comment,
          requester: requester, requesterCreated: created)
      }
      var fields = TicketFields(subject: TicketThreading.cleanSubject(email.subject))
      fields.description = body
      fields.channel = .email
      fields.requester = requester
      let opened = try Self.create(
        connection, fields, opening: Opening(status: .new, author: .requester, messageID: messageID), followUpOf: nil,
        method: "CaptureSupportEmail", context: context, at: at)
      let comment = try connection.query(
        """
        SELECT \(unsafeSQL: TicketComment.columns) FROM ticket_comments
        WHERE tenant_id = \(tenant) AND ticket_id = \(opened.id) ORDER BY created_at, id LIMIT 1
        """)
      return EmailCaptureResult(
        outcome: .created, ticket: opened, comment: try TicketComment(row: comment[0]), requester: requester,
        requesterCreated: created)
    }
  }

  /// The contact or lead the sender is, created when unknown (as the tenant's settings say).
  static func sender(_ connection: PostgresConnection, _ email: InboundEmail, context: ChangeLog.Context) throws
    -> (TicketRequester, Bool)
  {
    let principal = context.principal
    let tenant = principal.tenantID
    var person = LeadFields()
    let (first, last) = Capture.splitName(email.senderName)
    person.firstName = first
    person.lastName = last ?? String(email.senderAddress.split(separator: "@").first ?? "").prefix(100).description
    person.emails = [ContactEmail(address: email.senderAddress, isPrimary: true)]
    var violations = Violations()
    person = person.normalized(prefix: "email.raw (From)", into: &violations)
    try violations.check()
    if let match = try CaptureStore.existing(connection, person.matchSubject, tenant: tenant) {
      return (match.recordType == .contact ? .contact(match.recordID) : .lead(match.recordID), false)
    }
    let settings = try ServiceConfigStore.settings(connection, tenant: tenant)
    let now = Timestamp.now
    if settings.unknownSender == .lead {
      var draft = Lead(
        id: UUID.v7(), version: 1, ownerID: principal.userID, fields: person, status: .new, disqualifiedReason: nil,
        lastActivityAt: nil, createdAt: now, updatedAt: now, createdBy: principal.userID, updatedBy: principal.userID,
        archivedAt: nil)
      draft.fields.sourceDetail = "Support email"
      let (routed, notes) = try AssignmentStore.routeNew(
        connection, draft, subject: AssignmentSubject(draft.fields), tenant: tenant)
      let lead = try RecordMechanics<Lead>.insert(connection, routed, context: context, notes: notes)
      return (.lead(lead.id), true)
    }
    var fields = ContactFields()
    fields.firstName = person.firstName
    fields.lastName = person.lastName
    fields.emails = person.emails
    fields = fields.normalized(prefix: "email.raw (From)", into: &violations)
    try violations.check()
    let contact = try RecordMechanics<Contact>.insert(
      connection,
      Contact(
        id: UUID.v7(), version: 1, ownerID: principal.userID, fields: fields, createdAt: now, updatedAt: now,
        createdBy: principal.userID, updatedBy: principal.userID, archivedAt: nil), context: context)
    return (.contact(contact.id), true)
  }

  /// The ticket with this number, whoever may see it (threading checks the requester instead).
  static func ticket(_ connection: PostgresConnection, number: Int64, tenant: UUID) throws -> Ticket? {
    try connection.query(
      "SELECT \(unsafeSQL: Ticket.columns) FROM tickets WHERE tenant_id = \(tenant) AND number = \(number) AND archived_at IS NULL"
    ).first.map(Ticket.init(row:))
  }
}
