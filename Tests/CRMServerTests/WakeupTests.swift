import CRMServer
import CRMTestSupport
import Synchronization
import Testing

@Suite("Server: the feed's doorbell")
struct WakeupTests {
  @Test("a ring wakes every waiter at once; one that came while nobody waited is not lost; no ring: the interval")
  func broadcast() async throws {
    let bell = Wakeup()
    let start = bell.generation
    final class Count: Sendable { let value = Mutex(0) }
    let woken = Count()
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<3 {
        group.addTask {
          // An hour: only the ring can end this wait within the test's bound.
          _ = await bell.wait(after: start, atMost: .seconds(3600))
          woken.value.withLock { $0 += 1 }
        }
      }
      // Ring until all three have woken (each ring wakes whoever waits; a waiter that starts after a
      // ring returns at once because the generation moved).
      try await waitUntil("three waiters to wake on one doorbell") {
        bell.ring()
        return woken.value.withLock { $0 } == 3
      }
      try await group.waitForAll()
    }
    let seen = bell.generation
    #expect(seen != start)
    bell.ring()
    #expect(await bell.wait(after: seen, atMost: .seconds(3600)) == seen &+ 1, "a ring before the wait is remembered")
    let quiet = bell.generation
    #expect(await bell.wait(after: quiet, atMost: .milliseconds(10)) == quiet, "no ring: back after the interval")
  }
}
