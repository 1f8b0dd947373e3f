import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ChangeService`: the audit trail of each record, with the record's own visibility, and the
/// tenant's change feed in commit order (docs/changes.md).
public struct ChangeService: Crm_V1_ChangeService.SimpleServiceProtocol {
  let history: HistoryStore
  let feed: ChangeFeedStore
  /// How often a stream that has caught up looks for new changes (changes another node's sequencer
  /// copied); this node's sequencer wakes it at once through `wakeup`.
  let pollInterval: Duration
  let wakeup: Wakeup

  /// A service over `history` and `feed`; `wakeup` is rung by this node's change-feed sequencer.
  public init(
    history: HistoryStore, feed: ChangeFeedStore, wakeup: Wakeup = Wakeup(), pollInterval: Duration = .milliseconds(100)
  ) {
    self.history = history
    self.feed = feed
    self.wakeup = wakeup
    self.pollInterval = pollInterval
  }

  /// A page of the feed after the request's cursor.
  public func listChanges(request: Crm_V1_ListChangesRequest, context: ServerContext) async throws
    -> Crm_V1_ListChangesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let position = FeedCursor.position(request.cursor, field: "cursor", into: &violations)
    let types = Self.types(request.recordTypes, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await Self.read(feed, after: position!, types: types, pageSize: pageSize, principal: call.principal)
    return .with {
      $0.events = page.events.map(Crm_V1_ChangeEvent.init)
      $0.nextCursor = FeedCursor.text(page.resumeAfter)
    }
  }

  /// The feed after the request's cursor, then each change as it commits, until the caller goes.
  public func streamChanges(
    request: Crm_V1_StreamChangesRequest, response: RPCWriter<Crm_V1_ChangeEvent>, context: ServerContext
  ) async throws {
    let call = try RequestContext.require()
    var violations = Violations()
    let position = FeedCursor.position(request.cursor, field: "cursor", into: &violations) ?? 0
    let types = Self.types(request.recordTypes, into: &violations)
    try violations.check()
    let start = position
    let (feed, interval, wakeup) = (feed, pollInterval, wakeup)
    // gRPC signals a caller gone (or the server shutting down) through the context, not by
    // cancelling this task: the follow loop runs beside a wait for that signal, and whichever ends
    // first ends the other.
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask {
        var position = start
        var seen = wakeup.generation
        while !Task.isCancelled {
          let page = try await Self.read(
            feed, after: position, types: types, pageSize: PageSize.maximum, principal: call.principal)
          for event in page.events { try await response.write(Crm_V1_ChangeEvent(event)) }
          let advanced = page.resumeAfter > position
          position = page.resumeAfter
          if !advanced {
            seen = await wakeup.wait(after: seen, atMost: interval)
            try Task.checkCancellation()
          }
        }
      }
      group.addTask { try await context.cancellation.cancelled }
      defer { group.cancelAll() }
      _ = try await group.next()
    }
  }

  /// How long the feed keeps the tenant's changes.
  public func setChangeFeedRetention(request: Crm_V1_SetChangeFeedRetentionRequest, context: ServerContext) async throws
    -> Crm_V1_SetChangeFeedRetentionResponse
  {
    let call = try RequestContext.require()
    let days = try await feed.setRetention(days: Int(request.days), principal: call.principal)
    return .with { $0.days = Int32(days) }
  }

  static func read(_ feed: ChangeFeedStore, after position: Int64, types: Set<RecordType>, pageSize: Int, principal: Principal)
    async throws -> ChangeFeedStore.Page
  {
    do {
      return try await feed.changes(after: position, types: types, pageSize: pageSize, principal: principal)
    } catch let expired as CursorExpired {
      throw CRMError.outOfRange(
        "the cursor is older than the change feed keeps; resume from the oldest available cursor "
          + "\"\(FeedCursor.text(expired.oldestResumePosition))\" (changes before it must be re-read from the records)")
    }
  }

  static func types(_ types: [Crm_V1_RecordType], into violations: inout Violations) -> Set<RecordType> {
    var out: Set<RecordType> = []
    for (index, type) in types.enumerated() {
      if let type = RecordType(type, field: "record_types[\(index)]", into: &violations) { out.insert(type) }
    }
    return out
  }

  /// One record's changes, newest first.
  public func getRecordHistory(
    request: Crm_V1_GetRecordHistoryRequest, context: ServerContext
  ) async throws -> Crm_V1_GetRecordHistoryResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let type = RecordType(request.recordType, field: "record_type", into: &violations)
    let id = RequestFields.id(request.recordID, field: "record_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await history.history(
      of: type!, id: id!, principal: call.principal, pageSize: pageSize, pageToken: request.pageToken)
    return .with {
      $0.entries = page.items.map(Crm_V1_ChangeEntry.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }
}

/// Feed cursors: opaque to callers (`c1.` and the position in base 36), stable across nodes.
enum FeedCursor {
  static func text(_ position: Int64) -> String { "c1." + String(position, radix: 36) }

  /// The position a cursor names (0 for the empty cursor: the start), or a violation.
  static func position(_ text: String, field: String, into violations: inout Violations) -> Int64? {
    if text.isEmpty { return 0 }
    guard text.hasPrefix("c1."), text.count <= 20, let position = Int64(text.dropFirst(3), radix: 36), position >= 0 else {
      violations.add(
        field, "is not a change-feed cursor (use an event's cursor or a response's next_cursor)", reason: "INVALID_FORMAT")
      return nil
    }
    return position
  }
}

extension Crm_V1_ChangeEvent {
  init(_ event: ChangeEvent) {
    self.init()
    cursor = FeedCursor.text(event.position)
    change = Crm_V1_ChangeEntry(event.entry)
    commitTime = .init(event.commitTime)
    transactionID = event.transactionID
    sequenceInTransaction = Int32(clamping: event.sequenceInTransaction)
  }
}

extension RecordType {
  init?(_ type: Crm_V1_RecordType, field: String, into violations: inout Violations) {
    switch type {
    case .account: self = .account
    case .contact: self = .contact
    case .lead: self = .lead
    case .interaction: self = .interaction
    case .opportunity: self = .opportunity
    case .task: self = .task
    case .ticket: self = .ticket
    case .invoice: self = .invoice
    case .payment: self = .payment
    case .creditNote: self = .creditNote
    case .dispute: self = .dispute
    case .collection: self = .collection
    case .unspecified, .UNRECOGNIZED:
      violations.add(field, "must be a record type (e.g. RECORD_TYPE_LEAD)", reason: "REQUIRED")
      return nil
    }
  }

  /// A type interactions may be linked to (and timelines read): a lead, contact, account or opportunity.
  init?(linkable type: Crm_V1_RecordType, field: String, into violations: inout Violations) {
    switch type {
    case .account: self = .account
    case .contact: self = .contact
    case .lead: self = .lead
    case .opportunity: self = .opportunity
    case .interaction, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection, .unspecified, .UNRECOGNIZED:
      violations.add(
        field, "must be RECORD_TYPE_LEAD, RECORD_TYPE_CONTACT, RECORD_TYPE_ACCOUNT or RECORD_TYPE_OPPORTUNITY", reason: "INVALID")
      return nil
    }
  }

  /// A lead, contact or account type; anything else is a violation.
  init?(matchable type: Crm_V1_RecordType, field: String, into violations: inout Violations) {
    switch type {
    case .account: self = .account
    case .contact: self = .contact
    case .lead: self = .lead
    case .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection, .unspecified, .UNRECOGNIZED:
      violations.add(field, "must be RECORD_TYPE_LEAD, RECORD_TYPE_CONTACT or RECORD_TYPE_ACCOUNT", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_RecordType {
  init(_ type: RecordType) {
    switch type {
    case .account: self = .account
    case .contact: self = .contact
    case .lead: self = .lead
    case .interaction: self = .interaction
    case .opportunity: self = .opportunity
    case .task: self = .task
    case .ticket: self = .ticket
    case .invoice: self = .invoice
    case .payment: self = .payment
    case .creditNote: self = .creditNote
    case .dispute: self = .dispute
    case .collection: self = .collection
    }
  }
}

extension Crm_V1_ChangeEntry {
  init(_ entry: ChangeEntry) {
    self.init()
    sequence = entry.sequence
    recordType = Crm_V1_RecordType(entry.recordType)
    recordID = entry.recordID.lowercasedString
    switch entry.operation {
    case .create: operation = .create
    case .update: operation = .update
    case .archive: operation = .archive
    case .restore: operation = .restore
    case .merge: operation = .merge
    case .event: operation = .event
    }
    actorID = entry.actorID?.lowercasedString ?? ""
    changeTime = .init(entry.changedAt)
    requestID = entry.requestID ?? ""
    changes = Self.fieldChanges(fromJSON: entry.changesJSON)
    origin = entry.origin ?? ""
    ruleID = entry.ruleID?.lowercasedString ?? ""
    ruleName = entry.ruleName ?? ""
    eventName = entry.eventName ?? ""
  }

  /// Parses the stored `[{"field","old","new"}]` array into API values.
  static func fieldChanges(fromJSON json: String) -> [Crm_V1_FieldChange] {
    guard let list = try? Google_Protobuf_ListValue(jsonString: json) else { return [] }
    return list.values.compactMap { item in
      guard case .structValue(let object)? = item.kind else { return nil }
      return .with {
        $0.field = object.fields["field"]?.stringValue ?? ""
        $0.oldValue = object.fields["old"] ?? Google_Protobuf_Value(nilLiteral: ())
        $0.newValue = object.fields["new"] ?? Google_Protobuf_Value(nilLiteral: ())
      }
    }
  }
}
