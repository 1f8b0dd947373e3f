import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.CollectionService`: an account's collector, escalation, credit hold and promise to pay,
/// write-offs, and the tenant's dunning levels (the collections job applies them).
public struct CollectionService: Crm_V1_CollectionService.SimpleServiceProtocol {
  let billing: BillingStore

  /// A service over the billing store.
  public init(billing: BillingStore) {
    self.billing = billing
  }

  /// The fields `UpdateCollection` may change.
  enum Field: String {
    case collectorID = "collector_id"
    case escalation
    case creditHold = "credit_hold"
  }

  public func getCollection(request: Crm_V1_GetCollectionRequest, context: ServerContext) async throws
    -> Crm_V1_AccountCollection
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    try violations.check()
    return .init(try await billing.collection(accountID: account!, principal: call.principal))
  }

  public func updateCollection(request: Crm_V1_UpdateCollectionRequest, context: ServerContext) async throws
    -> Crm_V1_AccountCollection
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let given = request.collection
    let account = RequestFields.id(given.accountID, field: "collection.account_id", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: Field.self, into: &violations)
    let expected = RequestFields.etag(given.etag, field: "collection.etag", into: &violations)
    var update = BillingStore.CollectionUpdate()
    if mask.contains(.collectorID) {
      update.collectorID = .some(
        RequestFields.optionalID(given.collectorID, field: "collection.collector_id", into: &violations))
    }
    if mask.contains(.escalation) {
      switch given.escalation {
      case .unspecified: update.escalation = .some(nil)
      case .needsAction: update.escalation = .some(.needsAction)
      case .inCollections: update.escalation = .some(.inCollections)
      case .current, .promiseToPay, .heldForDispute, .writtenOff, .UNRECOGNIZED:
        violations.add(
          "collection.escalation", "must be NEEDS_ACTION, IN_COLLECTIONS or UNSPECIFIED (none)", reason: "INVALID_VALUE")
      }
    }
    if mask.contains(.creditHold) { update.creditHold = given.creditHold }
    try violations.check()
    return .init(
      try await billing.updateCollection(
        accountID: account!, update, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func promiseToPay(request: Crm_V1_PromiseToPayRequest, context: ServerContext) async throws
    -> Crm_V1_AccountCollection
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    let amount = BillingFields.money(
      request.amount, present: request.hasAmount, field: "amount", currency: nil, sign: .positive, required: true,
      into: &violations)
    let payBy = BillingFields.date(
      request.payByDate, present: request.hasPayByDate, field: "pay_by_date", required: true, into: &violations)
    let note = violations.text("note", request.note, maxLength: 2000)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    try violations.check()
    return .init(
      try await billing.promiseToPay(
        accountID: account!, amount: amount!, payBy: payBy!, note: note, expectedVersion: expected,
        context: .init(principal: call.principal, requestID: nil)))
  }

  public func cancelPromise(request: Crm_V1_CancelPromiseRequest, context: ServerContext) async throws
    -> Crm_V1_AccountCollection
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    let note = violations.text("note", request.note, maxLength: 2000)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    try violations.check()
    return .init(
      try await billing.cancelPromise(
        accountID: account!, note: note, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func writeOff(request: Crm_V1_WriteOffRequest, context: ServerContext) async throws -> Crm_V1_WriteOffResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let account = RequestFields.id(request.accountID, field: "account_id", into: &violations)
    if request.invoiceIds.count > BillingFields.maxAllocations {
      violations.add("invoice_ids", "at most \(BillingFields.maxAllocations) invoices at once", reason: "TOO_MANY")
    }
    let invoices = request.invoiceIds.prefix(BillingFields.maxAllocations).enumerated().compactMap { index, id in
      RequestFields.id(id, field: "invoice_ids[\(index)]", into: &violations)
    }
    if Set(invoices).count != invoices.count { violations.add("invoice_ids", "names an invoice twice", reason: "DUPLICATE") }
    let note = violations.text("note", request.note, maxLength: 2000)
    try violations.check()
    let (notes, collection) = try await billing.writeOff(
      accountID: account!, invoiceIDs: invoices, note: note, context: .init(principal: call.principal, requestID: nil))
    return .with {
      $0.creditNotes = notes.map(Crm_V1_CreditNote.init)
      $0.collection = .init(collection)
    }
  }

  public func getDunningLevels(request: Crm_V1_GetDunningLevelsRequest, context: ServerContext) async throws
    -> Crm_V1_DunningLevels
  {
    let call = try RequestContext.require()
    return .init(try await billing.dunningLevels(principal: call.principal))
  }

  public func setDunningLevels(request: Crm_V1_SetDunningLevelsRequest, context: ServerContext) async throws
    -> Crm_V1_DunningLevels
  {
    let call = try RequestContext.require()
    var violations = Violations()
    var given: [DunningLevel] = []
    for (index, level) in request.levels.prefix(DunningLevel.maxCount + 1).enumerated() {
      let field = "levels[\(index)]"
      var taskFor = DunningTaskFor.none
      switch level.taskFor {
      case .unspecified, .none: taskFor = .none
      case .owner: taskFor = .owner
      case .collector: taskFor = .collector
      case .UNRECOGNIZED: violations.add("\(field).task_for", "must be NONE, OWNER or COLLECTOR", reason: "INVALID_VALUE")
      }
      var escalation: CollectionStatus?
      switch level.escalateTo {
      case .unspecified: escalation = nil
      case .needsAction: escalation = .needsAction
      case .inCollections: escalation = .inCollections
      case .current, .promiseToPay, .heldForDispute, .writtenOff, .UNRECOGNIZED:
        violations.add("\(field).escalate_to", "must be NEEDS_ACTION, IN_COLLECTIONS or UNSPECIFIED", reason: "INVALID_VALUE")
      }
      given.append(
        DunningLevel(
          name: level.name, daysAfterDue: Int(level.daysAfterDue), taskFor: taskFor,
          taskSubject: level.taskSubject.isEmpty ? nil : level.taskSubject, addTag: level.addTag,
          creditHold: level.creditHold, escalateTo: escalation))
    }
    if request.levels.count > DunningLevel.maxCount {
      violations.add("levels", "at most \(DunningLevel.maxCount) dunning levels", reason: "TOO_MANY")
    }
    let levels = DunningLevel.validate(Array(given.prefix(DunningLevel.maxCount)), field: "levels", into: &violations)
    try violations.check()
    return .init(try await billing.setDunningLevels(levels, principal: call.principal))
  }
}

extension Crm_V1_AccountCollection {
  init(_ collection: AccountCollection) {
    self.init()
    accountID = collection.accountID.lowercasedString
    status = .init(collection.status)
    statusReason = collection.statusReason
    collectorID = collection.collectorID?.lowercasedString ?? ""
    escalation = collection.escalation.map(Crm_V1_CollectionStatus.init) ?? .unspecified
    creditHold = collection.creditHold
    if let promise = collection.promise {
      self.promise = .with {
        $0.amount = .init(promise.amount)
        $0.payByDate = .init(promise.payBy)
        $0.madeOnDate = .init(promise.madeOn)
        $0.note = promise.note ?? ""
        $0.state = .init(promise.state)
        $0.paid = .init(promise.paid)
        $0.madeBy = promise.madeBy?.lowercasedString ?? ""
      }
    }
    lastDunningLevel = collection.lastDunningLevel ?? ""
    if let at = collection.lastDunningAt { lastDunningTime = .init(at) }
    if let at = collection.writtenOffAt { writeOffTime = .init(at) }
    overdue = collection.overdue.map(Crm_V1_Money.init)
    etag = collection.etag
    if let at = collection.updatedAt { updateTime = .init(at) }
  }
}

extension Crm_V1_CollectionStatus {
  init(_ status: CollectionStatus) {
    switch status {
    case .current: self = .current
    case .needsAction: self = .needsAction
    case .promiseToPay: self = .promiseToPay
    case .inCollections: self = .inCollections
    case .heldForDispute: self = .heldForDispute
    case .writtenOff: self = .writtenOff
    }
  }
}

extension Crm_V1_PromiseState {
  init(_ state: PromiseState) {
    switch state {
    case .open: self = .open
    case .kept: self = .kept
    case .broken: self = .broken
    case .cancelled: self = .cancelled
    }
  }
}

extension Crm_V1_DunningLevels {
  init(_ levels: [DunningLevel]) {
    self.init()
    self.levels = levels.map { level in
      .with {
        $0.name = level.name
        $0.daysAfterDue = Int32(level.daysAfterDue)
        $0.taskFor =
          switch level.taskFor {
          case .none: .none
          case .owner: .owner
          case .collector: .collector
          }
        $0.taskSubject = level.taskSubject ?? ""
        $0.addTag = level.addTag ?? ""
        $0.creditHold = level.creditHold
        $0.escalateTo = level.escalateTo.map(Crm_V1_CollectionStatus.init) ?? .unspecified
      }
    }
  }
}
