import Foundation

/// A webhook endpoint's URL, checked: `http` or `https`, a host, no user info or fragment.
public struct WebhookURL: Sendable, Hashable {
  public var text: String
  public var isHTTPS: Bool
  public var host: String
  public var port: Int

  /// The URL in `text`, or `nil` with a violation on `field`.
  public init?(_ text: String, field: String, into violations: inout Violations) {
    guard !text.isEmpty else {
      violations.add(field, "is required: the endpoint's http(s) URL", reason: "REQUIRED")
      return nil
    }
    switch Self.parse(text) {
    case .success(let url): self = url
    case .failure(let problem):
      violations.add(field, problem.why, reason: "INVALID")
      return nil
    }
  }

  struct Problem: Error {
    var why: String
  }

  init(text: String, isHTTPS: Bool, host: String, port: Int) {
    self.text = text
    self.isHTTPS = isHTTPS
    self.host = host
    self.port = port
  }

  static func parse(_ text: String) -> Result<WebhookURL, Problem> {
    guard text.utf8.count <= 2000 else { return .failure(Problem(why: "must be at most 2000 bytes")) }
    guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
      return .failure(Problem(why: "is not a URL"))
    }
    guard scheme == "https" || scheme == "http" else { return .failure(Problem(why: "must be an http or https URL")) }
    guard let host = components.host, !host.isEmpty else { return .failure(Problem(why: "has no host")) }
    guard components.user == nil, components.password == nil else {
      return .failure(Problem(why: "must not carry a user or password (the signature authenticates deliveries)"))
    }
    guard components.fragment == nil else { return .failure(Problem(why: "must not have a #fragment")) }
    if let port = components.port, !(1...65535).contains(port) {
      return .failure(Problem(why: "has a port outside 1 to 65535"))
    }
    let https = scheme == "https"
    // URLComponents keeps an IPv6 literal's brackets.
    let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    return .success(WebhookURL(text: text, isHTTPS: https, host: bare, port: components.port ?? (https ? 443 : 80)))
  }
}

/// Which addresses a webhook may be sent to: only public unicast ones, unless crmd is configured to
/// allow private networks (tests, and installs whose receivers live inside). Loopback, private
/// (RFC 1918, unique local), link-local (cloud metadata services among them), shared (CGNAT),
/// documentation, multicast, reserved and unspecified addresses are refused — also inside IPv4-mapped,
/// NAT64 and 6to4 IPv6 addresses.
public enum WebhookAddressPolicy {
  /// True for a public unicast address: 4 bytes (IPv4) or 16 (IPv6).
  public static func isPublic(_ address: [UInt8]) -> Bool {
    switch address.count {
    case 4: return isPublicIPv4(address)
    case 16: return isPublicIPv6(address)
    default: return false
    }
  }

  static func isPublicIPv4(_ a: [UInt8]) -> Bool {
    switch (a[0], a[1], a[2]) {
    case (0, _, _), (10, _, _), (127, _, _): return false
    case (100, 64...127, _): return false  // shared address space (CGNAT)
    case (169, 254, _): return false  // link-local, metadata services
    case (172, 16...31, _): return false
    case (192, 0, 0), (192, 0, 2), (192, 88, 99): return false
    case (192, 168, _): return false
    case (198, 18...19, _), (198, 51, 100), (203, 0, 113): return false
    case (224...255, _, _): return false  // multicast, reserved, broadcast
    default: return true
    }
  }

  static func isPublicIPv6(_ a: [UInt8]) -> Bool {
    let zeroPrefix = a[0..<10].allSatisfy { $0 == 0 }
    if zeroPrefix && a[10] == 0xff && a[11] == 0xff { return isPublicIPv4(Array(a[12..<16])) }  // IPv4-mapped
    if zeroPrefix && a[10] == 0 && a[11] == 0 { return false }  // ::, ::1, IPv4-compatible (deprecated)
    if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b { return isPublicIPv4(Array(a[12..<16])) }  // NAT64
    if a[0] == 0x20 && a[1] == 0x02 { return isPublicIPv4(Array(a[2..<6])) }  // 6to4
    if a[0] & 0xfe == 0xfc { return false }  // unique local fc00::/7
    if a[0] == 0xfe && a[1] & 0xc0 == 0x80 { return false }  // link-local fe80::/10
    if a[0] == 0xff { return false }  // multicast
    if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8 { return false }  // documentation
    if a[0] == 0x01 && a[1] == 0x00 && a[2...7].allSatisfy({ $0 == 0 }) { return false }  // discard 100::/64
    return true
  }
}
