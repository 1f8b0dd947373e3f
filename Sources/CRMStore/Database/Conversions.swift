public import CRMCore
import Foundation
public import LibPQ

extension Timestamp: PostgresEncodable, PostgresDecodable {
  /// The `timestamptz` text form.
  public var postgresText: String? { PostgresTimestamp(microsecondsSinceEpoch: microsecondsSinceEpoch).postgresText }

  /// Parses the `timestamptz` text form.
  public init(postgresText: String) throws {
    self.init(microsecondsSinceEpoch: try PostgresTimestamp(postgresText: postgresText).microsecondsSinceEpoch)
  }
}

/// JSON helpers for the jsonb columns (addresses, contact channels).
enum StoredJSON {
  static let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys]
    return encoder
  }()

  static let decoder: JSONDecoder = {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return decoder
  }()

  /// A value as jsonb text, or `nil`.
  static func encode<T: Encodable>(_ value: T?) -> PostgresJSON? {
    guard let value, let data = try? encoder.encode(value) else { return nil }
    return PostgresJSON(String(decoding: data, as: UTF8.self))
  }

  /// A jsonb column decoded, or `nil` for NULL.
  static func decode<T: Decodable>(_ type: T.Type, from json: PostgresJSON?) throws -> T? {
    guard let json else { return nil }
    return try decoder.decode(T.self, from: Data(json.text.utf8))
  }
}

extension PostalAddress {
  /// The jsonb form, or `nil` for no address.
  var storedJSON: PostgresJSON? { StoredJSON.encode(self) }
}

/// How a person's emails and phones are stored in their jsonb columns (contacts and leads alike).
struct StoredChannel: Codable {
  var value: String
  var label: String
  var primary: Bool

  /// Emails as jsonb.
  static func json(_ emails: [ContactEmail]) -> PostgresJSON? {
    json(emails.map { StoredChannel(value: $0.address, label: $0.label, primary: $0.isPrimary) })
  }

  /// Phones as jsonb.
  static func json(_ phones: [ContactPhone]) -> PostgresJSON? {
    json(phones.map { StoredChannel(value: $0.number, label: $0.label, primary: $0.isPrimary) })
  }

  /// Channels as jsonb, as `JSONEncoder` would write them (sorted keys) but without its cost: imports
  /// write one list per row, and `JSONEncoder` was ~6% of crmd's CPU there.
  private static func json(_ channels: [StoredChannel]) -> PostgresJSON {
    let array = JSONValue.array(
      channels.map { .object([("label", .string($0.label)), ("primary", .bool($0.primary)), ("value", .string($0.value))]) })
    return PostgresJSON(array.rendered)
  }

  /// Emails from a jsonb column.
  static func emails(_ json: PostgresJSON?) throws -> [ContactEmail] {
    (try StoredJSON.decode([StoredChannel].self, from: json) ?? []).map {
      ContactEmail(address: $0.value, label: $0.label, isPrimary: $0.primary)
    }
  }

  /// Phones from a jsonb column.
  static func phones(_ json: PostgresJSON?) throws -> [ContactPhone] {
    (try StoredJSON.decode([StoredChannel].self, from: json) ?? []).map {
      ContactPhone(number: $0.value, label: $0.label, isPrimary: $0.primary)
    }
  }
}

extension CalendarDate: PostgresEncodable, PostgresDecodable {
  /// The `date` text form, `YYYY-MM-DD` (DateStyle ISO).
  public var postgresText: String? { description }

  /// Parses the `date` text form.
  public init(postgresText: String) throws {
    guard let date = CalendarDate(postgresText) else {
      throw PostgresError(kind: .decoding, serverMessage: "cannot decode CalendarDate")
    }
    self = date
  }
}

/// A text value that may be SQL NULL, for arrays whose elements may be (`[NullableText]` binds as
/// `{"a",NULL}`).
struct NullableText: PostgresEncodable {
  var text: String?

  init(_ text: String?) { self.text = text }

  var postgresText: String? { text }
}

extension PostgresConnection {
  /// Runs `body` inside a savepoint of the current transaction: when it throws, what it wrote is
  /// rolled back and the transaction goes on (one bad fact of an import batch does not undo the rest).
  func inSavepoint<T>(_ body: () throws -> T) throws -> T {
    try query("SAVEPOINT crm_fact")
    do {
      let value = try body()
      try query("RELEASE SAVEPOINT crm_fact")
      return value
    } catch {
      try query("ROLLBACK TO SAVEPOINT crm_fact")
      try query("RELEASE SAVEPOINT crm_fact")
      throw error
    }
  }
}
