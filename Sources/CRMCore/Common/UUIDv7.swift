public import Foundation

extension UUID {
  /// A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made this way
  /// sort by creation time, which keeps B-tree inserts at the right edge of the index.
  public static func v7(at timestamp: Timestamp = .now) -> UUID {
    var generator = SystemRandomNumberGenerator()
    let milliseconds = UInt64(max(0, timestamp.microsecondsSinceEpoch / 1000))
    var bytes = [UInt8](repeating: 0, count: 16)
    for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
    let random = generator.next() as UInt64
    let random2 = generator.next() as UInt64
    for index in 6..<16 {
      let source = index < 14 ? random >> (8 * (index - 6)) : random2 >> (8 * (index - 14))
      bytes[index] = UInt8(truncatingIfNeeded: source)
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x70
    bytes[8] = (bytes[8] & 0x3f) | 0x80
    return UUID(
      uuid: (
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
      ))
  }

  /// The canonical lower-case text form used in the API (formatted by hand: this is on every
  /// response's hot path, and Foundation's `uuidString` goes through `snprintf`).
  public var lowercasedString: String {
    let digits: StaticString = "0123456789abcdef"
    return withUnsafeBytes(of: uuid) { bytes in
      String(unsafeUninitializedCapacity: 36) { buffer in
        var out = 0
        for (index, byte) in bytes.enumerated() {
          if index == 4 || index == 6 || index == 8 || index == 10 {
            buffer[out] = UInt8(ascii: "-")
            out += 1
          }
          buffer[out] = digits.utf8Start[Int(byte >> 4)]
          buffer[out + 1] = digits.utf8Start[Int(byte & 0x0f)]
          out += 2
        }
        return out
      }
    }
  }

  /// Parses the canonical 36-character form, either case; `nil` for anything else.
  public init?(canonical text: String) {
    var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var copy = text
    let parsed = copy.withUTF8 { utf8 -> Bool in
      guard utf8.count == 36 else { return false }
      return withUnsafeMutableBytes(of: &bytes) { out -> Bool in
        var index = 0
        var position = 0
        func nibble(_ character: UInt8) -> UInt8? {
          switch character {
          case 48...57: return character - 48
          case 97...102: return character - 87
          case 65...70: return character - 55
          default: return nil
          }
        }
        while position < 36 {
          if position == 8 || position == 13 || position == 18 || position == 23 {
            guard utf8[position] == UInt8(ascii: "-") else { return false }
            position += 1
            continue
          }
          guard let high = nibble(utf8[position]), let low = nibble(utf8[position + 1]) else { return false }
          out[index] = high << 4 | low
          index += 1
          position += 2
        }
        return true
      }
    }
    guard parsed else { return nil }
    self.init(uuid: bytes)
  }
}
