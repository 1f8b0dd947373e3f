import Foundation

/// What `CaptureLead` reads from a raw RFC 5322 message: the sender, the subject, a plain-text body,
/// the Message-ID and the date.
///
/// The parser is forgiving where mail is messy (LF or CRLF line ends, folded headers, RFC 2047 encoded
/// words in UTF-8, Latin-1 or ASCII, quoted-printable and base64 parts, nested multiparts, HTML-only
/// mail) and strict only where a capture needs it: a message without a usable `From` address is
/// refused, because there is nobody to capture.
public struct InboundEmail: Sendable, Hashable {
  /// The sender's display name, decoded; empty when the `From` header had none.
  public var senderName: String
  /// The sender's address as written (validated by the caller).
  public var senderAddress: String
  public var subject: String
  /// The first `text/plain` part, else the first `text/html` part without its markup.
  public var body: String
  /// The Message-ID without its angle brackets; empty when the message had none.
  public var messageID: String
  /// The `Date` header, when it parses.
  public var date: Timestamp?
  /// The `In-Reply-To` Message-ID, without angle brackets; empty when absent.
  public var inReplyTo: String
  /// The `References` Message-IDs, oldest first as the header lists them, without angle brackets.
  public var references: [String]
  /// The addresses the message was sent to (`To`, `Cc`, `Delivered-To`), lower-cased: a
  /// plus-address there (`support+1042@…`) names a ticket.
  public var recipients: [String]

  /// Parses a message; throws `INVALID_ARGUMENT` on `field` when it has no header block or no sender.
  public init(raw: [UInt8], field: String) throws(CRMError) {
    let (headerBytes, bodyBytes) = Self.split(raw)
    let headers = Self.headers(headerBytes)
    guard !headers.isEmpty else { throw .invalid(field, "is not an RFC 5322 message: no header block", reason: "INVALID_FORMAT") }
    let from = headers["from"].map(Self.decodeWords) ?? ""
    guard let sender = Self.mailbox(from) else {
      throw .invalid(field, "has no sender address in its From header", reason: "INVALID_FORMAT")
    }
    senderName = sender.name
    senderAddress = sender.address
    subject = headers["subject"].map(Self.decodeWords)?.trimmingWhitespace() ?? ""
    messageID = (headers["message-id"] ?? "").trimmingWhitespace().trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
    date = headers["date"].flatMap(Self.date)
    inReplyTo = Self.messageIDs(headers["in-reply-to"] ?? "").first ?? ""
    references = Self.messageIDs(headers["references"] ?? "")
    recipients = ["to", "cc", "delivered-to"].flatMap { Self.addresses(headers[$0] ?? "") }
    body = Self.text(of: Part(headers: headers, body: bodyBytes)) ?? ""
  }

  /// The `<id>` tokens of a Message-ID list header (`References`, `In-Reply-To`), in order.
  static func messageIDs(_ value: String) -> [String] {
    var ids: [String] = []
    var current: String?
    for character in value {
      switch character {
      case "<": current = ""
      case ">":
        if let id = current?.trimmingWhitespace(), !id.isEmpty, id.count <= 998 { ids.append(id) }
        current = nil
      default: current?.append(character)
      }
      if ids.count >= 100 { break }
    }
    return ids
  }

  /// The addresses of an address-list header (`To`, `Cc`), lower-cased.
  static func addresses(_ value: String) -> [String] {
    var out: [String] = []
    var current = ""
    var inQuotes = false
    for character in value + "," {
      if character == "\"" { inQuotes.toggle() }
      if character == "," && !inQuotes {
        if let mailbox = mailbox(current) { out.append(mailbox.address.lowercased()) }
        current = ""
      } else {
        current.append(character)
      }
      if out.count >= 100 { break }
    }
    return out
  }

  // MARK: - Structure

  struct Part {
    var headers: [String: String]
    var body: ArraySlice<UInt8>
  }

