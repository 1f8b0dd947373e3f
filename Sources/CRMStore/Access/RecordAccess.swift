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
    }
  }

  /// Checks every linked record exists, is not archived and is visible to the caller, in one query per
  /// type. NOT_FOUND names the first that is not; FAILED_PRECONDITION an archived one.
  static func requireReadable(_ connection: PostgresConnection, _ links: [RecordLink], principal: Principal) throws {
    let byType = Dictionary(grouping: links, by: \.type)
    for type in byType.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
      let ids = byType[type]!.map(\.id)
      let rows = try connection.query(
        """
        SELECT id, owner_id, archived_at IS NOT NULL AS archived FROM \(unsafeSQL: table(type))
        WHERE tenant_id = \(principal.tenantID) AND id = ANY(\(ids)::uuid[])
        """)
      var found: [UUID: (owner: UUID?, archived: Bool)] = [:]
      for row in rows.rows { found[try row.decode("id")] = (try row.decode("owner_id"), try row.decode("archived")) }
      for id in ids {
        guard let record = found[id], principal.canRead(type, ownedBy: record.owner) else {
          throw CRMError.notFound("\(type.rawValue) \(id.lowercasedString) not found")
        }
        if record.archived {
          throw CRMError.failedPrecondition("\(type.rawValue) \(id.lowercasedString) is archived; undelete it first")
        }
      }
    }
  }

  /// Throws NOT_FOUND unless the record exists and the caller may see it (archived records included).
  static func requireVisible(_ connection: PostgresConnection, _ link: RecordLink, principal: Principal) throws {
    guard try isVisible(connection, link, principal: principal) else {
      throw CRMError.notFound("\(link.type.rawValue) \(link.id.lowercasedString) not found")
    }
  }

  /// Whether the record exists and the caller may see it (archived records included).
  static func isVisible(_ connection: PostgresConnection, _ link: RecordLink, principal: Principal) throws -> Bool {
    let owner = try connection.query(
      "SELECT owner_id FROM \(unsafeSQL: table(link.type)) WHERE tenant_id = \(principal.tenantID) AND id = \(link.id)"
    ).first.map { try $0.decode("owner_id", as: UUID?.self) }
    guard let owner else { return false }
    return principal.canRead(link.type, ownedBy: owner)
  }

  /// Moves `last_activity_at` on every linked record forward to `time` (never back), without touching
  /// their version: activity is the system's bookkeeping, not an edit, so callers' etags stay valid.
  static func touchActivity(_ connection: PostgresConnection, _ links: [RecordLink], at time: Timestamp, tenant: UUID) throws {
    let byType = Dictionary(grouping: links, by: \.type)
    for type in byType.keys.sorted(by: { $0.rawValue < $1.rawValue }) where type != .interaction {
      try connection.query(
        """
        UPDATE \(unsafeSQL: table(type)) SET last_activity_at = greatest(last_activity_at, \(time))
        WHERE tenant_id = \(tenant) AND id = ANY(\(byType[type]!.map(\.id))::uuid[])
        """)
    }
  }
}
