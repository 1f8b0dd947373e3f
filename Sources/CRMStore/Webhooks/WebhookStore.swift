public import CRMCore
public import Foundation
import LibPQ

/// SQL for webhook subscriptions (admins and integration users keep them) and their deliveries.
public struct WebhookStore: Sendable {
  let database: Database
  /// The delivery clock: retries are scheduled by it (tests walk days of it in milliseconds).
  let now: @Sendable () -> Timestamp

  /// A store over `database`.
  public init(database: Database, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.database = database
    self.now = now
  }

  /// The most subscriptions a tenant keeps.
  public static let limit = 100
  /// The longest a rotated-out secret keeps signing.
  public static let longestGrace: Duration = .seconds(7 * 86_400)

  static let columns = """
    id, version, url, description, event_types, changed_fields, skip_origins, owner_id, is_active, disabled_reason,
    after_position, next_attempt_at, previous_secret_expires_at, created_at, updated_at
    """

  static func webhook(_ row: PostgresRow) throws -> Webhook {
    let patterns: [String] = try row.decode("event_types")
    return Webhook(
      id: try row.decode("id"), version: try row.decode("version"), url: try row.decode("url"),
      description: try row.decode("description"), eventTypes: patterns.compactMap(WebhookEventPattern.init),
      changedFields: try row.decode("changed_fields"), skipOrigins: try row.decode("skip_origins"),
      ownerID: try row.decode("owner_id"), isActive: try row.decode("is_active"),
      disabledReason: try row.decode("disabled_reason"), afterPosition: try row.decode("after_position"),
      nextAttemptAt: try row.decode("next_attempt_at"), previousSecretExpiresAt: try row.decode("previous_secret_expires_at"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }

  /// Admins manage every subscription of the tenant; integration users their own.
  static func requireManager(_ principal: Principal) throws {
    guard principal.role == .admin || principal.role == .integration else {
      throw CRMError.permissionDenied("webhooks are managed by admins and integration users")
    }
  }

  static func load(_ connection: PostgresConnection, _ id: UUID, principal: Principal, lock: Bool = false) throws -> Webhook {
    try requireManager(principal)
    let query: PostgresQuery = """
      SELECT \(unsafeSQL: columns) FROM webhook_subscriptions WHERE tenant_id = \(principal.tenantID) AND id = \(id)
      \(unsafeSQL: lock ? "FOR UPDATE" : "")
      """
    guard let row = try connection.query(query).first else { throw CRMError.notFound("no such webhook") }
    let owner: UUID = try row.decode("owner_id")
    // An integration user sees only their own: another's is as good as absent.
    guard principal.isAdmin || owner == principal.userID else { throw CRMError.notFound("no such webhook") }
    return try webhook(row)
  }

  /// Creates a subscription owned by the caller, starting after `startAfter` (a feed position; `nil`:
  /// after the tenant's last change, so only what commits from now on is sent). Returns it with its
  /// secret, which is never shown again.
  public func create(_ definition: WebhookDefinition, startAfter: Int64?, principal: Principal) async throws -> (Webhook, String)
  {
    try Self.requireManager(principal)
    let tenant = principal.tenantID
    let id = UUID.v7()
    let secret = WebhookSignature.generateSecret()
    let webhook = try await database.withTenant(tenant) { connection in
      let count: Int64 = try connection.query(
        "SELECT count(*) AS n FROM webhook_subscriptions WHERE tenant_id = \(tenant)")[0].decode("n")
      guard count < Self.limit else {
        throw CRMError.failedPrecondition("a tenant keeps at most \(Self.limit) webhooks; delete one first")
      }
      let start: Int64
      var fromNow = false
      if let startAfter {
        let pruned: Int64? = try connection.query(
          "SELECT (SELECT up_to FROM change_feed_pruned WHERE tenant_id = \(tenant)) AS up_to")[0].decode("up_to")
        if let pruned, startAfter > 0, startAfter < pruned {
          throw CRMError.outOfRange("start_cursor is older than the change feed keeps")
        }
        start = startAfter
      } else {
        start = try connection.query(
          "SELECT coalesce(max(position), 0) AS last FROM change_feed WHERE tenant_id = \(tenant)")[0].decode("last")
        fromNow = true
      }
      try connection.query(
        """
        INSERT INTO webhook_subscriptions (tenant_id, id, url, description, event_types, changed_fields, skip_origins,
          owner_id, secret, is_active, after_position, start_lsn, created_by, updated_by)
        VALUES (\(tenant), \(id), \(definition.url.text), \(definition.description),
          \(definition.eventTypes.map(\.description)), \(definition.changedFields), \(definition.skipOrigins),
          \(principal.userID), \(secret), \(definition.isActive), \(start),
          CASE WHEN \(fromNow) THEN pg_current_wal_insert_lsn() END, \(principal.userID), \(principal.userID))
        """)
      return try Self.load(connection, id, principal: principal)
    }
    return (webhook, secret)
  }

  /// One subscription.
  public func get(_ id: UUID, principal: Principal) async throws -> Webhook {
    try await database.withTenant(principal.tenantID) { try Self.load($0, id, principal: principal) }
  }

  /// The tenant's subscriptions (an integration user's own), oldest first.
  public func list(principal: Principal) async throws -> [Webhook] {
    try Self.requireManager(principal)
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery =
        "SELECT \(unsafeSQL: Self.columns) FROM webhook_subscriptions WHERE tenant_id = \(principal.tenantID)"
      if !principal.isAdmin { query.append(" AND owner_id = \(principal.userID)") }
      query.append(" ORDER BY id")
      return try connection.query(query).rows.map(Self.webhook)
    }
  }

  /// Changes a subscription's definition with `change`, applied to the current one under a lock.
  /// Turning it back on clears why crmd turned it off and tries the event it stopped at right away.
  public func update(
    _ id: UUID, expectedVersion: Int64?, principal: Principal, change: @escaping @Sendable (inout WebhookDefinition) -> Void
  ) async throws -> Webhook {
    try await database.withTenant(principal.tenantID) { connection in
      let current = try Self.load(connection, id, principal: principal, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      var violations = Violations()
      guard var definition = current.definition(into: &violations) else {
        throw CRMError.failedPrecondition("the webhook's stored URL no longer parses; delete and recreate it")
      }
      change(&definition)
      let reactivated = definition.isActive && !current.isActive
      try connection.query(
        """
        UPDATE webhook_subscriptions SET url = \(definition.url.text), description = \(definition.description),
          event_types = \(definition.eventTypes.map(\.description)), changed_fields = \(definition.changedFields),
          skip_origins = \(definition.skipOrigins), is_active = \(definition.isActive),
          disabled_reason = CASE WHEN \(definition.isActive) THEN NULL ELSE disabled_reason END,
          next_attempt_at = CASE WHEN \(reactivated) THEN NULL ELSE next_attempt_at END,
          version = version + 1, updated_at = now(), updated_by = \(principal.userID)
        WHERE tenant_id = \(principal.tenantID) AND id = \(id)
        """)
      return try Self.load(connection, id, principal: principal)
    }
  }

  /// Deletes a subscription and its deliveries.
  public func delete(_ id: UUID, expectedVersion: Int64?, principal: Principal) async throws {
    try await database.withTenant(principal.tenantID) { connection in
      let current = try Self.load(connection, id, principal: principal, lock: true)
      if let expectedVersion, expectedVersion != current.version { throw CRMError.staleEtag(current: current.etag) }
      try connection.query("DELETE FROM webhook_subscriptions WHERE tenant_id = \(principal.tenantID) AND id = \(id)")
    }
  }

  /// A new secret; the old one keeps signing (beside it) for `grace`, so a receiver can switch over
  /// without dropping a delivery. Returns the subscription and the new secret, shown only now.
  public func rotateSecret(_ id: UUID, grace: Duration, principal: Principal) async throws -> (Webhook, String) {
    let secret = WebhookSignature.generateSecret()
    let until = now() + grace
    let webhook = try await database.withTenant(principal.tenantID) { connection in
      _ = try Self.load(connection, id, principal: principal, lock: true)
      try connection.query(
        """
        UPDATE webhook_subscriptions SET
          previous_secret = CASE WHEN \(grace > .zero) THEN secret END,
          previous_secret_expires_at = CASE WHEN \(grace > .zero) THEN \(until)::timestamptz END,
          secret = \(secret), version = version + 1, updated_at = now(), updated_by = \(principal.userID)
        WHERE tenant_id = \(principal.tenantID) AND id = \(id)
        """)
      return try Self.load(connection, id, principal: principal)
    }
    return (webhook, secret)
  }

  // MARK: - Deliveries

  static let deliveryColumns = """
    id, subscription_id, position, event_type, record_type, record_id, is_redelivery, status, attempts, next_attempt_at,
    response_status, latency_ms, error, response_body, created_at, updated_at
    """

  static func delivery(_ row: PostgresRow) throws -> WebhookDelivery {
    WebhookDelivery(
      id: try row.decode("id"), subscriptionID: try row.decode("subscription_id"), position: try row.decode("position"),
      eventType: try row.decode("event_type"),
      recordType: RecordType(rawValue: try row.decode("record_type")) ?? .lead, recordID: try row.decode("record_id"),
      isRedelivery: try row.decode("is_redelivery"),
      status: WebhookDelivery.Status(rawValue: try row.decode("status")) ?? .failed, attempts: try row.decode("attempts"),
      nextAttemptAt: try row.decode("next_attempt_at"), responseStatus: try row.decode("response_status"),
      latencyMilliseconds: try row.decode("latency_ms"), error: try row.decode("error"),
      responseBody: try row.decode("response_body"), createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"))
  }

  /// A subscription's deliveries, newest first, optionally only those in `statuses`.
  public func deliveries(
    of id: UUID, statuses: Set<WebhookDelivery.Status>, pageSize: Int, pageToken: String, principal: Principal
  ) async throws -> Page<WebhookDelivery> {
    let tokens = try await database.pageTokens()
    let scope = "webhook_deliveries:\(id.lowercasedString):\(statuses.map(\.rawValue).sorted().joined(separator: ","))"
    let token = try tokens.decode(pageToken, query: scope)
    return try await database.withTenant(principal.tenantID) { connection in
      _ = try Self.load(connection, id, principal: principal)
      var query: PostgresQuery = """
        SELECT \(unsafeSQL: Self.deliveryColumns) FROM webhook_deliveries
        WHERE tenant_id = \(principal.tenantID) AND subscription_id = \(id)
        """
      if !statuses.isEmpty { query.append(" AND status = ANY(\(statuses.map(\.rawValue).sorted())::text[])") }
      if let token { query.append(" AND id < \(token.id)") }
      query.append(" ORDER BY id DESC LIMIT \(pageSize + 1)")
      var items = try connection.query(query).rows.map(Self.delivery)
      var next: String?
      if items.count > pageSize {
        items.removeLast()
        next = tokens.encode(PageToken(key: "", id: items[pageSize - 1].id, query: scope))
      }
      return Page(items: items, nextPageToken: next)
    }
  }

  /// What sending one of a subscription's deliveries again needs, read in one transaction: the
  /// delivery's feed position, the endpoint, the signing secrets and the owner (`nil` when inactive).
  public func redelivery(_ id: UUID, of subscription: UUID, principal: Principal) async throws
    -> (position: Int64, url: WebhookURL, secrets: [String], owner: Principal?)
  {
    let at = now()
    return try await database.withTenant(principal.tenantID) { connection in
      let webhook = try Self.load(connection, subscription, principal: principal)
      guard
        let row = try connection.query(
          """
          SELECT d.position, s.secret, s.previous_secret FROM webhook_deliveries d
          JOIN webhook_subscriptions s ON s.tenant_id = d.tenant_id AND s.id = d.subscription_id
          WHERE d.tenant_id = \(principal.tenantID) AND d.subscription_id = \(subscription) AND d.id = \(id)
          """
        ).first
      else { throw CRMError.notFound("no such delivery of this webhook") }
      var violations = Violations()
      guard let url = WebhookURL(webhook.url, field: "url", into: &violations) else {
        throw CRMError.failedPrecondition("the webhook's stored URL no longer parses; update it with a valid URL")
      }
      return (
        try row.decode("position"), url, try Self.secrets(row, of: webhook, at: at),
        try AccessStore.activePrincipal(connection, tenantID: principal.tenantID, userID: webhook.ownerID)
      )
    }
  }
}
