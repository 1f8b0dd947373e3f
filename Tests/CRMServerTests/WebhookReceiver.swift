import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 endpoint on a loopback port for webhook tests: it records every request and
/// answers as the test says (a status, headers, or no answer at all).
final class WebhookReceiver: Sendable {
  struct Request: Sendable {
    var headers: [String: [String]]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers[name.lowercased()]?.first }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
  }

  enum Reply: Sendable {
    case status(Int, headers: [(String, String)] = [], body: String = "")
    /// Never answer (the sender must time out).
    case hang
  }

  let channel: any Channel
  let received = Mutex<[Request]>([])
  let replies = Mutex<@Sendable (Int) -> Reply>({ _ in .status(200, body: "ok") })

  private init(channel: any Channel) { self.channel = channel }

  /// A receiver listening on 127.0.0.1 on a free port.
  static func start() async throws -> WebhookReceiver {
    let box = Mutex<WebhookReceiver?>(nil)
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          guard let receiver = box.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(Handler(receiver: receiver))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    let receiver = WebhookReceiver(channel: channel)
    box.withLock { $0 = receiver }
    return receiver
  }

  /// The URL to subscribe.
  var url: String { "http://127.0.0.1:\(channel.localAddress!.port!)/hooks" }

  /// What came so far, in order.
  var requests: [Request] { received.withLock { $0 } }

  /// How to answer request `n` (from 0, counting every request received).
  func reply(_ answer: @escaping @Sendable (Int) -> Reply) { replies.withLock { $0 = answer } }

  func stop() async { try? await channel.close() }

  final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let receiver: WebhookReceiver
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(receiver: WebhookReceiver) { self.receiver = receiver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        self.head = head
        body = []
      case .body(let buffer):
        body += buffer.readableBytesView
      case .end:
        var headers: [String: [String]] = [:]
        for (name, value) in head?.headers ?? [:] { headers[name.lowercased(), default: []].append(value) }
        let request = Request(headers: headers, body: body)
        let index = receiver.received.withLock { list -> Int in
          list.append(request)
          return list.count - 1
        }
        let answer = receiver.replies.withLock { $0 }(index)
        guard case .status(let code, let extra, let text) = answer else { return }
        var responseHeaders = HTTPHeaders([("content-length", String(text.utf8.count)), ("content-type", "text/plain")])
        for (name, value) in extra { responseHeaders.add(name: name, value: value) }
        let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: code), headers: responseHeaders)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
      }
    }
  }
}
