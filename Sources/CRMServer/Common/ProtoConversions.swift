import CRMCore
import CRMProto
import CRMStore
import Foundation
import SwiftProtobuf

extension Google_Protobuf_Timestamp {
  /// A protobuf timestamp from a domain timestamp.
  init(_ timestamp: Timestamp) {
    self.init(seconds: timestamp.seconds, nanos: timestamp.nanos)
  }

  /// The domain timestamp (microsecond precision).
  var domain: Timestamp { Timestamp(seconds: seconds, nanos: nanos) }
}

extension Crm_V1_Money {
  init(_ money: Money) {
    self.init()
    currencyCode = money.currencyCode
    units = money.units
    nanos = money.nanos
  }

  var domain: Money { Money(currencyCode: currencyCode, units: units, nanos: nanos) }
}

extension Crm_V1_PostalAddress {
  init(_ address: PostalAddress) {
    self.init()
    addressLines = address.addressLines
    locality = address.locality
    administrativeArea = address.administrativeArea
    postalCode = address.postalCode
    regionCode = address.regionCode
  }

  var domain: PostalAddress {
    PostalAddress(
      addressLines: addressLines, locality: locality, administrativeArea: administrativeArea, postalCode: postalCode,
      regionCode: regionCode)
  }
}

/// Parsing of the scalar request fields every service shares.
enum RequestFields {
  /// A required id: a UUID in its canonical form.
  static func id(_ text: String, field: String, into violations: inout Violations) -> UUID? {
    if text.isEmpty {
      violations.add(field, "is required", reason: "REQUIRED")
      return nil
    }
    return optionalID(text, field: field, into: &violations)
  }

  /// An optional id: empty means none.
  static func optionalID(_ text: String, field: String, into violations: inout Violations) -> UUID? {
    if text.isEmpty { return nil }
    guard let id = UUID(canonical: text) else {
      violations.add(field, "must be a UUID such as 0191f4c2-7a3e-7c1d-9b8a-2f6e4d3c2b1a", reason: "INVALID_FORMAT")
      return nil
    }
    return id
  }

  /// A list of ids (1 to 1,000; 0 to 1,000 when not `required`).
  static func ids(_ texts: [String], field: String, required: Bool = true, into violations: inout Violations) -> [UUID] {
    if texts.isEmpty, required { violations.add(field, "at least one id is required", reason: "REQUIRED") }
    if texts.count > PageSize.maximum {
      violations.add(field, "at most \(PageSize.maximum) ids", reason: "TOO_MANY")
      return []
    }
    return texts.enumerated().compactMap { index, text in id(text, field: "\(field)[\(index)]", into: &violations) }
  }

