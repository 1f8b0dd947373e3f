public import CRMCore
public import Foundation
import LibPQ

/// A node lost its lease on a subscription (it expired and another node took it, or the
/// subscription was deleted or turned off): it must stop delivering for it.
public struct WebhookLeaseLost: Error, Sendable {}

/// A subscription a node has leased, with what delivering it needs.
public struct WebhookTarget: Sendable {
  public var tenantID: UUID
  public var webhook: Webhook
  public var definition: WebhookDefinition
  /// The secrets to sign with: the current one, then the rotated-out one while its grace lasts.
  public var secrets: [String]
  /// Whose sight deliveries have; `nil` when that user is inactive or gone.
  public var owner: Principal?
  /// The event it stopped at (failed, waiting for its next attempt), if any.
  public var pending: WebhookDelivery?
  /// Made for "what commits from now on", and the feed has not yet been seen past that moment.
  public var awaitsStart: Bool
}

/// What a failed attempt at the subscription's next event leads to (successes are written down in
/// batches, ``WebhookStore/recordDelivered(_:for:node:)``).
public enum WebhookDecision: Sendable, Hashable {
  /// Try again at this time, and send nothing after it meanwhile.
  case retry(at: Timestamp)
  /// Failed for the last time: a dead letter; move past it and turn the endpoint off (in feed order
  /// nothing after it could have been delivered either, for as long as it was retried).
  case dead
  /// 410 Gone: turn the endpoint off; the event is tried first when it is turned back on.
  case gone
}

extension WebhookStore {
  /// How long a claim holds a subscription without a sign of life; longer than the longest attempt.
  public static let lease: Duration = .seconds(90)

  /// Leases up to `limit` subscriptions with work due to `node` (skipping those in `running`, which
  /// it already works), across tenants (or in `tenant` alone).
  public func claim(node: String, running: [UUID], limit: Int, tenant: UUID? = nil) async throws -> [(tenantID: UUID, id: UUID)] {
    let at = now()
    let seconds = Int(Self.lease.components.seconds)
    // One statement, atomic on its own: no BEGIN and COMMIT around it (a round trip fewer on every
    // doorbell).
    return try await database.pool.withConnection { connection in
      try connection.query(
        """
        SELECT tenant_id, id FROM crm_webhook_claim(\(node), \(at)::timestamptz, \(running)::uuid[], \(limit),
          make_interval(secs => \(seconds)), \(tenant)::uuid)
        """
      ).rows.map { (try $0.decode("tenant_id"), try $0.decode("id")) }
    }
  }

  /// The leased subscription's definition, secrets, owner and failing event; `nil` when `node` no
  /// longer holds it or it was turned off.
  public func target(tenantID: UUID, id: UUID, node: String) async throws -> WebhookTarget? {
    let at = now()
    return try await database.withTenant(tenantID) { connection in
      guard
        let row = try connection.query(
          """
          SELECT \(unsafeSQL: Self.columns), secret, previous_secret, lease_owner, start_lsn IS NOT NULL AS awaits_start
          FROM webhook_subscriptions
          WHERE tenant_id = \(tenantID) AND id = \(id)
          """
        ).first, try row.decode("lease_owner", as: String?.self) == node
      else { return nil }
      let webhook = try Self.webhook(row)
      guard webhook.isActive else { return nil }
      var violations = Violations()
      guard let definition = webhook.definition(into: &violations) else { return nil }
      let secrets = try Self.secrets(row, of: webhook, at: at)
      let pending = try connection.query(
        """
        SELECT \(unsafeSQL: Self.deliveryColumns) FROM webhook_deliveries
        WHERE tenant_id = \(tenantID) AND subscription_id = \(id) AND NOT is_redelivery AND status = 'pending'
        ORDER BY position LIMIT 1
        """
      ).first.map(Self.delivery)
      return WebhookTarget(
        tenantID: tenantID, webhook: webhook, definition: definition, secrets: secrets,
        owner: try AccessStore.activePrincipal(connection, tenantID: tenantID, userID: webhook.ownerID),
        pending: pending, awaitsStart: try row.decode("awaits_start"))
    }
  }

