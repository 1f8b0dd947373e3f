import Foundation

/// A website as entered, plus the domain derived from it (lower case, no `www.`, no port or path).
public struct Website: Sendable, Hashable {
  /// The URL as the user gave it, trimmed; `https://` is added when no scheme was given.
  public let url: String
  /// The host without `www.`, e.g. `example.com`.
  public let domain: String

  /// Parses a URL or bare host; `nil` when no valid host name can be found.
  public init?(_ text: String) {
    let trimmed = text.trimmingWhitespace()
    guard !trimmed.isEmpty, !trimmed.contains(where: { $0.isWhitespace }) else { return nil }
    var rest = Substring(trimmed)
    var scheme = "https://"
    if let range = rest.range(of: "://") {
      let given = rest[..<range.lowerBound].lowercased()
      guard given == "http" || given == "https" else { return nil }
      scheme = given + "://"
      rest = rest[range.upperBound...]
    }
    let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
    var host = rest[..<hostEnd].lowercased()
    if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
    if let colon = host.lastIndex(of: ":") {
      guard host[host.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
      host = String(host[..<colon])
    }
    if host.hasSuffix(".") { host.removeLast() }
    guard EmailAddress.isValidDomain(Substring(host)) else { return nil }
    domain = host.hasPrefix("www.") ? String(host.dropFirst(4)) : host
    url = scheme + rest
  }
}
