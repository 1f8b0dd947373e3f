/// How the gRPC server listens and protects itself.
public struct ServerConfiguration: Sendable {
  /// A certificate chain and private key, PEM files, for TLS.
  public struct TLS: Sendable {
    /// The certificate chain file (PEM).
    public var certificatePath: String
    /// The private key file (PEM).
    public var keyPath: String

    /// TLS from two PEM files.
    public init(certificatePath: String, keyPath: String) {
      self.certificatePath = certificatePath
      self.keyPath = keyPath
    }
  }

  /// The address to bind; loopback by default.
  public var host: String
  /// The port; 0 picks a free one (tests).
  public var port: Int
  /// TLS, or `nil` for plaintext (loopback only by default).
  public var tls: TLS?
  /// The largest request message accepted; larger ones answer RESOURCE_EXHAUSTED.
  public var maxRequestBytes: Int
  /// Ping idle connections this often.
  public var keepaliveTime: Duration
  /// Close a connection whose ping is not answered within this.
  public var keepaliveTimeout: Duration
  /// Close connections idle for this long.
  public var maxIdleTime: Duration
  /// How long an authenticated token is trusted before it is checked again.
  public var authCacheTTL: Duration
  /// How long an import stream holds its import between batches and heartbeats.
  public var importLease: Duration = .seconds(30)

  /// Defaults: 127.0.0.1:50051, plaintext, 16 MiB messages, keepalive every 60 s.
  public static let defaults = ServerConfiguration(
    host: "127.0.0.1", port: 50051, tls: nil, maxRequestBytes: 16 * 1024 * 1024, keepaliveTime: .seconds(60),
    keepaliveTimeout: .seconds(20), maxIdleTime: .seconds(30 * 60), authCacheTTL: .seconds(5))

  /// A configuration; see ``defaults``.
  public init(
    host: String, port: Int, tls: TLS?, maxRequestBytes: Int, keepaliveTime: Duration, keepaliveTimeout: Duration,
    maxIdleTime: Duration, authCacheTTL: Duration
  ) {
    self.host = host
    self.port = port
    self.tls = tls
    self.maxRequestBytes = maxRequestBytes
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
    self.maxIdleTime = maxIdleTime
    self.authCacheTTL = authCacheTTL
  }
}