  /// Records a failed attempt at `event` for the leased subscription and what it leads to, in one
  /// statement; throws ``WebhookLeaseLost`` (writing nothing) when `node` no longer holds the lease.
  public func record(
    _ attempt: WebhookAttempt, of event: ChangeEvent, for target: WebhookTarget, decision: WebhookDecision, node: String
  ) async throws {
    let tenant = target.tenantID
    let at = now()
    let seconds = Int(Self.lease.components.seconds)
    let (status, nextAttempt, advance, disable): (WebhookDelivery.Status, Timestamp?, Bool, String?) =
      switch decision {
      case .retry(let time): (.pending, time, false, nil)
      case .dead:
        (
          .dead, nil, true,
          "every attempt to deliver \(WebhookEventType.name(event.entry.recordType, event.entry.operation)) "
            + "at feed position \(event.position) failed over \(WebhookRetrySchedule.attempts) attempts; it is in the dead letters"
        )
      case .gone: (.pending, nil, false, "the endpoint answered 410 Gone at \(at.rfc3339)")
      }
    let body = attempt.responseBody.map { String($0.prefix(WebhookAttempt.bodyLimit)) }
    let id = UUID.v7()
    try await database.withTenant(tenant) { connection in
      let updated = try connection.query(
        """
        WITH d AS (
          INSERT INTO webhook_deliveries AS w (tenant_id, id, subscription_id, position, event_type, record_type, record_id,
            status, attempts, next_attempt_at, response_status, latency_ms, error, response_body, created_at, updated_at)
          VALUES (\(tenant), \(id), \(target.webhook.id), \(event.position),
            \(WebhookEventType.name(event.entry.recordType, event.entry.operation)), \(event.entry.recordType.rawValue),
            \(event.entry.recordID), \(status.rawValue), 1, \(nextAttempt)::timestamptz, \(attempt.responseStatus),
            \(attempt.latencyMilliseconds), \(attempt.error), \(body), \(at)::timestamptz, \(at)::timestamptz)
          ON CONFLICT (tenant_id, subscription_id, position) WHERE NOT is_redelivery DO UPDATE SET
            status = EXCLUDED.status, attempts = w.attempts + 1, next_attempt_at = EXCLUDED.next_attempt_at,
            response_status = EXCLUDED.response_status, latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error,
            response_body = EXCLUDED.response_body, updated_at = EXCLUDED.updated_at
          RETURNING w.id, w.attempts
        ), a AS (
          INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, attempted_at, response_status, latency_ms, error)
          SELECT \(tenant), d.id, d.attempts, \(at)::timestamptz, \(attempt.responseStatus), \(attempt.latencyMilliseconds),
            \(attempt.error)
          FROM d
        )
        UPDATE webhook_subscriptions SET
          after_position = CASE WHEN \(advance) THEN greatest(after_position, \(event.position)) ELSE after_position END,
          next_attempt_at = \(nextAttempt)::timestamptz,
          is_active = is_active AND \(disable == nil), disabled_reason = coalesce(\(disable), disabled_reason),
          -- Turned off by crmd: a new version, so an edit made against the old one is refused.
          version = version + CASE WHEN \(disable != nil) THEN 1 ELSE 0 END,
          updated_at = CASE WHEN \(disable != nil) THEN now() ELSE updated_at END,
          lease_until = clock_timestamp() + make_interval(secs => \(seconds))
        WHERE tenant_id = \(tenant) AND id = \(target.webhook.id) AND lease_owner = \(node) AND is_active
        """)
      guard updated.affectedRows == 1 else { throw WebhookLeaseLost() }
    }
  }

