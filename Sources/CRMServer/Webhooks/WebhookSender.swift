import AsyncHTTPClient
public import CRMCore
import CRMProto
public import CRMStore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SwiftProtobuf

#if canImport(Glibc)
  import Glibc
#endif

/// Sends webhook requests with async-http-client: Standard Webhooks headers and signature, no
/// redirects followed (a 3xx is a failure), a bounded time per attempt, and — unless crmd allows
/// private networks — only to public addresses, checked on every attempt (a name that resolved to a
/// public address at creation may not anymore).
///
/// The client has one event loop thread of its own, and ``executor`` runs tasks there: the dispatcher's
/// workers prefer it, so an attempt's request, its answer and the next attempt stay on one thread.
public final class WebhookSender: Sendable {
  let client: HTTPClient
  let group: MultiThreadedEventLoopGroup
  /// Runs the tasks that send through this sender on the client's own event loop.
  public let executor: EventLoopTaskExecutor
  /// The longest one attempt may take, connection and response included.
  let timeout: Duration
  let allowPrivateAddresses: Bool
  let clock: @Sendable () -> Timestamp

  /// A sender. `allowPrivateAddresses` lets deliveries reach loopback and private networks (tests,
  /// receivers inside the same network).
  public init(
    timeout: Duration = .seconds(15), allowPrivateAddresses: Bool = false, clock: @escaping @Sendable () -> Timestamp = { .now }
  ) {
    self.timeout = timeout
    self.allowPrivateAddresses = allowPrivateAddresses
    self.clock = clock
    var configuration = HTTPClient.Configuration(
      redirectConfiguration: .disallow,
      // A third of the attempt's time to connect (5 s of the default 15).
      timeout: .init(
        connect: .seconds(max(1, timeout.components.seconds / 3)), read: .seconds(timeout.components.seconds)))
    configuration.connectionPool = .init(idleTimeout: .seconds(60))
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    executor = EventLoopTaskExecutor(group.next())
    client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
  }

  /// Stops the client (its idle connections close) and its event loop.
  public func shutdown() async {
    try? await client.shutdown()
    try? await group.shutdownGracefully()
  }

  /// The request body for a feed event: `{"type", "timestamp", "data"}`, with `data` the event as
  /// `ListChanges` returns it to the subscription's owner (field security applied), in protobuf's JSON
  /// mapping.
  static func body(for event: ChangeEvent, security: FieldSecurity) throws -> [UInt8] {
    let data = try FieldGuard.shared.redact(Crm_V1_ChangeEvent(event), security: security).jsonString()
    let type = WebhookEventType.name(event.entry.recordType, event.entry.operation)
    return Array("{\"type\":\"\(type)\",\"timestamp\":\"\(event.commitTime.rfc3339)\",\"data\":\(data)}".utf8)
  }

  /// One attempt to deliver `event` to `url`, signed with each of `secrets`, carrying what `security`
  /// (the owner's) lets through. Never throws: whatever goes wrong is the attempt's outcome.
  public func send(_ event: ChangeEvent, to url: WebhookURL, secrets: [String], security: FieldSecurity) async -> WebhookAttempt {
    let id = FeedCursor.text(event.position)
    let timestamp = clock().seconds
    let started = ContinuousClock.now
    func elapsed() -> Int {
      let (seconds, attoseconds) = (ContinuousClock.now - started).components
      return Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
    do {
      let body = try Self.body(for: event, security: security)
      if !allowPrivateAddresses { try await Self.requirePublic(url) }
      var request = HTTPClientRequest(url: url.text)
      request.method = .POST
      request.headers.add(name: "content-type", value: "application/json")
      request.headers.add(name: "user-agent", value: "crmd-webhooks/1")
      request.headers.add(name: "webhook-id", value: id)
      request.headers.add(name: "webhook-timestamp", value: String(timestamp))
      let signatures = secrets.compactMap { WebhookSignature.sign(secret: $0, id: id, timestamp: timestamp, body: body) }
      request.headers.add(name: "webhook-signature", value: signatures.joined(separator: " "))
      request.body = .bytes(ByteBuffer(bytes: body))
      let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)
      let response = try await client.execute(request, deadline: deadline)
      var kept: [UInt8] = []
      for try await chunk in response.body {
        kept += chunk.readableBytesView.prefix(WebhookAttempt.bodyLimit - kept.count)
        if kept.count >= WebhookAttempt.bodyLimit || NIODeadline.now() > deadline { break }
      }
      let status = Int(response.status.code)
      let retryAfter = response.headers.first(name: "retry-after").flatMap { WebhookRetrySchedule.retryAfter($0, now: clock()) }
      return WebhookAttempt(
        responseStatus: status, latencyMilliseconds: elapsed(),
        error: (200..<300).contains(status) ? nil : "the endpoint answered \(status)",
        responseBody: String(decoding: kept, as: UTF8.self), retryAfter: retryAfter)
    } catch let refused as RefusedAddress {
      return WebhookAttempt(
        responseStatus: nil, latencyMilliseconds: elapsed(), error: refused.description, responseBody: nil, retryAfter: nil)
    } catch {
      return WebhookAttempt(
        responseStatus: nil, latencyMilliseconds: elapsed(), error: Self.describe(error), responseBody: nil, retryAfter: nil)
    }
  }

  /// A short, stable description of a transport error.
  static func describe(_ error: any Error) -> String {
    if let error = error as? HTTPClientError {
      switch error {
      case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
      case .remoteConnectionClosed: return "the endpoint closed the connection"
      default: return "request failed: \(error)"
      }
    }
    if let error = error as? IOError { return "could not connect: \(String(cString: strerror(error.errnoCode)))" }
    if let error = error as? NIOConnectionError {
      if let failure = error.connectionErrors.last?.error as? IOError {
        return "could not connect: \(String(cString: strerror(failure.errnoCode)))"
      }
      return "could not connect"
    }
    return "request failed: \(String(describing: error).prefix(200))"
  }

  /// An endpoint whose host resolves to an address deliveries may not go to.
  struct RefusedAddress: Error, CustomStringConvertible {
    var description: String
  }

  /// Throws ``RefusedAddress`` unless every address `url`'s host resolves to is public.
  static func requirePublic(_ url: WebhookURL) async throws {
    let host = url.host
    let addresses = try await NIOThreadPool.singleton.runIfActive { try Self.resolve(host) }
    guard !addresses.isEmpty else { throw RefusedAddress(description: "\(host) does not resolve") }
    if addresses.contains(where: { !WebhookAddressPolicy.isPublic($0) }) {
      throw RefusedAddress(
        description: "\(host) resolves to a private, loopback or link-local address; crmd sends webhooks there only "
          + "with --webhook-allow-private-addresses")
    }
  }

  /// The addresses `host` resolves to, as bytes (4 or 16 each).
  static func resolve(_ host: String) throws -> [[UInt8]] {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, nil, &hints, &list)
    guard status == 0, let first = list else {
      throw RefusedAddress(description: "\(host) does not resolve: \(String(cString: gai_strerror(status)))")
    }
    defer { freeaddrinfo(first) }
    var addresses: [[UInt8]] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let info = cursor {
      if let address = info.pointee.ai_addr {
        switch Int32(info.pointee.ai_family) {
        case AF_INET:
          address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
            var raw = $0.pointee.sin_addr
            addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
          }
        case AF_INET6:
          address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
            var raw = $0.pointee.sin6_addr
            addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
          }
        default: break
        }
      }
      cursor = info.pointee.ai_next
    }
    return addresses
  }
}
