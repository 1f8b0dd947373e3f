import CRMCore
import CRMStore
import Foundation
public import GRPCCore
public import Logging

/// Wraps every call: request id, authentication, error mapping and one structured log line.
///
/// The request id is the caller's `x-request-id` or a new UUID; it is echoed as `x-request-id` in the
/// response's initial metadata (or the error's trailers) and logged, so a caller can quote it.
///
/// Calls to the services in `openServices` (health, CSAT answers) skip authentication. Every other call
/// needs `authorization: Bearer <token>`; a missing, unknown, revoked or expired token answers
/// `UNAUTHENTICATED`. A capture key reaches `CaptureLead` only, within its rate (else
/// `PERMISSION_DENIED`, `RESOURCE_EXHAUSTED` with `RetryInfo`). Errors a handler throws become statuses through ``ErrorMapping``, the only place
/// that decides codes. The log line carries method, tenant, status, duration and request id, never
/// tokens, messages or record contents.
public struct RequestInterceptor: ServerInterceptor {
  let authenticator: Authenticator
  let logger: Logger
  let openServices: Set<String>
  let rateLimiter = RateLimiter<UUID>()
  /// Failed sign-ins per peer address: past ``failedSignInsPerMinute`` the peer's unknown tokens are
  /// refused without a database lookup until its bucket refills.
  let failedSignIns = RateLimiter<String>()
  /// Unknown tokens a peer may present a minute (a burst of that many, then one every 2 s).
  public static let failedSignInsPerMinute = 30

  /// The server's largest request message, named when a larger one is refused.
  let maxRequestBytes: Int

  /// The clock rate limits refill by (tests move it); durations logged use the real clock.
  let now: @Sendable () -> ContinuousClock.Instant

  /// An interceptor that authenticates with `authenticator` and logs to `logger`.
  public init(
    authenticator: Authenticator, logger: Logger, openServices: Set<String> = ["grpc.health.v1.Health"],
    maxRequestBytes: Int = ServerConfiguration.defaults.maxRequestBytes,
    now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
  ) {
    self.authenticator = authenticator
    self.logger = logger
    self.openServices = openServices
    self.maxRequestBytes = maxRequestBytes
    self.now = now
  }