  /// Records a run of successful attempts for the leased subscription and moves its cursor past the
  /// last, in one statement; throws ``WebhookLeaseLost`` (writing nothing) when `node` no longer
  /// holds the lease.
  /// Returns the subscription's version, which differs from the target's when it was edited meanwhile.
  @discardableResult
  public func recordDelivered(
    _ items: [(event: ChangeEvent, attempt: WebhookAttempt)], for target: WebhookTarget, node: String
  ) async throws -> Int64 {
    guard let last = items.map(\.event.position).max() else { return target.webhook.version }
    let tenant = target.tenantID
    let at = now()
    let seconds = Int(Self.lease.components.seconds)
    // Ascending with the positions, so the deliveries list (newest first, by id) keeps their order.
    let ids = items.map { _ in UUID.v7() }.sorted { $0.uuidString < $1.uuidString }
    let positions = items.map(\.event.position)
    let types = items.map { WebhookEventType.name($0.event.entry.recordType, $0.event.entry.operation) }
    let recordTypes = items.map(\.event.entry.recordType.rawValue)
    let records = items.map(\.event.entry.recordID)
    let statuses = items.map { $0.attempt.responseStatus ?? 0 }
    let latencies = items.map(\.attempt.latencyMilliseconds)
    let bodies = items.map { String(($0.attempt.responseBody ?? "").prefix(WebhookAttempt.bodyLimit)) }
    return try await database.withTenant(tenant) { connection in
      let updated = try connection.query(
        """
        WITH u AS (
          SELECT * FROM unnest(\(ids)::uuid[], \(positions)::bigint[], \(types)::text[], \(recordTypes)::text[],
            \(records)::uuid[], \(statuses)::int[], \(latencies)::int[], \(bodies)::text[])
            AS u (id, position, event_type, record_type, record_id, status, latency, body)
        ), d AS (
          INSERT INTO webhook_deliveries AS w (tenant_id, id, subscription_id, position, event_type, record_type, record_id,
            status, attempts, response_status, latency_ms, response_body, created_at, updated_at)
          SELECT \(tenant), u.id, \(target.webhook.id), u.position, u.event_type, u.record_type, u.record_id, 'succeeded', 1,
            u.status, u.latency, nullif(u.body, ''), \(at)::timestamptz, \(at)::timestamptz
          FROM u
          ON CONFLICT (tenant_id, subscription_id, position) WHERE NOT is_redelivery DO UPDATE SET
            status = 'succeeded', attempts = w.attempts + 1, next_attempt_at = NULL,
            response_status = EXCLUDED.response_status, latency_ms = EXCLUDED.latency_ms, error = NULL,
            response_body = EXCLUDED.response_body, updated_at = EXCLUDED.updated_at
          RETURNING w.id, w.attempts, w.response_status, w.latency_ms
        ), a AS (
          INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, attempted_at, response_status, latency_ms)
          SELECT \(tenant), d.id, d.attempts, \(at)::timestamptz, d.response_status, d.latency_ms FROM d
        )
        UPDATE webhook_subscriptions SET after_position = greatest(after_position, \(last)), next_attempt_at = NULL,
          lease_until = clock_timestamp() + make_interval(secs => \(seconds))
        WHERE tenant_id = \(tenant) AND id = \(target.webhook.id) AND lease_owner = \(node) AND is_active
        RETURNING version
        """)
      guard let row = updated.first else { throw WebhookLeaseLost() }
      return try row.decode("version", as: Int64.self)
    }
  }

  /// For a subscription made for "what commits from now on": once the feed has copied every change
  /// that committed before it was made, moves it past those and returns where it now starts; `nil`
  /// while the feed has not got that far (deliver nothing yet).
  public func settleStart(of target: WebhookTarget, node: String) async throws -> Int64? {
    try await database.withTenant(target.tenantID) { connection in
      try connection.query(
        """
        UPDATE webhook_subscriptions w SET start_lsn = NULL,
          after_position = greatest(w.after_position, coalesce((
            SELECT max(f.position) FROM change_feed f WHERE f.tenant_id = w.tenant_id AND f.commit_lsn < w.start_lsn), 0))
        WHERE w.tenant_id = \(target.tenantID) AND w.id = \(target.webhook.id) AND w.lease_owner = \(node)
          AND w.start_lsn IS NOT NULL AND (SELECT applied_lsn FROM change_feed_state) >= w.start_lsn
        RETURNING w.after_position
        """
      ).first?.decode("after_position")
    }
  }

  /// Moves the leased subscription past `position` (events not for it); throws
  /// ``WebhookLeaseLost`` when `node` no longer holds the lease. Returns the subscription's version,
  /// which differs from the target's when it was edited meanwhile.
  @discardableResult
  public func skip(to position: Int64, for target: WebhookTarget, node: String) async throws -> Int64 {
    let seconds = Int(Self.lease.components.seconds)
    return try await database.withTenant(target.tenantID) { connection in
      let updated = try connection.query(
        """
        UPDATE webhook_subscriptions SET after_position = greatest(after_position, \(position)),
          lease_until = clock_timestamp() + make_interval(secs => \(seconds))
        WHERE tenant_id = \(target.tenantID) AND id = \(target.webhook.id) AND lease_owner = \(node) AND is_active
        RETURNING version
        """)
      guard let row = updated.first else { throw WebhookLeaseLost() }
      return try row.decode("version", as: Int64.self)
    }
  }

