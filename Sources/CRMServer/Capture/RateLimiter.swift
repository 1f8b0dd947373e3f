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
    buckets.withLock { buckets in
      if buckets.count >= Self.maxKeys, buckets[key] == nil {
        buckets = buckets.filter { now - $0.value.updated < .seconds(60) }
      }
      var bucket = Self.refilled(buckets[key], ratePerMinute: ratePerMinute, now: now)
      defer { buckets[key] = bucket }
      if bucket.tokens >= 1 {
        bucket.tokens -= 1
        return nil
      }
      return Self.wait(for: bucket, ratePerMinute: ratePerMinute)
    }
  }

  /// How long until the key's bucket holds a whole call again, without taking one; `nil` when it does.
  func wait(key: Key, ratePerMinute: Int, now: ContinuousClock.Instant = .now) -> Duration? {
    buckets.withLock { buckets in
      guard let stored = buckets[key] else { return nil }
      let bucket = Self.refilled(stored, ratePerMinute: ratePerMinute, now: now)
      return bucket.tokens >= 1 ? nil : Self.wait(for: bucket, ratePerMinute: ratePerMinute)
    }
  }

  /// The bucket (a full one for a new key) with what it earned back since it was last used.
  private static func refilled(_ stored: Bucket?, ratePerMinute: Int, now: ContinuousClock.Instant) -> Bucket {
    let capacity = Double(max(ratePerMinute, 1))
    guard var bucket = stored else { return Bucket(tokens: capacity, updated: now) }
    let elapsed = now - bucket.updated
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    bucket.tokens = min(capacity, bucket.tokens + seconds * capacity / 60)
    bucket.updated = now
    return bucket
  }

  /// How long a bucket short of a whole call takes to earn it.
  private static func wait(for bucket: Bucket, ratePerMinute: Int) -> Duration {
    let perSecond = Double(max(ratePerMinute, 1)) / 60
    return .milliseconds(Int64(((1 - bucket.tokens) / perSecond * 1000).rounded(.up)))
  }
}
