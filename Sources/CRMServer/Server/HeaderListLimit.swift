import NIOCore
import NIOHTTP2

/// Raises a connection's HTTP/2 header-list limit so that an oversized request header fails its own
/// call, not the connection.
///
/// grpc-swift-nio-transport advertises `SETTINGS_MAX_HEADER_LIST_SIZE` = 16 KB and gives no option to
/// change it; swift-nio-http2 treats a larger header block as a connection error (`GOAWAY`), which
/// fails every call in flight on that connection. This handler, added right behind the HTTP/2 handler
/// of each accepted connection, sends a second SETTINGS frame with ``hardLimit``; once the client
/// acknowledges it, blocks up to that size are decoded and ``RequestInterceptor`` answers calls whose
/// metadata exceeds ``metadataLimit`` with `RESOURCE_EXHAUSTED`, each on its own stream. It does not
/// help a request sent before the client has read the new SETTINGS (the first call of a connection),
/// nor blocks over ``hardLimit``, which stay connection errors. See docs/DECISIONS.md, "Header size".
final class HeaderListLimit: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTP2Frame
  typealias OutboundOut = HTTP2Frame

  /// The largest header block decoded; larger ones are connection errors (swift-nio-http2). Past about
  /// five CONTINUATION frames (~80 KB) its flood protection answers `ENHANCE_YOUR_CALM` anyway.
  static let hardLimit = 64 * 1024
  /// The largest request metadata a call may carry; larger answers `RESOURCE_EXHAUSTED` (gRPC's
  /// common default, 8 KB).
  static let metadataLimit = 8 * 1024

  func handlerAdded(context: ChannelHandlerContext) {
    let settings = HTTP2Frame(
      streamID: .rootStream,
      payload: .settings(.settings([HTTP2Setting(parameter: .maxHeaderListSize, value: Self.hardLimit)])))
    context.writeAndFlush(wrapOutboundOut(settings), promise: nil)
    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
  }

  /// Adds the handler behind the HTTP/2 handler of an accepted connection.
  static func install(on channel: any Channel) -> EventLoopFuture<Void> {
    channel.eventLoop.submit {
      let operations = channel.pipeline.syncOperations
      let http2 = try operations.handler(type: NIOHTTP2Handler.self)
      try operations.addHandler(HeaderListLimit(), position: .after(http2))
    }
  }
}