  /// Gives up the failing event without an attempt (it left the feed, or the owner's sight): a dead
  /// letter with the reason, and the subscription moves past it.
  public func abandon(_ pending: WebhookDelivery, reason: String, for target: WebhookTarget, node: String) async throws {
    let at = now()
    try await database.withTenant(target.tenantID) { connection in
      let updated = try connection.query(
        """
        WITH d AS (
          UPDATE webhook_deliveries SET status = 'dead', next_attempt_at = NULL, error = \(reason), updated_at = \(at)::timestamptz
          WHERE tenant_id = \(target.tenantID) AND id = \(pending.id)
        )
        UPDATE webhook_subscriptions SET after_position = greatest(after_position, \(pending.position)), next_attempt_at = NULL
        WHERE tenant_id = \(target.tenantID) AND id = \(target.webhook.id) AND lease_owner = \(node) AND is_active
        """)
      guard updated.affectedRows == 1 else { throw WebhookLeaseLost() }
    }
  }

  /// Turns the subscription off, saying why (its owner can no longer see anything).
  public func disable(_ target: WebhookTarget, reason: String) async throws {
    try await database.withTenant(target.tenantID) { connection in
      _ = try connection.query(
        """
        UPDATE webhook_subscriptions SET is_active = false, disabled_reason = \(reason), version = version + 1,
          updated_at = now()
        WHERE tenant_id = \(target.tenantID) AND id = \(target.webhook.id)
        """)
    }
  }

  /// Lets go of the lease so any node may claim the subscription when it has work again.
  public func release(tenantID: UUID, id: UUID, node: String) async throws {
    try await database.withTenant(tenantID) { connection in
      _ = try connection.query(
        """
        UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL
        WHERE tenant_id = \(tenantID) AND id = \(id) AND lease_owner = \(node)
        """)
    }
  }

  /// Records a manual redelivery's one attempt, outside the subscription's order.
  public func recordRedelivery(
    _ attempt: WebhookAttempt, of event: ChangeEvent, subscription: UUID, principal: Principal
  ) async throws -> WebhookDelivery {
    let tenant = principal.tenantID
    let at = now()
    let id = UUID.v7()
    let body = attempt.responseBody.map { String($0.prefix(WebhookAttempt.bodyLimit)) }
    let status: WebhookDelivery.Status = attempt.succeeded ? .succeeded : .failed
    return try await database.withTenant(tenant) { connection in
      _ = try Self.load(connection, subscription, principal: principal)
      let row = try connection.query(
        """
        WITH d AS (
          INSERT INTO webhook_deliveries (tenant_id, id, subscription_id, position, event_type, record_type, record_id,
            is_redelivery, status, attempts, response_status, latency_ms, error, response_body, created_at, updated_at)
          VALUES (\(tenant), \(id), \(subscription), \(event.position),
            \(WebhookEventType.name(event.entry.recordType, event.entry.operation)), \(event.entry.recordType.rawValue),
            \(event.entry.recordID), true, \(status.rawValue), 1, \(attempt.responseStatus), \(attempt.latencyMilliseconds),
            \(attempt.error), \(body), \(at)::timestamptz, \(at)::timestamptz)
          RETURNING \(unsafeSQL: Self.deliveryColumns)
        ), a AS (
          INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, attempted_at, response_status, latency_ms, error)
          SELECT \(tenant), d.id, 1, \(at)::timestamptz, \(attempt.responseStatus), \(attempt.latencyMilliseconds), \(attempt.error)
          FROM d
        )
        SELECT * FROM d
        """)[0]
      return try Self.delivery(row)
    }
  }

  /// The secrets to sign with at `at`: the current one, then the rotated-out one while its grace lasts.
  static func secrets(_ row: PostgresRow, of webhook: Webhook, at: Timestamp) throws -> [String] {
    var secrets: [String] = [try row.decode("secret")]
    if let previous: String = try row.decode("previous_secret"), let until = webhook.previousSecretExpiresAt, at < until {
      secrets.append(previous)
    }
    return secrets
  }

  /// Deletes deliveries older than their tenant's change-feed retention (their events are gone).
  public func prune() async throws -> Int {
    try await database.pool.withTransaction { connection in
      Int(try connection.query("SELECT crm_webhook_prune() AS n")[0].decode("n", as: Int64.self))
    }
  }
}
