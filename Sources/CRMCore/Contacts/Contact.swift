public import Foundation

/// A contact as stored.
public struct Contact: Sendable, Hashable, Identifiable {
  public var id: UUID
  /// The etag's version.
  public var version: Int64
  public var ownerID: UUID
  public var fields: ContactFields
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?
  /// Set on a record merged into another: the survivor (this one is archived).
  public var mergedIntoID: UUID?
  /// When the newest interaction linked to it happened (maintained by the interaction log).
  public var lastActivityAt: Timestamp?

  /// Makes a contact value.
  public init(
    id: UUID, version: Int64, ownerID: UUID, fields: ContactFields, createdAt: Timestamp, updatedAt: Timestamp,
    createdBy: UUID?, updatedBy: UUID?, archivedAt: Timestamp?, mergedIntoID: UUID? = nil, lastActivityAt: Timestamp? = nil
  ) {
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

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// Fields and owner as JSON values, for the change log.
  public var snapshot: [String: JSONValue] {
    var values = fields.snapshot
    values["owner_id"] = .string(ownerID.lowercasedString)
    return values
  }
}
