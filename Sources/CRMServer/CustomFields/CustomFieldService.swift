import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.CustomFieldService`: custom fields' definitions (docs/custom-fields.md). Admins write them;
/// every user of the tenant may read them.
public struct CustomFieldService: Crm_V1_CustomFieldService.SimpleServiceProtocol {
  let fields: CustomFieldStore

  /// A service over the store.
  public init(fields: CustomFieldStore) { self.fields = fields }

  public func createCustomField(request: Crm_V1_CreateCustomFieldRequest, context: ServerContext) async throws
    -> Crm_V1_CustomField
  {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    var violations = Violations()
    if !request.hasField { violations.add("field", "is required", reason: "REQUIRED") }
    var definition = request.field.definition(prefix: "field", into: &violations)
    definition?.validate(prefix: "field", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_CustomField(
      try await fields.create(definition!, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func getCustomField(request: Crm_V1_GetCustomFieldRequest, context: ServerContext) async throws
    -> Crm_V1_CustomField
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_CustomField(try await fields.get(id!, principal: call.principal))
  }

  public func updateCustomField(request: Crm_V1_UpdateCustomFieldRequest, context: ServerContext) async throws
    -> Crm_V1_CustomField
  {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    var violations = Violations()
    let id = RequestFields.id(request.field.id, field: "field.id", into: &violations)
    let expected = RequestFields.etag(request.field.etag, field: "field.etag", into: &violations)
    if request.field.etag.isEmpty { violations.add("field.etag", "is required", reason: "REQUIRED") }
    let parts = RequestFields.mask(
      request.updateMask, hasMask: request.hasUpdateMask, as: CustomFieldStore.Part.self, into: &violations)
    // The parts not named keep their stored values; what the request sends for them is not read.
    var sent = request.field
    if !parts.contains(.type) { sent.type = .text }
    sent.recordType = .lead
    sent.apiName = "placeholder"
    let changes = sent.definition(prefix: "field", into: &violations)
    try violations.check()
    return Crm_V1_CustomField(
      try await fields.update(
        id!, parts: parts, changes: changes!, expectedVersion: expected!,
        context: .init(principal: call.principal, requestID: nil)
      ) { merged in
        var problems = Violations()
        merged.validate(prefix: "field", into: &problems)
        try problems.check()
      })
  }

  public func archiveCustomField(request: Crm_V1_ArchiveCustomFieldRequest, context: ServerContext) async throws
    -> Crm_V1_CustomField
  {
    try await setArchived(request.id, request.etag, true)
  }

  public func restoreCustomField(request: Crm_V1_RestoreCustomFieldRequest, context: ServerContext) async throws
    -> Crm_V1_CustomField
  {
    try await setArchived(request.id, request.etag, false)
  }

  func setArchived(_ idText: String, _ etag: String, _ archived: Bool) async throws -> Crm_V1_CustomField {
    let call = try RequestContext.require()
    try call.principal.requireAdmin()
    var violations = Violations()
    let id = RequestFields.id(idText, field: "id", into: &violations)
    let expected = etag.isEmpty ? nil : RequestFields.etag(etag, field: "etag", into: &violations)
    try violations.check()
    return Crm_V1_CustomField(
      try await fields.setArchived(
        id!, archived, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func listCustomFields(request: Crm_V1_ListCustomFieldsRequest, context: ServerContext) async throws
    -> Crm_V1_ListCustomFieldsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let type: RecordType? =
      request.recordType == .unspecified ? nil : RecordType(request.recordType, field: "record_type", into: &violations)
    if let type, !CustomFieldDefinition.recordTypes.contains(type) {
      violations.add(
        "record_type", CustomFieldDefinition.recordTypesRule, reason: "INVALID")
    }
    try violations.check()
    let listed = try await fields.list(
      recordType: type, includeArchived: request.includeArchived, principal: call.principal)
    return .with { $0.fields = listed.map(Crm_V1_CustomField.init) }
  }
}

extension CustomFieldType: ProtoMirrored { static var apiNoun: String { "custom field type" } }

extension Crm_V1_CustomFieldValue {
  init(_ value: CustomFieldValue) {
    self.init()
    switch value {
    case .text(let text): textValue = text
    case .integer(let number): integerValue = number
    case .decimal(let numeral): decimalValue = numeral
    case .money(let money): moneyValue = Crm_V1_Money(money)
    case .boolean(let flag): boolValue = flag
    case .date(let date): dateValue = Crm_V1_Date(date)
    case .timestamp(let time): timestampValue = Google_Protobuf_Timestamp(time)
    case .choice(let choice): choiceValue = choice
    case .choices(let choices): choicesValue = .with { $0.values = choices }
    case .reference(let id): referenceValue = id.lowercasedString
    }
  }

  /// The value sent, read as its kind says (whether it suits the field is the definition's check).
  func domain(field: String, into violations: inout Violations) -> CustomFieldValue? {
    switch kind {
    case .textValue(let text): return .text(text)
    case .integerValue(let number): return .integer(number)
    case .decimalValue(let numeral): return .decimal(numeral)
    case .moneyValue(let money):
      return Money.validated(
        currencyCode: money.currencyCode, units: money.units, nanos: money.nanos, field: "\(field).money_value",
        into: &violations
      ).map(CustomFieldValue.money)
    case .boolValue(let flag): return .boolean(flag)
    case .dateValue(let date): return date.domain(field: "\(field).date_value", into: &violations).map(CustomFieldValue.date)
    case .timestampValue(let time): return .timestamp(time.domain)
    case .choiceValue(let choice): return .choice(choice)
    case .choicesValue(let choices): return .choices(choices.values)
    case .referenceValue(let text):
      return RequestFields.id(text, field: "\(field).reference_value", into: &violations).map(CustomFieldValue.reference)
    case nil:
      violations.add(field, "holds no value; set one of its members or leave it out", reason: "REQUIRED")
      return nil
    }
  }
}

extension Crm_V1_CustomField {
  init(_ field: CustomField) {
    self.init()
    id = field.id.lowercasedString
    etag = field.etag
    createTime = .init(field.createdAt)
    updateTime = .init(field.updatedAt)
    if let archived = field.archivedAt { archiveTime = .init(archived) }
    let d = field.definition
    recordType = Crm_V1_RecordType(d.recordType)
    apiName = d.apiName
    label = d.label
    type = d.type.proto()
    if let length = d.maxLength { maxLength = Int32(length) }
    if let scale = d.scale { self.scale = Int32(scale) }
    options = d.options.map { option in
      .with {
        $0.value = option.value
        $0.label = option.label
        $0.retired = option.retired
      }
    }
    if let target = d.referenceType { referenceType = Crm_V1_RecordType(target) }
    required = d.required
    if let value = d.defaultValue { defaultValue = Crm_V1_CustomFieldValue(value) }
    helpText = d.helpText ?? ""
    unique = d.unique
    filterable = d.filterable
  }

  /// The definition sent, read field by field (`CustomFieldDefinition.validate` checks it as a whole);
  /// nil only with violations.
  func definition(prefix: String, into violations: inout Violations) -> CustomFieldDefinition? {
    let recordType = RecordType(self.recordType, field: "\(prefix).record_type", into: &violations)
    let type = CustomFieldType(self.type, field: "\(prefix).type", required: true, into: &violations)
    var target: RecordType?
    if self.referenceType != .unspecified {
      target = RecordType(self.referenceType, field: "\(prefix).reference_type", into: &violations)
    }
    let value = hasDefaultValue ? defaultValue.domain(field: "\(prefix).default_value", into: &violations) : nil
    guard let recordType, let type else { return nil }
    return CustomFieldDefinition(
      recordType: recordType, apiName: apiName, label: label, type: type, maxLength: hasMaxLength ? Int(maxLength) : nil,
      scale: hasScale ? Int(scale) : nil,
      options: options.map { CustomFieldOption(value: $0.value, label: $0.label, retired: $0.retired) },
      referenceType: target, required: required, defaultValue: value, helpText: helpText.isEmpty ? nil : helpText,
      unique: unique, filterable: filterable)
  }
}
