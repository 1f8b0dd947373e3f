import CRMCore
import Foundation
import Synchronization

/// Per-key token buckets (capture keys by id, failed sign-ins by peer): a key may spend its whole
/// per-minute allowance at once and earns it back evenly over the minute.
///
/// The buckets live in this process, so each `crmd` node enforces the rate on its own (N nodes allow
/// up to N × the rate); idle buckets are dropped when the table grows past ``maxKeys``.
final class RateLimiter<Key: Hashable & Sendable>: Sendable {
  struct Bucket {
    var tokens: Double
    var updated: ContinuousClock.Instant
  }

  private let buckets = Mutex<[Key: Bucket]>([:])
  private static var maxKeys: Int { 10_000 }

  /// Takes one call from the key's bucket; returns `nil` when allowed, else how long until the next
  /// call would be.
  func acquire(key: Key, ratePerMinute: Int, now: ContinuousClock.Instant = .now) -> Duration? {
    let capacity = Double(max(ratePerMinute, 1))
    let perSecond = capacity / 60
    return buckets.withLock { buckets in
      if buckets.count >= Self.maxKeys, buckets[key] == nil {
        buckets = buckets.filter { now - $0.value.updated < .seconds(60) }
      }
      var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
      let elapsed = now - bucket.updated
      let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
      bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
      bucket.updated = now
      defer { buckets[key] = bucket }
      if bucket.tokens >= 1 {
        bucket.tokens -= 1
        return nil
      }
      let wait = (1 - bucket.tokens) / perSecond
      return .milliseconds(Int64((wait * 1000).rounded(.up)))
    }
  }

  /// How long until the key's bucket holds a whole call again, without taking one; `nil` when it does.
  func wait(key: Key, ratePerMinute: Int, now: ContinuousClock.Instant = .now) -> Duration? {
    let capacity = Double(max(ratePerMinute, 1))
    let perSecond = capacity / 60
    return buckets.withLock { buckets in
      guard let bucket = buckets[key] else { return nil }
      let elapsed = now - bucket.updated
      let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
      let tokens = min(capacity, bucket.tokens + seconds * perSecond)
      if tokens >= 1 { return nil }
      return .milliseconds(Int64(((1 - tokens) / perSecond * 1000).rounded(.up)))
    }
  }
}
