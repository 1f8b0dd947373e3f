public import CRMCore
import Foundation
import LibPQ

/// Search across leads, contacts, accounts, opportunities and tickets (docs/search.md): one trigram
/// index per table over the record's folded `search_text` (migrations 0064, 0065 and 0068), read by
/// `crm_search_matches` in the caller's tenant; visibility applied inside the query — the same
/// conditions as each type's list, on each match joined back to its row — never by filtering a
/// fetched page. Records holding the query come first (the text starting with it, then a word, then
/// anywhere); only when none does, near matches by word similarity ≥ 0.5 (a typo). Keyset-paged on
/// (score, type, id).
public struct SearchStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// One page of the records matching `query` that the caller may see, best first.
  public func search(_ query: SearchQuery, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> (hits: [SearchHit], nextPageToken: String?)
  {
    let tenant = principal.tenantID
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: query.fingerprint)
    var after: (score: Double, rank: Int, id: UUID)?
    // A token of the fuzzy phase says so ("f|score|rank"); the substring phase's has two parts.
    var fuzzy = false
    if let token {
      var parts = token.key.split(separator: "|")
      if parts.first == "f" {
        fuzzy = true
        parts.removeFirst()
      }
      guard parts.count == 2, let score = Double(parts[0]), let rank = Int(parts[1]) else {
        throw CRMError.invalid("page_token", "is not a search page token", reason: "INVALID_FORMAT")
      }
      after = (score, rank, token.id)
    }
    // Folded once, by the same function as the stored text: inside the statement `unaccent` (only
    // STABLE) would run again for every candidate row the index hands back.
    let text = try await database.read(tenant, ["SELECT crm_search_fold(\(query.phoneDigits ?? query.text)) AS folded"]) {
      try $0[0][0].decode("folded", as: String.self)
    }
    let like = Self.likeEscaped(text)
    func run(fuzzy: Bool) async throws -> [(rank: Int, id: UUID, score: Double)] {
      var union: PostgresQuery = ""
      for (rank, type) in query.types.enumerated() {
        if rank > 0 { union.append(unsafeSQL: " UNION ALL ") }
        let part = Self.part(
          type, rank: rank, text: text, like: like, fuzzy: fuzzy, after: after, limit: pageSize + 1, principal: principal)
        union.append("(\(part))")
      }
      return try await database.read(
        tenant,
        [
          "SELECT set_config('pg_trgm.word_similarity_threshold', '0.5', true)",
          "SELECT type_rank, id, score FROM (\(union)) hits ORDER BY score DESC, type_rank, id LIMIT \(pageSize + 1)",
        ]
      ) { results in
        try results[1].rows.map { row in
          (
            rank: try row.decode("type_rank", as: Int.self), id: try row.decode("id", as: UUID.self),
            score: try row.decode("score", as: Double.self)
          )
        }
      }
    }
    var rows = try await run(fuzzy: fuzzy)
    // Nothing holds the text: near matches (a typo), for words — emails and numbers share too many
    // trigrams ("mail", "example") with everything for similarity to mean anything.
    if rows.isEmpty, token == nil, query.phoneDigits == nil, !text.contains(where: { $0 == "@" || $0.isNumber }) {
      fuzzy = true
      rows = try await run(fuzzy: true)
    }
    let page = Array(rows.prefix(pageSize))
    let records = try await load(page.map { (query.types[$0.rank], $0.id) }, tenant: tenant)
    let hits = page.compactMap { row in records[row.id].map { SearchHit(record: $0, score: row.score) } }
    let next =
      rows.count > pageSize
      ? page.last.map {
        tokens.encode(PageToken(key: "\(fuzzy ? "f|" : "")\($0.score)|\($0.rank)", id: $0.id, query: query.fingerprint))
      } : nil
    return (hits, next)
  }

  /// One record type's matches, best first, after the page token, at most `limit`: by substring
  /// (score 2 when the text starts with the query, 1.5 when a word does, 1 when it is inside, plus a
  /// fraction that prefers shorter texts), or with `fuzzy` by word similarity (the score).
  static func part(
    _ type: RecordType, rank: Int, text: String, like: String, fuzzy: Bool,
    after: (score: Double, rank: Int, id: UUID)?, limit: Int, principal: Principal
  ) -> PostgresQuery {
    let (table, conditions) = source(type, principal: principal)
    var keyset: PostgresQuery = ""
    if let after {
      keyset =
        rank > after.rank
        ? " WHERE score <= \(after.score)::float8"
        : rank == after.rank
          ? " WHERE (score < \(after.score)::float8 OR (score = \(after.score)::float8 AND id > \(after.id)))"
          : " WHERE score < \(after.score)::float8"
    }
    // The matches come from crm_search_matches (migration 0068: the trigram index, as the owner, in the
    // caller's tenant); each is joined back to its row here, as crm_app, under the caller's visibility.
    let matches: PostgresQuery = """
      SELECT id, m.match_text AS s
      FROM crm_search_matches(\(table), \(fuzzy ? nil : "%" + like + "%"), \(fuzzy ? text : nil)) m
      JOIN \(unsafeSQL: table) ON \(unsafeSQL: table).tenant_id = \(principal.tenantID) AND \(unsafeSQL: table).id = m.match_id
      WHERE \(conditions)
      """
    let scoring: PostgresQuery =
      fuzzy
      ? "word_similarity(\(text), s)::float8 AS score FROM (\(matches)) scoped"
      : """
      (CASE WHEN s LIKE \(like + "%") ESCAPE '\\' THEN 2 WHEN s LIKE \("% " + like + "%") ESCAPE '\\' THEN 1.5 ELSE 1 END
        + 1.0 / (2 + length(s)))::float8 AS score
      FROM (\(matches)) scoped
      """
    return """
      SELECT \(rank) AS type_rank, id, score FROM (SELECT id, \(scoring)) scored\(keyset)
      ORDER BY score DESC, id LIMIT \(limit)
      """
  }

  /// A type's table, and the conditions of what the caller may see.
  static func source(_ type: RecordType, principal: Principal) -> (String, PostgresQuery) {
    switch type {
    case .lead:
      return (
        Lead.table,
        RecordMechanics<Lead>.commonConditions(principal: principal, archive: .active, ownerID: nil, tag: nil, updatedSince: nil)
      )
    case .contact:
      return (
        Contact.table,
        RecordMechanics<Contact>.commonConditions(
          principal: principal, archive: .active, ownerID: nil, tag: nil, updatedSince: nil)
      )
    case .account:
      return (
        Account.table,
        RecordMechanics<Account>.commonConditions(
          principal: principal, archive: .active, ownerID: nil, tag: nil, updatedSince: nil)
      )
    case .opportunity:
      return (
        Opportunity.table,
        RecordMechanics<Opportunity>.commonConditions(
          principal: principal, archive: .active, ownerID: nil, tag: nil, updatedSince: nil)
      )
    default:
      var conditions: PostgresQuery = "tenant_id = \(principal.tenantID) AND archived_at IS NULL"
      if let owners = principal.readableOwners(.ticket) { conditions.append(" AND assignee_id = ANY(\(owners)::uuid[])") }
      return (Ticket.table, conditions)
    }
  }

  /// The records of a page, read in one round trip (a statement per type).
  func load(_ refs: [(RecordType, UUID)], tenant: UUID) async throws -> [UUID: SearchRecord] {
    let byType = Dictionary(grouping: refs, by: \.0).mapValues { $0.map(\.1) }
    let types = byType.keys.sorted { $0.rawValue < $1.rawValue }
    guard !types.isEmpty else { return [:] }
    func select(_ columns: String, _ table: String, _ ids: [UUID]) -> PostgresQuery {
      "SELECT \(unsafeSQL: columns) FROM \(unsafeSQL: table) WHERE tenant_id = \(tenant) AND id = ANY(\(ids)::uuid[])"
    }
    let queries: [PostgresQuery] = types.map { type in
      let ids = byType[type]!
      switch type {
      case .lead: return select(Lead.columns, Lead.table, ids)
      case .contact: return select(Contact.columns, Contact.table, ids)
      case .account: return select(Account.columns, Account.table, ids)
      case .opportunity: return select(Opportunity.columns, Opportunity.table, ids)
      default: return select(Ticket.columns, Ticket.table, ids)
      }
    }
    return try await database.read(tenant, queries) { results in
      var records: [UUID: SearchRecord] = [:]
      for (type, result) in zip(types, results) {
        for row in result.rows {
          let record: SearchRecord =
            switch type {
            case .lead: .lead(try Lead(row: row))
            case .contact: .contact(try Contact(row: row))
            case .account: .account(try Account(row: row))
            case .opportunity: .opportunity(try Opportunity(row: row))
            default: .ticket(try Ticket(row: row))
            }
          let id: UUID = try row.decode("id")
          records[id] = record
        }
      }
      return records
    }
  }

  /// `text` with LIKE's wildcards and escape character escaped.
  static func likeEscaped(_ text: String) -> String {
    var out = ""
    for character in text {
      if character == "\\" || character == "%" || character == "_" { out.append("\\") }
      out.append(character)
    }
    return out
  }
}
