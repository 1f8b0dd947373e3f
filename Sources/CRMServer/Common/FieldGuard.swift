import CRMCore
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// Field-level security's one enforcement point (docs/field-security.md). It works on the protobuf
/// wire format with the API's own descriptors, so every message of every RPC — those that exist and
/// those added later — is covered without a line in any handler:
///
/// - Responses: wherever a record message (`crm.v1.Lead`, `Contact`, `Account`, `Opportunity`,
///   `Ticket`, `Task`, `Interaction`) appears, at any depth, its hidden fields are dropped; wherever a
///   `crm.v1.ChangeEntry` appears (history, timelines, the change feed, webhook payloads), its changes
///   of hidden fields are dropped.
/// - Requests: a record message that sets a field the role may not edit (creates), an update mask
///   beside a record message that names one (updates), and a merge's `field_sources` that names one,
///   answer PERMISSION_DENIED naming the field.
///
/// Callers without restrictions (every admin, and every role of a tenant that set none) skip it.
public final class FieldGuard: Sendable {
  struct Field: Sendable {
    var name: String
    /// The message type's full name, for message-typed fields.
    var messageType: String?
  }

  struct Schema: Sendable {
    var byNumber: [UInt64: Field] = [:]
    var byName: [String: UInt64] = [:]
  }

  /// Every message of the API by full name (`crm.v1.Lead`).
  let schemas: [String: Schema]
  /// The messages that are records, and their type.
  let records: [String: RecordType]
  /// Messages that hold (at any depth) a record or a change entry: the only ones worth walking.
  let relevant: Set<String>
  /// Every RPC of the API (`crm.v1.LeadService/GetLead`) and its response message.
  let methods: [(name: String, output: String)]

  static let changeEntry = "crm.v1.ChangeEntry"
  static let fieldChange = "crm.v1.FieldChange"
  static let fieldMask = "google.protobuf.FieldMask"
  static let mergeRequest = "crm.v1.MergeRecordsRequest"

  /// The record message of each record type.
  public static let recordMessages: [String: RecordType] = [
    "crm.v1.Lead": .lead, "crm.v1.Contact": .contact, "crm.v1.Account": .account, "crm.v1.Opportunity": .opportunity,
    "crm.v1.Ticket": .ticket, "crm.v1.Task": .task, "crm.v1.Interaction": .interaction,
  ]

  /// Fields no rule may restrict: what identifies a record and its version.
  public static let unrestrictable: Set<String> = ["id", "etag", "create_time", "update_time"]

  /// The guard over the API's descriptors (built once).
  public static let shared: FieldGuard = {
    do {
      return try FieldGuard()
    } catch {
      fatalError("the API's embedded descriptor set does not parse: \(error)")
    }
  }()

  init() throws {
    guard let bytes = Data(base64Encoded: CRMDescriptorSet.base64) else { throw DescriptorSetError() }
    let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
    var schemas: [String: Schema] = [:]
    var methods: [(name: String, output: String)] = []
    func add(_ message: Google_Protobuf_DescriptorProto, scope: String) {
      let name = scope + message.name
      var schema = Schema()
      for field in message.field {
        let type = field.type == .message ? String(field.typeName.drop(while: { $0 == "." })) : nil
        schema.byNumber[UInt64(field.number)] = Field(name: field.name, messageType: type)
        schema.byName[field.name] = UInt64(field.number)
      }
      schemas[name] = schema
      for nested in message.nestedType { add(nested, scope: name + ".") }
    }
    for file in set.file {
      let prefix = file.package.isEmpty ? "" : file.package + "."
      for message in file.messageType { add(message, scope: prefix) }
      for service in file.service {
        for method in service.method {
          methods.append((prefix + service.name + "/" + method.name, String(method.outputType.drop(while: { $0 == "." }))))
        }
      }
    }
    var relevant = Set(Self.recordMessages.keys).union([Self.changeEntry])
    var grew = true
    while grew {
      grew = false
      for (name, schema) in schemas where !relevant.contains(name) {
        if schema.byNumber.values.contains(where: { $0.messageType.map(relevant.contains) ?? false }) {
          relevant.insert(name)
          grew = true
        }
      }
    }
    self.schemas = schemas
    records = Self.recordMessages
    self.relevant = relevant
    self.methods = methods
  }

  /// The RPCs whose responses can carry governed data (`crm.v1.LeadService/GetLead`): the ones field
  /// security redacts. Tests check that each is exercised.
  public var governedMethods: [String] { methods.filter { relevant.contains($0.output) }.map(\.name).sorted() }

  /// The fields of a record type's message, for validating rules.
  public func fields(of type: RecordType) -> Set<String> {
    guard let message = records.first(where: { $0.value == type })?.key, let schema = schemas[message] else { return [] }
    return Set(schema.byName.keys)
  }

  /// True when a message of this type can carry something field security governs.
  func governs(_ messageName: String) -> Bool { relevant.contains(messageName) }

  // MARK: - Responses

