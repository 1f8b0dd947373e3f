public import CRMCore
import CRMProto
public import CRMStore
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Delivers webhooks on this node until graceful shutdown. Every node runs one: each leases the
/// subscriptions it works (``WebhookStore/claim(node:running:limit:)``), so none is delivered by two
/// nodes at once, and a node that dies leaves its leases to expire and be taken over.
///
/// A subscription's events go out one at a time in feed order. A failed event is retried on
/// ``WebhookRetrySchedule`` and holds back what follows it; after its last attempt it is a dead
/// letter and the subscription is turned off (see ``WebhookDecision``).
///
/// A node keeps a subscription it has caught up on for ``linger`` and follows the feed's doorbell
/// itself: under a steady stream of changes each event costs one read of the feed and its share of a
/// batched write, not a claim, a load and a release of its own.
public final class WebhookDispatcher: Service {
  let store: WebhookStore
  let feed: ChangeFeedStore
  let sender: WebhookSender
  let logger: Logger
  /// How often it looks for work when nothing rang ``wakeup``.
  let interval: Duration
  /// Rung when the change feed has new events (the sequencer on this node rings it).
  public let wakeup: Wakeup
  /// A draw in 0..<1 for each retry's jitter.
  let jitter: @Sendable () -> Double
  let clock: @Sendable () -> Timestamp
  /// This node's name on its leases.
  let node = "crmd-" + UUID().uuidString.lowercased()
  /// The most subscriptions this node delivers at once.
  let concurrency: Int
  let running = Mutex<Set<UUID>>([])
  /// The one tenant it delivers for, or `nil` for all (tests confine theirs: they share a database).
  let tenant: UUID?
  /// How long a worker keeps a caught-up subscription, waiting for more events, before letting it go.
  let linger: Duration

  /// A dispatcher over `database`. `clock` is the delivery clock (retry times, signature
  /// timestamps); tests pass a fake one and walk days of it, and confine it to their `tenant`.
  public init(
    database: Database, sender: WebhookSender, logger: Logger, tenant: UUID? = nil, interval: Duration = .milliseconds(250),
    concurrency: Int = 32, linger: Duration = .seconds(5),
    wakeup: Wakeup = Wakeup(), jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
    clock: @escaping @Sendable () -> Timestamp = { .now }
  ) {
    store = WebhookStore(database: database, now: clock)
    feed = ChangeFeedStore(database: database)
    self.sender = sender
    self.logger = logger
    self.interval = interval
    self.concurrency = concurrency
    self.linger = linger
    self.tenant = tenant
    self.wakeup = wakeup
    self.jitter = jitter
    self.clock = clock
  }

  /// How often delivery history past the feed's retention is pruned.
  static let pruneInterval: Duration = .seconds(3600)
  /// How often at most the doorbell makes this node look for subscriptions with work: the sequencer
  /// rings it after every step (up to a hundred times a second under writes), and busy subscriptions
  /// follow it themselves. A subscription that falls due waits at most this long for its claim.
  static let claimInterval: Duration = .milliseconds(50)

