public import CRMCore
import Foundation
import LibPQ

/// A record type an import writes.
protocol ImportableRecord: MergeableRecord where Fields: ImportableFields {
  /// A new record with these fields, owned by `ownerID`.
  static func draft(id: UUID, ownerID: UUID, fields: Fields, actor: UUID) -> Self
  /// The columns that hold the exact match keys: all emails, all phones, the domain.
  static var keyColumns: (emails: String?, phones: String?, domain: String?) { get }
  /// What assignment rules read; `nil` for records they do not route (contacts).
  var routingSubject: AssignmentSubject? { get }
  /// Puts a new record where an assignment rule sent it.
  mutating func place(_ outcome: AssignmentOutcome)
}

extension ImportableRecord where Self: PoolableRecord {
  var routingSubject: AssignmentSubject? { assignmentSubject }

  mutating func place(_ outcome: AssignmentOutcome) {
    switch outcome {
    case .user(let user):
      ownerID = user
      poolID = nil
    case .pool(let pool):
      ownerID = nil
      poolID = pool
    }
  }
}

extension Lead: ImportableRecord {
  static func draft(id: UUID, ownerID: UUID, fields: LeadFields, actor: UUID) -> Lead {
    Lead(
      id: id, version: 1, ownerID: ownerID, fields: fields, status: .new, disqualifiedReason: nil, lastActivityAt: nil,
      createdAt: .now, updatedAt: .now, createdBy: actor, updatedBy: actor, archivedAt: nil)
  }
  static let keyColumns: (emails: String?, phones: String?, domain: String?) = ("email_addresses", "phone_numbers", "domain")
}

extension Contact: ImportableRecord {
  static func draft(id: UUID, ownerID: UUID, fields: ContactFields, actor: UUID) -> Contact {
    Contact(
      id: id, version: 1, ownerID: ownerID, fields: fields, createdAt: .now, updatedAt: .now, createdBy: actor,
      updatedBy: actor, archivedAt: nil)
  }
  static let keyColumns: (emails: String?, phones: String?, domain: String?) = ("email_addresses", "phone_numbers", nil)
  var routingSubject: AssignmentSubject? { nil }
  mutating func place(_ outcome: AssignmentOutcome) {}
}

extension Account: ImportableRecord {
  static func draft(id: UUID, ownerID: UUID, fields: AccountFields, actor: UUID) -> Account {
    Account(
      id: id, version: 1, ownerID: ownerID, fields: fields, createdAt: .now, updatedAt: .now, createdBy: actor,
      updatedBy: actor, archivedAt: nil)
  }
  static let keyColumns: (emails: String?, phones: String?, domain: String?) = (nil, "phone", "domain")
}

/// SQL for bulk imports: the import's row, its ledger, and set-based writes of each batch.
///
/// A batch is one transaction: lock the import's row (two streams of one import take turns), drop the
/// rows the ledger already has (answering with their recorded results), look up upsert targets and
/// likely duplicates with one query per key kind for the whole batch, insert the new records with one
/// multi-row `INSERT` and their change-log entries with another, update matched records, write the
/// ledger rows and the counters. Nothing is written for a row unless its ledger row commits with it.
public struct ImportStore: Sendable {
  let database: Database
  /// How long a running import's stream holds it without a batch or a heartbeat (``renew(_:principal:)``).
  public let leaseDuration: Duration

  /// A store over `database` whose streams hold their imports for `leaseDuration` at a time.
  public init(database: Database, leaseDuration: Duration = .seconds(30)) {
    self.database = database
    self.leaseDuration = leaseDuration
  }

  /// When a lease taken now ends, as SQL (the transaction's time plus the lease).
  var leaseEnd: PostgresQuery {
    let seconds = Double(leaseDuration.components.seconds) + Double(leaseDuration.components.attoseconds) / 1e18
    return "now() + make_interval(secs => \(seconds))"
  }

