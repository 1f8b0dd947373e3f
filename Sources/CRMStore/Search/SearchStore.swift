public import CRMCore
import Foundation
import LibPQ

/// Search across leads, contacts, accounts, opportunities, tickets and invoices (docs/search.md). Each type's
/// matches are found and ranked by `crm_search_top` (migration 0071: the trigram index, or the email
/// index for a whole address, read as the owner in the caller's tenant), which returns only the best
/// few after the page token; those are joined back to their rows as crm_app under the caller's
/// visibility — the same conditions as each type's list — and, when visibility hid too many, the
/// type is asked again for more. Phases: a whole email address exactly; else records holding the
/// query (the text starting with it, then a word, then anywhere); only when none does, near matches:
/// each word of the query, or its nearest words in the tenant's vocabulary when the records have no
/// such word (a typo), anywhere in the text. Invoices match by number (its beginning), in the substring
/// phase. Keyset-paged on (score, type, id).
public struct SearchStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// The phases of a search, in order; a page token names its phase (the substring phase's bare, as
  /// before phases had names).
  enum Phase: String {
    case exact = "e"
    case substring = "s"
    case near = "f"
  }

  /// A position in the ranked results: a page token's, or a match's.
  typealias Position = (score: Double, rank: Int, id: UUID)

  /// The ids before and after every other.
  static let lowestID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
  static let highestID = UUID(
    uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))

  /// One page of the records matching `query` that the caller may see, best first.
  public func search(_ query: SearchQuery, pageSize: Int, pageToken: String, principal: Principal) async throws
    -> SearchPage
  {
    let tenant = principal.tenantID
    let tokens = try await database.pageTokens()
    let token = try tokens.decode(pageToken, query: query.fingerprint)
    var after: Position?
    var phase = query.emailAddress == nil ? Phase.substring : .exact
    if let token {
      var parts = token.key.split(separator: "|")
      phase = .substring
      if let first = parts.first, let marked = Phase(rawValue: String(first)) {
        phase = marked
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
    let needed = pageSize + 1
    var (rows, sampled) = try await matches(
      phase, query: query, text: text, after: after, needed: needed, principal: principal)
    if rows.isEmpty, token == nil, phase == .exact {
      phase = .substring
      (rows, sampled) = try await matches(phase, query: query, text: text, after: nil, needed: needed, principal: principal)
    }
    // Nothing holds the text: near matches, for words — emails and numbers share too many trigrams
    // ("mail", "example") with everything for nearness to mean anything.
    if rows.isEmpty, token == nil, query.phoneDigits == nil, !text.contains(where: { $0 == "@" || $0.isNumber }) {
      phase = .near
      (rows, sampled) = try await matches(phase, query: query, text: text, after: nil, needed: needed, principal: principal)
    }
    let page = Array(rows.prefix(pageSize))
    let records = try await load(page.map { (query.types[$0.rank], $0.id) }, tenant: tenant)
    let hits = page.compactMap { row in records[row.id].map { SearchHit(record: $0, score: row.score) } }
    let next =
      rows.count > pageSize
      ? page.last.map {
        tokens.encode(
          PageToken(
            key: "\(phase == .substring ? "" : phase.rawValue + "|")\($0.score)|\($0.rank)", id: $0.id,
            query: query.fingerprint))
      } : nil
    return SearchPage(hits: hits, nextPageToken: next, sampled: sampled)
  }

  /// The best `needed` matches of a phase after `after` that the caller may see, across the query's
  /// types, and whether a type had more matches than are ranked (`crm_search_top` ranks a sample of
  /// 1,000). Each type first reads `needed` matches; a type whose read was full but left fewer than
  /// `needed` visible reads again, eight times as many, until it has enough or has no more.
  func matches(
    _ phase: Phase, query: SearchQuery, text: String, after: Position?, needed: Int, principal: Principal
  ) async throws -> (matches: [Position], sampled: Bool) {
    let tenant = principal.tenantID
    let mode: String
    var terms: [[String]] = []
    var lookup = text
    switch phase {
    case .exact:
      mode = "email"
      lookup = query.emailAddress ?? text
    case .substring:
      mode = "substring"
      terms = [[Self.likeEscaped(text)]]
    case .near:
      mode = "words"
      terms = try await corrections(text, tenant: tenant).map { $0.map(Self.likeEscaped) }
      if terms.isEmpty { return ([], false) }
    }
    let termsJSON = String(decoding: try JSONEncoder().encode(terms), as: UTF8.self)
    // An invoice number as typed (not folded: "2027-0042" is not a phone number there).
    let invoiceTerms = String(decoding: try JSONEncoder().encode([[Self.likeEscaped(query.text)]]), as: UTF8.self)
    var limits: [Int: Int] = [:]
    for (rank, type) in query.types.enumerated() {
      // Whole addresses are the leads' and contacts'; invoices are found by number only, in the
      // substring phase.
      switch phase {
      case .exact: if type != .lead && type != .contact { continue }
      case .substring: break
      case .near: if type == .invoice { continue }
      }
      limits[rank] = needed
    }
    var found: [Position] = []
    var sampled = false
    while !limits.isEmpty {
      let ranks = limits.keys.sorted()
      let parts: [PostgresQuery] = ranks.map { rank in
        query.types[rank] == .invoice
          ? Self.part(
            .invoice, rank: rank, mode: "number", terms: invoiceTerms, lookup: query.text, after: after,
            limit: limits[rank]!, principal: principal)
          : Self.part(
            query.types[rank], rank: rank, mode: mode, terms: termsJSON, lookup: lookup, after: after,
            limit: limits[rank]!, principal: principal)
      }
      let read = try await database.read(tenant, parts) { results in
        try results.map { result in
          try result.rows.map { row in
            (
              position: (
                score: try row.decode("score", as: Double.self), rank: try row.decode("type_rank", as: Int.self),
                id: try row.decode("id", as: UUID.self)
              ) as Position,
              visible: try row.decode("visible", as: Bool.self), capped: try row.decode("capped", as: Bool.self)
            )
          }
        }
      }
      for (rank, rows) in zip(ranks, read) {
        let visible = rows.filter(\.visible).map(\.position)
        let limit = limits[rank]!
        if rows.count < limit || visible.count >= needed {
          found += visible.prefix(needed)
          sampled = sampled || rows.contains(where: \.capped)
          limits[rank] = nil
        } else {
          limits[rank] = limit * 8
        }
      }
    }
    // UUIDs compare byte by byte, as PostgreSQL orders them.
    let best = found.sorted { ($1.score, $0.rank, $0.id) < ($0.score, $1.rank, $1.id) }
    return (Array(best.prefix(needed)), sampled)
  }

  /// For each word of the folded query, what a near match must hold: the word, when the tenant's
  /// records use it (or it is too short or numeric to correct), else the tenant's words with the
  /// fewest edits from it, at most three (`crm_search_corrections`, migration 0071, finds candidates;
  /// `SearchCorrection` picks); a word with none is left out.
  func corrections(_ text: String, tenant: UUID) async throws -> [[String]] {
    let words = text.split(separator: " ").map(String.init)
    guard !words.isEmpty else { return [] }
    return try await database.read(
      tenant, ["SELECT word_position, known, candidates FROM crm_search_corrections(\(words)::text[]) ORDER BY word_position"]
    ) { results in
      try results[0].rows.compactMap { row in
        let word = words[try row.decode("word_position", as: Int.self) - 1]
        if try row.decode("known", as: Bool.self) { return [word] }
        let near = SearchCorrection.nearest(to: word, among: try row.decode("candidates", as: [String]?.self) ?? [])
        return near.isEmpty ? nil : near
      }
    }
  }

  /// One record type's best `limit` matches after `after` (`crm_search_top`, ranked as the owner in
  /// the caller's tenant), each joined back to its row as crm_app: `visible` when the caller may see
  /// it (the type's list conditions).
  static func part(
    _ type: RecordType, rank: Int, mode: String, terms: String, lookup: String, after: Position?, limit: Int,
    principal: Principal
  ) -> PostgresQuery {
    let (table, conditions) = source(type, principal: principal)
    // The sample is drawn from the owners the caller may read (and their pools), so a rep's own
    // records are not crowded out of it by others'; the join below still decides.
    let owners = type == .invoice ? nil : principal.readableOwners(type)
    let pools: [UUID]? = owners == nil ? nil : Array(principal.pools.keys)
    // After the token's position in (score DESC, type, id) order: within its type, ties after its id;
    // in a later type, every tie; in an earlier type, no tie.
    let afterID: UUID? = after.map {
      rank == $0.rank ? $0.id : rank > $0.rank ? Self.lowestID : Self.highestID
    }
    return """
      SELECT \(rank) AS type_rank, m.match_id AS id, m.match_score AS score, m.match_capped AS capped,
        \(unsafeSQL: table).id IS NOT NULL AS visible
      FROM crm_search_top(
        \(table), \(mode), \(terms)::jsonb, \(lookup), \(owners)::uuid[], \(pools)::uuid[], \(after?.score)::float8,
        \(afterID)::uuid, \(limit)) m
      LEFT JOIN \(unsafeSQL: table) ON \(unsafeSQL: table).id = m.match_id AND \(conditions)
      ORDER BY m.match_score DESC, m.match_id
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
    case .invoice:
      // Billing visibility: the account's owner and their managers, its collector, admins, integrations.
      return ("invoices", BillingStore.scope(.invoices, accountID: nil, includeChildren: false, principal: principal))
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
      case .invoice: return select(Invoice.columns, "invoices", ids)
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
            case .invoice: .invoice(try Invoice(row: row, lines: []))
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
