public import Foundation

/// A Swift value that can be sent to PostgreSQL as a text-format bind parameter.
public protocol PostgresEncodable: Sendable {
  /// The value in PostgreSQL's text input format; `nil` sends SQL NULL.
  var postgresText: String? { get }
}

/// A Swift value that can be read from PostgreSQL's text output format.
public protocol PostgresDecodable {
  /// Parses the server's text form; throws ``PostgresError`` with kind `.decoding` when it cannot.
  init(postgresText: String) throws
  /// The value for SQL NULL; throws for non-optional types.
  static func postgresNull() throws -> Self
}

extension PostgresDecodable {
  /// Non-optional types cannot hold NULL.
  public static func postgresNull() throws -> Self {
    throw PostgresError(kind: .decoding, serverMessage: "unexpected NULL for \(Self.self)")
  }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
  /// Decodes the wrapped type.
  public init(postgresText: String) throws { self = .some(try Wrapped(postgresText: postgresText)) }
  /// NULL is `nil`.
  public static func postgresNull() throws -> Self { nil }
}

func decodingError<T>(_ type: T.Type) -> PostgresError {
  PostgresError(kind: .decoding, serverMessage: "cannot decode \(T.self)")
}

extension String: PostgresEncodable, PostgresDecodable {
  /// The string itself.
  public var postgresText: String? { self }
  /// The text itself.
  public init(postgresText: String) { self = postgresText }
}

extension Substring: PostgresEncodable {
  /// The substring as a string.
  public var postgresText: String? { String(self) }
}

extension Int: PostgresEncodable, PostgresDecodable {
  /// Decimal digits.
  public var postgresText: String? { String(self) }
  /// Parses decimal digits.
  public init(postgresText: String) throws {
    guard let value = Int(postgresText) else { throw decodingError(Int.self) }
    self = value
  }
}

extension Int64: PostgresEncodable, PostgresDecodable {
  /// Decimal digits.
  public var postgresText: String? { String(self) }
  /// Parses decimal digits.
  public init(postgresText: String) throws {
    guard let value = Int64(postgresText) else { throw decodingError(Int64.self) }
    self = value
  }
}

extension Int32: PostgresEncodable, PostgresDecodable {
  /// Decimal digits.
  public var postgresText: String? { String(self) }
  /// Parses decimal digits.
  public init(postgresText: String) throws {
    guard let value = Int32(postgresText) else { throw decodingError(Int32.self) }
    self = value
  }
}

extension Double: PostgresEncodable, PostgresDecodable {
  /// Shortest round-tripping text; infinities and NaN as PostgreSQL spells them.
  public var postgresText: String? {
    if isNaN { return "NaN" }
    if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
    return String(self)
  }
  /// Parses PostgreSQL's float output.
  public init(postgresText: String) throws {
    switch postgresText {
    case "NaN": self = .nan
    case "Infinity": self = .infinity
    case "-Infinity": self = -.infinity
    default:
      guard let value = Double(postgresText) else { throw decodingError(Double.self) }
      self = value
    }
  }
}

extension Bool: PostgresEncodable, PostgresDecodable {
  /// `t` or `f`.
  public var postgresText: String? { self ? "t" : "f" }
  /// Parses `t` / `f`.
  public init(postgresText: String) throws {
    switch postgresText {
    case "t", "true": self = true
    case "f", "false": self = false
    default: throw decodingError(Bool.self)
    }
  }
}

extension UUID: PostgresEncodable, PostgresDecodable {
  /// The canonical lower-case form (formatted by hand: Foundation's goes through `snprintf`).
  public var postgresText: String? {
    let hex: StaticString = "0123456789abcdef"
    return withUnsafeBytes(of: uuid) { bytes in
      String(unsafeUninitializedCapacity: 36) { buffer in
        var out = 0
        for (index, byte) in bytes.enumerated() {
          if index == 4 || index == 6 || index == 8 || index == 10 {
            buffer[out] = UInt8(ascii: "-")
            out += 1
          }
          buffer[out] = hex.utf8Start[Int(byte >> 4)]
          buffer[out + 1] = hex.utf8Start[Int(byte & 0x0f)]
          out += 2
        }
        return out
      }
    }
  }

