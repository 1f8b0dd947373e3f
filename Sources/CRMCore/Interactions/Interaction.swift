public import Foundation

/// What kind of touch an interaction records.
public enum InteractionKind: String, Sendable, Hashable, CaseIterable {
  case call, email, meeting, visit, note, chat, sms
}

/// Who started it.
public enum InteractionDirection: String, Sendable, Hashable, CaseIterable {
  case unspecified, inbound, outbound
}

/// A record an interaction is about.
public struct RecordLink: Sendable, Hashable, Comparable {
  public var type: RecordType
  public var id: UUID

  /// A link.
  public init(type: RecordType, id: UUID) {
    self.type = type
    self.id = id
  }

  /// `lead:0190…`, the stored form.
  public var key: String { "\(type.rawValue):\(id.lowercasedString)" }

  /// The link a stored key names, if well formed.
  public init?(key: String) {
    let parts = key.split(separator: ":", maxSplits: 1)
    guard parts.count == 2, let type = RecordType(rawValue: String(parts[0])), let id = UUID(uuidString: String(parts[1]))
    else { return nil }
    self.init(type: type, id: id)
  }

  public static func < (lhs: RecordLink, rhs: RecordLink) -> Bool { lhs.key < rhs.key }
}

/// Someone who took part: a name and address as given, optionally a CRM record.
public struct Participant: Sendable, Hashable, Codable {
  public var name: String
  public var email: String
  public var phone: String
  /// `lead:…`, `contact:…` or empty.
  public var record: String

  /// A participant.
  public init(name: String = "", email: String = "", phone: String = "", record: String = "") {
    self.name = name
    self.email = email
    self.phone = phone
    self.record = record
  }
}

/// Where a visit was checked in.
public struct GeoPoint: Sendable, Hashable {
  public var latitude: Double
  public var longitude: Double

  /// A point.
  public init(latitude: Double, longitude: Double) {
    self.latitude = latitude
    self.longitude = longitude
  }
}

/// The fields of an interaction callers set.
public struct InteractionFields: Sendable, Hashable {
  public var kind: InteractionKind
  public var direction: InteractionDirection
  public var subject: String?
  public var body: String?
  public var participants: [Participant]
  /// When it happened (or starts).
  public var startAt: Timestamp
  public var durationSeconds: Int32?
  public var outcome: String?
  /// Visits: when the rep checked in, and where.
  public var checkInAt: Timestamp?
  public var location: GeoPoint?
  /// The records it is about; at least one.
  public var links: [RecordLink]

  /// Fields.
  public init(
    kind: InteractionKind, direction: InteractionDirection = .unspecified, subject: String? = nil, body: String? = nil,
    participants: [Participant] = [], startAt: Timestamp, durationSeconds: Int32? = nil, outcome: String? = nil,
    checkInAt: Timestamp? = nil, location: GeoPoint? = nil, links: [RecordLink]
  ) {
    self.kind = kind
    self.direction = direction
    self.subject = subject
    self.body = body
    self.participants = participants
    self.startAt = startAt
    self.durationSeconds = durationSeconds
    self.outcome = outcome
    self.checkInAt = checkInAt
    self.location = location
    self.links = links
  }

  /// Limits the store's checks also enforce.
  public static let maxLinks = 20
  public static let maxParticipants = 100
  public static let maxBodyLength = 100_000

  /// Checks the rules that span fields (each field was checked as it was read): at least one link, at
  /// most ``maxLinks``, no duplicates; a location only on a visit; coordinates in range.
  public func validate(prefix: String, into violations: inout Violations) {
    if links.isEmpty {
      violations.add("\(prefix).links", "link the interaction to at least one record", reason: "REQUIRED")
    } else if links.count > Self.maxLinks {
      violations.add("\(prefix).links", "at most \(Self.maxLinks) records", reason: "TOO_MANY")
    } else if Set(links).count != links.count {
      violations.add("\(prefix).links", "names a record twice", reason: "DUPLICATE")
    }
    if participants.count > Self.maxParticipants {
      violations.add("\(prefix).participants", "at most \(Self.maxParticipants)", reason: "TOO_MANY")
    }
    if let durationSeconds, durationSeconds < 0 {
      violations.add("\(prefix).duration", "must not be negative", reason: "OUT_OF_RANGE")
    }
    if location != nil || checkInAt != nil, kind != .visit {
      violations.add("\(prefix).visit", "only visits have a check-in", reason: "INVALID")
    }
    if let location, !(-90...90).contains(location.latitude) || !(-180...180).contains(location.longitude) {
      violations.add("\(prefix).visit", "latitude must be -90…90 and longitude -180…180", reason: "OUT_OF_RANGE")
    }
  }
}

