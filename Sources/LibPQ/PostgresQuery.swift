/// A SQL statement whose values travel as bind parameters, never as SQL text.
///
/// String interpolation turns every `\(value)` into the next `$n` placeholder:
///
/// ```swift
/// let query: PostgresQuery = "SELECT name FROM accounts WHERE tenant_id = \(tenant) AND id = \(id)"
/// // sql: SELECT name FROM accounts WHERE tenant_id = $1 AND id = $2
/// ```
///
/// Raw text enters only through ``init(unsafeSQL:)`` or `\(unsafeSQL:)`, for identifiers and fragments
/// chosen by code, never by input. A query may embed another (`\(fragment)`); its placeholders are
/// renumbered.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation {
  enum Part: Sendable, Hashable {
    case sql(String)
    case bind(String?)
  }

  var parts: [Part]

  /// A statement from text chosen by code, with no parameters. Never build `sql` from input.
  public init(unsafeSQL sql: String) {
    parts = [.sql(sql)]
  }

  /// A statement from a literal with no interpolations.
  public init(stringLiteral value: String) {
    parts = [.sql(value)]
  }

  /// A statement built by interpolation.
  public init(stringInterpolation: StringInterpolation) {
    parts = stringInterpolation.parts
  }

  /// The SQL text with `$1…$n` placeholders.
  public var sql: String {
    var text = ""
    var index = 0
    for part in parts {
      switch part {
      case .sql(let fragment): text += fragment
      case .bind:
        index += 1
        text += "$\(index)"
      }
    }
    return text
  }

  /// The bound values in placeholder order, in PostgreSQL's text format; `nil` is SQL NULL.
  public var binds: [String?] {
    parts.compactMap { part in
      if case .bind(let value) = part { return .some(value) }
      return nil
    }
  }

  /// Appends another query, renumbering its placeholders after this one's.
  public mutating func append(_ other: PostgresQuery) {
    parts.append(contentsOf: other.parts)
  }

  /// Appends raw SQL chosen by code (never by input).
  public mutating func append(unsafeSQL sql: String) {
    parts.append(.sql(sql))
  }

  /// Builds a query from literals and bound values.
  public struct StringInterpolation: StringInterpolationProtocol {
    var parts: [Part] = []

    /// Reserves room for the parts.
    public init(literalCapacity: Int, interpolationCount: Int) {
      parts.reserveCapacity(interpolationCount * 2 + 1)
    }

    /// Literal SQL from the source code.
    public mutating func appendLiteral(_ literal: String) {
      parts.append(.sql(literal))
    }

    /// A value, sent as the next bind parameter.
    public mutating func appendInterpolation(_ value: some PostgresEncodable) {
      parts.append(.bind(value.postgresText))
    }

    /// A value that may be absent (SQL NULL).
    public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
      parts.append(.bind(value?.postgresText))
    }

    /// Another query, inlined with its placeholders renumbered.
    public mutating func appendInterpolation(_ fragment: PostgresQuery) {
      parts.append(contentsOf: fragment.parts)
    }

    /// `= $n` when `values` holds one value, else `= ANY($n::type[])`: `WHERE id \(isAnyOf: ids, type: "uuid")`.
    ///
    /// For a statement run often with one value. PostgreSQL keeps a prepared statement's generic plan only
    /// when it does not look costlier than the plans made for the actual values; a generic plan of
    /// `= ANY($n)` assumes ten elements, so for a one-element array it never does, and the statement is
    /// planned again on every call.
    public mutating func appendInterpolation<Value: PostgresEncodable>(isAnyOf values: [Value], type: String) {
      if values.count == 1 {
        parts.append(.sql("= "))
        parts.append(.bind(values[0].postgresText))
      } else {
        parts.append(.sql("= ANY("))
        parts.append(.bind(values.postgresText))
        parts.append(.sql("::\(type)[])"))
      }
    }

    /// Raw SQL chosen by code, such as an identifier from a fixed list. Never pass input here.
    public mutating func appendInterpolation(unsafeSQL sql: String) {
      parts.append(.sql(sql))
    }
  }
}
