public import CRMCore
import Crypto
public import Foundation
import LibPQ

/// A webhook subscription: an endpoint, the events it wants, and how far through the feed it is.
public struct Webhook: Sendable, Hashable {
  public var id: UUID
  public var version: Int64
  public var url: String
  public var description: String
  public var eventTypes: [WebhookEventPattern]
  public var changedFields: [String]
  public var skipOrigins: [String]
  /// The user whose sight deliveries have (the one who created it).
  public var ownerID: UUID
  public var isActive: Bool
  public var disabledReason: String?
  /// Every feed position at or before this one is done for it.
  public var afterPosition: Int64
  /// When the failing event is tried next, if one is failing.
  public var nextAttemptAt: Timestamp?
  /// Until when deliveries are also signed with the secret before the last rotation.
  public var previousSecretExpiresAt: Timestamp?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp

  public var etag: String { Etag.make(version) }

  /// Its definition, as stored.
  public func definition(into violations: inout Violations) -> WebhookDefinition? {
    guard let url = WebhookURL(url, field: "url", into: &violations) else { return nil }
    return WebhookDefinition(
      url: url, description: description, eventTypes: eventTypes, changedFields: changedFields, skipOrigins: skipOrigins,
      isActive: isActive)
  }
}

/// What an admin or integration user sends to create or change a subscription.
public struct WebhookDefinition: Sendable, Hashable {
  public var url: WebhookURL
  public var description: String
  public var eventTypes: [WebhookEventPattern]
  public var changedFields: [String]
  public var skipOrigins: [String]
  public var isActive: Bool

  /// A definition.
  public init(
    url: WebhookURL, description: String, eventTypes: [WebhookEventPattern], changedFields: [String], skipOrigins: [String],
    isActive: Bool
  ) {
    self.url = url
    self.description = description
    self.eventTypes = eventTypes
    self.changedFields = changedFields
    self.skipOrigins = skipOrigins
    self.isActive = isActive
  }

  /// True when a feed event is for this subscription: its type matches a pattern, its origin is not
  /// skipped, and (for updates, when fields are named) one of the named fields changed.
  public func wants(_ entry: ChangeEntry, changedFieldNames: () -> [String]) -> Bool {
    guard eventTypes.contains(where: { $0.matches(entry.recordType, entry.operation) }) else { return false }
    if let origin = entry.origin, skipOrigins.contains(origin) { return false }
    if entry.operation == .update, !changedFields.isEmpty {
      return changedFieldNames().contains(where: changedFields.contains)
    }
    return true
  }

  /// The record types its patterns can match, or empty for all.
  public var recordTypes: Set<RecordType> {
    if eventTypes.contains(where: { $0.recordType == nil }) { return [] }
    return Set(eventTypes.compactMap(\.recordType))
  }
}

/// One event sent (or being sent) to one subscription.
public struct WebhookDelivery: Sendable, Hashable {
  public enum Status: String, Sendable, Hashable, CaseIterable {
    /// Failed; tried again at ``WebhookDelivery/nextAttemptAt``.
    case pending
    case succeeded
    /// A redelivery that failed (redeliveries get one attempt).
    case failed
    /// Every attempt failed: the dead letters.
    case dead
  }

  public var id: UUID
  public var subscriptionID: UUID
  /// The feed event's position.
  public var position: Int64
  public var eventType: String
  public var recordType: RecordType
  public var recordID: UUID
  public var isRedelivery: Bool
  public var status: Status
  public var attempts: Int
  public var nextAttemptAt: Timestamp?
  public var responseStatus: Int?
  public var latencyMilliseconds: Int?
  public var error: String?
  public var responseBody: String?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
}

/// How one attempt went.
public struct WebhookAttempt: Sendable, Hashable {
  /// The endpoint's HTTP status, or `nil` when none came (refused, timed out, no connection).
  public var responseStatus: Int?
  public var latencyMilliseconds: Int
  public var error: String?
  /// The start of the response body (for the deliveries list), at most ``bodyLimit`` bytes.
  public var responseBody: String?
  /// What the endpoint's `Retry-After` asked for.
  public var retryAfter: Duration?

  /// The most response body kept.
  public static let bodyLimit = 1024

  /// An attempt's outcome.
  public init(responseStatus: Int?, latencyMilliseconds: Int, error: String?, responseBody: String?, retryAfter: Duration?) {
    self.responseStatus = responseStatus
    self.latencyMilliseconds = latencyMilliseconds
    self.error = error
    self.responseBody = responseBody
    self.retryAfter = retryAfter
  }

  /// A 2xx answer.
  public var succeeded: Bool { responseStatus.map { (200..<300).contains($0) } ?? false }
  /// 410 Gone: the endpoint asks never to be called again.
  public var gone: Bool { responseStatus == 410 }
}

/// Webhook secrets and signatures, as Standard Webhooks defines them: a secret is `whsec_` and the
/// base64 of 32 random bytes; a signature is `v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's bytes, of `id.timestamp.body`.
public enum WebhookSignature {
  /// A new secret.
  public static func generateSecret() -> String {
    var generator = SystemRandomNumberGenerator()
    return "whsec_" + Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).base64EncodedString()
  }

  /// The `v1,…` signature of a message with `secret` (`whsec_` + base64; `nil` when it is not one).
  public static func sign(secret: String, id: String, timestamp: Int64, body: [UInt8]) -> String? {
    guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), !key.isEmpty else { return nil }
    var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
    hmac.update(data: Array("\(id).\(timestamp).".utf8))
    hmac.update(data: body)
    return "v1," + Data(hmac.finalize()).base64EncodedString()
  }
}
