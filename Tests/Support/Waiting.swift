import CRMCore
import Foundation
import Synchronization

/// A condition a test waited for did not come within its bound.
public struct ConditionTimedOut: Error, CustomStringConvertible {
  /// What the test waited for.
  public let condition: String
  /// How long it waited.
  public let waited: Duration

  public var description: String { "waited \(waited) for \(condition), and it never came" }
}

/// Polls `condition` until it holds, and fails loudly when it has not held within `bound`.
///
/// Tests act on what they observe, never on how long something "should" take: the bound is only the
/// point at which waiting longer would hide a hang, so it is generous (a loaded two-core CI machine
/// runs the whole suite at once). The pause between polls only paces the polling; it decides nothing.
public func waitUntil(
  _ what: String, within bound: Duration = .seconds(90), pollingEvery interval: Duration = .milliseconds(20),
  _ condition: () async throws -> Bool
) async throws {
  let start = ContinuousClock.now
  while try await !condition() {
    if ContinuousClock.now - start > bound { throw ConditionTimedOut(condition: what, waited: bound) }
    try await Task.sleep(for: interval)
  }
}

/// The blocking twin of ``waitUntil(_:within:pollingEvery:_:)``, for code already on a thread of its own
/// (see ``runBlocking(_:)``).
public func waitUntilBlocking(
  _ what: String, within bound: Duration = .seconds(90), pollingEvery interval: Duration = .milliseconds(20),
  _ condition: () throws -> Bool
) throws {
  let start = ContinuousClock.now
  while try !condition() {
    if ContinuousClock.now - start > bound { throw ConditionTimedOut(condition: what, waited: bound) }
    Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
  }
}

/// A wall clock a test moves by hand: SLA timers, due times and jobs read it instead of the system
/// clock, so a test walks days of business time in milliseconds.
public final class ManualWallClock: Sendable {
  private let current: Mutex<Timestamp>

  /// A clock reading `start`.
  public init(_ start: Timestamp) { current = Mutex(start) }

  /// The time it reads.
  @Sendable public func now() -> Timestamp { current.withLock { $0 } }

  /// Moves it forward by `minutes`.
  public func advance(minutes: Int) {
    current.withLock { $0 = Timestamp(microsecondsSinceEpoch: $0.microsecondsSinceEpoch + Int64(minutes) * 60_000_000) }
  }

  /// Sets it to `time`.
  public func set(_ time: Timestamp) { current.withLock { $0 = time } }
}
