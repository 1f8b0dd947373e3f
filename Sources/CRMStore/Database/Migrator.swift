import Crypto
import Foundation
import LibPQ
public import Logging

/// Applies `sql/migrations/NNNN_name.sql` in order, each in its own transaction, under a session
/// advisory lock so that several crmd nodes starting at once apply each file exactly once.
///
/// Forward only: a file already applied is never run again, and a changed file (its SHA-256 differs
/// from the recorded one) stops start-up rather than leaving the schema in an unknown state.
public struct Migrator: Sendable {
  /// One migration file.
  public struct Migration: Sendable, Hashable {
    /// The number before the first underscore.
    public var version: Int
    /// The file name.
    public var name: String
    /// The SQL.
    public var sql: String

    /// SHA-256 of the SQL, hex.
    var checksum: String { SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined() }
  }

  /// Why migrating stopped.
  public struct Failure: Error, CustomStringConvertible {
    /// What to tell the operator.
    public var description: String
  }

  /// The migrations, in order.
  public let migrations: [Migration]
  let logger: Logger

  /// The migrations compiled into the binary (`.embedInCode` in Package.swift): file name and SQL.
  /// A test checks this list against `sql/migrations`, so a file cannot be forgotten here.
  public static let bundled: [(name: String, sql: [UInt8])] = [
    ("0001_platform.sql", PackageResources._001_platform_sql),
    ("0002_leads.sql", PackageResources._002_leads_sql),
    ("0003_match_keys.sql", PackageResources._003_match_keys_sql),
    ("0004_tenant_match_indexes.sql", PackageResources._004_tenant_match_indexes_sql),
    ("0005_duplicate_rules.sql", PackageResources._005_duplicate_rules_sql),
    ("0006_interactions.sql", PackageResources._006_interactions_sql),
    ("0007_capture.sql", PackageResources._007_capture_sql),
    ("0008_merge.sql", PackageResources._008_merge_sql),
    ("0009_imports.sql", PackageResources._009_imports_sql),
    ("0010_key_lookups.sql", PackageResources._010_key_lookups_sql),
    ("0011_match_candidates.sql", PackageResources._011_match_candidates_sql),
    ("0012_registration_ids.sql", PackageResources._012_registration_ids_sql),
    ("0013_gin_without_pending_lists.sql", PackageResources._013_gin_without_pending_lists_sql),
    ("0014_name_blocks.sql", PackageResources._014_name_blocks_sql),
    ("0015_static_match_candidates.sql", PackageResources._015_static_match_candidates_sql),
    ("0016_key_lookups_without_tenant_entry.sql", PackageResources._016_key_lookups_without_tenant_entry_sql),
    ("0017_swapped_name_neighbours.sql", PackageResources._017_swapped_name_neighbours_sql),
    ("0018_company_names_without_swapped_scans.sql", PackageResources._018_company_names_without_swapped_scans_sql),
    ("0019_opportunities.sql", PackageResources._019_opportunities_sql),
    ("0020_lead_conversion.sql", PackageResources._020_lead_conversion_sql),
    ("0021_pools.sql", PackageResources._021_pools_sql),
    ("0022_assignment_rules.sql", PackageResources._022_assignment_rules_sql),
    ("0023_tasks.sql", PackageResources._023_tasks_sql),
    ("0024_lead_score.sql", PackageResources._024_lead_score_sql),
    ("0025_hardening.sql", PackageResources._025_hardening_sql),
    ("0026_service.sql", PackageResources._026_service_sql),
    ("0027_satisfaction.sql", PackageResources._027_satisfaction_sql),
    ("0028_support_capture_keys.sql", PackageResources._028_support_capture_keys_sql),
    ("0029_escalations.sql", PackageResources._029_escalations_sql),
    ("0030_ticket_assignment.sql", PackageResources._030_ticket_assignment_sql),
    ("0031_service_report.sql", PackageResources._031_service_report_sql),
    ("0032_ticket_children_without_fk_checks.sql", PackageResources._032_ticket_children_without_fk_checks_sql),
    ("0033_change_feed.sql", PackageResources._033_change_feed_sql),
    ("0034_change_feed_retention.sql", PackageResources._034_change_feed_retention_sql),
    ("0035_webhooks.sql", PackageResources._035_webhooks_sql),
    ("0036_field_security.sql", PackageResources._036_field_security_sql),
    ("0037_trigger_rules.sql", PackageResources._037_trigger_rules_sql),
    ("0038_approvals.sql", PackageResources._038_approvals_sql),
    ("0039_faster_rules.sql", PackageResources._039_faster_rules_sql),
    ("0040_rules_cached_plans.sql", PackageResources._040_rules_cached_plans_sql),
    ("0041_rules_by_key.sql", PackageResources._041_rules_by_key_sql),
    ("0042_rules_planned_per_statement.sql", PackageResources._042_rules_planned_per_statement_sql),
    ("0043_drop_unused_rule_rows.sql", PackageResources._043_drop_unused_rule_rows_sql),
    ("0044_assignment_routing_in_sql.sql", PackageResources._044_assignment_routing_in_sql_sql),
    ("0045_rules_compiled_conditions.sql", PackageResources._045_rules_compiled_conditions_sql),
    ("0046_rules_engine_split.sql", PackageResources._046_rules_engine_split_sql),
    ("0047_rules_entries_by_key.sql", PackageResources._047_rules_entries_by_key_sql),
    ("0048_feed_streams_without_heartbeat.sql", PackageResources._048_feed_streams_without_heartbeat_sql),
    ("0049_rules_match_once.sql", PackageResources._049_rules_match_once_sql),
    ("0050_billing.sql", PackageResources._050_billing_sql),
    ("0051_billing_financials.sql", PackageResources._051_billing_financials_sql),
    ("0052_disputes.sql", PackageResources._052_disputes_sql),
    ("0053_billing_panel_reads.sql", PackageResources._053_billing_panel_reads_sql),
    ("0054_collections.sql", PackageResources._054_collections_sql),
    ("0055_instalments.sql", PackageResources._055_instalments_sql),
    ("0056_dispute_evidence.sql", PackageResources._056_dispute_evidence_sql),
    ("0057_billing_panel_covering.sql", PackageResources._057_billing_panel_covering_sql),
    ("0058_ticket_invoice_lines.sql", PackageResources._058_ticket_invoice_lines_sql),
    ("0059_billing_imports.sql", PackageResources._059_billing_imports_sql),
    ("0060_import_write_path.sql", PackageResources._060_import_write_path_sql),
    ("0061_analyze_if_stale.sql", PackageResources._061_analyze_if_stale_sql),
    ("0062_forecast.sql", PackageResources._062_forecast_sql),
    ("0063_forecast_snapshots.sql", PackageResources._063_forecast_snapshots_sql),
    ("0064_search.sql", PackageResources._064_search_sql),
    ("0065_search_columns.sql", PackageResources._065_search_columns_sql),
    ("0066_analytics.sql", PackageResources._066_analytics_sql),
    ("0067_lead_scoring.sql", PackageResources._067_lead_scoring_sql),
    ("0068_search_matches.sql", PackageResources._068_search_matches_sql),
    ("0069_search_email_matches.sql", PackageResources._069_search_email_matches_sql),
    ("0070_search_email_by_address.sql", PackageResources._070_search_email_by_address_sql),
    ("0071_search_top.sql", PackageResources._071_search_top_sql),
    ("0072_search_invoices.sql", PackageResources._072_search_invoices_sql),
    ("0073_filter_ids.sql", PackageResources._073_filter_ids_sql),
    ("0074_custom_fields.sql", PackageResources._074_custom_fields_sql),
    ("0075_filter_ids_contact.sql", PackageResources._075_filter_ids_contact_sql),
    ("0076_search_words_on_change.sql", PackageResources._076_search_words_on_change_sql),
  ]

