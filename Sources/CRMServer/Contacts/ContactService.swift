import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ContactService`: validation at the edge, the store for the rest.
public struct ContactService: Crm_V1_ContactService.SimpleServiceProtocol {
  let contacts: ContactStore
  let merges: MergeStore

  /// A service over the stores.
  public init(contacts: ContactStore, merges: MergeStore) {
    self.contacts = contacts
    self.merges = merges
  }

  /// Creates a contact; a repeated `request_id` returns the first result.
  public func createContact(request: Crm_V1_CreateContactRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasContact { violations.add("contact", "is required", reason: "REQUIRED") }
    let fields = request.contact.fields(prefix: "contact", only: nil, into: &violations)
    let owner = RequestFields.optionalID(request.contact.ownerID, field: "contact.owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    let action = DuplicateAction(request.duplicateAction, field: "duplicate_action", into: &violations)
    try violations.check()
    let created = try await contacts.create(
      fields, ownerID: owner, duplicateAction: action, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Contact(created.record).with(created.duplicates)
  }

  /// One contact.
  public func getContact(request: Crm_V1_GetContactRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Contact(try await contacts.get(id!, principal: call.principal))
  }

  /// Several contacts, all or nothing.
  public func batchGetContacts(
    request: Crm_V1_BatchGetContactsRequest, context: ServerContext
  ) async throws -> Crm_V1_BatchGetContactsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    try violations.check()
    let found = try await contacts.batchGet(ids, principal: call.principal)
    return .with { $0.contacts = found.map(Crm_V1_Contact.init) }
  }

  /// Changes the fields in the mask, checking the etag.
  public func updateContact(request: Crm_V1_UpdateContactRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.contact.id, field: "contact.id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: ContactField.self, into: &violations)
    let patch = request.contact.fields(prefix: "contact", only: mask, into: &violations)
    let owner =
      mask.contains(.ownerID)
      ? RequestFields.id(request.contact.ownerID, field: "contact.owner_id", into: &violations) : nil
    let expected = RequestFields.etag(request.contact.etag, field: "contact.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_Contact(
      try await contacts.update(
        id!, patch: patch, mask: mask, newOwnerID: owner, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: requestID)))
  }

  /// Archives the contact.
  public func deleteContact(request: Crm_V1_DeleteContactRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    let record = try await contacts.archive(
      change.id, expectedVersion: change.expectedVersion,
      context: .init(principal: call.principal, requestID: change.requestID))
    return Crm_V1_Contact(record)
  }

  /// Restores an archived contact.
  public func undeleteContact(request: Crm_V1_UndeleteContactRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    let record = try await contacts.restore(
      change.id, expectedVersion: change.expectedVersion,
      context: .init(principal: call.principal, requestID: change.requestID))
    return Crm_V1_Contact(record)
  }

  /// Merges duplicates into the survivor; see `MergeRecordsRequest`.
  public func mergeContacts(request: Crm_V1_MergeRecordsRequest, context: ServerContext) async throws -> Crm_V1_Contact {
    let call = try RequestContext.require()
    let (plan, requestID) = try RequestFields.mergePlan(request, ownerField: ContactField.ownerID)
    return Crm_V1_Contact(try await merges.mergeContacts(plan, context: .init(principal: call.principal, requestID: requestID)))
  }

  /// A page of contacts.
  public func listContacts(request: Crm_V1_ListContactsRequest, context: ServerContext) async throws
    -> Crm_V1_ListContactsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = ContactFilter()
    filter.ownerID = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    filter.accountID = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    filter.namePrefix = violations.text("name_prefix", request.namePrefix, maxLength: 100)
    if !request.email.isEmpty {
      if let email = EmailAddress(request.email) {
        filter.email = email.value
      } else {
        violations.add("email", "must be an email address", reason: "INVALID_FORMAT")
      }
    }
    filter.tag = violations.text("tag", request.tag, maxLength: Tags.maxLength)?.lowercased()
    filter.updatedSince = request.hasUpdatedSince ? request.updatedSince.domain : nil
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    filter.order = RequestFields.order(request.orderBy, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await contacts.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: request.includeTotalSize,
      principal: call.principal)
    return .with {
      $0.contacts = page.items.map(Crm_V1_Contact.init)
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.totalSize = page.totalSize ?? 0
    }
  }
}
