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
