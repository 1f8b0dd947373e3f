import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.OpportunityService`: pipelines and their stages, deals, and the stage verbs.
public struct OpportunityService: Crm_V1_OpportunityService.SimpleServiceProtocol {
  let pipelines: PipelineStore
  let opportunities: OpportunityStore

  /// A service over the given stores.
  public init(pipelines: PipelineStore, opportunities: OpportunityStore) {
    self.pipelines = pipelines
    self.opportunities = opportunities
  }

  // MARK: - Pipelines

  public func createPipeline(request: Crm_V1_CreatePipelineRequest, context: ServerContext) async throws -> Crm_V1_Pipeline {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasPipeline { violations.add("pipeline", "is required", reason: "REQUIRED") }
    let definition = request.pipeline.definition(into: &violations)
    if request.pipeline.stages.contains(where: { !$0.id.isEmpty }) {
      violations.add("pipeline.stages", "stage ids are made by the server on create", reason: "INVALID")
    }
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Pipeline(
      try await pipelines.create(definition, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getPipeline(request: Crm_V1_GetPipelineRequest, context: ServerContext) async throws -> Crm_V1_Pipeline {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Pipeline(try await pipelines.get(id!, principal: call.principal))
  }

  public func listPipelines(request: Crm_V1_ListPipelinesRequest, context: ServerContext) async throws
    -> Crm_V1_ListPipelinesResponse
  {
    let call = try RequestContext.require()
    let found = try await pipelines.list(includeArchived: request.includeArchived, principal: call.principal)
    return .with { $0.pipelines = found.map(Crm_V1_Pipeline.init) }
  }

  public func updatePipeline(request: Crm_V1_UpdatePipelineRequest, context: ServerContext) async throws -> Crm_V1_Pipeline {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.pipeline.id, field: "pipeline.id", into: &violations)
    let expected = RequestFields.etag(request.pipeline.etag, field: "pipeline.etag", into: &violations)
    let definition = request.pipeline.definition(into: &violations)
    try violations.check()
    return Crm_V1_Pipeline(
      try await pipelines.update(
        id!, definition, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deletePipeline(request: Crm_V1_DeletePipelineRequest, context: ServerContext) async throws -> Crm_V1_Pipeline {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: "")
    return Crm_V1_Pipeline(
      try await pipelines.archive(
        change.id, expectedVersion: change.expectedVersion, context: .init(principal: call.principal, requestID: nil)))
  }

  // MARK: - Opportunities

  public func createOpportunity(request: Crm_V1_CreateOpportunityRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasOpportunity { violations.add("opportunity", "is required", reason: "REQUIRED") }
    let message = request.opportunity
    let fields = message.fields(prefix: "opportunity", only: nil, into: &violations)
    let owner = RequestFields.optionalID(message.ownerID, field: "opportunity.owner_id", into: &violations)
    let placement = OpportunityStore.Placement(
      pipelineID: RequestFields.optionalID(message.pipelineID, field: "opportunity.pipeline_id", into: &violations),
      stageID: RequestFields.optionalID(message.stageID, field: "opportunity.stage_id", into: &violations),
      lostReason: violations.text("lost_reason", request.lostReason, maxLength: 500))
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let created = try await opportunities.create(
      fields, ownerID: owner, placement: placement, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Opportunity(created)
  }

  public func getOpportunity(request: Crm_V1_GetOpportunityRequest, context: ServerContext) async throws -> Crm_V1_Opportunity {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Opportunity(try await opportunities.get(id!, principal: call.principal))
  }

  public func batchGetOpportunities(
    request: Crm_V1_BatchGetOpportunitiesRequest, context: ServerContext
  ) async throws -> Crm_V1_BatchGetOpportunitiesResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    try violations.check()
    let found = try await opportunities.batchGet(ids, principal: call.principal)
    return .with { $0.opportunities = found.map(Crm_V1_Opportunity.init) }
  }

  public func updateOpportunity(request: Crm_V1_UpdateOpportunityRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.opportunity.id, field: "opportunity.id", into: &violations)
    let readOnly = Set(["pipeline_id", "stage_id", "state", "lost_reason"])
    for path in request.updateMask.paths where readOnly.contains(path) {
      violations.add(
        "update_mask", "\(path) changes through MoveOpportunityStage, CloseOpportunityWon/Lost or ReopenOpportunity",
        reason: "INVALID_FIELD")
    }
    var mask = request.updateMask
    mask.paths.removeAll(where: readOnly.contains)
    let fieldMask =
      mask.paths.isEmpty && !request.updateMask.paths.isEmpty
      ? Set<OpportunityField>()
      : RequestFields.mask(mask, hasMask: request.hasUpdateMask, as: OpportunityField.self, into: &violations)
    let patch = request.opportunity.fields(prefix: "opportunity", only: fieldMask, into: &violations)
    let owner =
      fieldMask.contains(.ownerID)
      ? RequestFields.id(request.opportunity.ownerID, field: "opportunity.owner_id", into: &violations) : nil
    let expected = RequestFields.etag(request.opportunity.etag, field: "opportunity.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    let deal = try await opportunities.update(
      id!, patch: patch, mask: fieldMask, newOwnerID: owner, expectedVersion: expected,
      context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Opportunity(deal)
  }

  public func deleteOpportunity(request: Crm_V1_DeleteOpportunityRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Opportunity(
      try await opportunities.archive(
        change.id, expectedVersion: change.expectedVersion,
        context: .init(principal: call.principal, requestID: change.requestID)))
  }

  public func undeleteOpportunity(request: Crm_V1_UndeleteOpportunityRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Opportunity(
      try await opportunities.restore(
        change.id, expectedVersion: change.expectedVersion,
        context: .init(principal: call.principal, requestID: change.requestID)))
  }

  public func listOpportunities(request: Crm_V1_ListOpportunitiesRequest, context: ServerContext) async throws
    -> Crm_V1_ListOpportunitiesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = OpportunityFilter()
    filter.ownerID = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    filter.teamID = RequestFields.optionalID(request.teamID, field: "team_id", into: &violations)
    filter.accountID = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    filter.pipelineID = RequestFields.optionalID(request.pipelineID, field: "pipeline_id", into: &violations)
    filter.stageID = RequestFields.optionalID(request.stageID, field: "stage_id", into: &violations)
    filter.state = StageCategory(request.state, field: "state", into: &violations)
    filter.forecastCategory = ForecastCategory(request.forecastCategory, field: "forecast_category", into: &violations)
    if request.hasCloseDateFrom {
      filter.closeDateFrom = request.closeDateFrom.domain(field: "close_date_from", into: &violations)
    }
    if request.hasCloseDateTo { filter.closeDateTo = request.closeDateTo.domain(field: "close_date_to", into: &violations) }
    for (money, field) in [(request.hasMinAmount ? request.minAmount : nil, "min_amount"), (request.hasMaxAmount ? request.maxAmount : nil, "max_amount")] {
      guard let money else { continue }
      let value = Money.validated(
        currencyCode: money.currencyCode, units: money.units, nanos: money.nanos, field: field, into: &violations)
      if field == "min_amount" { filter.minAmount = value } else { filter.maxAmount = value }
    }
    if let low = filter.minAmount, let high = filter.maxAmount, low.currencyCode != high.currencyCode {
      violations.add("max_amount.currency_code", "must be the currency of min_amount", reason: "INVALID")
    }
    filter.namePrefix = violations.text("name_prefix", request.namePrefix, maxLength: 255)
    filter.tag = violations.text("tag", request.tag, maxLength: Tags.maxLength)?.lowercased()
    filter.updatedSince = request.hasUpdatedSince ? request.updatedSince.domain : nil
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    filter.order = RequestFields.order(request.orderBy, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await opportunities.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: request.includeTotalSize,
      principal: call.principal)
    return .with {
      $0.opportunities = page.items.map(Crm_V1_Opportunity.init)
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.totalSize = page.totalSize ?? 0
    }
  }

  // MARK: - Stage verbs

  public func moveOpportunityStage(request: Crm_V1_MoveOpportunityStageRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    var violations = Violations()
    let stage = RequestFields.id(request.stageID, field: "stage_id", into: &violations)
    if request.hasProbability, !(0...100).contains(request.probability) {
      violations.add("probability", "must be 0 to 100", reason: "OUT_OF_RANGE")
    }
    let reason = violations.text("lost_reason", request.lostReason, maxLength: 500)
    return try await changeStage(
      id: request.id, etag: request.etag, requestID: request.requestID, violations: violations
    ) {
      .move(stageID: stage!, probability: request.hasProbability ? Int(request.probability) : nil, lostReason: reason)
    }
  }

  public func closeOpportunityWon(request: Crm_V1_CloseOpportunityWonRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    var violations = Violations()
    let stage = RequestFields.optionalID(request.stageID, field: "stage_id", into: &violations)
    return try await changeStage(id: request.id, etag: request.etag, requestID: request.requestID, violations: violations) {
      .win(stageID: stage)
    }
  }

  public func closeOpportunityLost(request: Crm_V1_CloseOpportunityLostRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    var violations = Violations()
    let stage = RequestFields.optionalID(request.stageID, field: "stage_id", into: &violations)
    let reason = violations.text("lost_reason", request.lostReason, maxLength: 500, required: true)
    return try await changeStage(id: request.id, etag: request.etag, requestID: request.requestID, violations: violations) {
      .lose(stageID: stage, reason: reason!)
    }
  }

  public func reopenOpportunity(request: Crm_V1_ReopenOpportunityRequest, context: ServerContext) async throws
    -> Crm_V1_Opportunity
  {
    var violations = Violations()
    let stage = RequestFields.optionalID(request.stageID, field: "stage_id", into: &violations)
    return try await changeStage(id: request.id, etag: request.etag, requestID: request.requestID, violations: violations) {
      .reopen(stageID: stage)
    }
  }

  public func getStageHistory(request: Crm_V1_GetStageHistoryRequest, context: ServerContext) async throws
    -> Crm_V1_GetStageHistoryResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.opportunityID, field: "opportunity_id", into: &violations)
    try violations.check()
    let changes = try await opportunities.stageHistory(of: id!, principal: call.principal)
    return .with {
      $0.changes = changes.map(Crm_V1_StageChange.init)
      $0.timeInStage = StageTime.totals(changes).map { total in
        .with {
          $0.stageID = total.stageID.lowercasedString
          $0.stageName = total.stageName
          $0.duration = .init(microseconds: total.durationMicroseconds)
          $0.visits = Int32(total.visits)
        }
      }
    }
  }

  /// The stage verbs' shared validation of id, etag and request id, then the store call. `request`
  /// is evaluated only once every field is valid.
  private func changeStage(
    id: String, etag: String, requestID: String, violations: Violations,
    _ request: () -> OpportunityStore.StageRequest
  ) async throws -> Crm_V1_Opportunity {
    let call = try RequestContext.require()
    var violations = violations
    let parsedID = RequestFields.id(id, field: "id", into: &violations)
    let expected = RequestFields.etag(etag, field: "etag", into: &violations)
    let parsedRequestID = RequestFields.requestID(requestID, into: &violations)
    try violations.check()
    let deal = try await opportunities.changeStage(
      parsedID!, request(), expectedVersion: expected, context: .init(principal: call.principal, requestID: parsedRequestID))
    return Crm_V1_Opportunity(deal)
  }
}
