import Synchronization

/// A doorbell many tasks wait on: the change feed's sequencer on this node rings it when it copies new
/// changes, and every waiter — the webhook dispatcher, each `StreamChanges` call — wakes at once
/// instead of at its next poll. Each ring bumps a generation; a waiter passes the generation it last
/// saw, so a ring that came while it was busy is not lost.
public final class Wakeup: Sendable {
  struct State {
    var generation: UInt64 = 0
    var nextWaiter: UInt64 = 0
    var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
  }

  let state = Mutex(State())

  /// A doorbell nobody has rung.
  public init() {}

  /// How many times it has rung.
  public var generation: UInt64 { state.withLock { $0.generation } }

  /// Wakes every waiter.
  public func ring() {
    let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
      state.generation &+= 1
      defer { state.waiters.removeAll() }
      return Array(state.waiters.values)
    }
    for waiter in waiters { waiter.resume() }
  }

  /// Returns the generation once it differs from `seen` (at once if it already does), after
  /// `interval`, or when the task is cancelled.
  @discardableResult
  public func wait(after seen: UInt64, atMost interval: Duration) async -> UInt64 {
    if generation != seen { return generation }
    await withTaskGroup(of: Void.self) { group in
      group.addTask { try? await Task.sleep(for: interval) }
      group.addTask { await self.rung(after: seen) }
      await group.next()
      group.cancelAll()
    }
    return generation
  }

  func rung(after seen: UInt64) async {
    let id = state.withLock { state -> UInt64 in
      state.nextWaiter &+= 1
      return state.nextWaiter
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumeNow = state.withLock { state -> Bool in
          if state.generation != seen || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
      waiter?.resume()
    }
  }
}
