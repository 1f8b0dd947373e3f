import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ChangeService`: the audit trail of each record, with the record's own visibility.
public struct ChangeService: Crm_V1_ChangeService.SimpleServiceProtocol {
  let history: HistoryStore

  /// A service over `history`.
  public init(history: HistoryStore) { self.history = history }

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
    case .interaction, .task, .ticket, .unspecified, .UNRECOGNIZED:
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
    case .interaction, .opportunity, .task, .ticket, .unspecified, .UNRECOGNIZED:
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
    }
    actorID = entry.actorID?.lowercasedString ?? ""
    changeTime = .init(entry.changedAt)
    requestID = entry.requestID ?? ""
    changes = Self.fieldChanges(fromJSON: entry.changesJSON)
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
