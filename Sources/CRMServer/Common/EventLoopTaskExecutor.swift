public import NIOCore

/// Runs tasks that prefer it on one NIO event loop.
///
/// A task whose awaits are mostly I/O on that same loop (an HTTP client's requests) then never
/// changes threads between sending and hearing the answer: on a busy machine each change of thread is
/// a wait in a run queue, and a sequence of them is what bounds one-at-a-time work such as a webhook
/// subscription's deliveries. Keep what runs here short; it shares the loop with that I/O.
public final class EventLoopTaskExecutor: TaskExecutor {
  let loop: any EventLoop

  /// An executor on `loop`.
  public init(_ loop: any EventLoop) {
    self.loop = loop
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}
