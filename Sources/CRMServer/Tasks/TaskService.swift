import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.TaskService`: tasks, the assignee's list, and the alert job's settings and trigger.
public struct TaskService: Crm_V1_TaskService.SimpleServiceProtocol {
  let tasks: TaskStore

  /// A service over the store.
  public init(tasks: TaskStore) { self.tasks = tasks }

  public func createTask(request: Crm_V1_CreateTaskRequest, context: ServerContext) async throws -> Crm_V1_Task {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasTask { violations.add("task", "is required", reason: "REQUIRED") }
    let fields = request.task.fields(prefix: "task", only: nil, into: &violations)
    let owner = RequestFields.optionalID(request.task.ownerID, field: "task.owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Task(
      try await tasks.create(fields, ownerID: owner, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getTask(request: Crm_V1_GetTaskRequest, context: ServerContext) async throws -> Crm_V1_Task {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Task(try await tasks.get(id!, principal: call.principal))
  }

  public func updateTask(request: Crm_V1_UpdateTaskRequest, context: ServerContext) async throws -> Crm_V1_Task {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.task.id, field: "task.id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: TaskField.self, into: &violations)
    let patch = request.task.fields(prefix: "task", only: mask, into: &violations)
    let owner =
      mask.contains(.ownerID) ? RequestFields.id(request.task.ownerID, field: "task.owner_id", into: &violations) : nil
    let expected = RequestFields.etag(request.task.etag, field: "task.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Task(
      try await tasks.update(
        id!, patch: patch, mask: mask, newOwnerID: owner, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: requestID)))
  }

  public func deleteTask(request: Crm_V1_DeleteTaskRequest, context: ServerContext) async throws -> Crm_V1_Task {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    return Crm_V1_Task(
      try await tasks.archive(
        change.id, expectedVersion: change.expectedVersion,
        context: .init(principal: call.principal, requestID: change.requestID)))
  }

  public func listMyTasks(request: Crm_V1_ListMyTasksRequest, context: ServerContext) async throws -> Crm_V1_ListMyTasksResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = TaskStore.Filter()
    filter.ownerID = RequestFields.optionalID(request.userID, field: "user_id", into: &violations)
    filter.includeClosed = request.includeClosed
    filter.includeFlagged = request.includeFlagged
    if request.hasRelated { filter.related = request.related.link(field: "related", into: &violations) }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await tasks.list(filter, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.tasks = page.items.map(Crm_V1_Task.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func setStaleDealDays(request: Crm_V1_SetStaleDealDaysRequest, context: ServerContext) async throws
    -> Crm_V1_SetStaleDealDaysResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !(1...365).contains(request.days) { violations.add("days", "must be 1 to 365", reason: "OUT_OF_RANGE") }
    try violations.check()
    try await tasks.setStaleDealDays(Int(request.days), principal: call.principal)
    return .with { $0.days = request.days }
  }

  public func raiseAlerts(request: Crm_V1_RaiseAlertsRequest, context: ServerContext) async throws -> Crm_V1_RaiseAlertsResponse {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    let report = try await tasks.raiseAlerts(tenant: call.principal.tenantID)
    return .with {
      $0.staleDeals = Int32(report.staleDeals)
      $0.expiringHoldings = Int32(report.expiringHoldings)
    }
  }
}

extension Crm_V1_Task {
  init(_ task: WorkTask) {
    self.init()
    let f = task.fields
    id = task.id.lowercasedString
    etag = task.etag
    createTime = .init(task.createdAt)
    updateTime = .init(task.updatedAt)
    if let archivedAt = task.archivedAt { archiveTime = .init(archivedAt) }
    ownerID = task.ownerID.lowercasedString
    subject = f.subject
    description_p = f.description ?? ""
    if let due = f.dueAt { dueTime = .init(due) }
    if let reminder = f.reminderAt { reminderTime = .init(reminder) }
    priority = Crm_V1_TaskPriority(f.priority)
    status = Crm_V1_TaskStatus(f.status)
    if let related = f.related { self.related = Crm_V1_RecordRef(related) }
    if let completed = task.completedAt { completeTime = .init(completed) }
    overdue = task.isOverdue(at: .now)
    if let kind = task.alertKind { alertKind = Crm_V1_AlertKind(kind) }
    flaggedManagerID = task.flaggedManagerID?.lowercasedString ?? ""
  }

  /// The caller-settable fields, validated (those in `only` when given).
  func fields(prefix: String, only: Set<TaskField>?, into violations: inout Violations) -> TaskFields {
    func reads(_ field: TaskField) -> Bool { only?.contains(field) ?? true }
    var fields = TaskFields(subject: subject)
    fields.description = description_p
    fields.dueAt = hasDueTime ? dueTime.domain : nil
    fields.reminderAt = hasReminderTime ? reminderTime.domain : nil
    switch priority {
    case .unspecified, .normal: fields.priority = .normal
    case .low: fields.priority = .low
    case .high: fields.priority = .high
    case .urgent: fields.priority = .urgent
    case .UNRECOGNIZED: violations.add("\(prefix).priority", "unknown priority", reason: "INVALID")
    }
    switch status {
    case .unspecified, .open: fields.status = .open
    case .inProgress: fields.status = .inProgress
    case .done: fields.status = .done
    case .cancelled: fields.status = .cancelled
    case .UNRECOGNIZED: violations.add("\(prefix).status", "unknown status", reason: "INVALID")
    }
    if reads(.related), hasRelated { fields.related = related.link(field: "\(prefix).related", into: &violations) }
    if reads(.reminderTime), let reminder = fields.reminderAt, let due = fields.dueAt, reminder > due {
      violations.add("\(prefix).reminder_time", "must not be after the due time", reason: "INVALID")
    }
    return fields.normalized(prefix: prefix, only: only, into: &violations)
  }
}

extension Crm_V1_TaskPriority {
  init(_ priority: TaskPriority) {
    switch priority {
    case .low: self = .low
    case .normal: self = .normal
    case .high: self = .high
    case .urgent: self = .urgent
    }
  }
}

extension Crm_V1_TaskStatus {
  init(_ status: TaskStatus) {
    switch status {
    case .open: self = .open
    case .inProgress: self = .inProgress
    case .done: self = .done
    case .cancelled: self = .cancelled
    }
  }
}

extension Crm_V1_AlertKind {
  init(_ kind: AlertKind) {
    switch kind {
    case .staleDeal: self = .staleDeal
    case .expiringHolding: self = .expiringHolding
    case .recycled: self = .recycled
    case .dunning: self = .dunning
    case .brokenPromise: self = .brokenPromise
    case .disputeEvidence: self = .disputeEvidence
    }
  }
}
