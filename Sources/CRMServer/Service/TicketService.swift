import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.TicketService`: tickets, their comments, merges and SLA clocks.
public struct TicketService: Crm_V1_TicketService.SimpleServiceProtocol {
  let tickets: TicketStore

  /// A service over the ticket store.
  public init(tickets: TicketStore) { self.tickets = tickets }

  public func createTicket(request: Crm_V1_CreateTicketRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasTicket { violations.add("ticket", "is required", reason: "REQUIRED") }
    let fields = request.ticket.fields(only: nil, into: &violations)
    var opening = TicketStore.Opening()
    opening.status = TicketStatus(request.ticket.status, field: "ticket.status", into: &violations)
    switch request.openingAuthor {
    case .unspecified: break
    case .agent: opening.author = .agent
    case .customer: opening.author = .requester
    case .system, .UNRECOGNIZED:
      violations.add("opening_author", "must be AGENT or CUSTOMER", reason: "INVALID")
    }
    opening.messageID = violations.text("opening_message_id", request.openingMessageID, maxLength: 998)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let ticket = try await tickets.create(
      fields, opening: opening, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Ticket(ticket)
  }

  public func getTicket(request: Crm_V1_GetTicketRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    let text = request.id.hasPrefix("#") ? String(request.id.dropFirst()) : request.id
    if let number = Int64(text), number > 0 {
      return Crm_V1_Ticket(try await tickets.get(number: number, principal: call.principal))
    }
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Ticket(try await tickets.get(id!, principal: call.principal))
  }

  public func batchGetTickets(request: Crm_V1_BatchGetTicketsRequest, context: ServerContext) async throws
    -> Crm_V1_BatchGetTicketsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    try violations.check()
    let found = try await tickets.batchGet(ids, principal: call.principal)
    return .with { $0.tickets = found.map(Crm_V1_Ticket.init) }
  }

  public func updateTicket(request: Crm_V1_UpdateTicketRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.ticket.id, field: "ticket.id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: TicketField.self, into: &violations)
    let patch = request.ticket.fields(only: mask, into: &violations)
    let status =
      mask.contains(.status)
      ? TicketStatus(request.ticket.status, field: "ticket.status", required: true, into: &violations) : nil
    let expected = RequestFields.etag(request.ticket.etag, field: "ticket.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let ticket = try await tickets.update(
      id!, patch: patch, mask: mask, status: status, expectedVersion: expected,
      context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Ticket(ticket)
  }

  public func deleteTicket(request: Crm_V1_DeleteTicketRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Ticket(
      try await tickets.archive(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: change.requestID)))
  }

  public func undeleteTicket(request: Crm_V1_UndeleteTicketRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Ticket(
      try await tickets.restore(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: change.requestID)))
  }

  public func listTickets(request: Crm_V1_ListTicketsRequest, context: ServerContext) async throws
    -> Crm_V1_ListTicketsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = TicketFilter()
    filter.statuses = TicketStatus.list(request.statuses, field: "statuses", into: &violations)
    filter.priorities = TicketPriority.list(request.priorities, field: "priorities", into: &violations)
    filter.types = TicketType.list(request.types, field: "types", into: &violations)
    filter.channels = TicketChannel.list(request.channels, field: "channels", into: &violations)
    filter.slaStates = TicketSLAState.list(request.slaStates, field: "sla_states", into: &violations)
    for (count, field) in [
      (request.statuses.count, "statuses"), (request.priorities.count, "priorities"), (request.types.count, "types"),
      (request.channels.count, "channels"), (request.slaStates.count, "sla_states"),
    ] where count > 20 {
      violations.add(field, "at most 20 values", reason: "TOO_MANY")
    }
    filter.assigneeID = RequestFields.optionalID(request.assigneeID, field: "assignee_id", into: &violations)
    filter.unassigned = request.unassigned
    if filter.unassigned, filter.assigneeID != nil {
      violations.add("unassigned", "cannot be combined with assignee_id", reason: "INVALID")
    }
    filter.groupID = RequestFields.optionalID(request.groupID, field: "group_id", into: &violations)
    filter.accountID = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    let contact = RequestFields.optionalID(request.requesterContactID, field: "requester_contact_id", into: &violations)
    let lead = RequestFields.optionalID(request.requesterLeadID, field: "requester_lead_id", into: &violations)
    if contact != nil, lead != nil {
      violations.add("requester_lead_id", "filter by a contact or a lead, not both", reason: "INVALID")
    }
    filter.requester = contact.map(TicketRequester.contact) ?? lead.map(TicketRequester.lead)
    filter.tag = violations.text("tag", request.tag, maxLength: Tags.maxLength)?.lowercased()
    if request.hasBreachesBefore { filter.breachesBefore = request.breachesBefore.domain }
    if request.hasCreatedAfter { filter.createdFrom = request.createdAfter.domain }
    if request.hasCreatedBefore { filter.createdTo = request.createdBefore.domain }
    if request.hasUpdatedAfter { filter.updatedFrom = request.updatedAfter.domain }
    if request.hasUpdatedBefore { filter.updatedTo = request.updatedBefore.domain }
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    switch request.orderBy {
    case .unspecified, .newest: filter.order = .newest
    case .nextBreach: filter.order = .nextBreach
    case .updated: filter.order = .updated
    case .UNRECOGNIZED: violations.add("order_by", "unknown value", reason: "INVALID")
    }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await tickets.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: request.includeTotalSize,
      principal: call.principal)
    return .with {
      $0.tickets = page.items.map(Crm_V1_Ticket.init)
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.totalSize = page.totalSize ?? 0
    }
  }

  public func addComment(request: Crm_V1_AddCommentRequest, context: ServerContext) async throws -> Crm_V1_AddCommentResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let ticketID = RequestFields.id(request.ticketID, field: "ticket_id", into: &violations)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    var fromCustomer = false
    switch request.authorKind {
    case .unspecified, .agent: break
    case .customer: fromCustomer = true
    case .system, .UNRECOGNIZED: violations.add("author_kind", "must be AGENT or CUSTOMER", reason: "INVALID")
    }
    let contact = RequestFields.optionalID(request.authorContactID, field: "author_contact_id", into: &violations)
    let lead = RequestFields.optionalID(request.authorLeadID, field: "author_lead_id", into: &violations)
    if (contact != nil || lead != nil), !fromCustomer {
      violations.add("author_kind", "must be CUSTOMER when a customer author is named", reason: "INVALID")
    }
    if contact != nil, lead != nil { violations.add("author_lead_id", "name a contact or a lead, not both", reason: "INVALID") }
    let body = violations.multilineText("body", request.body, maxLength: TicketFields.maxBodyLength)
    if request.body.trimmingWhitespace().isEmpty { violations.add("body", "is required", reason: "REQUIRED") }
    let messageID = violations.text("message_id", request.messageID, maxLength: 998)
    let channel = TicketChannel(request.channel, field: "channel", into: &violations)
    let status = TicketStatus(request.status, field: "status", into: &violations)
    if fromCustomer, status != nil { violations.add("status", "only agents set a status with a comment", reason: "INVALID") }
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let comment = TicketStore.NewComment(
      fromCustomer: fromCustomer, customer: contact.map(TicketRequester.contact) ?? lead.map(TicketRequester.lead),
      isPublic: request.public, body: body!, messageID: messageID, channel: channel, status: status)
    let result = try await tickets.addComment(
      ticketID!, comment, expectedVersion: expected, context: .init(principal: call.principal, requestID: requestID))
    return .with {
      $0.ticket = Crm_V1_Ticket(result.ticket)
      $0.comment = Crm_V1_TicketComment(result.comment)
      $0.openedFollowUp = result.openedFollowUp
      $0.duplicate = result.duplicate
    }
  }

  public func listComments(request: Crm_V1_ListCommentsRequest, context: ServerContext) async throws
    -> Crm_V1_ListCommentsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let ticketID = RequestFields.id(request.ticketID, field: "ticket_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await tickets.comments(
      of: ticketID!, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.comments = page.items.map(Crm_V1_TicketComment.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func mergeTickets(request: Crm_V1_MergeTicketsRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    var violations = Violations()
    let target = RequestFields.id(request.targetID, field: "target_id", into: &violations)
    if request.sourceIds.isEmpty { violations.add("source_ids", "name at least one ticket to merge", reason: "REQUIRED") }
    if request.sourceIds.count > 20 { violations.add("source_ids", "at most 20 tickets at once", reason: "TOO_MANY") }
    let sources = RequestFields.ids(Array(request.sourceIds.prefix(21)), field: "source_ids", into: &violations)
    if Set(sources).count != sources.count { violations.add("source_ids", "names a ticket twice", reason: "DUPLICATE") }
    if let target, sources.contains(target) {
      violations.add("source_ids", "a ticket cannot be merged into itself", reason: "INVALID")
    }
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let merged = try await tickets.merge(sources, into: target!, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Ticket(merged)
  }

  public func getTicketSLA(request: Crm_V1_GetTicketSLARequest, context: ServerContext) async throws
    -> Crm_V1_GetTicketSLAResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.ticketID, field: "ticket_id", into: &violations)
    try violations.check()
    let (ticket, instances) = try await tickets.sla(of: id!, principal: call.principal)
    return .with {
      $0.ticket = Crm_V1_Ticket(ticket)
      $0.instances = instances.map(Crm_V1_SLAInstance.init)
    }
  }

  public func setTicketDueTime(request: Crm_V1_SetTicketDueTimeRequest, context: ServerContext) async throws -> Crm_V1_Ticket {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.ticketID, field: "ticket_id", into: &violations)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    let metric = SLAMetric(request.metric, field: "metric", required: true, into: &violations)
    try violations.check()
    let ticket = try await tickets.setDue(
      id!, metric: metric!, due: request.hasDueTime ? request.dueTime.domain : nil, expectedVersion: expected,
      context: .init(principal: call.principal, requestID: nil))
    return Crm_V1_Ticket(ticket)
  }

  public func getServiceReport(request: Crm_V1_GetServiceReportRequest, context: ServerContext) async throws
    -> Crm_V1_ServiceReport
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasStartTime { violations.add("start_time", "is required", reason: "REQUIRED") }
    if !request.hasEndTime { violations.add("end_time", "is required", reason: "REQUIRED") }
    let from = request.startTime.domain
    let to = request.endTime.domain
    if request.hasStartTime, request.hasEndTime {
      if to <= from { violations.add("end_time", "must be after start_time", reason: "OUT_OF_RANGE") }
      if to.microsecondsSinceEpoch - from.microsecondsSinceEpoch > 366 * 86_400 * 1_000_000 {
        violations.add("end_time", "the period is at most 366 days", reason: "OUT_OF_RANGE")
      }
    }
    try violations.check()
    let report = try await tickets.report(from: from, to: to, principal: call.principal)
    func duration(_ seconds: Double?) -> Google_Protobuf_Duration {
      .init(microseconds: Int64(((seconds ?? 0) * 1_000_000).rounded()))
    }
    func durations(_ d: ServiceReport.Durations) -> Crm_V1_ServiceReport.Durations {
      .with {
        $0.count = d.count
        $0.median = duration(d.medianSeconds)
        $0.p90 = duration(d.p90Seconds)
        $0.slaMedian = duration(d.slaMedianSeconds)
        $0.slaP90 = duration(d.slaP90Seconds)
      }
    }
    return .with {
      $0.startTime = request.startTime
      $0.endTime = request.endTime
      $0.achievement = report.achievement.map { row in
        .with {
          $0.dimension = row.dimension
          $0.key = row.key
          $0.metric = row.metric.proto()
          $0.achieved = row.achieved
          $0.breached = row.breached
          $0.achievementRate = row.achieved + row.breached == 0 ? 0 : Double(row.achieved) / Double(row.achieved + row.breached)
        }
      }
      $0.firstResponse = durations(report.firstResponse)
      $0.resolution = durations(report.resolution)
      $0.backlog = report.backlog.map { row in
        .with {
          $0.status = row.status.proto()
          $0.age = row.age
          $0.count = row.count
        }
      }
      $0.satisfaction = report.satisfaction.map { row in
        .with {
          $0.dimension = row.dimension
          $0.key = row.key
          $0.surveys = row.surveys
          $0.answers = row.answers
          $0.responseRate = row.surveys == 0 ? 0 : Double(row.answers) / Double(row.surveys)
          $0.averageRating = row.averageRating ?? 0
        }
      }
    }
  }
}
