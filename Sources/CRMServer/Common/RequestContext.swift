public import CRMCore
import Foundation

/// What the request interceptor learned about the current call, for the handlers below it.
public struct RequestContext: Sendable {
  /// The authenticated caller.
  public var principal: Principal
  /// The request id: the caller's `x-request-id` header, or one made by the server.
  public var requestID: String

  /// The context of the call being handled; set by ``RequestInterceptor`` for every authenticated call.
  @TaskLocal public static var current: RequestContext?

  /// The current context, or `UNAUTHENTICATED` when a handler runs without one.
  static func require() throws -> RequestContext {
    guard let current else { throw CRMError.unauthenticated("missing credentials") }
    return current
  }
}
