import CRMCore
import Foundation
import LibPQ

extension Opportunity: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static let table = "opportunities"
  static let recordType = RecordType.opportunity
  static let noun = "opportunity"
  static let nameSortKey = #"lower(name) COLLATE "C""#
  static let constraintErrors: [String: CRMError] = [
    "opportunities_external_id": .alreadyExists(
      field: "opportunity.external_id", message: "another opportunity has this external_id"),
    "opportunities_tenant_id_owner_id_fkey": .invalid("opportunity.owner_id", "no such user", reason: "NOT_FOUND"),
    "opportunities_tenant_id_account_id_fkey": .invalid("opportunity.account_id", "no such account", reason: "NOT_FOUND"),
    "opportunities_tenant_id_primary_contact_id_fkey": .invalid(
      "opportunity.primary_contact_id", "no such contact", reason: "NOT_FOUND"),
    "opportunities_tenant_id_source_lead_id_fkey": .invalid("opportunity.source_lead_id", "no such lead", reason: "NOT_FOUND"),
  ]
  static let columns = """
    id, owner_id, account_id, primary_contact_id, contact_roles, name, amount_currency, amount_units, amount_nanos,
    close_date, pipeline_id, stage_id, state, probability, probability_overridden, forecast_category, forecast_overridden,
    source_lead_id, next_step, lost_reason, competitors, description, external_id, tags, stage_entered_at, closed_at,
    last_activity_at, version, created_at, updated_at, created_by, updated_by, archived_at,
    (SELECT s.name FROM pipeline_stages s
     WHERE s.tenant_id = opportunities.tenant_id AND s.id = opportunities.stage_id) AS stage_name
    """

  init(row: PostgresRow) throws {
    var fields = OpportunityFields(name: try row.decode("name"), accountID: try row.decode("account_id"))
    fields.primaryContactID = try row.decode("primary_contact_id")
    fields.contactRoles = try StoredContactRole.decode(row.decode("contact_roles"))
    if let currency = try row.decode("amount_currency", as: String?.self) {
      fields.amount = Money(currencyCode: currency, units: try row.decode("amount_units"), nanos: try row.decode("amount_nanos") ?? 0)
    }
    fields.closeDate = try row.decode("close_date")
    let probability: Int = try row.decode("probability")
    let forecast = ForecastCategory(rawValue: try row.decode("forecast_category")) ?? .pipeline
    fields.probability = try row.decode("probability_overridden", as: Bool.self) ? probability : nil
    fields.forecastCategory = try row.decode("forecast_overridden", as: Bool.self) ? forecast : nil
    fields.sourceLeadID = try row.decode("source_lead_id")
    fields.nextStep = try row.decode("next_step")
    fields.competitors = try row.decode("competitors")
    fields.description = try row.decode("description")
    fields.externalID = try row.decode("external_id")
    fields.tags = try row.decode("tags")
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      pipelineID: try row.decode("pipeline_id"), stageID: try row.decode("stage_id"),
      state: StageCategory(rawValue: try row.decode("state")) ?? .open, probability: probability, forecastCategory: forecast,
      lostReason: try row.decode("lost_reason"), stageEnteredAt: try row.decode("stage_entered_at"),
      closedAt: try row.decode("closed_at"), lastActivityAt: try row.decode("last_activity_at"),
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"), createdBy: try row.decode("created_by"),
      updatedBy: try row.decode("updated_by"), archivedAt: try row.decode("archived_at"),
      stageName: try row.decode("stage_name"))
  }

  /// Opportunities take part in no duplicate detection.
  var matchSubject: MatchSubject { MatchSubject() }

  static let writableColumns = """
    name, account_id, primary_contact_id, contact_roles, contact_ids, amount_currency, amount_units, amount_nanos,
    close_date, pipeline_id, stage_id, state, probability, probability_overridden, forecast_category, forecast_overridden,
    source_lead_id, next_step, lost_reason, competitors, description, external_id, tags, stage_entered_at, closed_at,
    owner_id
    """

  var writableValues: PostgresQuery {
    let f = fields
    return """
      \(f.name), \(f.accountID), \(f.primaryContactID), \(StoredContactRole.json(f.contactRoles))::jsonb, \(f.contactIDs)::uuid[],
      \(f.amount?.currencyCode), \(f.amount?.units), \(f.amount?.nanos), \(f.closeDate)::date, \(pipelineID), \(stageID),
      \(state.rawValue), \(probability), \(f.probability != nil), \(forecastCategory.rawValue), \(f.forecastCategory != nil),
      \(f.sourceLeadID), \(f.nextStep), \(lostReason), \(f.competitors)::text[], \(f.description), \(f.externalID),
      \(f.tags)::text[], \(stageEnteredAt), \(closedAt), \(ownerID)
      """
  }
}

/// How a deal's contact roles are stored: `[{"contact_id": …, "role": …}]`.
struct StoredContactRole: Codable {
  var contactId: String
  var role: String

  static func json(_ roles: [ContactRole]) -> PostgresJSON? {
    StoredJSON.encode(roles.map { StoredContactRole(contactId: $0.contactID.lowercasedString, role: $0.role.rawValue) })
  }

  static func decode(_ json: PostgresJSON?) throws -> [ContactRole] {
    try (StoredJSON.decode([StoredContactRole].self, from: json) ?? []).map {
      guard let id = UUID(uuidString: $0.contactId) else {
        throw PostgresError(kind: .decoding, serverMessage: "cannot decode a contact role")
      }
      return ContactRole(contactID: id, role: ContactRoleKind(rawValue: $0.role) ?? .other)
    }
  }
}
