/// How a role may treat one field of a record type.
public enum FieldAccess: String, Sendable, Hashable, CaseIterable, Codable {
  /// Read and written (the default for every field).
  case editable
  /// Read, never written: a write naming it answers PERMISSION_DENIED.
  case readOnly = "read_only"
  /// Neither: left out of every response, event and payload, and refused in writes.
  case hidden
}

/// A role's field-level security in a tenant: the fields of each record type it may not edit or
/// see. Fields named nowhere are editable. Admins have none (they set it).
public struct FieldSecurity: Sendable, Hashable {
  /// Field name (as the API spells it, e.g. `annual_revenue`) → access, per record type.
  public private(set) var rules: [RecordType: [String: FieldAccess]]

  /// No restrictions.
  public static let unrestricted = FieldSecurity(rules: [:])

  /// Rules as stored; `editable` entries are dropped (they restrict nothing).
  public init(rules: [RecordType: [String: FieldAccess]]) {
    var kept: [RecordType: [String: FieldAccess]] = [:]
    for (type, fields) in rules {
      let restricted = fields.filter { $0.value != .editable }
      if !restricted.isEmpty { kept[type] = restricted }
    }
    self.rules = kept
  }

  /// True when nothing is restricted (the common case: no work on any path).
  public var isEmpty: Bool { rules.isEmpty }

  /// The access to one field; a nested path (`billing_address.region_code`) goes by its first part.
  public func access(_ type: RecordType, _ field: String) -> FieldAccess {
    guard let fields = rules[type] else { return .editable }
    let top = field.firstIndex(of: ".").map { String(field[..<$0]) } ?? field
    return fields[top] ?? .editable
  }

  /// The fields of `type` the role may not see.
  public func hidden(_ type: RecordType) -> Set<String> {
    guard let fields = rules[type] else { return [] }
    return Set(fields.compactMap { $0.value == .hidden ? $0.key : nil })
  }
}