  /// Parses the canonical form as PostgreSQL prints it (by hand: Foundation's goes through `sscanf`).
  public init(postgresText: String) throws {
    var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var text = postgresText
    let parsed = text.withUTF8 { utf8 -> Bool in
      guard utf8.count == 36 else { return false }
      return withUnsafeMutableBytes(of: &bytes) { out -> Bool in
        var index = 0
        var position = 0
        while position < 36 {
          if position == 8 || position == 13 || position == 18 || position == 23 {
            guard utf8[position] == UInt8(ascii: "-") else { return false }
            position += 1
            continue
          }
          guard let high = hexValue(utf8[position]), let low = hexValue(utf8[position + 1]) else { return false }
          out[index] = high << 4 | low
          index += 1
          position += 2
        }
        return true
      }
    }
    guard parsed else { throw decodingError(UUID.self) }
    self = UUID(uuid: bytes)
  }
}

/// The value of one hex digit, or `nil`.
@inline(__always)
func hexValue(_ character: UInt8) -> UInt8? {
  switch character {
  case 48...57: return character - 48
  case 97...102: return character - 87
  case 65...70: return character - 55
  default: return nil
  }
}

/// A `timestamptz` with PostgreSQL's own precision (microseconds), so that a value read and written
/// back compares equal, which keyset pagination relies on. `Date` would round.
public struct PostgresTimestamp: Sendable, Hashable, Comparable, PostgresEncodable, PostgresDecodable {
  /// Microseconds since 1970-01-01T00:00:00Z.
  public var microsecondsSinceEpoch: Int64

  /// A timestamp from microseconds since the Unix epoch.
  public init(microsecondsSinceEpoch: Int64) { self.microsecondsSinceEpoch = microsecondsSinceEpoch }

