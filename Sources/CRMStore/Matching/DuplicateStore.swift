public import CRMCore
public import Foundation
import LibPQ

/// Finds likely duplicates across leads, contacts and accounts from their stored match keys.
///
/// The candidates come from `crm_match_candidates` (a definer function, because under row-level
/// security the array operators cannot use their indexes): one index lookup per key, united — GIN on
/// the email and phone arrays, B-tree on domain and registration id, and for company and person names
/// index-only scans of the name's blocks (first word + initial of the second, first initial + last
/// word; see 0014_name_blocks.sql and 0015_static_match_candidates.sql): the exact name, then its
/// neighbours in each block with trigram similarity ≥ 0.5. The rows are then read under the policy.
/// Scoring happens in `CRMCore` (``DuplicateMatch/score``); only records the caller may see are kept.
public struct DuplicateStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// How one table exposes its keys to the match query.
  struct Source {
    var type: RecordType
    var table: String
    var emailColumn: (full: String, keys: String)?
    var hasDomain: Bool
    var hasCompanyKey: Bool
    var hasPersonKey: Bool
    var hasRegistrationID: Bool
    var displayName: String
    var phoneHits: String
  }

  static let sources: [RecordType: Source] = [
    .lead: Source(
      type: .lead, table: "leads", emailColumn: ("email_addresses", "email_keys"),
      hasDomain: true, hasCompanyKey: true, hasPersonKey: true, hasRegistrationID: true,
      displayName: "trim(concat_ws(' ', first_name, last_name, CASE WHEN company IS NOT NULL THEN '(' || company || ')' END))",
      phoneHits:
        "CASE WHEN phone_numbers && $P THEN ARRAY(SELECT unnest(phone_numbers) INTERSECT SELECT unnest($P)) ELSE '{}' END"),
    .contact: Source(
      type: .contact, table: "contacts", emailColumn: ("email_addresses", "email_keys"),
      hasDomain: false, hasCompanyKey: false, hasPersonKey: true, hasRegistrationID: false,
      displayName: "trim(concat_ws(' ', first_name, last_name))",
      phoneHits:
        "CASE WHEN phone_numbers && $P THEN ARRAY(SELECT unnest(phone_numbers) INTERSECT SELECT unnest($P)) ELSE '{}' END"),
    .account: Source(
      type: .account, table: "accounts", emailColumn: nil, hasDomain: true,
      hasCompanyKey: true, hasPersonKey: false, hasRegistrationID: true, displayName: "name",
      phoneHits: "CASE WHEN phone = ANY($P) THEN ARRAY[phone] ELSE '{}'::text[] END"),
  ]

  /// The matches for `subject` in the given record types the caller may see, best first.
  public func find(
    _ subject: MatchSubject, in types: [RecordType], ignoringPlusTags: Bool, excluding excluded: (RecordType, UUID)?,
    minScore: Double, limit: Int, principal: Principal
  ) async throws -> [DuplicateMatch] {
    guard !subject.isEmpty else { return [] }
    let queries = Self.queries(
      subject, in: types, ignoringPlusTags: ignoringPlusTags, minScore: minScore, tenant: principal.tenantID)
    let found = try await database.read(principal.tenantID, queries) { results in
      try Self.matches(results, of: subject, in: types, excluding: excluded)
    }
    let visible = found.filter { principal.canRead($0.recordType, ownedBy: $0.ownerID) }
    return DuplicateMatch.ranked(visible, minScore: minScore, limit: limit)
  }

  /// Applies `rule` (or `override`'s action) to a record about to be written, inside the writer's
  /// transaction: `.block` throws ``CRMError/duplicate(_:)``; `.warn` returns the findings; `.allow`
  /// looks nothing up.
  ///
  /// The match keys of the record are locked first (transaction-scoped advisory locks on its email and
  /// phone keys), so two concurrent writes of the same person cannot both miss each other.
  static func check(
    _ connection: PostgresConnection, _ subject: MatchSubject, excluding excluded: (RecordType, UUID)?, rule: DuplicateRule,
    override: DuplicateAction?, principal: Principal
  ) throws -> DuplicateFindings {
    let action = override ?? rule.action
    let restricted = rule.restricting(subject)
    guard action != .allow, !restricted.isEmpty else { return .none }
    try lockKeys(connection, restricted, tenant: principal.tenantID)
    let ranked = try ranked(
      connection, restricted, in: rule.matchRecordTypes, rule: rule, excluding: excluded, tenant: principal.tenantID)
    let visible = ranked.filter { principal.canRead($0.recordType, ownedBy: $0.ownerID) }
    let findings = DuplicateFindings(action: action, matches: visible, hiddenMatchCount: ranked.count - visible.count)
    if action == .block, !findings.isEmpty { throw CRMError.duplicate(findings) }
    return findings
  }

  /// Every record of `types` in the tenant matching `subject` at `rule`'s score or better, best first,
  /// whoever may see it: the caller filters for visibility.
  static func ranked(
    _ connection: PostgresConnection, _ subject: MatchSubject, in types: [RecordType], rule: DuplicateRule,
    excluding excluded: (RecordType, UUID)?, tenant: UUID
  ) throws -> [DuplicateMatch] {
    let results = try connection.pipeline(
      queries(subject, in: types, ignoringPlusTags: rule.ignorePlusTags, minScore: rule.minScore, tenant: tenant))
    return DuplicateMatch.ranked(
      try matches(results, of: subject, in: types, excluding: excluded), minScore: rule.minScore, limit: 100)
  }

  /// Serializes writers of the same email and phone keys in this tenant until the transaction ends;
  /// locks are taken in sorted order so writers never deadlock.
  static func lockKeys(_ connection: PostgresConnection, _ subject: MatchSubject, tenant: UUID) throws {
    let keys = Set(
      subject.emails.compactMap { EmailAddress($0).map { "e:" + MatchKeys.email($0, ignoringPlusTags: true) } }
        + subject.phones.map { "p:" + $0 })
    guard !keys.isEmpty else { return }
    let prefix = tenant.lowercasedString + "|"
    try connection.query(
      """
      SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
      FROM (SELECT \(prefix) || k AS k FROM unnest(\(keys.sorted())::text[]) AS k ORDER BY 1) AS sorted
      """)
  }

  /// One query per record type, in `types` order, after a statement that sets the trigram threshold.
  static func queries(
    _ subject: MatchSubject, in types: [RecordType], ignoringPlusTags: Bool, minScore: Double, tenant: UUID
  ) -> [PostgresQuery] {
    [similarityThreshold]
      + types.compactMap { sources[$0] }.map {
        query(for: $0, subject: subject, ignoringPlusTags: ignoringPlusTags, minScore: minScore, tenant: tenant)
      }
  }

  /// `1 - Π(1 - weight) >= minScore` over the columns of a match row, as ``DuplicateMatch/score``
  /// computes it (less a rounding margin: SQL may keep a row Swift then drops, never the reverse).
  static func scoreAtLeast(_ minScore: Double) -> PostgresQuery {
    func weight(_ key: String) -> PostgresQuery { "\(MatchReason.weight(of: key))::float8" }
    let threshold = minimumNameSimilarity
    return """
      1 - power(1 - \(weight("email")), cardinality(email_hits)) * power(1 - \(weight("phone")), cardinality(phone_hits))
        * CASE WHEN domain_hit THEN 1 - \(weight("domain")) ELSE 1 END
        * CASE WHEN registration_hit THEN 1 - \(weight("registration_id")) ELSE 1 END
        * CASE WHEN company_key IS NOT NULL AND company_sim >= \(threshold)::float8 THEN 1 - \(weight("company_name")) * company_sim ELSE 1 END
        * CASE WHEN person_key IS NOT NULL AND person_sim >= \(threshold)::float8 THEN 1 - \(weight("person_name")) * person_sim ELSE 1 END
        >= \(minScore - 1e-9)::float8
      """
  }

  /// Name candidates must be at least this similar (pg_trgm's `%`, for the rest of the transaction).
  /// Reasons below it are dropped anyway; with pg_trgm's default of 0.3 the 200 candidates a lookup
  /// keeps could all be weak ones, crowding out the real matches.
  static let minimumNameSimilarity = 0.5
  static let similarityThreshold: PostgresQuery =
    "SELECT set_config('pg_trgm.similarity_threshold', \(String(minimumNameSimilarity)), true)"

  /// The matches in the results of ``queries(_:in:ignoringPlusTags:minScore:tenant:)``, with their reasons.
  static func matches(
    _ results: [PostgresResult], of subject: MatchSubject, in types: [RecordType], excluding excluded: (RecordType, UUID)?
  ) throws -> [DuplicateMatch] {
    var matches: [DuplicateMatch] = []
    for (source, result) in zip(types.compactMap { sources[$0] }, results.dropFirst()) {
      for row in result.rows {
        let id: UUID = try row.decode("id")
        if let excluded, excluded.0 == source.type, excluded.1 == id { continue }
        var reasons: [MatchReason] = []
        for email in try row.decode("email_hits", as: [String].self) {
          reasons.append(MatchReason(key: "email", kind: .normalized, similarity: 1, value: email))
        }
        for phone in try row.decode("phone_hits", as: [String].self) {
          reasons.append(MatchReason(key: "phone", kind: .normalized, similarity: 1, value: phone))
        }
        if try row.decode("domain_hit", as: Bool?.self) == true, let domain = subject.domain {
          reasons.append(MatchReason(key: "domain", kind: .normalized, similarity: 1, value: domain))
        }
        if try row.decode("registration_hit", as: Bool?.self) == true, let registration = subject.registrationID {
          reasons.append(MatchReason(key: "registration_id", kind: .normalized, similarity: 1, value: registration))
        }
        for (key, column, similarityColumn) in [
          ("company_name", "company_key", "company_sim"), ("person_name", "person_key", "person_sim"),
        ] {
          if let similarity = try row.decode(similarityColumn, as: Double?.self), similarity >= minimumNameSimilarity,
            let value = try row.decode(column, as: String?.self)
          {
            reasons.append(
              MatchReason(key: key, kind: similarity >= 1 ? .normalized : .similar, similarity: similarity, value: value))
          }
        }
        if reasons.isEmpty { continue }
        matches.append(
          DuplicateMatch(
            recordType: source.type, recordID: id, displayName: try row.decode("display_name"), reasons: reasons,
            ownerID: try row.decode("owner_id")))
      }
    }
    return matches
  }

  /// The keys an existing record is matched by; NOT_FOUND when it is missing or out of sight.
  public func subject(of type: RecordType, id: UUID, principal: Principal) async throws -> MatchSubject {
    switch type {
    case .lead: try await RecordMechanics<Lead>.get(database, id: id, principal: principal).fields.matchSubject
    case .contact: try await RecordMechanics<Contact>.get(database, id: id, principal: principal).fields.matchSubject
    case .account: try await RecordMechanics<Account>.get(database, id: id, principal: principal).fields.matchSubject
    case .interaction, .opportunity, .task, .ticket, .invoice, .payment, .creditNote, .dispute, .collection:
      throw CRMError.invalid("record.record_type", "must be a lead, a contact or an account")
    }
  }

  /// The match query for one table. `$P` in the source's snippets is the phone array parameter.
  private static func query(
    for source: Source, subject: MatchSubject, ignoringPlusTags: Bool, minScore: Double, tenant: UUID
  ) -> PostgresQuery {
    // Plus tags: stored email_keys hold both forms, so compare stripped keys against them; otherwise
    // compare full addresses with the addresses as entered.
    let emails: [String] =
      ignoringPlusTags
      ? Array(Set(subject.emails.compactMap { EmailAddress($0).map { MatchKeys.email($0, ignoringPlusTags: true) } })).sorted()
      : Array(Set(subject.emails.compactMap { EmailAddress($0)?.value })).sorted()
    let phones = subject.phones
    let emailColumn = source.emailColumn.map { ignoringPlusTags ? $0.keys : $0.full }
    let domain = source.hasDomain ? subject.domain : nil
    let company = source.hasCompanyKey ? subject.companyKey : nil
    let person = source.hasPersonKey ? subject.personKey : nil
    let registration = source.hasRegistrationID ? subject.registrationID : nil
    let hasKeys =
      (emailColumn != nil && !emails.isEmpty) || !phones.isEmpty || domain != nil
      || company != nil || person != nil || registration != nil
    guard hasKeys else { return "SELECT NULL::uuid AS id WHERE false" }

    var select: PostgresQuery = "SELECT id, owner_id, \(unsafeSQL: source.displayName) AS display_name"
    if let emailColumn {
      // The overlap test first: most candidates share no address, and the set operation costs a subplan.
      select.append(
        """
        , CASE WHEN \(unsafeSQL: emailColumn) && \(emails)::text[]
          THEN ARRAY(SELECT unnest(\(unsafeSQL: emailColumn)) INTERSECT SELECT unnest(\(emails)::text[])) ELSE '{}' END AS email_hits
        """)
    } else {
      select.append(unsafeSQL: ", '{}'::text[] AS email_hits")
    }
    select.append(", ")
    select.append(Self.substitutePhones(source.phoneHits, "\(phones)::text[]"))
    select.append(unsafeSQL: " AS phone_hits")
    if source.hasDomain {
      select.append(", domain = \(subject.domain)::text AS domain_hit")
    } else {
      select.append(unsafeSQL: ", NULL::boolean AS domain_hit")
    }
    if source.hasRegistrationID {
      select.append(", registration_id = \(subject.registrationID)::text AS registration_hit")
    } else {
      select.append(unsafeSQL: ", NULL::boolean AS registration_hit")
    }
    if source.hasCompanyKey {
      select.append(", company_key, \(Self.similarity("company_key", subject.companyKey)) AS company_sim")
    } else {
      select.append(unsafeSQL: ", NULL::text AS company_key, NULL::float8 AS company_sim")
    }
    if source.hasPersonKey {
      select.append(", person_key, \(Self.similarity("person_key", subject.personKey)) AS person_sim")
    } else {
      select.append(unsafeSQL: ", NULL::text AS person_key, NULL::float8 AS person_sim")
    }
    // The candidates: one index lookup per key, united, in crm_match_candidates (0011_match_candidates.sql,
    // 0012, 0014, 0015), which runs as the owner because under row-level security `&&` cannot use its GIN
    // indexes. (An OR of the keys in one WHERE had led the planner to scan the tenant: 667 ms.) The
    // rows themselves are read here, under the policy, by primary key.
    var query: PostgresQuery = """
      WITH hits AS (
        SELECT crm_match_candidates AS id FROM crm_match_candidates(\(source.table), \(emailColumn), \(emails)::text[],
          \(phones)::text[], \(domain), \(company), \(person), \(registration)))
      """
    query.append(select)
    // No LIMIT here: crm_match_candidates bounds each lookup (200 per exact key, 50 per exact name, 30
    // neighbours per name scan), and a cut here would drop exact matches behind a crowd of similar names.
    query.append(" FROM \(unsafeSQL: source.table) JOIN hits USING (id) WHERE tenant_id = \(tenant) AND archived_at IS NULL")
    // Rows that cannot reach `minScore` are dropped before they travel: a common name brings a few
    // hundred similar ones, most too weak alone (a similar person name scores 0.55 × similarity).
    // OFFSET 0 keeps the subquery whole: pulled up, its similarities would be computed twice a row.
    return "SELECT * FROM (\(query) OFFSET 0) AS m WHERE \(scoreAtLeast(minScore))"
  }

  /// Trigram similarity of `column` to `key`, skipping the computation for equal keys (a common name
  /// brings up to 50 of them).
  private static func similarity(_ column: String, _ key: String?) -> PostgresQuery {
    "CASE WHEN \(unsafeSQL: column) = \(key)::text THEN 1 ELSE similarity(\(unsafeSQL: column), \(key)::text) END::float8"
  }

  /// Splits a snippet at `$P` and binds the phone array there (each occurrence its own parameter).
  private static func substitutePhones(_ snippet: String, _ parameter: PostgresQuery) -> PostgresQuery {
    var query = PostgresQuery(unsafeSQL: "")
    let parts = snippet.components(separatedBy: "$P")
    for (index, part) in parts.enumerated() {
      query.append(unsafeSQL: part)
      if index < parts.count - 1 { query.append(parameter) }
    }
    return query
  }
}