  /// A migrator over the migrations compiled into the binary.
  public init(logger: Logger = Logger(label: "crm.migrations")) throws {
    try self.init(files: Self.bundled.map { ($0.name, String(decoding: $0.sql, as: UTF8.self)) }, logger: logger)
  }

  /// A migrator over `NNNN_name.sql` files given as name and SQL.
  public init(files: [(name: String, sql: String)], logger: Logger = Logger(label: "crm.migrations")) throws {
    migrations = try files.sorted { $0.name < $1.name }.map { file in
      guard let version = Int(file.name.prefix(while: \.isNumber)) else {
        throw Failure(description: "migration \(file.name) does not start with a number")
      }
      return Migration(version: version, name: file.name, sql: file.sql)
    }
    self.logger = logger
    if Set(migrations.map(\.version)).count != migrations.count {
      throw Failure(description: "two migrations share a number")
    }
  }

  /// The advisory lock key ("crm-migrate").
  static let lockKey: Int64 = 0x63726D5F6D696772

  /// Applies every pending migration; returns the names applied.
  @discardableResult
  public func migrate(connectionString: String) throws -> [String] {
    let connection = try PostgresConnection(connectionString: connectionString)
    defer { connection.close() }
    try connection.execute(unsafeSQL: "SET client_min_messages = warning")
    try connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
    defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
    try connection.execute(
      unsafeSQL: """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )
        """)
    var applied: [Int: String] = [:]
    for row in try connection.query("SELECT version, checksum FROM schema_migrations").rows {
      applied[try row.decode("version", as: Int.self)] = try row.decode("checksum", as: String.self)
    }
    var ran: [String] = []
    for migration in migrations {
      if let checksum = applied[migration.version] {
        guard checksum == migration.checksum else {
          throw Failure(description: "migration \(migration.name) changed after it was applied; add a new migration instead")
        }
        continue
      }
      try connection.execute(unsafeSQL: "BEGIN")
      do {
        try connection.execute(unsafeSQL: migration.sql)
        try connection.query(
          "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))"
        )
        try connection.execute(unsafeSQL: "COMMIT")
      } catch {
        try? connection.execute(unsafeSQL: "ROLLBACK")
        throw Failure(
          description: "migration \(migration.name) failed: \((error as? PostgresError)?.serverMessage ?? "\(error)")")
      }
      logger.info("applied migration", metadata: ["db.migration": "\(migration.name)"])
      ran.append(migration.name)
    }
    return ran
  }
}
