import CRMTestSupport
import Foundation
import LibPQ
import Testing

@Suite("LibPQ: values round-trip through PostgreSQL")
struct TypeRoundTripTests {
  func connection() throws -> PostgresConnection { try TestDatabase.ownerConnection() }

  @Test(
    "text with SQL metacharacters, quotes, backslashes and emoji comes back byte for byte",
    arguments: [
      "'; DROP TABLE users; --", "O'Brien \"the\" \\ back\\slash", "😀🇨🇳 漢字 עברית", "$1 $2 ?", "tab\tnew\nline", "",
    ])
  func text(value: String) throws {
    let connection = try connection()
    let row = try connection.query("SELECT \(value)::text AS v, length(\(value)::text) AS n")[0]
    #expect(try row.decode("v", as: String.self) == value)
    #expect(try row.decode("n", as: Int.self) == value.unicodeScalars.count)
  }

  @Test("integers, booleans and doubles")
  func numbers() throws {
    let row = try connection().query(
      "SELECT \(Int64.max)::int8 AS big, \(Int32.min)::int4 AS small, \(true)::bool AS yes, \(false)::bool AS no, \(0.1)::float8 AS d, \(Double.infinity)::float8 AS inf"
    )[0]
    #expect(try row.decode("big", as: Int64.self) == .max)
    #expect(try row.decode("small", as: Int32.self) == .min)
    #expect(try row.decode("yes", as: Bool.self))
    #expect(try !row.decode("no", as: Bool.self))
    #expect(try row.decode("d", as: Double.self) == 0.1)
    #expect(try row.decode("inf", as: Double.self) == .infinity)
  }

  @Test("UUIDs, timestamps with microseconds, numerics and JSONB")
  func structured() throws {
    let id = UUID()
    let time = PostgresTimestamp(microsecondsSinceEpoch: 1_795_508_055_109_745)
    let before1970 = PostgresTimestamp(microsecondsSinceEpoch: -123_456_789)
    let row = try connection().query(
      """
      SELECT \(id)::uuid AS id, \(time)::timestamptz AS t, \(before1970)::timestamptz AS old,
             '12345678901234567890.123456789'::numeric AS n, \(PostgresJSON(#"{"a": [1, "x"]}"#))::jsonb AS j,
             '2026-11-24 08:00:00+05:30'::timestamptz AS offset_time
      """)[0]
    #expect(try row.decode("id", as: UUID.self) == id)
    #expect(try row.decode("t", as: PostgresTimestamp.self) == time)
    #expect(try row.decode("old", as: PostgresTimestamp.self) == before1970)
    #expect(try row.decode("n", as: String.self) == "12345678901234567890.123456789")
    #expect(try row.decode("j", as: PostgresJSON.self).text == #"{"a": [1, "x"]}"#)
    #expect(try row.decode("offset_time", as: PostgresTimestamp.self).postgresText == "2026-11-24 02:30:00.000000+00")
  }

  @Test("arrays with NULLs, quotes, commas and braces")
  func arrays() throws {
    let values: [String] = ["plain", "with,comma", "with \"quote\"", "{brace}", "NULL", "back\\slash", ""]
    let row = try connection().query("SELECT \(values)::text[] AS a, ARRAY[1, NULL, 3]::int8[] AS n, '{}'::text[] AS e")[0]
    #expect(try row.decode("a", as: [String].self) == values)
    #expect(try row.decode("n", as: [Int64?].self) == [1, nil, 3])
    #expect(try row.decode("e", as: [String].self) == [])
  }

  @Test("NULL decodes to nil for optionals and throws for non-optionals")
  func nulls() throws {
    let row = try connection().query("SELECT NULL::text AS t, \(String?.none)::int8 AS n")[0]
    #expect(try row.decode("t", as: String?.self) == nil)
    #expect(try row.decode("n", as: Int64?.self) == nil)
    #expect(throws: PostgresError.self) { try row.decode("t", as: String.self) }
  }

  @Test("bytea round-trips")
  func bytes() throws {
    let bytes = PostgresBytes([0, 1, 0x7f, 0x80, 0xff])
    #expect(try connection().query("SELECT \(bytes)::bytea AS b")[0].decode("b", as: PostgresBytes.self) == bytes)
  }

  @Test("a NUL byte in text is refused before it reaches the server")
  func nulByte() throws {
    #expect(throws: PostgresError.self) { try connection().query("SELECT \("a\u{0}b")::text") }
  }