  /// `message` without what `security` hides.
  public func redact<M: SwiftProtobuf.Message>(_ message: M, security: FieldSecurity) throws -> M {
    guard !security.isEmpty, governs(M.protoMessageName) else { return message }
    let bytes: [UInt8] = try message.serializedBytes()
    return try M(serializedBytes: redact(bytes[...], message: M.protoMessageName, security: security))
  }

  func redact(_ bytes: ArraySlice<UInt8>, message name: String, security: FieldSecurity) throws -> [UInt8] {
    guard relevant.contains(name), let schema = schemas[name] else { return Array(bytes) }
    let record = records[name]
    let hidden = record.map(security.hidden) ?? []
    var hiddenChanges: RecordType?
    if name == Self.changeEntry, let typeField = schema.byName["record_type"] {
      // Which record the entry is about decides which of its changes go.
      var reader = WireReader(bytes)
      while let field = try reader.next() {
        if field.number == typeField, let value = field.varint {
          hiddenChanges = RecordType(Crm_V1_RecordType(rawValue: Int(value)) ?? .unspecified)
        }
      }
    }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var reader = WireReader(bytes)
    while let field = try reader.next() {
      let described = schema.byNumber[field.number]
      if let described, hidden.contains(described.name) { continue }
      if let type = hiddenChanges, described?.messageType == Self.fieldChange, let payload = field.payload,
        let name = try Self.fieldChangeName(payload, schema: schemas[Self.fieldChange]),
        security.access(type, name) == .hidden
      {
        continue
      }
      if let payload = field.payload, let inner = described?.messageType, relevant.contains(inner) {
        let redacted = try redact(payload, message: inner, security: security)
        WireReader.appendVarint(field.tag, to: &out)
        WireReader.appendVarint(UInt64(redacted.count), to: &out)
        out += redacted
      } else {
        out += field.raw
      }
    }
    return out
  }

  static func fieldChangeName(_ bytes: ArraySlice<UInt8>, schema: Schema?) throws -> String? {
    guard let number = schema?.byName["field"] else { return nil }
    var reader = WireReader(bytes)
    while let field = try reader.next() {
      if field.number == number { return field.payload.map { String(decoding: $0, as: UTF8.self) } }
    }
    return nil
  }

  // MARK: - Requests

  /// Throws PERMISSION_DENIED, naming the field, when `message` writes a field `security` does not
  /// let the caller edit. `method` (e.g. `MergeLeads`) says what a merge request merges.
  public func checkWrite<M: SwiftProtobuf.Message>(_ message: M, method: String, security: FieldSecurity) throws {
    guard !security.isEmpty else { return }
    let name = M.protoMessageName
    if name == Self.mergeRequest {
      let bytes: [UInt8] = try message.serializedBytes()
      return try checkMerge(bytes[...], method: method, security: security)
    }
    guard governs(name) else { return }
    let bytes: [UInt8] = try message.serializedBytes()
    try checkWrite(bytes[...], message: name, path: "", security: security)
  }

  func checkWrite(_ bytes: ArraySlice<UInt8>, message name: String, path: String, security: FieldSecurity) throws {
    guard let schema = schemas[name] else { return }
    if let type = records[name] {
      var reader = WireReader(bytes)
      while let field = try reader.next() {
        guard let described = schema.byNumber[field.number] else { continue }
        try Self.require(security, type, described.name, path: path + described.name)
      }
      return
    }
    // An update: a record beside a field mask; the mask says what is written.
    let recordFields = schema.byNumber.filter { $0.value.messageType.map { records[$0] != nil } ?? false }
    let maskFields = schema.byNumber.filter { $0.value.messageType == Self.fieldMask }
    if recordFields.count == 1, let record = recordFields.first?.value, let maskNumber = maskFields.first?.key,
      let type = record.messageType.flatMap({ records[$0] })
    {
      var reader = WireReader(bytes)
      var masked = false
      while let field = try reader.next() {
        guard field.number == maskNumber else { continue }
        masked = true
        var paths = WireReader(field.payload ?? [])
        while let entry = try paths.next() {
          guard entry.number == 1 else { continue }
          let text = String(decoding: entry.payload ?? [], as: UTF8.self)
          try Self.require(security, type, text, path: path + record.name + "." + text)
        }
      }
      if masked { return }
    }
    var reader = WireReader(bytes)
    while let field = try reader.next() {
      guard let described = schema.byNumber[field.number], let inner = described.messageType, relevant.contains(inner),
        let payload = field.payload
      else { continue }
      try checkWrite(payload, message: inner, path: path + described.name + ".", security: security)
    }
  }

