import CRMCore
import Foundation
import LibPQ

extension Interaction: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static let table = "interactions"
  static let recordType = RecordType.interaction
  static let noun = "interaction"
  static let nameSortKey = "lower(coalesce(subject, ''))"
  static var changeLogOrder: [String] { InteractionField.changeLogOrder }
  static let constraintErrors: [String: CRMError] = [
    "interactions_tenant_id_owner_id_fkey": .invalid("interaction.owner_id", "no such user", reason: "NOT_FOUND")
  ]
  static let columns = """
    id, owner_id, kind, direction, subject, body, participants, start_at, duration_seconds, outcome, check_in_at, latitude,
    longitude, links, channel, external_message_id, version, created_at, updated_at, created_by, updated_by, archived_at
    """

  init(row: PostgresRow) throws {
    let linkKeys: [String] = try row.decode("links")
    let latitude: Double? = try row.decode("latitude")
    let longitude: Double? = try row.decode("longitude")
    let fields = InteractionFields(
      kind: InteractionKind(rawValue: try row.decode("kind")) ?? .note,
      direction: InteractionDirection(rawValue: try row.decode("direction")) ?? .unspecified,
      subject: try row.decode("subject"), body: try row.decode("body"),
      participants: try StoredJSON.decode([Participant].self, from: row.decode("participants")) ?? [],
      startAt: try row.decode("start_at"), durationSeconds: try row.decode("duration_seconds"),
      outcome: try row.decode("outcome"), checkInAt: try row.decode("check_in_at"),
      location: latitude.flatMap { latitude in longitude.map { GeoPoint(latitude: latitude, longitude: $0) } },
      links: linkKeys.compactMap(RecordLink.init(key:)))
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      channel: try row.decode("channel"), externalMessageID: try row.decode("external_message_id"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
      createdBy: try row.decode("created_by"), updatedBy: try row.decode("updated_by"),
      archivedAt: try row.decode("archived_at"))
  }

  static let writableColumns = """
    kind, direction, subject, body, participants, start_at, duration_seconds, outcome, check_in_at, latitude, longitude,
    links, channel, external_message_id, owner_id
    """

  var matchSubject: MatchSubject { MatchSubject() }

  /// The values of ``writableColumns``, in order.
  var writableValues: PostgresQuery {
    let f = fields
    return """
      \(f.kind.rawValue), \(f.direction.rawValue), \(f.subject), \(f.body), \(StoredJSON.encode(f.participants))::jsonb,
      \(f.startAt), \(f.durationSeconds), \(f.outcome), \(f.checkInAt), \(f.location?.latitude), \(f.location?.longitude),
      \(f.links.map(\.key))::text[], \(channel), \(externalMessageID), \(ownerID)
      """
  }
}
