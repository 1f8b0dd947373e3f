import Foundation

/// Runs blocking work — `initdb` and `pg_ctl`, a child process read to its end — on a thread of its
/// own and awaits the result.
///
/// Swift's cooperative pool has one thread per core: two on the CI machines. A test that blocks one of
/// them for seconds (starting a cluster, running `crm` to completion) halves what every other test in
/// the process gets, and two such tests stall them all — pool waiters then time out for no fault of
/// the code under test.
@discardableResult
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread { continuation.resume(with: Result { try body() }) }.start()
  }
}
