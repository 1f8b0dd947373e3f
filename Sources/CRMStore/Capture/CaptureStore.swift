public import CRMCore
import Crypto
public import Foundation
import LibPQ

/// What a capture did.
public enum CaptureOutcome: String, Sendable, Hashable {
  case createdLead = "created_lead"
  case loggedOnLead = "logged_on_lead"
  case loggedOnContact = "logged_on_contact"
}

/// The result of ``CaptureStore/capture(_:context:)``.
public struct CaptureResult: Sendable, Hashable {
  public var outcome: CaptureOutcome
  /// The lead created, or the lead or contact the signal was logged on.
  public var record: RecordLink
  /// Whether the caller may see ``record`` (a capture never shows a record out of the caller's sight).
  public var recordVisible: Bool
  /// The interaction that holds the signal (always logged, also on a new lead).
  public var interactionID: UUID
  /// The message id the capture is keyed by (the channel's, or `sha256:` and a digest of the content).
  public var messageID: String
  /// True when this message had been captured before and nothing was written now.
  public var replayed: Bool
}

/// SQL for `CaptureLead`: one transaction that either finds the sender among the tenant's leads and
/// contacts and logs the signal there, or creates a lead (running the assignment hook) and logs the
/// signal on it; keyed by (channel, message id) so a resent message writes nothing.
///
/// Concurrent captures of one message serialize on an advisory lock of its key; concurrent captures of
/// one person (different messages, same email or phone) serialize on the duplicate rules' key locks,
/// so the second finds the lead the first created.
public struct CaptureStore: Sendable {
  let database: Database

  /// A store over `database`.
  public init(database: Database) { self.database = database }

  /// Captures one interpreted signal as the caller (`context.principal`, for a capture key the key's
  /// user): owner of a new lead unless the tenant's assignment rules place it.
  public func capture(_ capture: Capture, context: ChangeLog.Context) async throws -> CaptureResult {
    let principal = context.principal
    let tenant = principal.tenantID
    let messageID = capture.needsDigest ? Self.digest(capture.messageID) : capture.messageID
    let channel = capture.channel.rawValue
    return try await database.withTenant(tenant) { connection in
      try connection.query(
        "SELECT pg_advisory_xact_lock(hashtextextended(\(tenant.lowercasedString + "|capture|" + channel + "|" + messageID), 0))")
      if let row = try connection.query(
        """
        SELECT outcome, record_type, record_id, interaction_id FROM captures
        WHERE tenant_id = \(tenant) AND channel = \(channel) AND message_id = \(messageID)
        """
      ).first {
        let record = RecordLink(
          type: RecordType(rawValue: try row.decode("record_type")) ?? .lead, id: try row.decode("record_id"))
        return CaptureResult(
          outcome: CaptureOutcome(rawValue: try row.decode("outcome")) ?? .createdLead, record: record,
          recordVisible: try RecordAccess.states(connection, [record], principal: principal)[record]?.visible ?? false,
          interactionID: try row.decode("interaction_id"), messageID: messageID, replayed: true)
      }

      let outcome: CaptureOutcome
      let record: RecordLink
      let owner: UUID
      if let match = try Self.existing(connection, capture.lead.matchSubject, tenant: tenant) {
        outcome = match.recordType == .contact ? .loggedOnContact : .loggedOnLead
        record = RecordLink(type: match.recordType, id: match.recordID)
        owner = match.ownerID ?? principal.userID
      } else {
        var draft = Lead(
          id: UUID.v7(), version: 1, ownerID: principal.userID, fields: capture.lead, status: .new, disqualifiedReason: nil,
          lastActivityAt: nil, createdAt: .now, updatedAt: .now, createdBy: principal.userID, updatedBy: principal.userID,
          archivedAt: nil)
        let (routed, notes) = try AssignmentStore.routeNew(
          connection, draft, subject: AssignmentSubject(draft.fields), tenant: tenant)
        draft = routed
        let lead = try RecordMechanics<Lead>.insert(connection, draft, context: context, notes: notes)
        outcome = .createdLead
        record = RecordLink(type: .lead, id: lead.id)
        owner = lead.ownerID ?? principal.userID
      }

      var fields = capture.interaction
      fields.links = [record]
      let draft = Interaction(
        id: UUID.v7(), version: 1, ownerID: owner, fields: fields, channel: channel, externalMessageID: messageID,
        createdAt: .now, updatedAt: .now, createdBy: principal.userID, updatedBy: principal.userID, archivedAt: nil)
      let interaction = try RecordMechanics<Interaction>.insert(connection, draft, context: context)
      try InteractionStore.writeLinks(connection, interaction, replacing: false, tenant: tenant)
      try RecordAccess.touchActivity(connection, [record], at: min(fields.startAt, .now), tenant: tenant)
      try connection.query(
        """
        INSERT INTO captures (tenant_id, channel, message_id, outcome, record_type, record_id, interaction_id, key_id, captured_by)
        VALUES (\(tenant), \(channel), \(messageID), \(outcome.rawValue), \(record.type.rawValue), \(record.id),
                \(interaction.id), \(principal.captureScope?.keyID), \(principal.userID))
        """)
      return CaptureResult(
        outcome: outcome, record: record, recordVisible: principal.canRead(record.type, ownedBy: owner),
        interactionID: interaction.id, messageID: messageID,
        replayed: false)
    }
  }

  /// The best existing lead or contact for the sender under the tenant's lead duplicate rule (its keys
  /// and minimum score; its action does not matter here: a capture never blocks, it logs), contacts
  /// first on a tie. Matching sees every record of the tenant, whoever owns it. The sender's keys are
  /// locked until the transaction ends, so two captures of one person cannot both create a lead.
  static func existing(_ connection: PostgresConnection, _ subject: MatchSubject, tenant: UUID) throws -> DuplicateMatch? {
    let rule = try DuplicateRuleStore.rule(connection, for: .lead, tenant: tenant)
    let restricted = rule.restricting(subject)
    guard !restricted.isEmpty else { return nil }
    try DuplicateStore.lockKeys(connection, restricted, tenant: tenant)
    let types = rule.matchRecordTypes.filter { $0 == .lead || $0 == .contact }
    guard !types.isEmpty else { return nil }
    let ranked = try DuplicateStore.ranked(connection, restricted, in: types, rule: rule, excluding: nil, tenant: tenant)
    return ranked.max { a, b in
      a.score != b.score ? a.score < b.score : (a.recordType == .lead && b.recordType == .contact)
    }
  }

  /// `sha256:` and the hex digest of a message without an id of its own.
  static func digest(_ text: String) -> String {
    "sha256:" + SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
  }
}
