import CRMCore
import CRMStore
import CRMTestSupport
import Foundation
import LibPQ
import Testing

/// The rules engine matches with SQL compiled from each rule's conditions (`crm_rule_predicate`,
/// migration 0045); approval entry conditions are checked by the reference evaluator
/// (`crm_rule_conditions_hold`, 0037/0039). Both must give the same answer for every field of every
/// record type, every operator it takes, and records with values, without them and with changes.
@Suite("Store: trigger rule conditions")
struct RuleConditionTests {
  /// Values a condition compares with, by kind: one that some record holds, one it does not.
  static func values(_ field: RuleField, user: UUID) -> [JSONValue] {
    switch field.kind {
    case .text: [.string("Software"), .string("Retail")]
    case .choice(let choices): choices.prefix(2).map { .string($0) } + [.string("new"), .string("open")]
    case .integer: [.int(499), .int(500), .int(501)]
    case .decimal: [.double(49_999.5), .int(50_000), .double(50_000.25)]
    case .date: [.string("2027-03-30"), .string("2027-03-31"), .string("2027-04-01")]
    case .boolean: [.bool(true), .bool(false)]
    case .id: [.string(user.lowercasedString), .string(UUID().lowercasedString)]
    case .tags: [.string("vip"), .string("cold")]
    }
  }

  @Test("compiled predicates agree with the reference evaluator on every field, operator and record")
  func compiledAgreesWithReference() async throws {
    let tenant = try await TestTenant.make()
    let db = try TestDatabase.ownerConnection()
    defer { db.close() }
    let t = tenant.tenantID
    let user = tenant.admin.userID
    let account = UUID.v7()
    let pipeline = UUID.v7()
    let stage = UUID.v7()
    // For each record type: a record with values and one with as few as the table allows (an owner or
    // a pool is required of leads and accounts; empty ids are parent, pool, account, assignee).
    try db.query(
      """
      INSERT INTO accounts (tenant_id, id, name, industry, account_type, tier, description, employee_count, owner_id, tags)
      VALUES (\(t), \(account), 'Full', 'Software', 'customer', 'strategic', 'Retail', 500, \(user), '{vip,hot}'),
             (\(t), \(UUID.v7()), 'Empty', NULL, 'unspecified', 'unspecified', NULL, NULL, \(user), '{}')
      """)
    try db.query(
      """
      INSERT INTO leads (tenant_id, id, owner_id, status, source, industry, title, campaign, company, region_code, company_size, score, tags)
      VALUES (\(t), \(UUID.v7()), \(user), 'working', 'web_form', 'Software', 'Software', 'Retail', 'Software', 'US', 500, 80, '{vip}'),
             (\(t), \(UUID.v7()), \(user), 'new', 'unspecified', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}')
      """)
    try db.query(
      """
      INSERT INTO contacts (tenant_id, id, last_name, owner_id, title, department, email_opt_out, phone_opt_out, account_id, tags)
      VALUES (\(t), \(UUID.v7()), 'Full', \(user), 'Software', 'Retail', true, false, \(account), '{cold}'),
             (\(t), \(UUID.v7()), 'Empty', \(user), NULL, NULL, false, false, NULL, '{}')
      """)
    try db.query("INSERT INTO pipelines (tenant_id, id, name) VALUES (\(t), \(pipeline), 'Rule conditions')")
    try db.query(
      """
      INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position, category, probability, forecast_category)
      VALUES (\(t), \(stage), \(pipeline), 'Open', 1, 'open', 10, 'pipeline')
      """)
    try db.query(
      """
      INSERT INTO opportunities (tenant_id, id, owner_id, account_id, name, pipeline_id, stage_id, state, probability,
                                 forecast_category, amount_currency, amount_units, amount_nanos, close_date, next_step, tags)
      VALUES (\(t), \(UUID.v7()), \(user), \(account), 'Full', \(pipeline), \(stage), 'open', 50, 'pipeline', 'EUR', 50000, 250000000,
              '2027-03-31', 'Software', '{vip}'),
             (\(t), \(UUID.v7()), \(user), \(account), 'Empty', \(pipeline), \(stage), 'open', 10, 'pipeline', NULL, NULL, NULL,
              NULL, NULL, '{}')
      """)
    try db.query(
      """
      INSERT INTO tickets (tenant_id, id, subject, status, priority, type, channel, assignee_id, account_id, tags, opened_at,
                           status_changed_at)
      VALUES (\(t), \(UUID.v7()), 'Full', 'open', 'urgent', 'incident', 'email', \(user), \(account), '{vip}', now(), now()),
             (\(t), \(UUID.v7()), 'Empty', 'new', 'normal', NULL, 'web_form', NULL, NULL, '{}', now(), now())
      """)

    var compared = 0
    for type in TriggerRuleDefinition.recordTypes {
      let table = try #require(
        try db.query("SELECT crm_rule_table(\(type.rawValue)) AS t").first?.decode("t", as: String.self))
      for field in RuleField.catalogue(type) {
        // What a change-log entry may say about the field: nothing, or a change to and from a value.
        let sample = Self.values(field, user: user)
        let changeSets: [JSONValue] = [
          .array([]),
          .array([.object([("field", .string(field.name)), ("old", sample.last!), ("new", sample.first!)])]),
          .array([.object([("field", .string(field.name)), ("old", .null), ("new", sample.last!)])]),
        ]
        for op in field.operators {
          for value in op == .changed ? [JSONValue.null] : sample {
            let conditions = JSONValue.array([
              .object([
                ("field", .string(field.name)), ("column", .string(field.column)), ("op", .string(op.rawValue)),
                ("value", value),
              ])
            ]).rendered
            let predicate = try #require(
              try db.query(
                "SELECT crm_rule_predicate(\(t), \(type.rawValue), true, true, \(conditions)::jsonb) AS p"
              ).first?.decode("p", as: String.self))
            for changes in changeSets {
              let rows = try db.query(
                """
                SELECT t.id, crm_rule_conditions_hold(\(conditions)::jsonb, n.changes, crm_rule_record(\(type.rawValue), to_jsonb(t))) AS reference,
                       (\(unsafeSQL: predicate)) AS compiled
                FROM \(unsafeSQL: table) t
                CROSS JOIN (SELECT \(t)::uuid AS tenant_id, 'update'::text AS operation, \(changes.rendered)::jsonb AS changes) n
                WHERE t.tenant_id = \(t)
                """)
              #expect(rows.count == 2)
              for row in rows.rows {
                let reference: Bool = try row.decode("reference")
                let compiled: Bool = try row.decode("compiled")
                #expect(
                  reference == compiled,
                  "\(type.rawValue).\(field.name) \(op.rawValue) \(value.rendered), changes \(changes.rendered): reference \(reference), compiled \(compiled)"
                )
                compared += 1
              }
            }
          }
        }
      }
    }
    #expect(compared > 1_000)
  }
}