  func checkMerge(_ bytes: ArraySlice<UInt8>, method: String, security: FieldSecurity) throws {
    let type: RecordType? =
      method.hasSuffix("MergeLeads")
      ? .lead
      : method.hasSuffix("MergeContacts")
        ? .contact
        : method.hasSuffix("MergeAccounts") ? .account : nil
    guard let type, let number = schemas[Self.mergeRequest]?.byName["field_sources"] else { return }
    var reader = WireReader(bytes)
    while let field = try reader.next() {
      guard field.number == number else { continue }
      var entry = WireReader(field.payload ?? [])
      while let part = try entry.next() {
        guard part.number == 1 else { continue }
        let name = String(decoding: part.payload ?? [], as: UTF8.self)
        try Self.require(security, type, name, path: "field_sources[\(name)]")
      }
    }
  }

  static func require(_ security: FieldSecurity, _ type: RecordType, _ field: String, path: String) throws {
    switch security.access(type, field) {
    case .editable: return
    case .readOnly: throw CRMError.permissionDenied("\(path) is read-only for your role")
    case .hidden: throw CRMError.permissionDenied("\(path) is not available to your role")
    }
  }
}

/// Reads protobuf wire-format fields one at a time, keeping each one's raw bytes.
struct WireReader {
  struct Field {
    var number: UInt64
    var tag: UInt64
    /// The whole field, tag included, as read.
    var raw: ArraySlice<UInt8>
    /// A length-delimited field's contents.
    var payload: ArraySlice<UInt8>?
    /// A varint field's value.
    var varint: UInt64?
  }

  struct Malformed: Error {}

  let bytes: ArraySlice<UInt8>
  var index: Int

  init(_ bytes: ArraySlice<UInt8>) {
    self.bytes = bytes
    index = bytes.startIndex
  }

  mutating func varint() throws -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while index < bytes.endIndex {
      let byte = bytes[index]
      index += 1
      value |= UInt64(byte & 0x7f) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
      if shift > 63 { throw Malformed() }
    }
    throw Malformed()
  }

  mutating func next() throws -> Field? {
    guard index < bytes.endIndex else { return nil }
    let start = index
    let tag = try varint()
    var field = Field(number: tag >> 3, tag: tag, raw: [], payload: nil, varint: nil)
    switch tag & 7 {
    case 0: field.varint = try varint()
    case 1: index += 8
    case 5: index += 4
    case 2:
      let length = try varint()
      guard length <= UInt64(bytes.endIndex - index) else { throw Malformed() }
      field.payload = bytes[index..<(index + Int(length))]
      index += Int(length)
    default: throw Malformed()
    }
    guard index <= bytes.endIndex else { throw Malformed() }
    field.raw = bytes[start..<index]
    return field
  }

  static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var value = value
    while value >= 0x80 {
      out.append(UInt8(value & 0x7f) | 0x80)
      value >>= 7
    }
    out.append(UInt8(value))
  }
}

extension RecordType {
  /// The record type an API enum names, or `nil` for none.
  init?(_ type: Crm_V1_RecordType) {
    var ignored = Violations()
    self.init(type, field: "", into: &ignored)
  }
}

// MARK: - In the interceptor

extension FieldGuard {
  /// The request with each message checked for writes the caller may not make.
  func guarding<Input: Sendable>(_ request: StreamingServerRequest<Input>, method: String, security: FieldSecurity)
    -> StreamingServerRequest<Input>
  {
    guard let type = Input.self as? any SwiftProtobuf.Message.Type,
      governs(type.protoMessageName) || type.protoMessageName == Self.mergeRequest
    else { return request }
    var guarded = request
    let messages = request.messages
    guarded.messages = RPCAsyncSequence(
      wrapping: messages.map { message in
        if let message = message as? any SwiftProtobuf.Message {
          try self.checkWrite(message, method: method, security: security)
        }
        return message
      })
    return guarded
  }

  /// The response with every message redacted for the caller.
  func redacting<Output: Sendable>(_ response: StreamingServerResponse<Output>, security: FieldSecurity)
    -> StreamingServerResponse<Output>
  {
    guard let type = Output.self as? any SwiftProtobuf.Message.Type, governs(type.protoMessageName),
      case .success(var contents) = response.accepted
    else { return response }
    let producer = contents.producer
    contents.producer = { writer in
      try await producer(RPCWriter(wrapping: RedactingWriter(base: writer, guard: self, security: security)))
    }
    var redacted = response
    redacted.accepted = .success(contents)
    return redacted
  }

  /// `message` redacted, as its own type.
  func redactAny<Output>(_ message: Output, security: FieldSecurity) throws -> Output {
    guard let protobuf = message as? any SwiftProtobuf.Message else { return message }
    return try redact(protobuf, security: security) as? Output ?? message
  }
}

/// Writes responses redacted for the caller.
struct RedactingWriter<Element: Sendable>: RPCWriterProtocol {
  let base: RPCWriter<Element>
  let `guard`: FieldGuard
  let security: FieldSecurity

  func write(_ element: Element) async throws {
    try await base.write(try self.guard.redactAny(element, security: security))
  }

  func write(contentsOf elements: some Sequence<Element>) async throws {
    try await base.write(contentsOf: try elements.map { try self.guard.redactAny($0, security: security) })
  }
}
