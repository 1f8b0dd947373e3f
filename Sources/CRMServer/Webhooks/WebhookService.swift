import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.WebhookService`: subscriptions to the change feed pushed over HTTP (docs/webhooks.md).
public struct WebhookService: Crm_V1_WebhookService.SimpleServiceProtocol {
  let store: WebhookStore
  /// Sends redeliveries (the node's own dispatcher, so they share its HTTP client and rules).
  let dispatcher: WebhookDispatcher

  /// A service over `store`, redelivering through `dispatcher`.
  public init(store: WebhookStore, dispatcher: WebhookDispatcher) {
    self.store = store
    self.dispatcher = dispatcher
  }

  /// The fields an update mask may name.
  enum Field: String, CaseIterable {
    case url, description
    case eventTypes = "event_types"
    case changedFields = "changed_fields"
    case skipOrigins = "skip_origins"
    case active
  }

  public func createWebhook(request: Crm_V1_CreateWebhookRequest, context: ServerContext) async throws
    -> Crm_V1_CreateWebhookResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasWebhook { violations.add("webhook", "is required", reason: "REQUIRED") }
    let webhook = request.webhook
    let url = WebhookURL(webhook.url, field: "webhook.url", into: &violations)
    let patterns = WebhookEventPattern.parse(webhook.eventTypes, field: "webhook.event_types", into: &violations)
    let description = Self.description(webhook.description_p, into: &violations)
    let changed = Self.names(webhook.changedFields, field: "webhook.changed_fields", limit: 50, into: &violations)
    let origins = Self.names(webhook.skipOrigins, field: "webhook.skip_origins", limit: 20, into: &violations)
    let start: Int64? =
      request.startCursor.isEmpty ? nil : FeedCursor.position(request.startCursor, field: "start_cursor", into: &violations)
    try violations.check()
    let definition = WebhookDefinition(
      url: url!, description: description, eventTypes: patterns, changedFields: changed, skipOrigins: origins,
      isActive: webhook.active)
    let (created, secret) = try await store.create(definition, startAfter: start, principal: call.principal)
    return .with {
      $0.webhook = Crm_V1_Webhook(created)
      $0.secret = secret
    }
  }

  public func getWebhook(request: Crm_V1_GetWebhookRequest, context: ServerContext) async throws -> Crm_V1_Webhook {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    return Crm_V1_Webhook(try await store.get(id!, principal: call.principal))
  }

  public func listWebhooks(request: Crm_V1_ListWebhooksRequest, context: ServerContext) async throws
    -> Crm_V1_ListWebhooksResponse
  {
    let call = try RequestContext.require()
    let webhooks = try await store.list(principal: call.principal)
    return .with { $0.webhooks = webhooks.map(Crm_V1_Webhook.init) }
  }

  public func updateWebhook(request: Crm_V1_UpdateWebhookRequest, context: ServerContext) async throws -> Crm_V1_Webhook {
    let call = try RequestContext.require()
    var violations = Violations()
    let webhook = request.webhook
    let id = RequestFields.id(webhook.id, field: "webhook.id", into: &violations)
    let expected = RequestFields.etag(webhook.etag, field: "webhook.etag", into: &violations)
    let mask = RequestFields.mask(request.updateMask, hasMask: request.hasUpdateMask, as: Field.self, into: &violations)
    let url = mask.contains(.url) ? WebhookURL(webhook.url, field: "webhook.url", into: &violations) : nil
    let patterns =
      mask.contains(.eventTypes)
      ? WebhookEventPattern.parse(webhook.eventTypes, field: "webhook.event_types", into: &violations) : []
    // Only what the mask names is read (and checked).
    let description = mask.contains(.description) ? Self.description(webhook.description_p, into: &violations) : ""
    let changed =
      mask.contains(.changedFields)
      ? Self.names(webhook.changedFields, field: "webhook.changed_fields", limit: 50, into: &violations) : []
    let origins =
      mask.contains(.skipOrigins)
      ? Self.names(webhook.skipOrigins, field: "webhook.skip_origins", limit: 20, into: &violations) : []
    try violations.check()
    let active = webhook.active
    let updated = try await store.update(id!, expectedVersion: expected, principal: call.principal) { definition in
      if let url { definition.url = url }
      if mask.contains(.description) { definition.description = description }
      if mask.contains(.eventTypes) { definition.eventTypes = patterns }
      if mask.contains(.changedFields) { definition.changedFields = changed }
      if mask.contains(.skipOrigins) { definition.skipOrigins = origins }
      if mask.contains(.active) { definition.isActive = active }
    }
    return Crm_V1_Webhook(updated)
  }

  public func deleteWebhook(request: Crm_V1_DeleteWebhookRequest, context: ServerContext) async throws
    -> Crm_V1_DeleteWebhookResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let expected = RequestFields.etag(request.etag, field: "etag", into: &violations)
    try violations.check()
    try await store.delete(id!, expectedVersion: expected, principal: call.principal)
    return .init()
  }

  public func rotateWebhookSecret(request: Crm_V1_RotateWebhookSecretRequest, context: ServerContext) async throws
    -> Crm_V1_RotateWebhookSecretResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    let longest = WebhookStore.longestGrace.components.seconds
    let grace = request.hasGracePeriodSeconds ? Int64(request.gracePeriodSeconds) : 86_400
    if !(0...longest).contains(grace) {
      violations.add("grace_period_seconds", "must be 0 to \(longest)", reason: "OUT_OF_RANGE")
    }
    try violations.check()
    let (webhook, secret) = try await store.rotateSecret(id!, grace: .seconds(grace), principal: call.principal)
    return .with {
      $0.webhook = Crm_V1_Webhook(webhook)
      $0.secret = secret
    }
  }

  public func listWebhookDeliveries(request: Crm_V1_ListWebhookDeliveriesRequest, context: ServerContext) async throws
    -> Crm_V1_ListWebhookDeliveriesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.webhookID, field: "webhook_id", into: &violations)
    var statuses: Set<WebhookDelivery.Status> = []
    for (index, status) in request.statuses.enumerated() {
      guard let status = WebhookDelivery.Status(status) else {
        violations.add("statuses[\(index)]", "must be a delivery status (e.g. WEBHOOK_DELIVERY_STATUS_DEAD)", reason: "INVALID")
        continue
      }
      statuses.insert(status)
    }
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await store.deliveries(
      of: id!, statuses: statuses, pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.deliveries = page.items.map(Crm_V1_WebhookDelivery.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  public func redeliverWebhook(request: Crm_V1_RedeliverWebhookRequest, context: ServerContext) async throws
    -> Crm_V1_WebhookDelivery
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let webhook = RequestFields.id(request.webhookID, field: "webhook_id", into: &violations)
    let delivery = RequestFields.id(request.deliveryID, field: "delivery_id", into: &violations)
    try violations.check()
    return Crm_V1_WebhookDelivery(try await dispatcher.redeliver(delivery!, of: webhook!, principal: call.principal))
  }

  // MARK: - Field checks

  static func description(_ text: String, into violations: inout Violations) -> String {
    if text.count > 500 { violations.add("webhook.description", "must be at most 500 characters", reason: "TOO_LONG") }
    return text
  }

  /// Field names or origins: each 1 to 200 printable characters, at most `limit`, no repeats kept.
  static func names(_ texts: [String], field: String, limit: Int, into violations: inout Violations) -> [String] {
    if texts.count > limit { violations.add(field, "at most \(limit)", reason: "TOO_MANY") }
    var out: [String] = []
    for (index, text) in texts.prefix(limit).enumerated() {
      guard !text.isEmpty, text.utf8.count <= 200,
        !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
      else {
        violations.add("\(field)[\(index)]", "must be 1 to 200 printable characters", reason: "INVALID")
        continue
      }
      if !out.contains(text) { out.append(text) }
    }
    return out
  }
}

extension WebhookDelivery.Status {
  init?(_ status: Crm_V1_WebhookDeliveryStatus) {
    switch status {
    case .pending: self = .pending
    case .succeeded: self = .succeeded
    case .failed: self = .failed
    case .dead: self = .dead
    case .unspecified, .UNRECOGNIZED: return nil
    }
  }
}

extension Crm_V1_Webhook {
  init(_ webhook: Webhook) {
    self.init()
    id = webhook.id.lowercasedString
    etag = webhook.etag
    createTime = .init(webhook.createdAt)
    updateTime = .init(webhook.updatedAt)
    url = webhook.url
    description_p = webhook.description
    eventTypes = webhook.eventTypes.map(\.description)
    changedFields = webhook.changedFields
    skipOrigins = webhook.skipOrigins
    active = webhook.isActive
    disabledReason = webhook.disabledReason ?? ""
    ownerID = webhook.ownerID.lowercasedString
    cursor = FeedCursor.text(webhook.afterPosition)
    if let next = webhook.nextAttemptAt { nextAttemptTime = .init(next) }
    if let until = webhook.previousSecretExpiresAt { previousSecretExpireTime = .init(until) }
  }
}

extension Crm_V1_WebhookDelivery {
  init(_ delivery: WebhookDelivery) {
    self.init()
    id = delivery.id.lowercasedString
    webhookID = delivery.subscriptionID.lowercasedString
    eventCursor = FeedCursor.text(delivery.position)
    eventType = delivery.eventType
    recordType = Crm_V1_RecordType(delivery.recordType)
    recordID = delivery.recordID.lowercasedString
    redelivery = delivery.isRedelivery
    status =
      switch delivery.status {
      case .pending: .pending
      case .succeeded: .succeeded
      case .failed: .failed
      case .dead: .dead
      }
    attempts = Int32(clamping: delivery.attempts)
    if let next = delivery.nextAttemptAt { nextAttemptTime = .init(next) }
    responseStatus = Int32(clamping: delivery.responseStatus ?? 0)
    latencyMs = Int32(clamping: delivery.latencyMilliseconds ?? 0)
    error = delivery.error ?? ""
    responseBody = delivery.responseBody ?? ""
    createTime = .init(delivery.createdAt)
    updateTime = .init(delivery.updatedAt)
  }
}
