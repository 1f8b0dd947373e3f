import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.LeadService`: leads from every channel, validated at the edge; status moves through
/// `SetLeadStatus` along the lifecycle in ``LeadStatus``.
public struct LeadService: Crm_V1_LeadService.SimpleServiceProtocol {
  let leads: LeadStore
  let merges: MergeStore

  /// A service over the stores.
  public init(leads: LeadStore, merges: MergeStore) {
    self.leads = leads
    self.merges = merges
  }

  /// Creates a lead in status NEW; a repeated `request_id` returns the first result.
  public func createLead(request: Crm_V1_CreateLeadRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasLead { violations.add("lead", "is required", reason: "REQUIRED") }
    let fields = request.lead.fields(prefix: "lead", requiringIdentity: true, into: &violations)
    let owner = RequestFields.optionalID(request.lead.ownerID, field: "lead.owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    let action = DuplicateAction(request.duplicateAction, field: "duplicate_action", into: &violations)
    try violations.check()
    let created = try await leads.create(
      fields, ownerID: owner, duplicateAction: action, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Lead(created.record).with(created.duplicates)
  }

  /// One lead.
  public func getLead(request: Crm_V1_GetLeadRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Lead(try await leads.get(id!, principal: call.principal))
  }

  /// Several leads, all or nothing.
  public func batchGetLeads(
    request: Crm_V1_BatchGetLeadsRequest, context: ServerContext
  ) async throws -> Crm_V1_BatchGetLeadsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    try violations.check()
    let found = try await leads.batchGet(ids, principal: call.principal)
    return .with { $0.leads = found.map(Crm_V1_Lead.init) }
  }

  /// Changes the fields in the mask, checking the etag.
  public func updateLead(request: Crm_V1_UpdateLeadRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.lead.id, field: "lead.id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: LeadField.self, into: &violations)
    let patch = request.lead.fields(prefix: "lead", requiringIdentity: false, into: &violations)
    let owner = mask.contains(.ownerID) ? RequestFields.id(request.lead.ownerID, field: "lead.owner_id", into: &violations) : nil
    let expected = RequestFields.etag(request.lead.etag, field: "lead.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    if request.updateMask.paths.contains("status") {
      violations.add("update_mask", "status changes go through SetLeadStatus", reason: "INVALID_FIELD")
    }
    try violations.check()
    return Crm_V1_Lead(
      try await leads.update(
        id!, patch: patch, mask: mask, newOwnerID: owner, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: requestID)))
  }

  /// Archives the lead.
  public func deleteLead(request: Crm_V1_DeleteLeadRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Lead(
      try await leads.archive(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: change.requestID)
      ))
  }

  /// Restores an archived lead.
  public func undeleteLead(request: Crm_V1_UndeleteLeadRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Lead(
      try await leads.restore(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: change.requestID)
      ))
  }

  /// Merges duplicates into the survivor; see `MergeRecordsRequest`.
  public func mergeLeads(request: Crm_V1_MergeRecordsRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    let (plan, requestID) = try RequestFields.mergePlan(request, ownerField: LeadField.ownerID)
    return Crm_V1_Lead(try await merges.mergeLeads(plan, context: .init(principal: call.principal, requestID: requestID)))
  }

  /// A page of leads.
  public func listLeads(request: Crm_V1_ListLeadsRequest, context: ServerContext) async throws -> Crm_V1_ListLeadsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = LeadFilter()
    filter.statuses = request.statuses.enumerated().compactMap { index, status in
      LeadStatus(status, field: "statuses[\(index)]", into: &violations)
    }
    filter.ownerID = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    if request.source != .unspecified { filter.source = LeadSource(request.source, field: "source", into: &violations) }
    filter.campaign = violations.text("campaign", request.campaign, maxLength: 255)
    filter.tag = violations.text("tag", request.tag, maxLength: Tags.maxLength)?.lowercased()
    if !request.email.isEmpty {
      if let email = EmailAddress(request.email) {
        filter.email = email.value
      } else {
        violations.add("email", "must be an email address", reason: "INVALID_FORMAT")
      }
    }
    if !request.phone.isEmpty {
      if let phone = PhoneNumber(request.phone, regionCode: request.regionCode.isEmpty ? nil : request.regionCode) {
        filter.phone = phone.value
      } else {
        violations.add("phone", "must be a phone number", reason: "INVALID_FORMAT")
      }
    }
    filter.companyPrefix = violations.text("company_prefix", request.companyPrefix, maxLength: 255)
    filter.createdAfter = request.hasCreatedAfter ? request.createdAfter.domain : nil
    filter.createdBefore = request.hasCreatedBefore ? request.createdBefore.domain : nil
    filter.updatedSince = request.hasUpdatedAfter ? request.updatedAfter.domain : nil
    filter.updatedBefore = request.hasUpdatedBefore ? request.updatedBefore.domain : nil
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    filter.order = RequestFields.order(request.orderBy, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await leads.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: request.includeTotalSize,
      principal: call.principal)
    return .with {
      $0.leads = page.items.map(Crm_V1_Lead.init)
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.totalSize = page.totalSize ?? 0
    }
  }

  /// Moves a lead along its lifecycle.
  public func setLeadStatus(request: Crm_V1_SetLeadStatusRequest, context: ServerContext) async throws -> Crm_V1_Lead {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let status = LeadStatus(request.status, field: "status", into: &violations)
    let reason = violations.text("reason", request.reason, maxLength: 500)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Lead(
      try await leads.setStatus(
        id!, to: status!, reason: reason, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: requestID)))
  }

  /// Converts a lead into an account, a contact and optionally a deal, in one transaction.
  public func convertLead(request: Crm_V1_ConvertLeadRequest, context: ServerContext) async throws
    -> Crm_V1_ConvertLeadResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.leadID, field: "lead_id", into: &violations)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    let account = Self.target(
      request.accountTarget, id: request.accountID, field: "account", into: &violations,
      fields: request.account.fields(prefix: "account", only: [], into: &violations))
    let contact = Self.target(
      request.contactTarget, id: request.contactID, field: "contact", into: &violations,
      fields: request.contact.fields(prefix: "contact", only: [], into: &violations))
    var deal: LeadConversion.Deal?
    if request.hasOpportunity {
      let message = request.opportunity
      let settable = Set(OpportunityField.allCases).subtracting([.name, .accountID, .sourceLeadID, .ownerID])
      var fields = message.fields(prefix: "opportunity", only: settable, into: &violations)
      fields.name = message.name
      deal = LeadConversion.Deal(
        fields: fields,
        pipelineID: RequestFields.optionalID(message.pipelineID, field: "opportunity.pipeline_id", into: &violations),
        stageID: RequestFields.optionalID(message.stageID, field: "opportunity.stage_id", into: &violations))
    }
    let owner = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let result = try await leads.convert(
      LeadConversion(
        leadID: id!, expectedVersion: expected, account: account!, contact: contact!, deal: deal, ownerID: owner),
      context: .init(principal: call.principal, requestID: requestID))
    return .with {
      $0.lead = Crm_V1_Lead(result.lead)
      $0.account = Crm_V1_Account(result.account)
      $0.contact = Crm_V1_Contact(result.contact)
      if let deal = result.opportunity { $0.opportunity = Crm_V1_Opportunity(deal) }
      $0.accountCreated = result.accountCreated
      $0.contactCreated = result.contactCreated
    }
  }

  /// A conversion target: EXISTING needs the id, the others take the override fields (and no id).
  static func target<Fields>(
    _ target: Crm_V1_ConversionTarget, id: String, field: String, into violations: inout Violations, fields: Fields
  ) -> LeadConversion.Target<Fields>? {
    switch target {
    case .existing:
      return RequestFields.id(id, field: "\(field)_id", into: &violations).map { .existing($0) }
    case .unspecified, .new, .matched:
      if !id.isEmpty {
        violations.add("\(field)_id", "is only for \(field)_target EXISTING", reason: "INVALID")
      }
      return target == .matched ? .matched(fields) : .new(fields)
    case .UNRECOGNIZED:
      violations.add("\(field)_target", "unknown conversion target", reason: "INVALID")
      return nil
    }
  }
}
