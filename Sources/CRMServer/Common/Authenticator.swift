import CRMCore
import CRMStore
import Foundation
import LibPQ
import Synchronization

/// Turns bearer secrets into principals, remembering answers for a few seconds.
///
/// The cache trades revocation latency for one database round trip per call: a token revoked through
/// this node is forgotten at once; one revoked through another node stops working within ``ttl``.
/// Only successful lookups are cached, keyed by the secret's SHA-256, never by the secret itself.
public final class Authenticator: Sendable {
  struct Entry {
    var principal: Principal
    var expires: ContinuousClock.Instant
  }

  let store: AccessStore
  /// How long an answer is reused.
  public let ttl: Duration
  private let cache = Mutex<[Data: Entry]>([:])
  /// The clock cache entries age by (tests move it).
  let now: @Sendable () -> ContinuousClock.Instant
  private static let maxEntries = 10_000

  /// An authenticator over `store`, caching answers for `ttl` (0 disables the cache) by `now`.
  public init(
    store: AccessStore, ttl: Duration = .seconds(5), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
  ) {
    self.store = store
    self.ttl = ttl
    self.now = now
  }

  /// The principal for a secret this node checked within ``ttl``, without asking the database.
  public func cachedPrincipal(for secret: String) -> Principal? {
    guard ttl > .zero else { return nil }
    let key = Data(TokenSecret.hash(secret).bytes)
    guard let entry = cache.withLock({ $0[key] }), entry.expires > now() else { return nil }
    return entry.principal
  }

  /// The principal for a secret, or `nil`.
  public func principal(for secret: String) async throws -> Principal? {
    let key = Data(TokenSecret.hash(secret).bytes)
    let now = self.now()
    if let entry = cache.withLock({ $0[key] }), entry.expires > now { return entry.principal }
    guard let principal = try await store.authenticate(secret: secret) else {
      cache.withLock { _ = $0.removeValue(forKey: key) }
      return nil
    }
    if ttl > .zero {
      cache.withLock { entries in
        if entries.count >= Self.maxEntries { entries.removeAll(keepingCapacity: true) }
        entries[key] = Entry(principal: principal, expires: now + ttl)
      }
    }
    return principal
  }

  /// Forgets every cached answer (after a token is revoked or a user changes).
  public func invalidateAll() {
    cache.withLock { $0.removeAll() }
  }
}
