import CRMStore
import CRMTestSupport
import LibPQ
import Testing

/// The live schema, read from `pg_catalog`, against the rules that let it be distributed by tenant
/// (docs/SCALING.md). A new table, key or index that breaks them fails here until it either follows
/// them or joins the exceptions below with its reason; an exception that no longer exists fails too,
/// so the list stays true.
@Suite("Store: the schema distributes by tenant")
struct SchemaShardingTests {
  /// Tables without `tenant_id`: one row per cluster or per tenant, copied to every node as Citus
  /// reference tables.
  static let referenceTables: Set<String> = ["tenants", "schema_migrations", "server_keys", "change_feed_state"]

  /// Tenant tables whose primary key does not start with `tenant_id`.
  static let primaryKeyExceptions: [String: String] = [
    "change_feed": "the feed's position is one commit order across tenants (a cursor resumes on any node)",
    "search_words": "no key at all: concurrent writers of a new word never wait on each other; readers take distinct words",
  ]

  /// Indexes (B-tree and others that are not GIN) on tenant tables that do not lead with `tenant_id`:
  /// each serves a lookup made before a tenant is known, or a background job's pass over every tenant.
  static let indexExceptions: [String: String] = [
    "api_tokens_token_hash_key": "authentication finds a token by its hash before it knows the tenant",
    "tickets_satisfaction_token": "a CSAT survey is answered without a login, by its token's hash",
    "change_feed_pkey": "the feed's position is one commit order across tenants",
    "change_feed_by_commit_time": "retention prunes the feed by age across tenants",
    "sla_instances_breach_due": "the SLA job finds due breaches across tenants",
    "sla_instances_warn_due": "the SLA job finds due warnings across tenants",
    "tickets_solved": "the auto-close job finds solved tickets across tenants",
    "webhook_deliveries_by_age": "delivery history is pruned by age across tenants",
  ]

  /// The tables the migrations create (`CREATE TABLE name`, from the SQL compiled into crmd) and the
  /// Migrator's own.
  static func migratedTables() -> Set<String> {
    // The Migrator's own bookkeeping table, made by its Swift code before the first migration.
    var names: Set<String> = ["schema_migrations"]
    for (_, sql) in Migrator.bundled {
      let text = String(decoding: sql, as: UTF8.self)
      for match in text.matches(of: /CREATE TABLE (?:IF NOT EXISTS )?([a-z_0-9]+)/) { names.insert(String(match.1)) }
    }
    return names
  }

  @Test("tenant tables key, reference and index by tenant_id first, but for the named exceptions")
  func tenantFirst() async throws {
    _ = try await TestDatabase.database()
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    func names(_ sql: PostgresQuery, _ column: String = "name") throws -> Set<String> {
      Set(try connection.query(sql).rows.map { try $0.decode(column, as: String.self) })
    }
    // The migrations' tables only: other suites create scratch tables in the same database meanwhile.
    let migrated = Self.migratedTables()
    #expect(migrated.count > 40 && migrated.contains("tickets"))
    let tables: PostgresQuery = """
      pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        AND c.relname = ANY(\(migrated.sorted())::text[])
      """
    let withoutTenant = try names(
      """
      SELECT c.relname AS name FROM \(tables)
      WHERE c.relkind IN ('r', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
      """)
    #expect(withoutTenant == Self.referenceTables, "tables without tenant_id that are not reference tables, or the reverse")

    let keyedOtherwise = try names(
      """
      SELECT c.relname AS name FROM \(tables)
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
      LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
      WHERE c.relkind IN ('r', 'p') AND (k.oid IS NULL OR k.conkey[1] <> a.attnum)
      """)
    #expect(keyedOtherwise == Set(Self.primaryKeyExceptions.keys), "primary keys that do not start with tenant_id")

    let foreignKeys = try names(
      """
      SELECT c.relname || '.' || k.conname AS name FROM \(tables)
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
      JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
      WHERE k.conkey[1] <> a.attnum
      """)
    #expect(foreignKeys.isEmpty, "foreign keys of tenant tables that do not start with tenant_id: \(foreignKeys.sorted())")

    // GIN indexes are left out: their keys are values (tags, trigrams), and with the tenant as a key
    // the tenant's posting list — every row it has — was intersected on every read (migration 0068).
    let indexes = try names(
      """
      SELECT i.relname AS name FROM \(tables)
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
      JOIN pg_index x ON x.indrelid = c.oid JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_am am ON am.oid = i.relam
      WHERE am.amname <> 'gin' AND x.indkey[0] <> a.attnum
      """)
    #expect(indexes == Set(Self.indexExceptions.keys), "indexes that do not lead with tenant_id")
  }
}
