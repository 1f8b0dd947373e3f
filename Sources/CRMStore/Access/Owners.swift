import CRMCore
import Foundation
import LibPQ

/// Rules for giving a record to an owner.
enum Owners {
  /// The new owner must be an active user of the tenant, and the caller must be allowed to hand work
  /// to them: themselves, anyone in their hierarchy, or anyone when admin.
  /// Giving a record to oneself needs no query: the caller was just authenticated as an active user.
  static func checkAssignable(_ connection: PostgresConnection, owner: UUID, field: String, principal: Principal) throws {
    if owner == principal.userID { return }
    guard principal.canWrite(ownedBy: owner) else {
      throw CRMError.permissionDenied("\(field): you may assign records only to yourself or to users in your teams")
    }
    let active = try connection.query(
      "SELECT is_active FROM users WHERE tenant_id = \(principal.tenantID) AND id = \(owner)"
    ).first.map { try $0.decode("is_active", as: Bool.self) }
    guard active == true else { throw CRMError.invalid(field, "no such active user", reason: "NOT_FOUND") }
  }
}
