import CRMCore
import Foundation
import LibPQ

/// Reading any kind of record by reference: which table holds it, and whether the caller may see it.
enum RecordAccess {
  /// The table of a record type.
  static func table(_ type: RecordType) -> String {
    switch type {
    case .account: Account.table
    case .contact: Contact.table
    case .lead: Lead.table
    case .interaction: Interaction.table
    case .opportunity: Opportunity.table
    case .task: WorkTask.table
    case .ticket: Ticket.table
    case .invoice: "invoices"
    case .payment: "payments"
    case .creditNote: "credit_notes"
    case .dispute: "invoice_disputes"
    case .collection: "account_collections"
    }
  }

  /// The select list and table `states` reads a type's access facts from: id, the owner deciding
  /// visibility (a billing fact's is its account's, with the account's collector), pool and archived
  /// flag, with the table aliased `r`.
  static func accessSource(_ type: RecordType) -> String {
    if type.isBilling {
      return """
        r.id, a.owner_id, c.collector_id, NULL::uuid AS pool_id, false AS archived
        FROM \(table(type)) r JOIN accounts a ON a.tenant_id = r.tenant_id AND a.id = r.account_id
        LEFT JOIN account_collections c ON c.tenant_id = r.tenant_id AND c.account_id = r.account_id
        """
    }
    let owner = type == .ticket ? "r.assignee_id AS owner_id" : "r.owner_id"
    let pool = type == .lead || type == .account ? "r.pool_id" : "NULL::uuid AS pool_id"
    return "r.id, \(owner), NULL::uuid AS collector_id, \(pool), r.archived_at IS NOT NULL AS archived FROM \(table(type)) r"
  }

  /// Whether each named record exists and is in the caller's sight, and whether it is archived: one
  /// query per record type. Records that do not exist are absent from the answer.
  static func states(_ connection: PostgresConnection, _ links: [RecordLink], principal: Principal) throws
    -> [RecordLink: (visible: Bool, archived: Bool)]
  {
    var states: [RecordLink: (visible: Bool, archived: Bool)] = [:]
    let byType = Dictionary(grouping: links, by: \.type)
    for type in byType.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
      let rows = try connection.query(
        """
        SELECT \(unsafeSQL: accessSource(type))
        WHERE r.tenant_id = \(principal.tenantID) AND r.id \(isAnyOf: byType[type]!.map(\.id), type: "uuid")
        """)
      for row in rows.rows {
        let link = RecordLink(type: type, id: try row.decode("id"))
        let owner: UUID? = try row.decode("owner_id")
        let visible =
          type.isBilling
          ? principal.canReadBilling(accountOwner: owner, collector: try row.decode("collector_id"))
          : principal.canRead(type, ownedBy: owner, pool: try row.decode("pool_id"))
        states[link] = (visible, try row.decode("archived"))
      }
    }
    return states
  }

  /// Checks every linked record exists, is not archived and is visible to the caller. NOT_FOUND names
  /// the first that is not; FAILED_PRECONDITION an archived one.
  static func requireReadable(_ connection: PostgresConnection, _ links: [RecordLink], principal: Principal) throws {
    let states = try states(connection, links, principal: principal)
    for link in links {
      guard let state = states[link], state.visible else {
        throw CRMError.notFound("\(link.type.rawValue) \(link.id.lowercasedString) not found")
      }
      if state.archived {
        throw CRMError.failedPrecondition("\(link.type.rawValue) \(link.id.lowercasedString) is archived; undelete it first")
      }
    }
  }

  /// Throws NOT_FOUND unless the record exists and the caller may see it (archived records included).
  static func requireVisible(_ connection: PostgresConnection, _ link: RecordLink, principal: Principal) throws {
    guard try states(connection, [link], principal: principal)[link]?.visible == true else {
      throw CRMError.notFound("\(link.type.rawValue) \(link.id.lowercasedString) not found")
    }
  }

  /// Moves `last_activity_at` on every linked record forward to `time` (never back), without touching
  /// their version: activity is the system's bookkeeping, not an edit, so callers' etags stay valid.
  static func touchActivity(_ connection: PostgresConnection, _ links: [RecordLink], at time: Timestamp, tenant: UUID) throws {
    let byType = Dictionary(grouping: links, by: \.type)
    for type in byType.keys.sorted(by: { $0.rawValue < $1.rawValue }) where type != .interaction && !type.isBilling {
      try connection.query(
        """
        UPDATE \(unsafeSQL: table(type)) SET last_activity_at = greatest(last_activity_at, \(time))
        WHERE tenant_id = \(tenant) AND id \(isAnyOf: byType[type]!.map(\.id), type: "uuid")
        """)
    }
  }
}
