import CRMCore
import CRMProto
import Foundation
import SwiftProtobuf

extension Crm_V1_Interaction {
  init(_ interaction: Interaction) {
    self.init()
    let f = interaction.fields
    id = interaction.id.lowercasedString
    etag = interaction.etag
    kind = Crm_V1_InteractionKind(f.kind)
    switch f.direction {
    case .unspecified: direction = .unspecified
    case .inbound: direction = .inbound
    case .outbound: direction = .outbound
    }
    subject = f.subject ?? ""
    body = f.body ?? ""
    participants = f.participants.map { participant in
      .with {
        $0.name = participant.name
        $0.email = participant.email
        $0.phone = participant.phone
        if let link = RecordLink(key: participant.record) { $0.record = Crm_V1_RecordRef(link) }
      }
    }
    startTime = .init(f.startAt)
    if let seconds = f.durationSeconds { duration = .init(seconds: Int64(seconds), nanos: 0) }
    outcome = f.outcome ?? ""
    if f.checkInAt != nil || f.location != nil {
      visit = .with {
        if let checkIn = f.checkInAt { $0.checkInTime = .init(checkIn) }
        $0.latitude = f.location?.latitude ?? 0
        $0.longitude = f.location?.longitude ?? 0
      }
    }
    links = f.links.map(Crm_V1_RecordRef.init)
    ownerID = interaction.ownerID.lowercasedString
    channel = interaction.channel ?? ""
    channelMessageID = interaction.externalMessageID ?? ""
    createTime = .init(interaction.createdAt)
    updateTime = .init(interaction.updatedAt)
    createUserID = interaction.createdBy?.lowercasedString ?? ""
    updateUserID = interaction.updatedBy?.lowercasedString ?? ""
  }

  /// The fields, validated and normalized; every problem is recorded under `prefix`. `mask` limits
  /// the checks to the fields an update names (`nil` for a log, which checks everything).
  func fields(prefix: String, mask: Set<InteractionField>?, into violations: inout Violations) -> InteractionFields {
    let checks = { (field: InteractionField) in mask?.contains(field) ?? true }
    var kindValue = InteractionKind.note
    if checks(.kind) { kindValue = InteractionKind(kind, field: "\(prefix).kind", into: &violations) ?? .note }
    let directionValue = InteractionDirection(direction, field: "\(prefix).direction", into: &violations)
    var people: [Participant] = []
    if checks(.participants) {
      for (index, participant) in participants.prefix(InteractionFields.maxParticipants + 1).enumerated() {
        let field = "\(prefix).participants[\(index)]"
        var person = Participant()
        person.name = violations.text("\(field).name", participant.name, maxLength: 200) ?? ""
        if !participant.email.isEmpty {
          if let email = EmailAddress(participant.email), participant.email.count <= 254 {
            person.email = email.value
          } else {
            violations.add("\(field).email", "must be an email address", reason: "INVALID_FORMAT")
          }
        }
        person.phone = violations.text("\(field).phone", participant.phone, maxLength: 64) ?? ""
        if participant.hasRecord, let link = participant.record.link(field: "\(field).record", person: true, into: &violations) {
          person.record = link.key
        }
        people.append(person)
      }
    }
    var seconds: Int32?
    if hasDuration {
      if duration.seconds < 0 || duration.seconds > 31 * 86_400 || duration.nanos < 0 {
        violations.add("\(prefix).duration", "must be between 0 and 31 days", reason: "OUT_OF_RANGE")
      } else {
        seconds = Int32(duration.seconds)
      }
    }
    var checkIn: Timestamp?
    var location: GeoPoint?
    if hasVisit {
      if visit.hasCheckInTime { checkIn = visit.checkInTime.domain }
      if visit.latitude != 0 || visit.longitude != 0 {
        location = GeoPoint(latitude: visit.latitude, longitude: visit.longitude)
      }
    }
    var linked: [RecordLink] = []
    if checks(.links) {
      for (index, reference) in links.prefix(InteractionFields.maxLinks + 1).enumerated() {
        if let link = reference.link(field: "\(prefix).links[\(index)]", into: &violations) { linked.append(link) }
      }
    }
    let fields = InteractionFields(
      kind: kindValue, direction: directionValue,
      subject: violations.text("\(prefix).subject", subject, maxLength: 500),
      body: violations.multilineText("\(prefix).body", body, maxLength: InteractionFields.maxBodyLength),
      participants: people, startAt: hasStartTime ? startTime.domain : .now, durationSeconds: seconds,
      outcome: violations.text("\(prefix).outcome", outcome, maxLength: 255), checkInAt: checkIn, location: location,
      links: linked)
    // Only the first max+1 entries were read, so the count check below still sees "too many".
    if participants.count > InteractionFields.maxParticipants {
      violations.add("\(prefix).participants", "at most \(InteractionFields.maxParticipants)", reason: "TOO_MANY")
    }
    if links.count > InteractionFields.maxLinks {
      violations.add("\(prefix).links", "at most \(InteractionFields.maxLinks) records", reason: "TOO_MANY")
    }
    if mask == nil, violations.isEmpty { fields.validate(prefix: prefix, into: &violations) }
    return fields
  }
}

