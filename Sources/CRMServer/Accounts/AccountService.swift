import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.AccountService`: validates each request into domain values, calls the store, and maps the
/// result back. Errors travel as thrown values to ``RequestInterceptor``, which maps them once.
public struct AccountService: Crm_V1_AccountService.SimpleServiceProtocol {
  let accounts: AccountStore
  let contacts: ContactStore
  let merges: MergeStore

  /// A service over the given stores.
  public init(accounts: AccountStore, contacts: ContactStore, merges: MergeStore) {
    self.accounts = accounts
    self.contacts = contacts
    self.merges = merges
  }

  /// Creates an account; a repeated `request_id` returns the first result.
  public func createAccount(request: Crm_V1_CreateAccountRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasAccount { violations.add("account", "is required", reason: "REQUIRED") }
    let fields = request.account.fields(prefix: "account", only: nil, into: &violations)
    let owner = RequestFields.optionalID(request.account.ownerID, field: "account.owner_id", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    let action = DuplicateAction(request.duplicateAction, field: "duplicate_action", into: &violations)
    try violations.check()
    let created = try await accounts.create(
      fields, ownerID: owner, duplicateAction: action, context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Account(created.record).with(created.duplicates)
  }

  /// One account.
  public func getAccount(request: Crm_V1_GetAccountRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Account(try await accounts.get(id!, principal: call.principal))
  }

  /// Several accounts, all or nothing.
  public func batchGetAccounts(
    request: Crm_V1_BatchGetAccountsRequest, context: ServerContext
  ) async throws -> Crm_V1_BatchGetAccountsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    try violations.check()
    let found = try await accounts.batchGet(ids, principal: call.principal)
    return .with { $0.accounts = found.map(Crm_V1_Account.init) }
  }

  /// Changes the fields in the mask, checking the etag.
  public func updateAccount(request: Crm_V1_UpdateAccountRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.account.id, field: "account.id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: AccountField.self, into: &violations)
    let patch = request.account.fields(prefix: "account", only: mask, into: &violations)
    let owner =
      mask.contains(.ownerID)
      ? RequestFields.id(request.account.ownerID, field: "account.owner_id", into: &violations) : nil
    let expected = RequestFields.etag(request.account.etag, field: "account.etag", into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    if mask.contains(.domain) {
      violations.add("update_mask", "domain is derived from website; update website instead", reason: "INVALID_FIELD")
    }
    try violations.check()
    let account = try await accounts.update(
      id!, patch: patch, mask: mask, newOwnerID: owner, expectedVersion: expected,
      context: .init(principal: call.principal, requestID: requestID))
    return Crm_V1_Account(account)
  }

  /// Archives the account.
  public func deleteAccount(request: Crm_V1_DeleteAccountRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    let record = try await accounts.archive(
      change.id, expectedVersion: change.expectedVersion,
      context: .init(principal: call.principal, requestID: change.requestID))
    return Crm_V1_Account(record)
  }

  /// Restores an archived account.
  public func undeleteAccount(request: Crm_V1_UndeleteAccountRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    let change = try RequestFields.stateChange(id: request.id, etag: request.etag, requestID: request.requestID)
    let record = try await accounts.restore(
      change.id, expectedVersion: change.expectedVersion,
      context: .init(principal: call.principal, requestID: change.requestID))
    return Crm_V1_Account(record)
  }

  /// Merges duplicates into the survivor; see `MergeRecordsRequest`.
  public func mergeAccounts(request: Crm_V1_MergeRecordsRequest, context: ServerContext) async throws -> Crm_V1_Account {
    let call = try RequestContext.require()
    let (plan, requestID) = try RequestFields.mergePlan(request, ownerField: AccountField.ownerID)
    return Crm_V1_Account(try await merges.mergeAccounts(plan, context: .init(principal: call.principal, requestID: requestID)))
  }

  /// A page of accounts.
  public func listAccounts(request: Crm_V1_ListAccountsRequest, context: ServerContext) async throws
    -> Crm_V1_ListAccountsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = AccountFilter()
    filter.ownerID = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    filter.parentID = RequestFields.optionalID(request.parentID, field: "parent_id", into: &violations)
    filter.namePrefix = violations.text("name_prefix", request.namePrefix, maxLength: 255)
    filter.domain = violations.text("domain", request.domain, maxLength: 253)?.lowercased()
    filter.tag = violations.text("tag", request.tag, maxLength: Tags.maxLength)?.lowercased()
    filter.updatedSince = request.hasUpdatedSince ? request.updatedSince.domain : nil
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    filter.order = RequestFields.order(request.orderBy, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await accounts.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: request.includeTotalSize,
      principal: call.principal)
    return .with {
      $0.accounts = page.items.map(Crm_V1_Account.init)
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.totalSize = page.totalSize ?? 0
    }
  }

  /// A page of one account's contacts, by name.
  public func listAccountContacts(
    request: Crm_V1_ListAccountContactsRequest, context: ServerContext
  ) async throws -> Crm_V1_ListContactsResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    var filter = ContactFilter()
    filter.accountID = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    filter.archive = RequestFields.archiveFilter(request.archiveFilter, into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await contacts.list(
      filter, pageSize: pageSize, pageToken: request.pageToken, includeTotal: false, principal: call.principal)
    return .with {
      $0.contacts = page.items.map(Crm_V1_Contact.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  /// The hierarchy the account belongs to.
  public func getAccountHierarchy(
    request: Crm_V1_GetAccountHierarchyRequest, context: ServerContext
  ) async throws -> Crm_V1_GetAccountHierarchyResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    if request.maxDepth < 0 { violations.add("max_depth", "must not be negative", reason: "OUT_OF_RANGE") }
    try violations.check()
    let tree = try await accounts.hierarchy(of: id!, maxDepth: Int(request.maxDepth), principal: call.principal)
    return .with {
      $0.rootID = tree.root.lowercasedString
      $0.nodes = tree.nodes.map { account, depth in
        .with {
          $0.account = Crm_V1_Account(account)
          $0.depth = Int32(depth)
        }
      }
    }
  }
}
