import Foundation

/// How an import treats rows that match an existing record.
public enum ImportMode: String, Sendable, Hashable {
  case insert
  case upsertByExternalID = "upsert_by_external_id"
  case upsertByEmail = "upsert_by_email"
}

/// An import's state and counts.
public struct ImportJob: Sendable, Hashable {
  public enum State: String, Sendable, Hashable {
    case running, interrupted, completed
  }

  public var importID: String
  public var recordType: RecordType
  public var mode: ImportMode
  public var state: State
  public var sourceName: String
  public var expectedRows: Int64
  public var created: Int64
  public var updated: Int64
  public var duplicateSkipped: Int64
  public var failed: Int64
  public var nextIndex: Int64
  public var createdBy: UUID
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  public init(
    importID: String, recordType: RecordType, mode: ImportMode, state: State, sourceName: String, expectedRows: Int64,
    created: Int64, updated: Int64, duplicateSkipped: Int64, failed: Int64, nextIndex: Int64, createdBy: UUID,
    createdAt: Timestamp, updatedAt: Timestamp
  ) {
    self.importID = importID
    self.recordType = recordType
    self.mode = mode
    self.state = state
    self.sourceName = sourceName
    self.expectedRows = expectedRows
    self.created = created
    self.updated = updated
    self.duplicateSkipped = duplicateSkipped
    self.failed = failed
    self.nextIndex = nextIndex
    self.createdBy = createdBy
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  /// Rows with a result.
  public var processed: Int64 { created + updated + duplicateSkipped + failed }
}

/// What happened to one row.
public struct ImportRowResult: Sendable, Hashable {
  public enum Outcome: String, Sendable, Hashable {
    case created, updated
    case duplicateSkipped = "duplicate_skipped"
    case failed
  }

  public var index: Int64
  public var outcome: Outcome
  public var recordID: UUID?
  public var errors: [ImportFieldError]
  public var matches: [RecordLink]
  /// An earlier attempt imported the row.
  public var alreadyImported: Bool

  public init(
    index: Int64, outcome: Outcome, recordID: UUID? = nil, errors: [ImportFieldError] = [], matches: [RecordLink] = [],
    alreadyImported: Bool = false
  ) {
    self.index = index
    self.outcome = outcome
    self.recordID = recordID
    self.errors = errors
    self.matches = matches
    self.alreadyImported = alreadyImported
  }
}

/// What an import stream starts with.
public struct ImportHeader: Sendable, Hashable {
  public var importID: String
  public var recordType: RecordType
  public var mode: ImportMode
  public var duplicateAction: DuplicateAction?
  public var sourceName: String
  public var expectedRows: Int64

  public init(
    importID: String, recordType: RecordType, mode: ImportMode, duplicateAction: DuplicateAction?, sourceName: String,
    expectedRows: Int64
  ) {
    self.importID = importID
    self.recordType = recordType
    self.mode = mode
    self.duplicateAction = duplicateAction
    self.sourceName = sourceName
    self.expectedRows = expectedRows
  }

  /// The most rows one batch may carry.
  public static let maxBatchRows = 1000
}