extension InteractionKind {
  /// The kind a request names; UNSPECIFIED and unknown values are violations.
  init?(_ kind: Crm_V1_InteractionKind, field: String, into violations: inout Violations) {
    switch kind {
    case .call: self = .call
    case .email: self = .email
    case .meeting: self = .meeting
    case .visit: self = .visit
    case .note: self = .note
    case .chat: self = .chat
    case .sms: self = .sms
    case .unspecified, .UNRECOGNIZED:
      violations.add(field, "must be a kind such as INTERACTION_KIND_CALL", reason: "REQUIRED")
      return nil
    }
  }
}

extension InteractionDirection {
  /// The direction a request names; unknown values are violations (and read as unspecified).
  init(_ direction: Crm_V1_InteractionDirection, field: String, into violations: inout Violations) {
    switch direction {
    case .unspecified: self = .unspecified
    case .inbound: self = .inbound
    case .outbound: self = .outbound
    case .UNRECOGNIZED:
      violations.add(field, "unknown direction", reason: "INVALID")
      self = .unspecified
    }
  }
}

extension Crm_V1_InteractionKind {
  init(_ kind: InteractionKind) {
    switch kind {
    case .call: self = .call
    case .email: self = .email
    case .meeting: self = .meeting
    case .visit: self = .visit
    case .note: self = .note
    case .chat: self = .chat
    case .sms: self = .sms
    }
  }
}

extension Crm_V1_RecordRef {
  init(_ link: RecordLink) {
    self.init()
    recordType = Crm_V1_RecordType(link.type)
    recordID = link.id.lowercasedString
  }

  /// The lead, contact, account or (unless `person`) opportunity referenced, validated.
  func link(field: String, person: Bool = false, into violations: inout Violations) -> RecordLink? {
    let type =
      person
      ? RecordType(matchable: recordType, field: "\(field).record_type", into: &violations)
      : RecordType(linkable: recordType, field: "\(field).record_type", into: &violations)
    let id = RequestFields.id(recordID, field: "\(field).record_id", into: &violations)
    guard let type, let id else { return nil }
    return RecordLink(type: type, id: id)
  }
}

extension Crm_V1_TimelineEntry {
  init(_ entry: TimelineEntry, on record: RecordLink) {
    self.init()
    time = .init(entry.occurredAt)
    switch entry {
    case .interaction(let interaction):
      type = .interaction
      let links = interaction.fields.links
      self.record = Crm_V1_RecordRef(links.contains(record) ? record : links.first { $0.type == .contact } ?? record)
      self.interaction = Crm_V1_Interaction(interaction)
    case .change(let change):
      self.record = Crm_V1_RecordRef(RecordLink(type: change.recordType, id: change.recordID))
      let message = Crm_V1_ChangeEntry(change)
      switch change.operation {
      case .create: type = .created
      case .archive: type = .archived
      case .restore: type = .restored
      case .merge: type = .merged
      case .event: type = .event
      case .update: type = message.changes.contains { $0.field == "status" } ? .statusChange : .fieldChange
      }
      self.change = message
    }
  }
}