  /// Extends a running import's lease: its stream is alive, though idle. Returns false when the import
  /// is no longer running (another stream ended it).
  @discardableResult
  public func renew(_ importID: String, principal: Principal) async throws -> Bool {
    try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        """
        UPDATE imports SET lease_until = \(leaseEnd)
        WHERE tenant_id = \(principal.tenantID) AND import_id = \(importID) AND state = 'running'
        """
      ).affectedRows > 0
    }
  }

  /// Refreshes the statistics of the tables an import of `type` makes grow, where they outgrew them
  /// (migration 0061): a plan every backend cached while a table was nearly empty — a per-row
  /// foreign-key check scanning the wrong index — ends now rather than when autovacuum comes by.
  /// Returns the tables analyzed.
  @discardableResult
  public func refreshStatistics(for type: RecordType, principal: Principal) async throws -> [String] {
    let grown: [String] =
      switch type {
      case .lead: ["leads"]
      case .contact: ["contacts"]
      case .account: ["accounts"]
      case .invoice: ["invoices", "invoice_lines"]
      case .payment: ["payments", "payment_allocations"]
      default: []
      }
    return try await database.withTenant(principal.tenantID) { connection in
      try connection.query(
        "SELECT crm_analyze_if_stale(\(grown + ["change_log", "import_rows"])::text[]) AS analyzed"
      )[0].decode("analyzed")
    }
  }

  /// Starts or resumes an import: FAILED_PRECONDITION when the id exists with another record type or
  /// mode. Returns the job (now running) and whether it existed.
  public func begin(_ header: ImportHeader, principal: Principal) async throws -> (job: ImportJob, resumed: Bool) {
    try await database.withTenant(principal.tenantID) { connection in
      let existing = try connection.query(
        "SELECT \(unsafeSQL: Self.columns) FROM imports WHERE tenant_id = \(principal.tenantID) AND import_id = \(header.importID) FOR UPDATE"
      ).first.map(Self.job(row:))
      if let existing {
        guard existing.recordType == header.recordType, existing.mode == header.mode else {
          throw CRMError.failedPrecondition(
            "import \(header.importID) exists for \(existing.recordType.rawValue)s in mode \(existing.mode.rawValue); use another import_id"
          )
        }
        let row = try connection.query(
          """
          UPDATE imports SET state = 'running', updated_at = now(), lease_until = \(leaseEnd),
            expected_rows = greatest(expected_rows, \(header.expectedRows))
          WHERE tenant_id = \(principal.tenantID) AND import_id = \(header.importID)
          RETURNING \(unsafeSQL: Self.columns)
          """)[0]
        return (try Self.job(row: row), true)
      }
      let row = try connection.query(
        """
        INSERT INTO imports (tenant_id, import_id, record_type, mode, state, source_name, expected_rows, created_by, lease_until)
        VALUES (\(principal.tenantID), \(header.importID), \(header.recordType.rawValue), \(header.mode.rawValue), 'running',
                \(header.sourceName), \(header.expectedRows), \(principal.userID), \(leaseEnd))
        RETURNING \(unsafeSQL: Self.columns)
        """)[0]
      return (try Self.job(row: row), false)
    }
  }

  /// Ends a stream: `completed` when the client closed it, else interrupted.
  public func end(_ importID: String, completed: Bool, principal: Principal) async throws -> ImportJob {
    try await database.withTenant(principal.tenantID) { connection in
      let row = try connection.query(
        """
        UPDATE imports SET state = \(completed ? "completed" : "interrupted"), updated_at = now(), lease_until = NULL
        WHERE tenant_id = \(principal.tenantID) AND import_id = \(importID)
        RETURNING \(unsafeSQL: Self.columns)
        """)
      guard let first = row.first else { throw CRMError.notFound("import \(importID) not found") }
      return try Self.job(row: first)
    }
  }

  /// One import; NOT_FOUND when it is not the tenant's.
  public func get(_ importID: String, principal: Principal) async throws -> ImportJob {
    try await database.withTenant(principal.tenantID) { connection in
      guard
        let row = try connection.query(
          "SELECT \(unsafeSQL: Self.columns) FROM imports WHERE tenant_id = \(principal.tenantID) AND import_id = \(importID)"
        ).first
      else { throw CRMError.notFound("import \(importID) not found") }
      return try Self.job(row: row)
    }
  }

  /// The tenant's imports, newest first.
  public func list(pageSize: Int, pageToken: String, principal: Principal) async throws -> Page<ImportJob> {
    let tokens = try await database.pageTokens()
    let after = try tokens.decode(pageToken, query: "imports")
    return try await database.withTenant(principal.tenantID) { connection in
      var query: PostgresQuery = "SELECT \(unsafeSQL: Self.columns) FROM imports WHERE tenant_id = \(principal.tenantID)"
      if let after {
        guard let bar = after.key.firstIndex(of: "|"), let micros = Int64(after.key[..<bar]) else {
          throw CRMError.invalid("page_token", "is malformed", reason: "INVALID_FORMAT")
        }
        let id = String(after.key[after.key.index(after: bar)...])
        query.append(" AND (created_at, import_id) < (\(Timestamp(microsecondsSinceEpoch: micros)), \(id))")
      }
      query.append(" ORDER BY created_at DESC, import_id DESC LIMIT \(pageSize + 1)")
      let jobs = try connection.query(query).rows.map(Self.job(row:))
      guard jobs.count > pageSize, let last = jobs.prefix(pageSize).last else { return Page(items: jobs, nextPageToken: nil) }
      let token = PageToken(
        key: "\(last.createdAt.microsecondsSinceEpoch)|\(last.importID)",
        id: UUID(canonical: "00000000-0000-0000-0000-000000000000")!, query: "imports")
      return Page(items: Array(jobs.prefix(pageSize)), nextPageToken: tokens.encode(token))
    }
  }

  /// One page of an import's failed rows (index below `before`, when given), from its ledger, in index
  /// order. NOT_FOUND when the import is not the tenant's.
  public func failedRows(of importID: String, before: Int64?, pageSize: Int, pageToken: String, principal: Principal)
    async throws -> Page<ImportRowResult>
  {
    let tokens = try await database.pageTokens()
    let fingerprint = "failed-rows|\(importID)|\(before.map(String.init) ?? "")"
    let after = try tokens.decode(pageToken, query: fingerprint).map { token throws(CRMError) -> Int64 in
      guard let index = Int64(token.key) else { throw .invalid("page_token", "is malformed", reason: "INVALID_FORMAT") }
      return index
    }
    return try await database.withTenant(principal.tenantID) { connection in
      guard
        try !connection.query(
          "SELECT 1 FROM imports WHERE tenant_id = \(principal.tenantID) AND import_id = \(importID)"
        ).rows.isEmpty
      else { throw CRMError.notFound("import \(importID) not found") }
      var query: PostgresQuery = """
        SELECT row_index, outcome, record_id, detail::text AS detail FROM import_rows
        WHERE tenant_id = \(principal.tenantID) AND import_id = \(importID) AND outcome = 'failed'
          AND row_index > \(after ?? -1)
        """
      if let before { query.append(" AND row_index < \(before)") }
      query.append(" ORDER BY row_index LIMIT \(pageSize + 1)")
      var rows = try connection.query(query).rows.map { row in
        var result = try Self.result(row: row)
        result.alreadyImported = true
        return result
      }
      var next: String?
      if rows.count > pageSize {
        rows.removeLast()
        next = tokens.encode(PageToken(key: String(rows[pageSize - 1].index), id: UUID(), query: fingerprint))
      }
      return Page(items: rows, nextPageToken: next)
    }
  }

  /// Prepares one batch of leads, contacts or accounts (by the import's record type) for writing and
  /// returns the write: it runs the batch's transaction and returns a result per row, in the rows'
  /// order.
  ///
  /// Everything that does not depend on the database — each new record, its column values and its
  /// change-log entry — is computed here, by the caller, so that it can overlap the previous batch's
  /// transaction instead of holding a connection while PostgreSQL waits (building them inside the
  /// transaction was ~45% of crmd's CPU in an import, `perf`).
  public func prepare<Fields: ImportableFields>(
    _ rows: [(index: Int64, fields: Result<ImportedRow<Fields>, ImportRowErrors>)], header: ImportHeader,
    context: ChangeLog.Context
  ) throws -> @Sendable () async throws -> [ImportRowResult] {
    switch header.recordType {
    case .lead: try prepare(Lead.self, rows, header: header, context: context)
    case .contact: try prepare(Contact.self, rows, header: header, context: context)
    case .account: try prepare(Account.self, rows, header: header, context: context)
    case .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection:
      throw CRMError.invalid("header.record_type", "imports take leads, contacts or accounts")
    }
  }

  func prepare<Record: ImportableRecord, Fields: ImportableFields>(
    _ type: Record.Type, _ rows: [(index: Int64, fields: Result<ImportedRow<Fields>, ImportRowErrors>)],
    header: ImportHeader, context: ChangeLog.Context
  ) throws -> @Sendable () async throws -> [ImportRowResult] {
    guard let rows = rows as? [(index: Int64, fields: Result<ImportedRow<Record.Fields>, ImportRowErrors>)] else {
      throw CRMError.invalid("header.record_type", "does not match the rows' fields")
    }
    let prepared = rows.map { row in
      (index: row.index, row: row.fields.map { ValidRow<Record>(index: row.index, imported: $0, context: context) })
    }
    return { try await apply(Record.self, prepared, header: header, context: context) }
  }

  func apply<Record: ImportableRecord>(
    _ type: Record.Type, _ rows: [(index: Int64, row: Result<ValidRow<Record>, ImportRowErrors>)],
    header: ImportHeader, context: ChangeLog.Context
  ) async throws -> [ImportRowResult] {
    let principal = context.principal
    let tenant = principal.tenantID
    return try await database.withTenant(tenant) { connection in
      var results = try Self.ledger(connection, rows.map(\.index), header: header, tenant: tenant)
      var valid: [ValidRow<Record>] = []
      var fresh: [ImportRowResult] = []
      var seenIndexes = Set(results.keys)
      for row in rows where seenIndexes.insert(row.index).inserted {
        switch row.row {
        case .failure(let problems):
          fresh.append(ImportRowResult(index: row.index, outcome: .failed, errors: problems.errors))
        case .success(let row):
          valid.append(row)
        }
      }
      fresh += try Self.write(Record.self, valid, connection, header: header, context: context)
      try Self.record(fresh, connection, header: header, tenant: tenant, leaseEnd: leaseEnd)
      for result in fresh { results[result.index] = result }
      var seen = Set<Int64>()
      return rows.compactMap { seen.insert($0.index).inserted ? results[$0.index] : nil }
    }
  }

  /// Locks the import's row (two streams of one import take turns) and reads what its ledger already
  /// answers for `indexes`: one round trip.
  static func ledger(_ connection: PostgresConnection, _ indexes: [Int64], header: ImportHeader, tenant: UUID) throws
    -> [Int64: ImportRowResult]
  {
    // The range bounds the index scan whatever the plan: a generic plan made while the ledger was
    // empty checked `= ANY` as a filter over every row of the import, 1,000 comparisons a row
    // (62% of PostgreSQL's CPU by the middle of a 200k-row import).
    let read = try connection.pipeline([
      "SELECT 1 FROM imports WHERE tenant_id = \(tenant) AND import_id = \(header.importID) FOR UPDATE",
      """
      SELECT row_index, outcome, record_id, detail::text AS detail FROM import_rows
      WHERE tenant_id = \(tenant) AND import_id = \(header.importID)
        AND row_index BETWEEN \(indexes.min() ?? 0) AND \(indexes.max() ?? -1) AND row_index = ANY(\(indexes)::bigint[])
      """,
    ])[1]
    var results: [Int64: ImportRowResult] = [:]
    for row in read.rows {
      var result = try Self.result(row: row)
      result.alreadyImported = true
      results[result.index] = result
    }
    return results
  }

  /// Upserts, duplicate checks and inserts for the valid rows; a result per row.
  static func write<Record: ImportableRecord>(
    _ type: Record.Type, _ rows: [ValidRow<Record>], _ connection: PostgresConnection, header: ImportHeader,
    context: ChangeLog.Context
  ) throws -> [ImportRowResult] {
    let principal = context.principal
    let tenant = principal.tenantID
    var results: [ImportRowResult] = []
    // Upsert targets: existing records by external id or primary email, locked for the update; those a
    // pending approval request locks against this importer, with the request.
    var targets: [String: Record] = [:]
    var approvalLocks: [UUID: UUID] = [:]
    func upsertKey(_ fields: Record.Fields) -> String? {
      switch header.mode {
      case .insert: nil
      case .upsertByExternalID: Self.externalID(fields).map { "x:" + $0 }
      case .upsertByEmail: fields.matchSubject.emails.first.map { "e:" + $0 }
      }
    }
    let keys = Array(Set(rows.compactMap { upsertKey($0.fields) }))
    if !keys.isEmpty {
      let values = keys.map { String($0.dropFirst(2)) }
      // By email: one GIN probe per address (see existingKeys).
      let condition: PostgresQuery =
        header.mode == .upsertByExternalID
        ? "external_id = ANY(\(values)::text[])"
        : "id IN (SELECT id FROM crm_exact_key_matches(\(Record.table), 'email_addresses', \(values)::text[]))"
      let found = try connection.query(
        """
        SELECT \(unsafeSQL: Record.columns), \(ApprovalStore.lockColumn(Record.recordType, table: Record.table, principal: principal))
        FROM \(unsafeSQL: Record.table)
        WHERE tenant_id = \(tenant) AND archived_at IS NULL AND \(condition)
        ORDER BY created_at, id FOR UPDATE
        """)
      for row in found.rows {
        let record = try Record(row: row)
        if let request = try row.decode("approval_lock", as: UUID?.self) { approvalLocks[record.id] = request }
        if header.mode == .upsertByExternalID, let id = Self.externalID(record.fields) {
          targets["x:" + id] = targets["x:" + id] ?? record
        } else {
          for email in record.fields.matchSubject.emails where keys.contains("e:" + email) {
            targets["e:" + email] = targets["e:" + email] ?? record
          }
        }
      }
    }
    // External ids other records hold already (insert mode, or rows whose upsert key is an email).
    let externalIDs = Array(Set(rows.compactMap { Self.externalID($0.fields) }))
    var takenExternalIDs = Set<String>()
    if !externalIDs.isEmpty {
      for row in try connection.query(
        """
        SELECT external_id FROM \(unsafeSQL: Record.table)
        WHERE tenant_id = \(tenant) AND external_id = ANY(\(externalIDs)::text[])
        """
      ).rows {
        takenExternalIDs.insert(try row.decode("external_id"))
      }
    }
    // Likely duplicates of the rows that would create records: existing records and earlier rows.
    let rule = try DuplicateRuleStore.rule(connection, for: Record.recordType, tenant: tenant)
    let action = header.duplicateAction ?? rule.action
    var known: [String: RecordLink] = [:]
    if action != .allow {
      known = try Self.existingKeys(
        connection, rows.map { rule.restricting($0.subject) }, in: rule.matchRecordTypes, tenant: tenant)
    }

    var drafts: [(record: Record, insertion: Insertion<Record>)] = []
    var changedDrafts = Set<Int>()
    var updates: [(index: Int64, next: Record, current: Record)] = []
    var draftIndexByKey: [String: Int] = [:]
    for row in rows {
      let (index, fields, mask) = (row.index, row.fields, row.mask)
      if let key = upsertKey(fields) {
        if let current = targets[key] {
          guard principal.canWrite(ownedBy: current.accessOwner, pool: current.poolID) else {
            results.append(
              Self.failure(index, "owner_id", "PERMISSION_DENIED", "only the owner, their managers or an admin may change it"))
            continue
          }
          if let request = approvalLocks[current.id] {
            // As for an update through the API: the record waits for its approval decision.
            results.append(
              Self.failure(
                index, header.mode == .upsertByExternalID ? "external_id" : "emails", "FAILED_PRECONDITION",
                "the \(Record.noun) is locked while approval request \(request.lowercasedString) is pending"))
            continue
          }
          var next = current
          next.fields = current.fields.applying(fields, mask: mask)
          if let external = Self.externalID(next.fields), external != Self.externalID(current.fields),
            takenExternalIDs.contains(external)
          {
            results.append(Self.failure(index, "external_id", "ALREADY_EXISTS", "another \(Record.noun) has this external_id"))
            continue
          }
          targets[key] = next
          updates.append((index, next, current))
          results.append(ImportRowResult(index: index, outcome: .updated, recordID: current.id))
          continue
        }
        if let draftIndex = draftIndexByKey[key] {
          // A second row for a record this batch creates: it updates the draft.
          drafts[draftIndex].record.fields = drafts[draftIndex].record.fields.applying(fields, mask: mask)
          changedDrafts.insert(draftIndex)
          results.append(ImportRowResult(index: index, outcome: .updated, recordID: drafts[draftIndex].record.id))
          continue
        }
      }
      if let problem = fields.importCreationProblem {
        results.append(ImportRowResult(index: index, outcome: .failed, errors: [problem]))
        continue
      }
      if let external = Self.externalID(fields), takenExternalIDs.contains(external) {
        results.append(Self.failure(index, "external_id", "ALREADY_EXISTS", "another \(Record.noun) has this external_id"))
        continue
      }
      let subject = rule.restricting(row.subject)
      var matches: [RecordLink] = []
      if action != .allow {
        for key in Self.keys(subject) { if let link = known[key], !matches.contains(link) { matches.append(link) } }
      }
      if action == .block, !matches.isEmpty {
        results.append(ImportRowResult(index: index, outcome: .duplicateSkipped, matches: matches))
        continue
      }
      let draft = row.draft
      for key in Self.keys(subject) where known[key] == nil { known[key] = RecordLink(type: Record.recordType, id: draft.id) }
      if let external = Self.externalID(fields) { takenExternalIDs.insert(external) }
      if let key = upsertKey(fields) { draftIndexByKey[key] = drafts.count }
      drafts.append((draft, row.insertion))
      results.append(ImportRowResult(index: index, outcome: .created, recordID: draft.id, matches: matches))
    }
    // Drafts a later row of the batch changed: their values again.
    for index in changedDrafts { drafts[index].insertion = Insertion(drafts[index].record, context: context) }
    // The tenant's assignment rules place the new records (leads, accounts), in row order.
    if drafts.first?.record.routingSubject != nil {
      let router = try AssignmentStore.Router(connection, type: Record.recordType, tenant: tenant, dryRun: false)
      if !router.isEmpty {
        let routed = drafts.indices.compactMap { index in drafts[index].record.routingSubject.map { (index, $0) } }
        for ((index, _), decision) in zip(routed, try router.route(routed.map(\.1))) {
          guard let outcome = decision.outcome else { continue }
          drafts[index].record.place(outcome)
          drafts[index].insertion = Insertion(drafts[index].record, context: context, notes: AssignmentStore.note(decision))
        }
      }
    }
    try Self.insert(drafts.map(\.insertion), connection)
    for update in updates where update.next.fields != update.current.fields {
      _ = try RecordMechanics<Record>.write(connection, update.next, over: update.current, context: context)
    }
    return results
  }

  /// Inserts records and their change-log entries, 200 rows to a statement.
  static func insert<Record: ImportableRecord>(_ insertions: [Insertion<Record>], _ connection: PostgresConnection) throws {
    for chunk in stride(from: 0, to: insertions.count, by: 200).map({ insertions[$0..<min($0 + 200, insertions.count)] }) {
      var insert: PostgresQuery = """
        INSERT INTO \(unsafeSQL: Record.table) (tenant_id, id, created_by, updated_by, \(unsafeSQL: Record.writableColumns))
        VALUES
        """
      var log: PostgresQuery =
        "INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes) VALUES "
      for (offset, insertion) in chunk.enumerated() {
        if offset > 0 {
          insert.append(unsafeSQL: ", ")
          log.append(unsafeSQL: ", ")
        }
        insert.append(insertion.values)
        log.append(insertion.log)
      }
      _ = try RecordMechanics<Record>.translatingConstraints {
        try connection.pipeline([insert, log])
      }
    }
  }

  /// Writes the ledger rows of `results` and adds them to the import's counters.
  static func record(
    _ results: [ImportRowResult], _ connection: PostgresConnection, header: ImportHeader, tenant: UUID, leaseEnd: PostgresQuery
  )
    throws
  {
    guard !results.isEmpty else { return }
    var counts: [ImportRowResult.Outcome: Int64] = [:]
    for result in results { counts[result.outcome, default: 0] += 1 }
    // One statement for the batch's ledger rows, arrays rather than six parameters a row (binding and
    // parsing thousands of parameters cost more than the rows), and the counters in the same round trip.
    _ = try connection.pipeline([
      """
      INSERT INTO import_rows (tenant_id, import_id, row_index, outcome, record_id, detail)
      SELECT \(tenant), \(header.importID), r.row_index, r.outcome, r.record_id, r.detail::jsonb
      FROM unnest(
        \(results.map(\.index))::bigint[], \(results.map(\.outcome.rawValue))::text[],
        \(results.map { NullableText($0.recordID?.lowercasedString) })::uuid[], \(results.map { NullableText(Self.detail($0)) })::text[]
      ) AS r (row_index, outcome, record_id, detail)
      """,
      """
      UPDATE imports SET created = created + \(counts[.created] ?? 0), updated = updated + \(counts[.updated] ?? 0),
        duplicate_skipped = duplicate_skipped + \(counts[.duplicateSkipped] ?? 0), failed = failed + \(counts[.failed] ?? 0),
        next_index = greatest(next_index, \(results.map(\.index).max()! + 1)), updated_at = now(),
        lease_until = \(leaseEnd)
      WHERE tenant_id = \(tenant) AND import_id = \(header.importID)
      """,
    ])
  }

  /// The exact keys of a subject: `e:` emails, `p:` phones, `d:` the domain, `r:` the registration id.
  static func keys(_ subject: MatchSubject) -> [String] {
    subject.emails.map { "e:" + $0 } + subject.phones.map { "p:" + $0 } + (subject.domain.map { ["d:" + $0] } ?? [])
      + (subject.registrationID.map { ["r:" + $0] } ?? [])
  }

  /// The records of `types` holding any of the subjects' exact keys: one query per table and key kind.
  static func existingKeys(_ connection: PostgresConnection, _ subjects: [MatchSubject], in types: [RecordType], tenant: UUID)
    throws -> [String: RecordLink]
  {
    let emails = Array(Set(subjects.flatMap(\.emails)))
    let phones = Array(Set(subjects.flatMap(\.phones)))
    let domains = Array(Set(subjects.compactMap(\.domain)))
    let registrations = Array(Set(subjects.compactMap(\.registrationID)))
    var known: [String: RecordLink] = [:]
    for type in types {
      let table: String
      let columns: (emails: String?, phones: String?, domain: String?)
      switch type {
      case .lead: (table, columns) = (Lead.table, Lead.keyColumns)
      case .contact: (table, columns) = (Contact.table, Contact.keyColumns)
      case .account: (table, columns) = (Account.table, Account.keyColumns)
      case .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection: continue
      }
      var queries: [(String, PostgresQuery)] = []
      // Array columns: one GIN probe per key, through a definer function (see 0010_key_lookups.sql:
      // under row-level security `@>` and `&&` cannot use the GIN index; `column && $keys` with
      // hundreds of keys also led the planner to scan the tenant).
      func probe(_ column: String, _ keys: [String]) -> PostgresQuery {
        "SELECT id, k FROM crm_exact_key_matches(\(table), \(column), \(keys)::text[])"
      }
      func equal(_ column: String, _ keys: [String]) -> PostgresQuery {
        """
        SELECT id, \(unsafeSQL: column) AS k FROM \(unsafeSQL: table)
        WHERE tenant_id = \(tenant) AND archived_at IS NULL AND \(unsafeSQL: column) = ANY(\(keys)::text[])
        """
      }
      if let column = columns.emails, !emails.isEmpty { queries.append(("e:", probe(column, emails))) }
      if let column = columns.phones, !phones.isEmpty {
        queries.append(("p:", column == "phone" ? equal(column, phones) : probe(column, phones)))
      }
      if let column = columns.domain, !domains.isEmpty { queries.append(("d:", equal(column, domains))) }
      if type != .contact, !registrations.isEmpty { queries.append(("r:", equal("registration_id", registrations))) }
      let results = try connection.pipeline(queries.map(\.1))
      for ((prefix, _), result) in zip(queries, results) {
        for row in result.rows {
          guard let key: String = try row.decode("k") else { continue }
          let link = RecordLink(type: type, id: try row.decode("id"))
          known[prefix + key] = known[prefix + key] ?? link
        }
      }
    }
    return known
  }

  static func externalID<Fields: ImportableFields>(_ fields: Fields) -> String? {
    if let lead = fields as? LeadFields { return lead.externalID }
    if let contact = fields as? ContactFields { return contact.externalID }
    if let account = fields as? AccountFields { return account.externalID }
    return nil
  }

  static func failure(_ index: Int64, _ field: String, _ reason: String, _ description: String) -> ImportRowResult {
    ImportRowResult(
      index: index, outcome: .failed,
      errors: [ImportFieldError(field: field, column: "", reason: reason, description: description)])
  }

  // MARK: - Rows

  /// An import's columns; a running import whose lease ran out reads as interrupted (its stream died
  /// with its node, or its client went silent past the lease).
  static let columns = """
    import_id, record_type, mode,
    CASE WHEN state = 'running' AND lease_until < now() THEN 'interrupted' ELSE state END AS state,
    source_name, expected_rows, created, updated, duplicate_skipped, failed,
    next_index, created_by, created_at, updated_at
    """

  static func job(row: PostgresRow) throws -> ImportJob {
    ImportJob(
      importID: try row.decode("import_id"), recordType: RecordType(rawValue: try row.decode("record_type")) ?? .lead,
      mode: ImportMode(rawValue: try row.decode("mode")) ?? .insert,
      state: ImportJob.State(rawValue: try row.decode("state")) ?? .interrupted, sourceName: try row.decode("source_name"),
      expectedRows: try row.decode("expected_rows"), created: try row.decode("created"), updated: try row.decode("updated"),
      duplicateSkipped: try row.decode("duplicate_skipped"), failed: try row.decode("failed"),
      nextIndex: try row.decode("next_index"), createdBy: try row.decode("created_by"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
  }

  /// A ledger row's detail: the errors of a failed row, the matches of a skipped one.
  static func detail(_ result: ImportRowResult) -> String? {
    if !result.errors.isEmpty {
      return (try? JSONEncoder().encode(result.errors)).map { String(decoding: $0, as: UTF8.self) }
    }
    if !result.matches.isEmpty {
      return "[" + result.matches.map { "\"\($0.key)\"" }.joined(separator: ",") + "]"
    }
    return nil
  }

  static func result(row: PostgresRow) throws -> ImportRowResult {
    var result = ImportRowResult(
      index: try row.decode("row_index"),
      outcome: ImportRowResult.Outcome(rawValue: try row.decode("outcome")) ?? .failed, recordID: try row.decode("record_id"))
    if let detail: String = try row.decode("detail") {
      let data = Data(detail.utf8)
      if let errors = try? JSONDecoder().decode([ImportFieldError].self, from: data) {
        result.errors = errors
      } else if let keys = try? JSONDecoder().decode([String].self, from: data) {
        result.matches = keys.compactMap(RecordLink.init(key:))
      }
    }
    return result
  }
}

/// A row that parsed: its index, fields, the fields its cells set, its match keys, and the record it
/// makes if it creates one, with that record's insertion.
struct ValidRow<Record: ImportableRecord>: Sendable {
  var index: Int64
  var fields: Record.Fields
  var mask: Set<Record.Fields.Field>
  var subject: MatchSubject
  var draft: Record
  var insertion: Insertion<Record>

  /// Everything about `imported` that does not need the database.
  init(index: Int64, imported: ImportedRow<Record.Fields>, context: ChangeLog.Context) {
    let principal = context.principal
    self.index = index
    fields = imported.fields
    mask = imported.mask
    subject = imported.fields.matchSubject
    draft = Record.draft(id: UUID.v7(), ownerID: principal.userID, fields: imported.fields, actor: principal.userID)
    insertion = Insertion(draft, context: context)
  }
}

/// One new record's row of a multi-row `INSERT` and its change-log entry's row.
struct Insertion<Record: ImportableRecord>: Sendable {
  var values: PostgresQuery
  var log: PostgresQuery

  /// The rows that insert `draft` and log its creation (with `notes`, e.g. the assignment rule).
  init(_ draft: Record, context: ChangeLog.Context, notes: [FieldChange] = []) {
    let principal = context.principal
    values = "(\(principal.tenantID), \(draft.id), \(principal.userID), \(principal.userID), \(draft.writableValues))"
    let changes = FieldChange.diff(fields: Record.changeLogOrder, old: nil, new: draft.snapshot) + notes
    log = """
      (\(principal.tenantID), \(Record.recordType.rawValue), \(draft.id), 'create', \(principal.userID),
       \(context.requestID), \(PostgresJSON(FieldChange.render(changes)))::jsonb)
      """
  }
}
