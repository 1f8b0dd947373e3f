import CRMCore
import Foundation
import LibPQ

extension UTMParameters {
  var storedJSON: PostgresJSON? { StoredJSON.encode(self) }
}

extension Lead: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static var pooled: Bool { true }
  static let table = "leads"
  static let recordType = RecordType.lead
  static let noun = "lead"
  static let nameSortKey = "crm_lead_sort_name(last_name, first_name, company)"
  static var changeLogOrder: [String] { LeadField.changeLogOrder }
  static let constraintErrors: [String: CRMError] = [
    "leads_external_id": .alreadyExists(field: "lead.external_id", message: "another lead has this external_id"),
    "leads_tenant_id_owner_id_fkey": .invalid("lead.owner_id", "no such user", reason: "NOT_FOUND"),
  ]
  static let columns = """
    id, owner_id, first_name, last_name, company, title, emails, phones, website, domain, region_code, industry,
    company_size, score, source, source_detail, campaign, utm, status, disqualified_reason, external_id, registration_id, tags,
    description,
    last_activity_at, version, created_at, updated_at, created_by, updated_by, archived_at, merged_into,
    converted_account_id, converted_contact_id, converted_opportunity_id, converted_at, pool_id, claimed_from_pool_id,
    claimed_at, \(learnedScoreColumn) AS learned_score
    """

  /// The lead's learned score (`lead_scores`, one primary-key probe) as one JSON value.
  static let learnedScoreColumn = """
    (SELECT json_build_object('version', s.model_version, 'score', s.score, 'tier', s.tier, 'reasons', s.reasons,
      'scored_at_us', (extract(epoch FROM s.scored_at) * 1000000)::bigint)
     FROM lead_scores s WHERE s.tenant_id = leads.tenant_id AND s.lead_id = leads.id)
    """

  /// Orders leads by learned score for ``ListOrder/scoreDescending`` (0 without one).
  static let scoreSortKey: String? = """
    coalesce((SELECT s.score FROM lead_scores s WHERE s.tenant_id = leads.tenant_id AND s.lead_id = leads.id), 0)
    """

  /// The stored form of ``LeadScore``.
  struct StoredScore: Decodable {
    var version: Int
    var score: Int
    var tier: String
    var reasons: [LeadPrediction.Reason]
    var scored_at_us: Int64

    var value: LeadScore {
      LeadScore(
        modelVersion: version,
        prediction: LeadPrediction(score: score, tier: ScoreTier(rawValue: tier) ?? .medium, reasons: reasons),
        scoredAt: Timestamp(microsecondsSinceEpoch: scored_at_us))
    }
  }

  init(row: PostgresRow) throws {
    var fields = LeadFields()
    fields.firstName = try row.decode("first_name")
    fields.lastName = try row.decode("last_name")
    fields.company = try row.decode("company")
    fields.title = try row.decode("title")
    fields.emails = try StoredChannel.emails(row.decode("emails"))
    fields.phones = try StoredChannel.phones(row.decode("phones"))
    fields.website = try row.decode("website")
    fields.domain = try row.decode("domain")
    fields.regionCode = try row.decode("region_code")
    fields.industry = try row.decode("industry")
    fields.companySize = try row.decode("company_size")
    fields.score = try row.decode("score")
    fields.source = LeadSource(rawValue: try row.decode("source")) ?? .unspecified
    fields.sourceDetail = try row.decode("source_detail")
    fields.campaign = try row.decode("campaign")
    fields.utm = try StoredJSON.decode(UTMParameters.self, from: row.decode("utm"))
    fields.externalID = try row.decode("external_id")
    fields.registrationID = try row.decode("registration_id")
    fields.tags = try row.decode("tags")
    fields.description = try row.decode("description")
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      status: LeadStatus(rawValue: try row.decode("status")) ?? .new, disqualifiedReason: try row.decode("disqualified_reason"),
      lastActivityAt: try row.decode("last_activity_at"), createdAt: try row.decode("created_at"),
      updatedAt: try row.decode("updated_at"), createdBy: try row.decode("created_by"), updatedBy: try row.decode("updated_by"),
      archivedAt: try row.decode("archived_at"), mergedIntoID: try row.decode("merged_into"), poolID: try row.decode("pool_id"),
      claimedFromPoolID: try row.decode("claimed_from_pool_id"), claimedAt: try row.decode("claimed_at"))
    if let account = try row.decode("converted_account_id", as: UUID?.self),
      let contact = try row.decode("converted_contact_id", as: UUID?.self),
      let convertedAt = try row.decode("converted_at", as: Timestamp?.self)
    {
      conversion = LeadConversionLinks(
        accountID: account, contactID: contact, opportunityID: try row.decode("converted_opportunity_id"),
        convertedAt: convertedAt)
    }
    if let json: String = try row.decode("learned_score") {
      learnedScore = try JSONDecoder().decode(StoredScore.self, from: Data(json.utf8)).value
    }
  }

  static let writableColumns = """
    first_name, last_name, company, title, emails, email_addresses, phones, phone_numbers, website, domain, region_code,
    industry, company_size, source, source_detail, campaign, utm, status, disqualified_reason, external_id, tags,
    description, email_keys, company_key, person_key, owner_id, registration_id, converted_account_id,
    converted_contact_id, converted_opportunity_id, converted_at, pool_id, claimed_from_pool_id, claimed_at, score
    """

  /// The values of ``writableColumns``, in order, with the match keys computed from the fields.
  var matchSubject: MatchSubject { fields.matchSubject }

  var writableValues: PostgresQuery {
    let f = fields
    let emails = StoredChannel.json(f.emails)
    let phones = StoredChannel.json(f.phones)
    let keys = f.matchSubject
    let emailKeys = MatchKeys.storedEmailKeys(f.emails.map(\.address))
    return """
      \(f.firstName), \(f.lastName), \(f.company), \(f.title), \(emails)::jsonb, \(f.emails.map(\.address))::text[],
      \(phones)::jsonb, \(f.phones.map(\.number))::text[], \(f.website), \(f.domain), \(f.regionCode), \(f.industry),
      \(f.companySize), \(f.source.rawValue), \(f.sourceDetail), \(f.campaign), \(f.utm?.storedJSON)::jsonb, \(status.rawValue),
      \(disqualifiedReason), \(f.externalID), \(f.tags)::text[], \(f.description), \(emailKeys)::text[], \(keys.companyKey),
      \(keys.personKey), \(ownerID), \(f.registrationID), \(conversion?.accountID), \(conversion?.contactID),
      \(conversion?.opportunityID), \(conversion?.convertedAt), \(poolID), \(claimedFromPoolID), \(claimedAt), \(f.score)
      """
  }
}
