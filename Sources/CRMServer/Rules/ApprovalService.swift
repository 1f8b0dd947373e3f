import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ApprovalService`: approval processes (admins), and requests — submit, approve, reject,
/// recall, and each user's queue (docs/approvals.md).
public struct ApprovalService: Crm_V1_ApprovalService.SimpleServiceProtocol {
  let approvals: ApprovalStore

  /// A service over the store.
  public init(approvals: ApprovalStore) { self.approvals = approvals }

  public func createApprovalProcess(request: Crm_V1_CreateApprovalProcessRequest, context: ServerContext) async throws
    -> Crm_V1_ApprovalProcess
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasProcess { violations.add("process", "is required", reason: "REQUIRED") }
    let definition = request.process.definition(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_ApprovalProcess(
      try await approvals.createProcess(definition!, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func updateApprovalProcess(request: Crm_V1_UpdateApprovalProcessRequest, context: ServerContext) async throws
    -> Crm_V1_ApprovalProcess
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.process.id, field: "process.id", into: &violations)
    let expected = RequestFields.etag(request.process.etag, field: "process.etag", into: &violations)
    let definition = request.process.definition(into: &violations)
    try violations.check()
    return Crm_V1_ApprovalProcess(
      try await approvals.updateProcess(
        id!, definition!, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteApprovalProcess(request: Crm_V1_DeleteApprovalProcessRequest, context: ServerContext) async throws
    -> Crm_V1_DeleteApprovalProcessResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    try await approvals.archiveProcess(id!, context: .init(principal: call.principal, requestID: nil))
    return .init()
  }

  public func listApprovalProcesses(request: Crm_V1_ListApprovalProcessesRequest, context: ServerContext) async throws
    -> Crm_V1_ListApprovalProcessesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let type: RecordType? =
      request.recordType == .unspecified ? nil : RecordType(request.recordType, field: "record_type", into: &violations)
    try violations.check()
    let processes = try await approvals.listProcesses(recordType: type, principal: call.principal)
    return .with { $0.processes = processes.map(Crm_V1_ApprovalProcess.init) }
  }

  public func submitForApproval(request: Crm_V1_SubmitForApprovalRequest, context: ServerContext) async throws
    -> Crm_V1_ApprovalRequest
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRecord { violations.add("record", "is required", reason: "REQUIRED") }
    let record = request.record.approvable(field: "record", into: &violations)
    let process = RequestFields.optionalID(request.processID, field: "process_id", into: &violations)
    let comment = violations.multilineText("comment", request.comment, maxLength: 2000)
    try violations.check()
    return Crm_V1_ApprovalRequest(
      try await approvals.submit(
        record!, processID: process, comment: comment, context: .init(principal: call.principal, requestID: call.requestID)))
  }

  public func approveRequest(request: Crm_V1_DecideRequest, context: ServerContext) async throws -> Crm_V1_ApprovalRequest {
    try await decide(request, approve: true)
  }

  public func rejectRequest(request: Crm_V1_DecideRequest, context: ServerContext) async throws -> Crm_V1_ApprovalRequest {
    try await decide(request, approve: false)
  }

  public func recallRequest(request: Crm_V1_DecideRequest, context: ServerContext) async throws -> Crm_V1_ApprovalRequest {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let comment = violations.multilineText("comment", request.comment, maxLength: 2000)
    try violations.check()
    return Crm_V1_ApprovalRequest(
      try await approvals.recall(id!, comment: comment, context: .init(principal: call.principal, requestID: call.requestID)))
  }

  func decide(_ request: Crm_V1_DecideRequest, approve: Bool) async throws -> Crm_V1_ApprovalRequest {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let comment = violations.multilineText("comment", request.comment, maxLength: 2000)
    try violations.check()
    return Crm_V1_ApprovalRequest(
      try await approvals.decide(
        id!, approve: approve, comment: comment, context: .init(principal: call.principal, requestID: call.requestID)))
  }

  public func getApprovalRequest(request: Crm_V1_GetApprovalRequestRequest, context: ServerContext) async throws
    -> Crm_V1_ApprovalRequest
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_ApprovalRequest(try await approvals.get(id!, principal: call.principal))
  }

  public func listApprovalRequests(request: Crm_V1_ListApprovalRequestsRequest, context: ServerContext) async throws
    -> Crm_V1_ListApprovalRequestsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRecord { violations.add("record", "is required", reason: "REQUIRED") }
    let record = request.record.approvable(field: "record", into: &violations)
    try violations.check()
    let requests = try await approvals.list(for: record!, principal: call.principal)
    return .with { $0.requests = requests.map(Crm_V1_ApprovalRequest.init) }
  }

  public func listMyApprovals(request: Crm_V1_ListMyApprovalsRequest, context: ServerContext) async throws
    -> Crm_V1_ListMyApprovalsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let user = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await approvals.waiting(for: user, principal: call.principal, pageSize: pageSize, pageToken: request.pageToken)
    return .with {
      $0.requests = page.items.map(Crm_V1_ApprovalRequest.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }
}

extension Crm_V1_ApprovalProcess {
  init(_ process: ApprovalProcess) {
    self.init()
    id = process.id.lowercasedString
    etag = process.etag
    createTime = .init(process.createdAt)
    updateTime = .init(process.updatedAt)
    let d = process.definition
    recordType = Crm_V1_RecordType(d.recordType)
    name = d.name
    position = Int32(clamping: d.position)
    inactive = !d.isActive
    entryConditions = d.entryConditions.map(Crm_V1_RuleCondition.init)
    gatedStageID = d.gatedStageID?.lowercasedString ?? ""
    steps = d.steps.map { step in
      .with {
        $0.name = step.name
        switch step.approver {
        case .manager(let level): $0.managerLevel = Int32(level)
        case .user(let user): $0.userID = user.lowercasedString
        case .team(let team, let unanimous):
          $0.team = .with {
            $0.teamID = team.lowercasedString
            $0.unanimous = unanimous
          }
        }
      }
    }
    onApprove = d.onApprove.map(Crm_V1_ApprovalFinalAction.init)
    onReject = d.onReject.map(Crm_V1_ApprovalFinalAction.init)
  }

  /// The definition sent, validated; `nil` only with violations recorded.
  func definition(into violations: inout Violations) -> ApprovalProcessDefinition? {
    let type = RecordType(recordType, field: "process.record_type", into: &violations)
    let conditions = entryConditions.enumerated().compactMap { index, condition in
      condition.parsed(field: "process.entry_conditions[\(index)]", into: &violations)
    }
    let gate = RequestFields.optionalID(gatedStageID, field: "process.gated_stage_id", into: &violations)
    let parsedSteps = steps.enumerated().compactMap { index, step -> ApprovalStep? in
      let at = "process.steps[\(index)]"
      switch step.approver {
      case .managerLevel(let level): return ApprovalStep(name: step.name, approver: .manager(level: Int(level)))
      case .userID(let text):
        return RequestFields.id(text, field: "\(at).user_id", into: &violations).map {
          ApprovalStep(name: step.name, approver: .user($0))
        }
      case .team(let team):
        return RequestFields.id(team.teamID, field: "\(at).team.team_id", into: &violations).map {
          ApprovalStep(name: step.name, approver: .team($0, unanimous: team.unanimous))
        }
      case nil:
        violations.add(at, "name manager_level, user_id or team", reason: "REQUIRED")
        return nil
      }
    }
    func actions(_ list: [Crm_V1_ApprovalFinalAction], _ field: String) -> [ApprovalFinalAction] {
      list.enumerated().compactMap { index, action in
        switch action.action {
        case .setField(let set): return .setField(set.field, JSONValue(set.value))
        case .moveStageID(let text):
          return RequestFields.id(text, field: "\(field)[\(index)].move_stage_id", into: &violations).map { .moveStage($0) }
        case nil:
          violations.add("\(field)[\(index)]", "name set_field or move_stage_id", reason: "REQUIRED")
          return nil
        }
      }
    }
    let approve = actions(onApprove, "process.on_approve")
    let reject = actions(onReject, "process.on_reject")
    guard let type else { return nil }
    return ApprovalProcessDefinition(
      recordType: type, name: name, position: Int(position), isActive: !inactive, entryConditions: conditions,
      gatedStageID: gate, steps: parsedSteps, onApprove: approve, onReject: reject
    ).validated(path: "process", into: &violations)
  }
}

extension Crm_V1_RecordRef {
  /// The lead, contact, account, opportunity or ticket referenced, validated.
  func approvable(field: String, into violations: inout Violations) -> RecordLink? {
    var type = RecordType(recordType, field: "\(field).record_type", into: &violations)
    if let named = type, !TriggerRuleDefinition.recordTypes.contains(named) {
      violations.add(
        "\(field).record_type", "approvals cover " + TriggerRuleDefinition.recordTypes.map(\.rawValue).joined(separator: ", "),
        reason: "INVALID")
      type = nil
    }
    let id = RequestFields.id(recordID, field: "\(field).record_id", into: &violations)
    guard let type, let id else { return nil }
    return RecordLink(type: type, id: id)
  }
}

extension Crm_V1_ApprovalFinalAction {
  init(_ action: ApprovalFinalAction) {
    self.init()
    switch action {
    case .setField(let field, let value):
      setField = .with {
        $0.field = field
        $0.value = Google_Protobuf_Value(value)
      }
    case .moveStage(let stage): moveStageID = stage.lowercasedString
    }
  }
}

extension Crm_V1_ApprovalRequest {
  init(_ request: ApprovalRequest) {
    self.init()
    id = request.id.lowercasedString
    processID = request.processID.lowercasedString
    processName = request.processName
    record = Crm_V1_RecordRef(request.record)
    switch request.status {
    case .pending: status = .pending
    case .approved: status = .approved
    case .rejected: status = .rejected
    case .recalled: status = .recalled
    }
    step = Int32(request.step)
    stepName = request.stepName
    stepCount = Int32(request.stepCount)
    submittedBy = request.submittedBy.lowercasedString
    submitTime = .init(request.submittedAt)
    comment = request.comment ?? ""
    if let decided = request.decidedAt { decideTime = .init(decided) }
    ruleID = request.ruleID?.lowercasedString ?? ""
    decisions = request.decisions.map { decision in
      .with {
        $0.step = Int32(decision.step)
        $0.approverID = decision.approverID.lowercasedString
        switch decision.outcome {
        case .pending: $0.outcome = .pending
        case .approved: $0.outcome = .approved
        case .rejected: $0.outcome = .rejected
        case .skipped: $0.outcome = .skipped
        }
        $0.comment = decision.comment ?? ""
        if let decided = decision.decidedAt { $0.decideTime = .init(decided) }
      }
    }
  }
}
