public import CRMCore
public import Foundation
import LibPQ

extension AccessStore {
  /// The principal `crmd admin` acts as: an admin of the given tenant (the system tenant by default),
  /// found over a direct connection that row-level security does not bind. Only someone who can reach
  /// the database directly can run it, which is the point: it recovers from a lost admin token.
  public static func operatorPrincipal(connectionString: String, tenantID: UUID?) throws -> Principal {
    let connection = try PostgresConnection(connectionString: connectionString)
    defer { connection.close() }
    let tenantRow: PostgresRow?
    if let tenantID {
      tenantRow = try connection.query("SELECT id, is_system FROM tenants WHERE id = \(tenantID)").first
    } else {
      tenantRow = try connection.query("SELECT id, is_system FROM tenants WHERE is_system").first
    }
    guard let tenantRow else { throw CRMError.notFound("no such tenant (has crmd been started once?)") }
    let tenant: UUID = try tenantRow.decode("id")
    guard
      let admin = try connection.query(
        "SELECT id FROM users WHERE tenant_id = \(tenant) AND role = 'admin' AND is_active ORDER BY created_at LIMIT 1"
      ).first
    else { throw CRMError.notFound("the tenant has no active admin") }
    return Principal(
      tenantID: tenant, userID: try admin.decode("id"), role: .admin, ownersInHierarchy: [],
      isSystemTenant: try tenantRow.decode("is_system"))
  }

  /// The id of the user with `email` in the principal's tenant.
  public func userID(email: String, principal: Principal) async throws -> UUID {
    try await database.withTenant(principal.tenantID) { connection in
      guard
        let row = try connection.query(
          "SELECT id FROM users WHERE tenant_id = \(principal.tenantID) AND lower(email) = lower(\(email))"
        ).first
      else { throw CRMError.notFound("no user with that email") }
      return try row.decode("id")
    }
  }
}