  /// Orders by time.
  public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch }

  /// ISO 8601 in UTC with microseconds, e.g. `2026-11-24 07:47:29.123456+00`.
  public var postgresText: String? {
    let micros = microsecondsSinceEpoch
    var seconds = micros / 1_000_000
    var fraction = micros % 1_000_000
    if fraction < 0 {
      fraction += 1_000_000
      seconds -= 1
    }
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    let (year, month, day) = Self.civil(fromDays: days)
    let hour = secondOfDay / 3600
    let minute = (secondOfDay % 3600) / 60
    let second = secondOfDay % 60
    func pad(_ value: Int64, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return
      "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(fraction, 6))+00"
  }

  /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]` as the server prints it with `DateStyle=ISO`.
  public init(postgresText text: String) throws {
    let bytes = Array(text.utf8)
    guard bytes.count >= 19 else { throw decodingError(PostgresTimestamp.self) }
    func number(_ range: Range<Int>) throws -> Int64 {
      var value: Int64 = 0
      for index in range {
        let byte = bytes[index]
        guard byte >= 48, byte <= 57 else { throw decodingError(PostgresTimestamp.self) }
        value = value * 10 + Int64(byte - 48)
      }
      return value
    }
    let year = try number(0..<4)
    let month = try number(5..<7)
    let day = try number(8..<10)
    let hour = try number(11..<13)
    let minute = try number(14..<16)
    let second = try number(17..<19)
    var index = 19
    var micros: Int64 = 0
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      var digits = 0
      while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
        if digits < 6 { micros = micros * 10 + Int64(bytes[index] - 48) }
        digits += 1
        index += 1
      }
      for _ in digits..<max(digits, 6) { micros *= 10 }
    }
    var offsetSeconds: Int64 = 0
    if index < bytes.count {
      let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
      index += 1
      let offsetHours = try number(index..<min(index + 2, bytes.count))
      index += 2
      var offsetMinutes: Int64 = 0
      if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
        offsetMinutes = try number((index + 1)..<min(index + 3, bytes.count))
      }
      offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
    }
    let days = Self.days(fromCivilYear: year, month: month, day: day)
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
    microsecondsSinceEpoch = seconds * 1_000_000 + micros
  }

  /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
  static func days(fromCivilYear year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  /// The inverse of ``days(fromCivilYear:month:day:)``.
  static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}

/// A `jsonb` or `json` value carried as its JSON text. Bind it to a parameter cast with `::jsonb`.
public struct PostgresJSON: Sendable, Hashable, PostgresEncodable, PostgresDecodable {
  /// The JSON document.
  public var text: String
  /// Wraps JSON text (not checked here; the server rejects malformed JSON with 22P02).
  public init(_ text: String) { self.text = text }
  /// The JSON text.
  public var postgresText: String? { text }
  /// The JSON text as the server printed it.
  public init(postgresText: String) { text = postgresText }
}

/// A `bytea` value, in PostgreSQL's hex format.
public struct PostgresBytes: Sendable, Hashable, PostgresEncodable, PostgresDecodable {
  /// The bytes.
  public var bytes: [UInt8]
  /// Wraps bytes.
  public init(_ bytes: [UInt8]) { self.bytes = bytes }
  /// `\x` followed by two hex digits per byte.
  public var postgresText: String? {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
    out.reserveCapacity(2 + bytes.count * 2)
    for byte in bytes {
      out.append(hex[Int(byte >> 4)])
      out.append(hex[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
  }
  /// Parses the hex format.
  public init(postgresText: String) throws {
    let utf8 = Array(postgresText.utf8)
    guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
      throw decodingError(PostgresBytes.self)
    }
    func nibble(_ c: UInt8) throws -> UInt8 {
      guard let value = hexValue(c) else { throw decodingError(PostgresBytes.self) }
      return value
    }
    var result: [UInt8] = []
    result.reserveCapacity((utf8.count - 2) / 2)
    var index = 2
    while index < utf8.count {
      result.append(try nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
      index += 2
    }
    bytes = result
  }
}

extension Array: PostgresEncodable where Element: PostgresEncodable {
  /// A one-dimensional array literal, every element quoted: `{"a","b\"c",NULL}`.
  ///
  /// Built as UTF-8 bytes: `"` and `\` are ASCII, never part of a multi-byte character, so escaping
  /// byte by byte is exact, and an element without them is copied whole. (Appending Unicode scalars
  /// to a `String` one by one was a third of crmd's CPU in a bulk import, `perf`.)
  public var postgresText: String? {
    let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count * 12 + 2)
    bytes.append(UInt8(ascii: "{"))
    for (index, element) in self.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      guard var text = element.postgresText else {
        bytes.append(contentsOf: "NULL".utf8)
        continue
      }
      bytes.append(quote)
      text.withUTF8 { utf8 in
        if !utf8.contains(where: { $0 == quote || $0 == backslash }) {
          bytes.append(contentsOf: utf8)
          return
        }
        for byte in utf8 {
          if byte == quote || byte == backslash { bytes.append(backslash) }
          bytes.append(byte)
        }
      }
      bytes.append(quote)
    }
    bytes.append(UInt8(ascii: "}"))
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
  /// Parses a one-dimensional array literal, quoted or not.
  public init(postgresText: String) throws {
    self = try PostgresArrayParser.parse(postgresText).map { item in
      guard let item else { return try Element.postgresNull() }
      return try Element(postgresText: item)
    }
  }
}

/// Splits a one-dimensional array literal into its elements' texts (`nil` for NULL).
enum PostgresArrayParser {
  static func parse(_ text: String) throws -> [String?] {
    var scalars = Substring(text).unicodeScalars[...]
    guard scalars.first == "{", scalars.last == "}" else { throw decodingError([String].self) }
    scalars = scalars.dropFirst().dropLast()
    var items: [String?] = []
    if scalars.isEmpty { return items }
    var current = String.UnicodeScalarView()
    var quoted = false
    var wasQuoted = false
    var iterator = scalars.makeIterator()
    while let scalar = iterator.next() {
      if quoted {
        if scalar == "\\" {
          if let next = iterator.next() { current.append(next) }
        } else if scalar == "\"" {
          quoted = false
        } else {
          current.append(scalar)
        }
      } else if scalar == "\"" {
        quoted = true
        wasQuoted = true
      } else if scalar == "," {
        let item = String(current)
        items.append(!wasQuoted && item == "NULL" ? nil : item)
        current = String.UnicodeScalarView()
        wasQuoted = false
      } else {
        current.append(scalar)
      }
    }
    let item = String(current)
    items.append(!wasQuoted && item == "NULL" ? nil : item)
    return items
  }
}