  @Test("a result's contents are equal exactly when its cells are: NULL is not empty, cells do not run together")
  func contents() throws {
    let connection = try TestDatabase.ownerConnection()
    func contents(_ sql: PostgresQuery) throws -> [UInt8] {
      var bytes: [UInt8] = []
      try connection.query(sql).appendContents(to: &bytes)
      return bytes
    }
    let same = try contents("SELECT 'a' AS x, 'bc' AS y UNION ALL SELECT NULL, ''")
    #expect(try contents("SELECT 'a' AS x, 'bc' AS y UNION ALL SELECT NULL, ''") == same)
    #expect(try contents("SELECT 'ab' AS x, 'c' AS y UNION ALL SELECT NULL, ''") != same)
    #expect(try contents("SELECT 'a' AS x, 'bc' AS y UNION ALL SELECT '', ''") != same)
    #expect(try contents("SELECT 'a' AS x, 'bc' AS y") != same)
    #expect(try contents("SELECT 1 AS x WHERE false") != contents("SELECT 1 AS x, 2 AS y WHERE false"))
  }

  @Test("embedded queries renumber their placeholders")
  func fragments() throws {
    let fragment: PostgresQuery = "\(2)::int + \(3)::int"
    let query: PostgresQuery = "SELECT \(1)::int + \(fragment) + \(4)::int AS total"
    #expect(query.sql == "SELECT $1::int + $2::int + $3::int + $4::int AS total")
    #expect(try connection().query(query)[0].decode("total", as: Int.self) == 10)
  }
}

@Suite("LibPQ: errors and COPY")
struct ErrorAndCopyTests {
  @Test("server errors carry the SQLSTATE and constraint but never the bound value")
  func errors() throws {
    let connection = try TestDatabase.ownerConnection()
    try connection.execute(unsafeSQL: "CREATE TEMP TABLE t (id int PRIMARY KEY, email text CONSTRAINT t_email UNIQUE)")
    try connection.query("INSERT INTO t VALUES (1, \("secret@example.com"))")
    do {
      try connection.query("INSERT INTO t VALUES (2, \("secret@example.com"))")
      Issue.record("expected a unique violation")
    } catch let error as PostgresError {
      #expect(error.sqlState == SQLState.uniqueViolation)
      #expect(error.constraint == "t_email")
      #expect(!error.description.contains("secret"))
    }
    do {
      try connection.query("SELECT \("not-a-uuid-secret")::uuid")
      Issue.record("expected invalid text representation")
    } catch let error as PostgresError {
      #expect(error.sqlState == SQLState.invalidTextRepresentation)
      #expect(!error.description.contains("secret"))
    }
  }

  @Test("COPY FROM STDIN loads rows with escapes and NULLs")
  func copy() throws {
    let connection = try TestDatabase.ownerConnection()
    try connection.execute(unsafeSQL: "CREATE TEMP TABLE c (a text, b text)")
    let rows: [[String?]] = (0..<5000).map { ["row \($0)\twith\ttabs\nand\\newlines", $0 % 2 == 0 ? nil : "x"] }
    #expect(try connection.copyIn("COPY c (a, b) FROM STDIN", rows: rows) == 5000)
    let check = try connection.query(
      "SELECT count(*) AS n, count(b) AS b, max(a) FILTER (WHERE a LIKE 'row 1\t%') AS sample FROM c")[0]
    #expect(try check.decode("n", as: Int.self) == 5000)
    #expect(try check.decode("b", as: Int.self) == 2500)
    #expect(try check.decode("sample", as: String.self).contains("\n"))
  }

  @Test("a failed COPY reports the server's error and leaves the connection usable")
  func copyFailure() throws {
    let connection = try TestDatabase.ownerConnection()
    try connection.execute(unsafeSQL: "CREATE TEMP TABLE n (a int)")
    #expect(throws: PostgresError.self) { try connection.copyIn("COPY n (a) FROM STDIN", rows: [["1"], ["not a number"]]) }
    #expect(try connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
  }
}

@Suite("LibPQ: pipeline mode")
struct PipelineTests {
  @Test("statements in one pipeline share one implicit transaction and come back in order")
  func pipeline() throws {
    let connection = try TestDatabase.ownerConnection()
    let results = try connection.pipeline([
      "SELECT set_config('crm.test', \("piped"), true) AS v",
      "SELECT current_setting('crm.test') AS v",
      "SELECT \(42)::int AS v",
    ])
    #expect(try results.map { try $0[0].decode("v", as: String.self) } == ["piped", "piped", "42"])
    // Outside the pipeline's transaction the local setting is gone.
    #expect(try connection.query("SELECT current_setting('crm.test', true) AS v")[0].decode("v", as: String?.self) ?? "" == "")
  }

  @Test("a failing statement aborts the rest, rolls back the ones before, and leaves the connection usable")
  func failure() throws {
    let connection = try TestDatabase.ownerConnection()
    try connection.execute(unsafeSQL: "CREATE TEMP TABLE piped (a int)")
    #expect(throws: PostgresError.self) {
      try connection.pipeline(["INSERT INTO piped VALUES (1)", "SELECT 1/0", "INSERT INTO piped VALUES (2)"])
    }
    #expect(try connection.query("SELECT count(*) AS n FROM piped")[0].decode("n", as: Int.self) == 0)
    #expect(connection.isIdle)
  }
}