  /// Delivers until graceful shutdown; a delivery under way finishes its attempt first.
  public func run() async throws {
    var pruned: ContinuousClock.Instant?
    var seen = wakeup.generation
    // Discarding: a worker's task is gone when it ends, however long the loop runs.
    await withDiscardingTaskGroup { group in
      while !Task.isCancelled && !Task.isShuttingDownGracefully {
        if pruned.map({ ContinuousClock.now - $0 > Self.pruneInterval }) ?? true {
          pruned = .now
          do {
            let count = try await store.prune()
            if count > 0 {
              logger.info("webhook deliveries pruned", metadata: ["crm.job": "webhooks", "crm.pruned": "\(count)"])
            }
          } catch {
            logger.warning("webhook pruning failed", metadata: ["crm.job": "webhooks", "error": "\(error)"])
          }
        }
        let claimed = ContinuousClock.now
        for (tenant, id) in await claim() {
          group.addTask(executorPreference: sender.executor) { await self.deliver(tenant: tenant, id: id, linger: self.linger) }
        }
        let last = seen
        seen = await cancelWhenGracefulShutdown { await self.wakeup.wait(after: last, atMost: self.interval) }
        let since = ContinuousClock.now - claimed
        if since < Self.claimInterval {
          try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.claimInterval - since) }
        }
      }
    }
  }

  /// One pass: claims what is due and delivers it without lingering, returning when all of it is
  /// done (tests).
  public func runOnce() async {
    await withTaskGroup(of: Void.self) { group in
      for (tenant, id) in await claim() {
        group.addTask(executorPreference: sender.executor) { await self.deliver(tenant: tenant, id: id, linger: .zero) }
      }
    }
  }

  /// Leases due subscriptions this node is not already working, marking them as running.
  func claim() async -> [(tenantID: UUID, id: UUID)] {
    let busy = running.withLock { Array($0) }
    guard busy.count < concurrency else { return [] }
    do {
      let claimed = try await store.claim(node: node, running: busy, limit: concurrency - busy.count, tenant: tenant)
      running.withLock { set in for item in claimed { set.insert(item.id) } }
      return claimed
    } catch {
      logger.warning("webhook claim failed; retrying", metadata: ["crm.job": "webhooks", "error": "\(error)"])
      return []
    }
  }

  /// Works one leased subscription until it has had nothing due for `linger`, then lets the lease go.
  func deliver(tenant: UUID, id: UUID, linger: Duration) async {
    defer { running.withLock { _ = $0.remove(id) } }
    let metadata: Logger.Metadata = ["crm.job": "webhooks", "crm.tenant_id": "\(tenant)", "crm.webhook_id": "\(id)"]
    do {
      try await work(tenant: tenant, id: id, linger: linger)
    } catch is WebhookLeaseLost {
      logger.notice("webhook lease lost; another node or an edit took over", metadata: metadata)
    } catch {
      logger.warning("webhook delivery failed; retrying", metadata: metadata.merging(["error": "\(error)"]) { $1 })
    }
    do {
      try await store.release(tenantID: tenant, id: id, node: node)
    } catch {
      logger.warning("webhook lease release failed (it expires)", metadata: metadata.merging(["error": "\(error)"]) { $1 })
    }
  }

  /// The most events read from the feed at once for one subscription.
  static let pageSize = 100

  func work(tenant: UUID, id: UUID, linger: Duration) async throws {
    guard var target = try await store.target(tenantID: tenant, id: id, node: node) else { return }
    guard let owner = target.owner else {
      try await store.disable(
        target,
        reason: "its owner \(target.webhook.ownerID.lowercasedString) is no longer an active user; "
          + "recreate it as an active admin or integration user")
      return
    }
    // "From now on": nothing before the feed has passed the moment it was made.
    if target.awaitsStart {
      guard let start = try await store.settleStart(of: target, node: node) else { return }
      target.webhook.afterPosition = start
    }
    // Successes are written down in batches (one statement for up to `batchSize`, at least every
    // `batchAge`, and always before anything else is written): a node that dies in between sends those
    // events again, which at-least-once allows, and the endpoint is not kept waiting on the database.
    var delivered = Delivered()
    // Since when it has been caught up (nil while events keep coming), and the doorbell it last heard.
    var idleSince: ContinuousClock.Instant?
    var seen = wakeup.generation
    do {
      while !Task.isCancelled && !Task.isShuttingDownGracefully {
        if let pending = target.pending {
          guard let event = try await self.event(at: pending.position, principal: owner) else {
            try await flush(&delivered, target: target)
            try await store.abandon(
              pending, reason: "the event left the change feed (retention) or its owner's sight before it could be delivered",
              for: target, node: node)
            target.pending = nil
            target.webhook.afterPosition = max(target.webhook.afterPosition, pending.position)
            continue
          }
          guard try await attempt(event, number: pending.attempts + 1, target: target, delivered: &delivered) else { return }
          target.pending = nil
          target.webhook.afterPosition = max(target.webhook.afterPosition, event.position)
          continue
        }
        let after = target.webhook.afterPosition
        seen = wakeup.generation
        let page: ChangeFeedStore.Page
        do {
          page = try await feed.changes(
            after: after, types: target.definition.recordTypes, pageSize: Self.pageSize, principal: owner)
        } catch let expired as CursorExpired {
          try await flush(&delivered, target: target)
          try await store.skip(to: expired.oldestResumePosition, for: target, node: node)
          try await store.disable(
            target,
            reason: "it fell behind the change feed's retention: events after cursor \(FeedCursor.text(after)) "
              + "and up to \(FeedCursor.text(expired.oldestResumePosition)) were pruned before they were delivered; "
              + "re-read what changed meanwhile, then turn it back on")
          return
        }
        for event in page.events where event.position > target.webhook.afterPosition {
          let wanted = target.definition.wants(event.entry) {
            Crm_V1_ChangeEntry.fieldChanges(fromJSON: event.entry.changesJSON).map(\.field)
          }
          guard wanted else { continue }
          guard try await attempt(event, number: 1, target: target, delivered: &delivered) else { return }
          target.webhook.afterPosition = event.position
        }
        if page.resumeAfter > target.webhook.afterPosition {
          try await flush(&delivered, target: target)
          guard try await store.skip(to: page.resumeAfter, for: target, node: node) == target.webhook.version else { return }
          target.webhook.afterPosition = page.resumeAfter
        }
        if page.resumeAfter > after {
          idleSince = nil
          continue
        }
        // Caught up: wait for the doorbell while the lease is held, writing down what was delivered
        // once it has waited its batch age, and let go after `linger` without events.
        let now = ContinuousClock.now
        let idle = idleSince ?? now
        idleSince = idle
        guard now - idle < linger else { break }
        // At most `interval`: on a node whose sequencer does not ring this doorbell, that is how often
        // it looks.
        var wait = min(idle + linger - now, interval)
        if !delivered.items.isEmpty {
          let due = delivered.since + Self.batchAge - now
          if due <= .zero {
            guard try await flush(&delivered, target: target) else { return }
            continue
          }
          wait = min(wait, due)
        }
        let (last, longest) = (seen, wait)
        seen = await cancelWhenGracefulShutdown { await self.wakeup.wait(after: last, atMost: longest) }
      }
      try await flush(&delivered, target: target)
    } catch {
      // Whatever went wrong, what was delivered is written down if it still can be.
      _ = try? await flush(&delivered, target: target)
      throw error
    }
  }

  /// Deliveries that succeeded and are not written down yet.
  struct Delivered {
    var items: [(event: ChangeEvent, attempt: WebhookAttempt)] = []
    var since = ContinuousClock.now
  }

  /// The most successes kept before they are written down, and the longest they wait.
  static let batchSize = 100
  static let batchAge: Duration = .milliseconds(500)

  /// Writes down the successes not written yet; false when the subscription was edited since its
  /// worker loaded it (the worker stops, and the next claim loads the new definition and secrets).
  @discardableResult
  func flush(_ delivered: inout Delivered, target: WebhookTarget) async throws -> Bool {
    guard !delivered.items.isEmpty else { return true }
    let items = delivered.items
    delivered.items.removeAll(keepingCapacity: true)
    return try await store.recordDelivered(items, for: target, node: node) == target.webhook.version
  }

  /// The feed event at `position` as `principal` sees it, or `nil` when it is gone or out of sight.
  func event(at position: Int64, principal: Principal) async throws -> ChangeEvent? {
    do {
      let page = try await feed.changes(after: position - 1, types: [], pageSize: 1, principal: principal)
      return page.events.first { $0.position == position }
    } catch is CursorExpired {
      return nil
    }
  }

  /// Sends `event` as attempt `number` and records how it went (a success into `delivered`, written
  /// down with the next batch; a failure at once, after the batch); true when it was delivered and
  /// the subscription was not edited meanwhile.
  func attempt(_ event: ChangeEvent, number: Int, target: WebhookTarget, delivered: inout Delivered) async throws -> Bool {
    let outcome = await sender.send(
      event, to: target.definition.url, secrets: target.secrets, security: target.owner?.fieldSecurity ?? .unrestricted)
    if outcome.succeeded {
      if delivered.items.isEmpty { delivered.since = .now }
      delivered.items.append((event, outcome))
      if delivered.items.count >= Self.batchSize || ContinuousClock.now - delivered.since >= Self.batchAge {
        return try await flush(&delivered, target: target)
      }
      return true
    }
    try await flush(&delivered, target: target)
    let decision: WebhookDecision
    if outcome.gone {
      decision = .gone
    } else if let wait = WebhookRetrySchedule.wait(afterAttempt: number, jitter: jitter(), retryAfter: outcome.retryAfter) {
      decision = .retry(at: clock() + wait)
    } else {
      decision = .dead
    }
    try await store.record(outcome, of: event, for: target, decision: decision, node: node)
    logger.info(
      "webhook attempt failed",
      metadata: [
        "crm.job": "webhooks", "crm.webhook_id": "\(target.webhook.id)", "crm.position": "\(event.position)",
        "crm.attempt": "\(number)", "crm.decision": "\(decision)", "error": "\(outcome.error ?? "")",
      ])
    return false
  }

  /// Sends a delivery's event once more, now, outside the subscription's order, and records it
  /// (`RedeliverWebhook`).
  public func redeliver(_ deliveryID: UUID, of subscription: UUID, principal: Principal) async throws -> WebhookDelivery {
    let (position, url, secrets, owner) = try await store.redelivery(deliveryID, of: subscription, principal: principal)
    guard let owner else {
      throw CRMError.failedPrecondition(
        "the webhook's owner is no longer an active user; recreate it as an active admin or integration user")
    }
    guard let event = try await event(at: position, principal: owner) else {
      throw CRMError.failedPrecondition(
        "the event has left the change feed (older than its retention) or the owner's sight; it cannot be sent again")
    }
    let outcome = await sender.send(event, to: url, secrets: secrets, security: owner.fieldSecurity)
    return try await store.recordRedelivery(outcome, of: event, subscription: subscription, principal: principal)
  }
}
