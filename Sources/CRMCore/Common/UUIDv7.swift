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

  /// The canonical lower-case text form used in the API.
  public var lowercasedString: String { uuidString.lowercased() }
}
