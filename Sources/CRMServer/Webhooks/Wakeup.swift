import Synchronization

/// A doorbell between tasks: ``ring()`` ends the current (or next) ``wait(atMost:)`` early. Rings
/// while nobody waits are remembered as one.
public final class Wakeup: Sendable {
  struct State {
    var rung = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  let state = Mutex(State())

  /// A doorbell nobody has rung.
  public init() {}

  /// Wakes the waiter, or the next one to wait.
  public func ring() {
    let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
      guard let waiter = state.waiter else {
        state.rung = true
        return nil
      }
      state.waiter = nil
      return waiter
    }
    waiter?.resume()
  }

  /// Returns when rung (at once if it was rung since the last wait), after `interval`, or when the
  /// task is cancelled. One waiter at a time.
  public func wait(atMost interval: Duration) async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { try? await Task.sleep(for: interval) }
      group.addTask { await self.rung() }
      await group.next()
      group.cancelAll()
    }
  }

  func rung() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumeNow = state.withLock { state -> Bool in
          if state.rung {
            state.rung = false
            return true
          }
          if Task.isCancelled { return true }
          state.waiter = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
        defer { state.waiter = nil }
        return state.waiter
      }
      waiter?.resume()
    }
  }
}
