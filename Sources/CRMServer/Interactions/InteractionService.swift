import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.InteractionService`: the interaction log and record timelines.
public struct InteractionService: Crm_V1_InteractionService.SimpleServiceProtocol {
  let interactions: InteractionStore

  /// A service over `interactions`.
  public init(interactions: InteractionStore) { self.interactions = interactions }

  /// Logs an interaction; a repeated `request_id` returns the first result.
  public func logInteraction(
    request: Crm_V1_LogInteractionRequest, context: ServerContext
  ) async throws -> Crm_V1_Interaction {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasInteraction { violations.add("interaction", "is required", reason: "REQUIRED") }
    let fields = request.interaction.fields(prefix: "interaction", mask: nil, into: &violations)
    let owner = RequestFields.optionalID(request.interaction.ownerID, field: "interaction.owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Interaction(
      try await interactions.log(fields, ownerID: owner, context: .init(principal: call.principal, requestID: requestID)))
  }

  /// One interaction.
  public func getInteraction(
    request: Crm_V1_GetInteractionRequest, context: ServerContext
  ) async throws -> Crm_V1_Interaction {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Interaction(try await interactions.get(id!, principal: call.principal))
  }

  /// Changes the fields in the mask, checking the etag.
  public func updateInteraction(
    request: Crm_V1_UpdateInteractionRequest, context: ServerContext
  ) async throws -> Crm_V1_Interaction {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.interaction.id, field: "interaction.id", into: &violations)
    let mask = RequestFields.mask(
      request.updateMask, hasMask: request.hasUpdateMask, as: InteractionField.self, into: &violations)
    let patch = request.interaction.fields(prefix: "interaction", mask: mask, into: &violations)
    let expected = RequestFields.etag(request.interaction.etag, field: "interaction.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Interaction(
      try await interactions.update(
        id!, patch: patch, mask: mask, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: requestID)))
  }

  /// Archives the interaction.
  public func deleteInteraction(
    request: Crm_V1_DeleteInteractionRequest, context: ServerContext
  ) async throws -> Crm_V1_Interaction {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: "")
    return Crm_V1_Interaction(
      try await interactions.setArchived(
        change.id, archive: true, expectedVersion: change.expectedVersion,
        context: .init(principal: call.principal, requestID: nil)))
  }

  /// The interactions of one record, newest first.
  public func listInteractions(
    request: Crm_V1_ListInteractionsRequest, context: ServerContext
  ) async throws -> Crm_V1_ListInteractionsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRecord { violations.add("record", "is required", reason: "REQUIRED") }
    let record = request.record.link(field: "record", into: &violations)
    let kinds = request.kinds.enumerated().compactMap { index, kind in
      InteractionKind(kind, field: "kinds[\(index)]", into: &violations)
    }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await interactions.list(
      InteractionFilter(record: record!, kinds: kinds), pageSize: pageSize, pageToken: request.pageToken,
      principal: call.principal)
    return .with {
      $0.interactions = page.items.map(Crm_V1_Interaction.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  /// A record's timeline, newest first.
  public func getTimeline(
    request: Crm_V1_GetTimelineRequest, context: ServerContext
  ) async throws -> Crm_V1_GetTimelineResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRecord { violations.add("record", "is required", reason: "REQUIRED") }
    let record = request.record.link(field: "record", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await interactions.timeline(
      of: record!, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.entries = page.items.map { Crm_V1_TimelineEntry($0, on: record!) }
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }
}
