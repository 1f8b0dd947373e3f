public import Foundation

/// How urgent a task is.
public enum TaskPriority: String, Sendable, Hashable, CaseIterable {
  case low, normal, high, urgent
}

/// Where a task stands.
public enum TaskStatus: String, Sendable, Hashable, CaseIterable {
  case open
  case inProgress = "in_progress"
  case done
  case cancelled

  /// Open and in-progress tasks are still to do.
  public var isPending: Bool { self == .open || self == .inProgress }
}

/// Why a job raised a task.
public enum AlertKind: String, Sendable, Hashable, CaseIterable {
  /// An open deal had no activity for the tenant's stale-deal days.
  case staleDeal = "stale_deal"
  /// A record held from a pool returns soon unless worked.
  case expiringHolding = "expiring_holding"
  /// A held record went back to its pool.
  case recycled
  /// A dunning level applied to overdue invoices of the related account.
  case dunning
  /// The related account's promise to pay fell due unpaid.
  case brokenPromise = "broken_promise"
  /// The evidence of a dispute on the related account falls due soon.
  case disputeEvidence = "dispute_evidence"
}

/// The fields of a task that callers set.
public struct TaskFields: Sendable, Hashable {
  /// 1 to 255 characters.
  public var subject: String
  public var description: String?
  public var dueAt: Timestamp?
  public var reminderAt: Timestamp?
  public var priority: TaskPriority
  public var status: TaskStatus
  /// The lead, contact, account or opportunity it is about.
  public var related: RecordLink?

  /// Fields with a subject, normal priority, open.
  public init(subject: String) {
    self.subject = subject
    priority = .normal
    status = .open
  }

  /// Validated and normalized (those in `only` when given), violations under `prefix`.
  public func normalized(prefix: String, only: Set<TaskField>? = nil, into violations: inout Violations) -> TaskFields {
    func checks(_ field: TaskField) -> Bool { only?.contains(field) ?? true }
    var out = self
    if checks(.subject) { out.subject = violations.text("\(prefix).subject", subject, maxLength: 255, required: true) ?? "" }
    if checks(.description) {
      out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 10_000)
    }
    if checks(.related), let related, related.type == .interaction || related.type == .task {
      violations.add("\(prefix).related.record_type", "a task relates to a lead, contact, account or opportunity", reason: "INVALID")
    }
    return out
  }

  /// Copies the fields named in `mask` from `patch`.
  public func applying(_ patch: TaskFields, mask: Set<TaskField>) -> TaskFields {
    var out = self
    for field in mask {
      switch field {
      case .subject: out.subject = patch.subject
      case .description: out.description = patch.description
      case .dueTime: out.dueAt = patch.dueAt
      case .reminderTime: out.reminderAt = patch.reminderAt
      case .priority: out.priority = patch.priority
      case .status: out.status = patch.status
      case .related: out.related = patch.related
      case .ownerID: break
      }
    }
    return out
  }
}

/// The fields a task update may name, by their API paths.
public enum TaskField: String, Sendable, Hashable, CaseIterable {
  case subject, description
  case dueTime = "due_time"
  case reminderTime = "reminder_time"
  case priority, status, related
  case ownerID = "owner_id"
}

/// A task as stored.
public struct WorkTask: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  /// The assignee.
  public var ownerID: UUID
  public var fields: TaskFields
  /// When it was done (done tasks only).
  public var completedAt: Timestamp?
  /// Set on tasks a job raised.
  public var alertKind: AlertKind?
  /// The manager a stale-deal task flags.
  public var flaggedManagerID: UUID?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?

  /// A task value.
  public init(
    id: UUID, version: Int64, ownerID: UUID, fields: TaskFields, completedAt: Timestamp?, alertKind: AlertKind?,
    flaggedManagerID: UUID?, createdAt: Timestamp, updatedAt: Timestamp, createdBy: UUID?, updatedBy: UUID?,
    archivedAt: Timestamp?
  ) {
    self.id = id
    self.version = version
    self.ownerID = ownerID
    self.fields = fields
    self.completedAt = completedAt
    self.alertKind = alertKind
    self.flaggedManagerID = flaggedManagerID
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.createdBy = createdBy
    self.updatedBy = updatedBy
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// Still to do and past its due time at `now`.
  public func isOverdue(at now: Timestamp) -> Bool {
    fields.status.isPending && (fields.dueAt.map { $0 < now } ?? false)
  }

  /// Fields, owner and completion as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    let f = fields
    return [
      "subject": .string(f.subject), "description": .optional(f.description),
      "due_time": f.dueAt.map { .string($0.rfc3339) } ?? .null,
      "reminder_time": f.reminderAt.map { .string($0.rfc3339) } ?? .null,
      "priority": .string(f.priority.rawValue), "status": .string(f.status.rawValue),
      "related": f.related.map { .string($0.key) } ?? .null,
      "owner_id": .string(ownerID.lowercasedString),
    ]
  }

  /// The order fields appear in the change log.
  public static let changeLogOrder = [
    "subject", "description", "due_time", "reminder_time", "priority", "status", "related", "owner_id",
  ]
}