  /// An optional request id (≤128 printable characters).
  static func requestID(_ text: String, field: String = "request_id", into violations: inout Violations) -> String? {
    if text.isEmpty { return nil }
    guard text.utf8.count <= 128, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
      violations.add(field, "must be at most 128 printable characters", reason: "INVALID_FORMAT")
      return nil
    }
    return text
  }

  /// The etag's version, or `nil` when none was sent.
  static func etag(_ text: String, field: String, into violations: inout Violations) -> Int64? {
    do {
      return try Etag.parse(text, field: field)
    } catch {
      if case .invalidArgument(let list) = error {
        for item in list { violations.add(item.field, item.description, reason: item.reason) }
      }
      return nil
    }
  }

  /// The most paths an update mask may name (more than any record has fields).
  static let maxMaskPaths = 100

  /// The paths of an update mask, checked against the fields an update may name.
  static func mask<Field: RawRepresentable & Hashable>(
    _ mask: Google_Protobuf_FieldMask, hasMask: Bool, as type: Field.Type, into violations: inout Violations
  ) -> Set<Field> where Field.RawValue == String {
    guard hasMask, !mask.paths.isEmpty else {
      violations.add("update_mask", "name the fields to change, e.g. paths: [\"name\"]", reason: "REQUIRED")
      return []
    }
    // No record has this many fields: refuse before looking at each path.
    guard mask.paths.count <= Self.maxMaskPaths else {
      violations.add("update_mask", "names \(mask.paths.count) paths; at most \(Self.maxMaskPaths)", reason: "TOO_MANY")
      return []
    }
    var fields = Set<Field>()
    for path in mask.paths {
      if let field = Field(rawValue: path) {
        fields.insert(field)
      } else {
        violations.add("update_mask", "unknown or read-only field \"\(path.prefix(64))\"", reason: "INVALID_FIELD")
      }
    }
    return fields
  }

  /// A merge request as a plan and its request id: ids, etags and field names checked, every field
  /// source one of the merged records, the survivor not merged into itself, 1–20 merged records.
  static func mergePlan<Field: RawRepresentable & Hashable & Sendable>(
    _ request: Crm_V1_MergeRecordsRequest, ownerField: Field
  ) throws(CRMError) -> (plan: MergePlan<Field>, requestID: String?) where Field.RawValue == String {
    var violations = Violations()
    let survivor = Self.id(request.survivorID, field: "survivor_id", into: &violations)
    let survivorVersion = Self.etag(request.survivorEtag, field: "survivor_etag", into: &violations)
    if request.merged.isEmpty || request.merged.count > 20 {
      violations.add(
        "merged", "name 1–20 records to merge into the survivor", reason: request.merged.isEmpty ? "REQUIRED" : "TOO_MANY")
    }
    var losers: [(id: UUID, version: Int64?)] = []
    for (index, source) in request.merged.prefix(21).enumerated() {
      guard let id = Self.id(source.id, field: "merged[\(index)].id", into: &violations) else { continue }
      let version = Self.etag(source.etag, field: "merged[\(index)].etag", into: &violations)
      if id == survivor {
        violations.add("merged[\(index)].id", "is the survivor: a record cannot be merged into itself", reason: "INVALID")
      } else if losers.contains(where: { $0.id == id }) {
        violations.add("merged[\(index)].id", "names a record twice", reason: "DUPLICATE")
      } else {
        losers.append((id, version))
      }
    }
    let members = Set(losers.map(\.id) + [survivor].compactMap { $0 })
    var choices: [Field: UUID] = [:]
    var ownerFrom: UUID?
    for (name, source) in request.fieldSources.sorted(by: { $0.key < $1.key }) {
      let field = "field_sources[\"\(name.prefix(64))\"]"
      guard let target = Field(rawValue: name) else {
        violations.add(field, "unknown or read-only field", reason: "INVALID_FIELD")
        continue
      }
      guard let id = Self.id(source, field: field, into: &violations) else { continue }
      guard members.contains(id) else {
        violations.add(field, "must be the survivor or one of the merged records", reason: "INVALID")
        continue
      }
      if target == ownerField { ownerFrom = id } else { choices[target] = id }
    }
    let requestID = Self.requestID(request.requestID, into: &violations)
    try violations.check()
    return (
      MergePlan(survivorID: survivor!, survivorVersion: survivorVersion, losers: losers, choices: choices, ownerFrom: ownerFrom),
      requestID
    )
  }

  /// The id, etag version and request id of an archive or restore request, validated together.
  static func stateChange(
    id: String, etag: String, requestID: String
  ) throws(CRMError) -> (id: UUID, expectedVersion: Int64?, requestID: String?) {
    var violations = Violations()
    let parsedID = Self.id(id, field: "id", into: &violations)
    let expected = Self.etag(etag, field: "etag", into: &violations)
    let parsedRequestID = Self.requestID(requestID, into: &violations)
    try violations.check()
    return (parsedID!, expected, parsedRequestID)
  }

  /// The archive filter.
  static func archiveFilter(_ filter: Crm_V1_ArchiveFilter, into violations: inout Violations) -> ArchiveFilter {
    switch filter {
    case .unspecified, .active: return .active
    case .archived: return .archived
    case .all: return .all
    case .UNRECOGNIZED:
      violations.add("archive_filter", "unknown value", reason: "INVALID")
      return .active
    }
  }

  /// The list order.
  static func order(_ order: Crm_V1_ListOrder, into violations: inout Violations) -> ListOrder {
    switch order {
    case .unspecified, .name: return .name
    case .updateTimeDesc: return .updateTimeDescending
    case .scoreDesc: return .scoreDescending
    case .UNRECOGNIZED:
      violations.add("order_by", "unknown value", reason: "INVALID")
      return .name
    }
  }
}
