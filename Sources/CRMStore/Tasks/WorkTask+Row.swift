import CRMCore
import Foundation
import LibPQ

extension WorkTask: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static let table = "tasks"
  static let recordType = RecordType.task
  static let noun = "task"
  static let nameSortKey = #"lower(subject) COLLATE "C""#
  static let constraintErrors: [String: CRMError] = [
    "tasks_tenant_id_owner_id_fkey": .invalid("task.owner_id", "no such user", reason: "NOT_FOUND")
  ]
  static let columns = """
    id, owner_id, subject, description, due_at, reminder_at, priority, status, related_type, related_id, completed_at,
    alert_kind, flagged_manager_id, version, created_at, updated_at, created_by, updated_by, archived_at
    """

  init(row: PostgresRow) throws {
    var fields = TaskFields(subject: try row.decode("subject"))
    fields.description = try row.decode("description")
    fields.dueAt = try row.decode("due_at")
    fields.reminderAt = try row.decode("reminder_at")
    fields.priority = TaskPriority(rawValue: try row.decode("priority")) ?? .normal
    fields.status = TaskStatus(rawValue: try row.decode("status")) ?? .open
    if let type = try row.decode("related_type", as: String?.self).flatMap(RecordType.init(rawValue:)),
      let id = try row.decode("related_id", as: UUID?.self)
    {
      fields.related = RecordLink(type: type, id: id)
    }
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      completedAt: try row.decode("completed_at"),
      alertKind: try row.decode("alert_kind", as: String?.self).flatMap(AlertKind.init(rawValue:)),
      flaggedManagerID: try row.decode("flagged_manager_id"), createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"), createdBy: try row.decode("created_by"), updatedBy: try row.decode("updated_by"),
      archivedAt: try row.decode("archived_at"))
  }

  var matchSubject: MatchSubject { MatchSubject() }

  static let writableColumns = """
    subject, description, due_at, reminder_at, priority, status, related_type, related_id, completed_at, owner_id
    """

  var writableValues: PostgresQuery {
    let f = fields
    return """
      \(f.subject), \(f.description), \(f.dueAt), \(f.reminderAt), \(f.priority.rawValue), \(f.status.rawValue),
      \(f.related?.type.rawValue), \(f.related?.id), \(completedAt), \(ownerID)
      """
  }
}
