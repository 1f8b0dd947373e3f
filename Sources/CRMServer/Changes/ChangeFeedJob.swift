public import CRMStore
public import Logging
public import ServiceLifecycle

/// Runs the change feed's sequencer on this node until graceful shutdown, one step after another: a
/// step waits up to `interval` for the replication stream, so a change is copied as soon as it
/// arrives. Every node runs one; the sequencer's lock lets one copy at a time, and the others check
/// back every `followerInterval`.
public final class ChangeFeedJob: Service {
  let sequencer: ChangeFeedSequencer
  let interval: Duration
  let logger: Logger
  /// Rung when a step copied changes into the feed (this node's webhook dispatcher waits on it).
  let wakeup: Wakeup?
  /// How long a node that is not the sequencer (or whose database cannot decode) waits to try again.
  static let followerInterval: Duration = .seconds(2)

  /// A job over the database at `connectionString` (its own session: decoding needs the connecting
  /// role's replication rights).
  public init(connectionString: String, interval: Duration = .milliseconds(100), wakeup: Wakeup? = nil, logger: Logger) {
    sequencer = ChangeFeedSequencer(
      connectionString: connectionString, waitMilliseconds: Int32((interval / .milliseconds(1)).rounded()), logger: logger)
    self.interval = interval
    self.wakeup = wakeup
    self.logger = logger
  }

  /// How often a node prunes changes past their tenants' retention.
  static let pruneInterval: Duration = .seconds(3600)

  /// Steps until graceful shutdown.
  public func run() async throws {
    var reported = false
    var pruned: ContinuousClock.Instant?
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      if pruned.map({ ContinuousClock.now - $0 > Self.pruneInterval }) ?? true {
        pruned = .now
        do {
          let count = try await sequencer.prune()
          if count > 0 { logger.info("change feed pruned", metadata: ["crm.job": "change-feed", "crm.pruned": "\(count)"]) }
        } catch {
          logger.warning("change feed pruning failed", metadata: ["crm.job": "change-feed", "error": "\(error)"])
        }
      }
      var pause: Duration = .zero
      do {
        let started = ContinuousClock.now
        let step = try await sequencer.step()
        let took = ContinuousClock.now - started
        switch step {
        case .copied(let count, let more):
          if took > .seconds(1) {
            logger.notice(
              "change feed step was slow",
              metadata: ["crm.job": "change-feed", "crm.copied": "\(count)", "crm.more": "\(more)", "crm.duration": "\(took)"])
          }
          reported = false
          if count > 0 { wakeup?.ring() }
          // The step itself waited for the stream: step again at once.
          continue
        case .follower:
          pause = Self.followerInterval
        case .unavailable(let reason):
          if !reported { logger.error("the change feed is off", metadata: ["crm.job": "change-feed", "reason": "\(reason)"]) }
          reported = true
          pause = Self.followerInterval
        }
      } catch {
        logger.warning("change feed step failed; retrying", metadata: ["crm.job": "change-feed", "error": "\(error)"])
        pause = Self.followerInterval
      }
      let wait = pause
      try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
    }
    await sequencer.close()
  }

  /// One step now (tests; a server's first step also creates the replication slot).
  public func step() async throws -> ChangeFeedSequencer.Step { try await sequencer.step() }

  /// True once changes committed from now on reach the feed (the replication slot exists).
  public func isReady() async throws -> Bool { try await sequencer.isReady() }
}
