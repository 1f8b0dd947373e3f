public import Foundation

/// One field's value before and after a mutation.
public struct FieldChange: Sendable, Hashable {
  /// The field's API name, e.g. `billing_address`.
  public var field: String
  /// The value before; `.null` on create.
  public var oldValue: JSONValue
  /// The value after.
  public var newValue: JSONValue

  /// Makes a change.
  public init(field: String, oldValue: JSONValue, newValue: JSONValue) {
    self.field = field
    self.oldValue = oldValue
    self.newValue = newValue
  }

  /// The changes between two snapshots of the same fields (field name → value), in `fields` order.
  public static func diff(fields: [String], old: [String: JSONValue]?, new: [String: JSONValue]) -> [FieldChange] {
    fields.compactMap { field in
      let before = old?[field] ?? .null
      let after = new[field] ?? .null
      if old != nil, before == after { return nil }
      if old == nil, after == .null { return nil }
      return FieldChange(field: field, oldValue: before, newValue: after)
    }
  }

  /// The changes as the change log stores them: `[{"field":…,"old":…,"new":…}, …]`.
  public static func render(_ changes: [FieldChange]) -> String {
    JSONValue.array(changes.map { .object([("field", .string($0.field)), ("old", $0.oldValue), ("new", $0.newValue)]) }).rendered
  }
}

/// What a mutation did to a record.
public enum ChangeOperation: String, Sendable, Hashable, Codable {
  case create
  case update
  case archive
  case restore
  /// Other records were merged into this one.
  case merge
  /// A trigger rule's custom event about the record (``ChangeEntry/eventName``), carrying the change
  /// that fired it.
  case event
}

/// One row of the change log: one mutation of one record.
public struct ChangeEntry: Sendable, Hashable {
  /// Increases with every change.
  public var sequence: Int64
  /// The kind of record.
  public var recordType: RecordType
  /// The record.
  public var recordID: UUID
  /// What happened.
  public var operation: ChangeOperation
  /// Who did it.
  public var actorID: UUID?
  /// When.
  public var changedAt: Timestamp
  /// The caller's request id, if any.
  public var requestID: String?
  /// The changed fields as stored JSON (an array of `{field, old, new}`).
  public var changesJSON: String
  /// The caller's client origin (`x-client-origin`), if it named one.
  public var origin: String?
  /// The trigger rule whose action made this entry, if one did.
  public var ruleID: UUID?
  /// That rule's name, where the reader looked it up (history).
  public var ruleName: String?
  /// A custom event's name (operation ``ChangeOperation/event``).
  public var eventName: String?

  /// Makes an entry.
  public init(
    sequence: Int64, recordType: RecordType, recordID: UUID, operation: ChangeOperation, actorID: UUID?,
    changedAt: Timestamp, requestID: String?, changesJSON: String, origin: String? = nil, ruleID: UUID? = nil,
    eventName: String? = nil
  ) {
    self.origin = origin
    self.ruleID = ruleID
    self.eventName = eventName
    self.sequence = sequence
    self.recordType = recordType
    self.recordID = recordID
    self.operation = operation
    self.actorID = actorID
    self.changedAt = changedAt
    self.requestID = requestID
    self.changesJSON = changesJSON
  }
}
