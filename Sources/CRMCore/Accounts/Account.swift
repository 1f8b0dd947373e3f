public import Foundation

/// An account as stored: identity, ownership, bookkeeping and its fields.
public struct Account: Sendable, Hashable, Identifiable {
  /// A UUIDv7.
  public var id: UUID
  /// Increases with every change; the etag.
  public var version: Int64
  /// The owning user; `nil` while the account sits in a shared pool (``poolID``).
  public var ownerID: UUID?
  /// The shared pool the account sits in, unowned.
  public var poolID: UUID?
  /// The pool a held account was claimed (or assigned) from, and when: hold limits and recycling read them.
  public var claimedFromPoolID: UUID?
  public var claimedAt: Timestamp?
  /// What callers set.
  public var fields: AccountFields
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  /// Set while archived.
  public var archivedAt: Timestamp?
  /// Set on a record merged into another: the survivor (this one is archived).
  public var mergedIntoID: UUID?
  /// When the newest interaction linked to it happened (maintained by the interaction log).
  public var lastActivityAt: Timestamp?

  /// Makes an account value.
  public init(
    id: UUID, version: Int64, ownerID: UUID?, fields: AccountFields, createdAt: Timestamp, updatedAt: Timestamp,
    createdBy: UUID?, updatedBy: UUID?, archivedAt: Timestamp?, mergedIntoID: UUID? = nil, lastActivityAt: Timestamp? = nil,
    poolID: UUID? = nil, claimedFromPoolID: UUID? = nil, claimedAt: Timestamp? = nil
  ) {
    self.poolID = poolID
    self.claimedFromPoolID = claimedFromPoolID
    self.claimedAt = claimedAt
    self.id = id
    self.version = version
    self.ownerID = ownerID
    self.fields = fields
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.createdBy = createdBy
    self.updatedBy = updatedBy
    self.archivedAt = archivedAt
    self.mergedIntoID = mergedIntoID
    self.lastActivityAt = lastActivityAt
  }

  /// The etag clients send back: the version as text.
  public var etag: String { Etag.make(version) }

  /// The fields and owner as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    var values = fields.snapshot
    values["owner_id"] = ownerID.map { .string($0.lowercasedString) } ?? .null
    values["pool_id"] = poolID.map { .string($0.lowercasedString) } ?? .null
    return values
  }
}

/// Etags: a record's version as text.
public enum Etag {
  /// The etag of a version.
  public static func make(_ version: Int64) -> String { String(version) }

  /// The version an etag names; `nil` for an empty etag (no check wanted). `"0"` is the etag of what
  /// was never written (an account's collection before anything was recorded): a write expecting it
  /// fails with ABORTED once something was.
  ///
  /// - Throws: ``CRMError/invalidArgument(_:)`` for text that is no etag of ours.
  public static func parse(_ text: String, field: String) throws(CRMError) -> Int64? {
    if text.isEmpty { return nil }
    guard let version = Int64(text), version >= 0 else {
      throw .invalid(field, "is not an etag this server issued", reason: "INVALID_FORMAT")
    }
    return version
  }
}