/// An interaction as stored.
public struct Interaction: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  /// Who logged it (the rep it counts for).
  public var ownerID: UUID
  public var fields: InteractionFields
  /// Set when it came in through `CaptureLead`: the channel and the channel's own message id.
  public var channel: String?
  public var externalMessageID: String?
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var createdBy: UUID?
  public var updatedBy: UUID?
  public var archivedAt: Timestamp?

  /// An interaction value.
  public init(
    id: UUID, version: Int64, ownerID: UUID, fields: InteractionFields, channel: String? = nil,
    externalMessageID: String? = nil, createdAt: Timestamp, updatedAt: Timestamp, createdBy: UUID?, updatedBy: UUID?,
    archivedAt: Timestamp?
  ) {
    self.id = id
    self.version = version
    self.ownerID = ownerID
    self.fields = fields
    self.channel = channel
    self.externalMessageID = externalMessageID
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.createdBy = createdBy
    self.updatedBy = updatedBy
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }

  /// Fields as JSON values keyed by API name, for the change log.
  public var snapshot: [String: JSONValue] {
    let f = fields
    return [
      "kind": .string(f.kind.rawValue),
      "direction": f.direction == .unspecified ? .null : .string(f.direction.rawValue),
      "subject": .optional(f.subject), "body": .optional(f.body),
      "participants": .array(
        f.participants.map {
          .object([
            ("name", .string($0.name)), ("email", .string($0.email)), ("phone", .string($0.phone)),
            ("record", .string($0.record)),
          ])
        }),
      "start_time": .string(f.startAt.rfc3339),
      "duration": f.durationSeconds.map { .int(Int64($0)) } ?? .null,
      "outcome": .optional(f.outcome),
      "visit": f.checkInAt == nil && f.location == nil
        ? .null
        : .object([
          ("check_in_time", .optional(f.checkInAt?.rfc3339)),
          ("latitude", f.location.map { .double($0.latitude) } ?? .null),
          ("longitude", f.location.map { .double($0.longitude) } ?? .null),
        ]),
      "links": .array(f.links.map { .string($0.key) }),
      "owner_id": .string(ownerID.lowercasedString),
    ]
  }
}

/// The fields an interaction update may name in its mask.
public enum InteractionField: String, Sendable, Hashable, CaseIterable {
  case kind, direction, subject, body, participants
  case startTime = "start_time"
  case duration, outcome, visit, links

  /// The order fields appear in the change log.
  public static let changeLogOrder: [String] = [
    "kind", "direction", "subject", "body", "participants", "start_time", "duration", "outcome", "visit", "links",
    "owner_id",
  ]
}

extension InteractionFields {
  /// `self` with the fields in `mask` taken from `patch`.
  public func applying(_ patch: InteractionFields, mask: Set<InteractionField>) -> InteractionFields {
    var out = self
    for field in mask {
      switch field {
      case .kind: out.kind = patch.kind
      case .direction: out.direction = patch.direction
      case .subject: out.subject = patch.subject
      case .body: out.body = patch.body
      case .participants: out.participants = patch.participants
      case .startTime: out.startAt = patch.startAt
      case .duration: out.durationSeconds = patch.durationSeconds
      case .outcome: out.outcome = patch.outcome
      case .visit:
        out.checkInAt = patch.checkInAt
        out.location = patch.location
      case .links: out.links = patch.links
      }
    }
    return out
  }
}