  /// Header bytes and body bytes, split at the first empty line (CRLF or LF).
  static func split(_ raw: [UInt8]) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
    var index = raw.startIndex
    var lineStart = index
    while index < raw.endIndex {
      if raw[index] == 0x0A {
        let line = raw[lineStart..<index]
        if line.isEmpty || line == [0x0D] { return (raw[raw.startIndex..<lineStart], raw[(index + 1)...]) }
        lineStart = index + 1
      }
      index += 1
    }
    return (raw[...], [])
  }

  /// Unfolded headers by lower-cased name; the first of a repeated header wins.
  static func headers(_ bytes: ArraySlice<UInt8>) -> [String: String] {
    let text = String(decoding: bytes, as: UTF8.self)
    var headers: [String: String] = [:]
    var name: String?
    var value = ""
    func flush() {
      if let name, headers[name] == nil { headers[name] = value.trimmingWhitespace() }
    }
    for rawLine in lines(text) {
      let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
      if let first = line.first, first == " " || first == "\t" {
        if name != nil { value += " " + line.trimmingWhitespace() }
        continue
      }
      flush()
      name = nil
      guard let colon = line.firstIndex(of: ":") else { continue }
      let candidate = line[..<colon]
      guard !candidate.isEmpty, candidate.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else { continue }
      name = candidate.lowercased()
      value = String(line[line.index(after: colon)...])
    }
    flush()
    return headers
  }

  /// The lines of `text`, split at LF or CRLF (a Swift `Character` holds CRLF as one grapheme).
  static func lines(_ text: String) -> [Substring] {
    text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
  }

  /// The media type (lower case) and its parameters from a `Content-Type` value.
  static func contentType(_ value: String?) -> (type: String, parameters: [String: String]) {
    guard let value else { return ("text/plain", [:]) }
    var pieces = value.split(separator: ";").map { $0.trimmingWhitespace() }
    let type = pieces.isEmpty ? "text/plain" : pieces.removeFirst().lowercased()
    var parameters: [String: String] = [:]
    for piece in pieces {
      guard let equals = piece.firstIndex(of: "=") else { continue }
      let key = piece[..<equals].trimmingWhitespace().lowercased()
      var parameter = piece[piece.index(after: equals)...].trimmingWhitespace()
      if parameter.count >= 2, parameter.hasPrefix("\""), parameter.hasSuffix("\"") {
        parameter = String(parameter.dropFirst().dropLast())
      }
      parameters[key] = parameter
    }
    return (type, parameters)
  }

  /// The readable text of a part: plain text first, HTML stripped of markup second, searched depth
  /// first through multiparts.
  static func text(of part: Part, depth: Int = 0) -> String? {
    let (type, parameters) = contentType(part.headers["content-type"])
    if type.hasPrefix("multipart/") {
      guard depth < 8, let boundary = parameters["boundary"], !boundary.isEmpty else { return nil }
      let parts = split(part.body, boundary: boundary).map { bytes -> Part in
        let (head, body) = Self.split(Array(bytes))
        return Part(headers: headers(head), body: body)
      }
      for wanted in ["text/plain", "text/html"] {
        for child in parts {
          let childType = contentType(child.headers["content-type"]).type
          if childType.hasPrefix("multipart/") || childType == wanted,
            let text = text(of: child, depth: depth + 1, only: wanted)
          {
            return text
          }
        }
      }
      return nil
    }
    guard type == "text/plain" || type == "text/html" else { return nil }
    let decoded = decodeTransfer(part.body, encoding: part.headers["content-transfer-encoding"])
    let text = decodeCharset(decoded, charset: parameters["charset"])
    return type == "text/html" ? stripMarkup(text) : text
  }

  private static func text(of part: Part, depth: Int, only wanted: String) -> String? {
    let type = contentType(part.headers["content-type"]).type
    if type.hasPrefix("multipart/") { return text(of: part, depth: depth) }
    return type == wanted ? text(of: part, depth: depth) : nil
  }

  /// The bodies between `--boundary` delimiter lines, up to the closing `--boundary--`.
  static func split(_ body: ArraySlice<UInt8>, boundary: String) -> [ArraySlice<UInt8>] {
    let text = String(decoding: body, as: UTF8.self)
    var parts: [ArraySlice<UInt8>] = []
    var current: [Substring]?
    for rawLine in lines(text) {
      let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
      let trimmed = line.trimmingWhitespace()
      if trimmed == "--" + boundary + "--" {
        if let current { parts.append(ArraySlice(current.joined(separator: "\n").utf8)) }
        return parts
      }
      if trimmed == "--" + boundary {
        if let current { parts.append(ArraySlice(current.joined(separator: "\n").utf8)) }
        current = []
        continue
      }
      current?.append(line)
    }
    if let current { parts.append(ArraySlice(current.joined(separator: "\n").utf8)) }
    return parts
  }

  // MARK: - Decoding

  /// Undoes base64 or quoted-printable; other encodings (7bit, 8bit, binary) pass through.
  static func decodeTransfer(_ body: ArraySlice<UInt8>, encoding: String?) -> [UInt8] {
    switch encoding?.trimmingWhitespace().lowercased() {
    case "base64":
      let compact = body.filter { !($0 == 0x0A || $0 == 0x0D || $0 == 0x20 || $0 == 0x09) }
      return Data(base64Encoded: Data(compact), options: .ignoreUnknownCharacters).map { [UInt8]($0) } ?? Array(body)
    case "quoted-printable":
      return quotedPrintable(body, underscoreIsSpace: false)
    default:
      return Array(body)
    }
  }

  /// Quoted-printable (RFC 2045) and, with `underscoreIsSpace`, the Q encoding of RFC 2047.
  static func quotedPrintable(_ bytes: ArraySlice<UInt8>, underscoreIsSpace: Bool) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = bytes.startIndex
    while index < bytes.endIndex {
      let byte = bytes[index]
      if byte == UInt8(ascii: "=") {
        let next = bytes.index(after: index)
        if next < bytes.endIndex, bytes[next] == 0x0A {  // soft line break (LF)
          index = bytes.index(after: next)
          continue
        }
        if next < bytes.endIndex, bytes[next] == 0x0D {  // soft line break (CRLF)
          index = min(bytes.index(next, offsetBy: 2), bytes.endIndex)
          continue
        }
        if bytes.distance(from: next, to: bytes.endIndex) >= 2, let high = hexValue(bytes[next]),
          let low = hexValue(bytes[next + 1])
        {
          out.append(high << 4 | low)
          index = next + 2
          continue
        }
      }
      out.append(underscoreIsSpace && byte == UInt8(ascii: "_") ? 0x20 : byte)
      index += 1
    }
    return out
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    default: nil
    }
  }

  /// Bytes as text in `charset`: UTF-8 and ASCII as UTF-8 (invalid bytes replaced), Latin-1 and
  /// Windows-1252 byte for byte, anything else as UTF-8.
  static func decodeCharset(_ bytes: [UInt8], charset: String?) -> String {
    switch charset?.lowercased() {
    case "iso-8859-1", "latin1", "iso_8859-1", "windows-1252", "cp1252":
      String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    default:
      String(decoding: bytes, as: UTF8.self)
    }
  }

  /// A header value with its RFC 2047 encoded words (`=?charset?B|Q?text?=`) decoded; white space
  /// between two adjacent encoded words is dropped, as the RFC says.
  static func decodeWords(_ value: String) -> String {
    guard value.contains("=?") else { return value }
    var out = ""
    var rest = Substring(value)
    var pendingSpace = ""
    var lastWasEncoded = false
    while let start = rest.range(of: "=?") {
      let before = rest[..<start.lowerBound]
      let afterStart = rest[start.upperBound...]
      let pieces = afterStart.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
      guard pieces.count == 4, pieces[3].hasPrefix("="),
        let decoded = decodeWord(charset: String(pieces[0]), encoding: String(pieces[1]), text: pieces[2])
      else {
        out += pendingSpace + before + "=?"
        pendingSpace = ""
        lastWasEncoded = false
        rest = afterStart
        continue
      }
      if lastWasEncoded, before.allSatisfy(\.isWhitespace) {
        out += decoded
      } else {
        out += pendingSpace + before + decoded
      }
      pendingSpace = ""
      lastWasEncoded = true
      rest = pieces[3].dropFirst()
    }
    return out + pendingSpace + rest
  }

  private static func decodeWord(charset: String, encoding: String, text: Substring) -> String? {
    let bytes: [UInt8]
    switch encoding.uppercased() {
    case "B":
      guard let data = Data(base64Encoded: String(text), options: .ignoreUnknownCharacters) else { return nil }
      bytes = [UInt8](data)
    case "Q":
      bytes = quotedPrintable(ArraySlice(text.utf8), underscoreIsSpace: true)
    default:
      return nil
    }
    let bare = charset.split(separator: "*").first.map(String.init) ?? charset  // RFC 2231 language suffix
    return decodeCharset(bytes, charset: bare)
  }

  /// The display name and address of the first mailbox in an address header.
  static func mailbox(_ value: String) -> (name: String, address: String)? {
    let first = firstAddress(value)
    if let open = first.lastIndex(of: "<"), let close = first[open...].firstIndex(of: ">") {
      let address = first[first.index(after: open)..<close].trimmingWhitespace()
      var name = first[..<open].trimmingWhitespace()
      if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
        name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
      }
      return address.contains("@") ? (name, address) : nil
    }
    // `addr@example.com (Name)` or a bare address.
    var address = first
    var name = ""
    if let open = first.firstIndex(of: "("), let close = first.lastIndex(of: ")"), open < close {
      name = first[first.index(after: open)..<close].trimmingWhitespace()
      address = String(first[..<open])
    }
    address = address.trimmingWhitespace()
    return address.contains("@") && !address.contains(" ") ? (name, address) : nil
  }

  /// The first entry of an address list: up to the first comma outside quotes and angle brackets.
  private static func firstAddress(_ value: String) -> String {
    var inQuotes = false
    var inAngle = false
    for index in value.indices {
      switch value[index] {
      case "\"": inQuotes.toggle()
      case "<" where !inQuotes: inAngle = true
      case ">" where !inQuotes: inAngle = false
      case "," where !inQuotes && !inAngle: return String(value[..<index])
      default: break
      }
    }
    return value
  }

  /// Text of an HTML part: tags dropped, block ends as line breaks, common entities decoded.
  static func stripMarkup(_ html: String) -> String {
    var out = ""
    var inTag = false
    var tag = ""
    var skipping = false
    for character in html {
      if inTag {
        if character == ">" {
          inTag = false
          let name = tag.lowercased().split(whereSeparator: { $0 == " " || $0 == "/" || $0 == "\n" }).first.map(String.init) ?? ""
          if name == "style" || name == "script" { skipping = true }
          if tag.lowercased().hasPrefix("/style") || tag.lowercased().hasPrefix("/script") { skipping = false }
          if ["br", "p", "/p", "div", "/div", "tr", "li", "/h1", "/h2", "/h3"].contains(name) || tag.lowercased().hasPrefix("/p")
            || tag.lowercased().hasPrefix("/div")
          {
            out += "\n"
          }
        } else {
          tag.append(character)
        }
        continue
      }
      if character == "<" {
        inTag = true
        tag = ""
        continue
      }
      if !skipping { out.append(character) }
    }
    let entities = ["&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'", "&apos;": "'", "&amp;": "&"]
    for (entity, replacement) in entities { out = out.replacingOccurrences(of: entity, with: replacement) }
    return lines(out).map { $0.trimmingWhitespace() }
      .joined(separator: "\n").replacingOccurrences(of: "\n\n\n", with: "\n\n").trimmingWhitespace()
  }

  /// An RFC 5322 date (`Tue, 1 Jul 2003 10:52:37 +0200`, the weekday optional, obsolete zone names
  /// UT/GMT/Z accepted), or `nil`.
  static func date(_ value: String) -> Timestamp? {
    var text = value
    if let paren = text.firstIndex(of: "(") { text = String(text[..<paren]) }  // trailing comment
    var words = text.replacingOccurrences(of: ",", with: " ").split(separator: " ").map(String.init)
    if let first = words.first, first.count == 3, first.allSatisfy(\.isLetter) { words.removeFirst() }
    guard words.count >= 4, let day = Int(words[0]), var year = Int(words[2]) else { return nil }
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    guard let monthIndex = months.firstIndex(of: words[1].lowercased().prefix(3).description) else { return nil }
    if year < 50 { year += 2000 } else if year < 1000 { year += 1900 }
    let time = words[3].split(separator: ":").compactMap { Int($0) }
    guard time.count >= 2, (0..<24).contains(time[0]), (0..<60).contains(time[1]), (1...31).contains(day) else { return nil }
    var offsetMinutes = 0
    if words.count >= 5 {
      let zone = words[4]
      if let sign = zone.first, sign == "+" || sign == "-", zone.count == 5, let amount = Int(zone.dropFirst()) {
        offsetMinutes = (amount / 100 * 60 + amount % 100) * (sign == "-" ? -1 : 1)
      }
    }
    let seconds = time.count >= 3 ? min(time[2], 60) : 0
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = monthIndex + 1 <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let m = monthIndex + 1
    let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    let epochSeconds = Int64(days) * 86_400 + Int64(time[0] * 3600 + time[1] * 60 + seconds) - Int64(offsetMinutes * 60)
    return Timestamp(microsecondsSinceEpoch: epochSeconds * 1_000_000)
  }
}