  /// Runs the call.
  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let start = ContinuousClock.now
    let method = context.descriptor.fullyQualifiedMethod
    let requestID = Self.requestID(from: request.metadata)
    var tenant = "-"
    var code = "OK"
    defer {
      let elapsed = ContinuousClock.now - start
      let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
      logger.info(
        "rpc",
        metadata: [
          "rpc.method": "\(method)", "rpc.request_id": "\(requestID)", "crm.tenant": "\(tenant)",
          "rpc.status": "\(code)", "rpc.duration_ms": "\(String(format: "%.2f", milliseconds))",
        ])
    }
    do {
      let metadataBytes = request.metadata.reduce(0) { total, entry in
        switch entry.value {
        case .string(let text): total + entry.key.utf8.count + text.utf8.count + 32
        case .binary(let bytes): total + entry.key.utf8.count + bytes.count + 32
        }
      }
      guard metadataBytes <= HeaderListLimit.metadataLimit else {
        throw CRMError.resourceExhausted(
          "the request's metadata is \(metadataBytes) bytes; at most \(HeaderListLimit.metadataLimit)",
          retryAfter: .zero)
      }
      let remaining = Self.timeout(from: request.metadata)
      if openServices.contains(context.descriptor.service.fullyQualifiedService) {
        return Self.tagged(try await next(request, context), requestID: requestID)
      }
      guard let secret = Self.bearer(from: request.metadata) else {
        throw CRMError.unauthenticated("missing credentials: send the metadata `authorization: Bearer <token>`")
      }
      let principal = try await authenticate(secret, peer: context.remotePeer)
      tenant = principal.tenantID.lowercasedString
      if let scope = principal.captureScope {
        let allowed = CaptureService.method(for: scope.limits)
        guard method.description == allowed else {
          throw CRMError.permissionDenied("this capture key may only call \(allowed)")
        }
        if let wait = rateLimiter.acquire(key: scope.keyID, ratePerMinute: scope.ratePerMinute, now: now()) {
          throw CRMError.resourceExhausted(
            "this capture key's rate limit (\(scope.ratePerMinute) a minute) is used up; retry in \(wait.components.seconds + 1) s",
            retryAfter: wait)
        }
      }
      let requestContext = RequestContext(principal: principal, requestID: requestID)
      let origin = try Self.clientOrigin(from: request.metadata)
      // Field-level security, for every service at once: writes the role may not make are refused,
      // and what it may not see leaves no response.
      let security = principal.fieldSecurity
      let guarded =
        security.isEmpty ? request : FieldGuard.shared.guarding(request, method: context.descriptor.method, security: security)
      var response = try await RequestContext.$current.withValue(requestContext) {
        try await Database.$remainingTime.withValue(remaining) {
          try await ChangeLog.$clientOrigin.withValue(origin) { try await next(guarded, context) }
        }
      }
      if !security.isEmpty { response = FieldGuard.shared.redacting(response, security: security) }
      // A streaming handler runs in the response's producer, after this returns: give it the same
      // context, and map what it throws like any other error.
      if case .success(var contents) = response.accepted {
        let producer = contents.producer
        contents.producer = { writer in
          do {
            return try await RequestContext.$current.withValue(requestContext) {
              try await Database.$remainingTime.withValue(remaining) {
                try await ChangeLog.$clientOrigin.withValue(origin) { try await producer(writer) }
              }
            }
          } catch {
            if Self.isUnreadableRequest(error) {
              logUnreadableRequest(method: "\(method)", requestID: requestID, peer: context.remotePeer)
              throw Self.unreadableRequest(maxRequestBytes: maxRequestBytes)
            }
            var mapped = ErrorMapping.rpcError(for: error)
            logger.info(
              "stream ended with an error",
              metadata: [
                "rpc.method": "\(method)", "rpc.request_id": "\(requestID)", "rpc.status": "\(mapped.code)",
                "error": "\(mapped.code == .internalError ? "\(error)" : mapped.message)",
              ])
            mapped.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
            throw mapped
          }
        }
        response.accepted = .success(contents)
      }
      return Self.tagged(response, requestID: requestID)
    } catch {
      if Self.isUnreadableRequest(error) {
        code = "\(RPCError.Code.resourceExhausted)"
        logUnreadableRequest(method: "\(method)", requestID: requestID, peer: context.remotePeer)
        throw Self.unreadableRequest(maxRequestBytes: maxRequestBytes)
      }
      let rpcError = ErrorMapping.rpcError(for: error)
      code = "\(rpcError.code)"
      if rpcError.code == .internalError {
        logger.error(
          "unexpected error", metadata: ["rpc.method": "\(method)", "rpc.request_id": "\(requestID)", "error": "\(error)"])
      }
      var tagged = rpcError
      tagged.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
      throw tagged
    }
  }

  /// The principal for a bearer secret. A malformed secret is refused without a lookup; a peer that
  /// presented too many unknown tokens lately is refused with `RESOURCE_EXHAUSTED` (and `RetryInfo`)
  /// unless the token is one this node already knows, so guessing costs the guesser, not the database.
  func authenticate(_ secret: String, peer: String) async throws -> Principal {
    let address = Self.address(of: peer)
    if let known = authenticator.cachedPrincipal(for: secret) { return known }
    guard TokenSecret.isWellFormed(secret) else {
      _ = failedSignIns.acquire(key: address, ratePerMinute: Self.failedSignInsPerMinute, now: now())
      throw CRMError.unauthenticated("the token is unknown, revoked or expired")
    }
    if let wait = failedSignIns.wait(key: address, ratePerMinute: Self.failedSignInsPerMinute, now: now()) {
      throw CRMError.resourceExhausted(
        "too many unknown tokens from this address; retry in \(wait.components.seconds + 1) s", retryAfter: wait)
    }
    guard let principal = try await authenticator.principal(for: secret) else {
      _ = failedSignIns.acquire(key: address, ratePerMinute: Self.failedSignInsPerMinute, now: now())
      throw CRMError.unauthenticated("the token is unknown, revoked or expired")
    }
    return principal
  }

  /// The address part of a peer (`ipv4:127.0.0.1:5000` → `ipv4:127.0.0.1`): failures count per host,
  /// not per connection.
  static func address(of peer: String) -> String {
    guard let colon = peer.lastIndex(of: ":"), peer[peer.index(after: colon)...].allSatisfy(\.isNumber) else { return peer }
    return String(peer[..<colon])
  }

  /// True for the transport's own failure to read a request message: larger than the server's
  /// maximum request size, or bytes that are no gRPC message. grpc-swift-nio-transport reports both
  /// as this `INTERNAL` error and has already reset the stream (the client sees `CANCELLED`), so the
  /// status this server would answer never reaches the client; see docs/DECISIONS.md.
  static func isUnreadableRequest(_ error: any Error) -> Bool {
    guard let rpc = error as? RPCError, rpc.code == .internalError else { return false }
    return rpc.message.hasPrefix("Failed to decode message")
  }

  /// The status for an unreadable request, for the log line and for any transport that delivers it.
  static func unreadableRequest(maxRequestBytes: Int) -> RPCError {
    RPCError(
      code: .resourceExhausted,
      message: "the request message could not be read: larger than the server's limit of \(maxRequestBytes) bytes, or malformed")
  }

  /// A client's oversized or malformed message is the client's problem, not the server's: a warning
  /// with who sent it and to which method, not an error.
  func logUnreadableRequest(method: String, requestID: String, peer: String) {
    logger.warning(
      "request message unreadable: over --max-request-bytes or malformed; the transport reset the stream",
      metadata: [
        "rpc.method": "\(method)", "rpc.request_id": "\(requestID)", "rpc.peer": "\(peer)",
        "rpc.max_request_bytes": "\(maxRequestBytes)",
      ])
  }

  /// The response with the request id in its initial metadata, so that callers can quote it.
  static func tagged<Output>(_ response: StreamingServerResponse<Output>, requestID: String) -> StreamingServerResponse<Output> {
    var response = response
    switch response.accepted {
    case .success(var contents):
      contents.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
      response.accepted = .success(contents)
    case .failure(var error):
      error.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
      response.accepted = .failure(error)
    }
    return response
  }

  /// The bearer secret from `authorization`, if well-formed.
  static func bearer(from metadata: Metadata) -> String? {
    for value in metadata[stringValues: "authorization"] {
      let parts = value.split(separator: " ", maxSplits: 1)
      if parts.count == 2, parts[0].lowercased() == "bearer" {
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        if !secret.isEmpty { return secret }
      }
    }
    return nil
  }

  /// The call's deadline from `grpc-timeout` (`<digits><H|M|S|m|u|n>`), if the client set one.
  static func timeout(from metadata: Metadata) -> Duration? {
    guard let text = metadata[stringValues: "grpc-timeout"].first(where: { _ in true }), text.count >= 2,
      let amount = Int64(text.dropLast()), amount >= 0
    else { return nil }
    switch text.last {
    case "H": return .seconds(amount * 3600)
    case "M": return .seconds(amount * 60)
    case "S": return .seconds(amount)
    case "m": return .milliseconds(amount)
    case "u": return .microseconds(amount)
    case "n": return .nanoseconds(amount)
    default: return nil
    }
  }

  /// The caller's `x-request-id` when it is short and printable, else a new UUID.
  /// The caller's `x-client-origin`: where its writes come from, carried into the change log so a
  /// feed consumer can skip its own writes. Printable ASCII, at most 200 bytes.
  static func clientOrigin(from metadata: Metadata) throws -> String? {
    guard let given = metadata[stringValues: "x-client-origin"].first(where: { _ in true }) else { return nil }
    guard (1...200).contains(given.utf8.count), given.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
      throw CRMError.invalid("x-client-origin", "must be 1 to 200 printable ASCII characters", reason: "INVALID_FORMAT")
    }
    return given
  }

  static func requestID(from metadata: Metadata) -> String {
    if let given = metadata[stringValues: "x-request-id"].first(where: { _ in true }),
      (1...128).contains(given.utf8.count), given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
    {
      return given
    }
    return UUID().lowercasedString
  }
}
