import Foundation

/// How an inbound support email finds the ticket it belongs to, in order: our ticket token in the
/// subject (`[#1042]`) or a plus-address (`support+1042@…`); then `In-Reply-To`; then each
/// `References` id, newest first, against the Message-IDs tickets have seen or sent.
public enum TicketThreading {
  /// The ticket number of a `[#1042]` token in the subject, if any (the last one wins: replies quote
  /// the newest).
  public static func number(inSubject subject: String) -> Int64? {
    var found: Int64?
    var rest = Substring(subject)
    while let open = rest.range(of: "[#") {
      let tail = rest[open.upperBound...]
      let digits = tail.prefix { $0.isASCII && $0.isNumber }
      if !digits.isEmpty, digits.count <= 18, tail.dropFirst(digits.count).first == "]" { found = Int64(digits) }
      rest = tail
    }
    return found
  }

  /// The ticket number of a plus-address among `recipients` (`support+1042@…` or `support+t1042@…`).
  public static func number(inRecipients recipients: [String]) -> Int64? {
    for address in recipients {
      guard let at = address.lastIndex(of: "@"), let plus = address[..<at].lastIndex(of: "+") else { continue }
      var tag = address[address.index(after: plus)..<at]
      if tag.hasPrefix("t") { tag = tag.dropFirst() }
      if !tag.isEmpty, tag.count <= 18, tag.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int64(tag) {
        return number
      }
    }
    return nil
  }

  /// The Message-IDs to look up, in order: `In-Reply-To`, then `References` newest first.
  public static func candidates(_ email: InboundEmail) -> [String] {
    var ids: [String] = []
    for id in [email.inReplyTo] + email.references.reversed() where !id.isEmpty && !ids.contains(id) { ids.append(id) }
    return ids
  }

  /// A subject for a new ticket: without reply and forward prefixes ("Re:", "Fwd:", "AW:", "WG:",
  /// "回复:", "转发:"); "(no subject)" when nothing is left.
  public static func cleanSubject(_ subject: String) -> String {
    let prefixes = ["re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "回复:", "回复：", "转发:", "转发："]
    var text = Substring(subject.trimmingWhitespace())
    var changed = true
    while changed {
      changed = false
      for prefix in prefixes where text.lowercased().hasPrefix(prefix) {
        text = text.dropFirst(prefix.count).drop { $0 == " " }
        changed = true
      }
    }
    let cleaned = String(text.unicodeScalars.prefix(255)).trimmingWhitespace()
    return cleaned.isEmpty ? "(no subject)" : cleaned
  }
}
