import CRMCore
import Foundation
import LibPQ

extension Contact: StoredRecord {
  var accessOwner: UUID? { ownerID }
  static let table = "contacts"
  static let recordType = RecordType.contact
  static let noun = "contact"
  static let nameSortKey = "crm_contact_sort_name(last_name, first_name)"
  static var changeLogOrder: [String] { ContactField.changeLogOrder }
  static let constraintErrors: [String: CRMError] = [
    "contacts_external_id": .alreadyExists(field: "contact.external_id", message: "another contact has this external_id"),
    "contacts_tenant_id_owner_id_fkey": .invalid("contact.owner_id", "no such user", reason: "NOT_FOUND"),
    "contacts_tenant_id_account_id_fkey": .invalid("contact.account_id", "no such account", reason: "NOT_FOUND"),
  ]
  static let columns = """
    id, owner_id, account_id, first_name, last_name, title, department, emails, phones, address, email_opt_out,
    phone_opt_out, description, external_id, tags, version, created_at, updated_at, created_by, updated_by, archived_at, merged_into,
    last_activity_at
    """

  init(row: PostgresRow) throws {
    var fields = ContactFields()
    fields.accountID = try row.decode("account_id")
    fields.firstName = try row.decode("first_name")
    fields.lastName = try row.decode("last_name")
    fields.title = try row.decode("title")
    fields.department = try row.decode("department")
    fields.emails = try StoredChannel.emails(row.decode("emails"))
    fields.phones = try StoredChannel.phones(row.decode("phones"))
    fields.address = try StoredJSON.decode(PostalAddress.self, from: row.decode("address"))
    fields.emailOptOut = try row.decode("email_opt_out")
    fields.phoneOptOut = try row.decode("phone_opt_out")
    fields.description = try row.decode("description")
    fields.externalID = try row.decode("external_id")
    fields.tags = try row.decode("tags")
    self.init(
      id: try row.decode("id"), version: try row.decode("version"), ownerID: try row.decode("owner_id"), fields: fields,
      createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
      createdBy: try row.decode("created_by"), updatedBy: try row.decode("updated_by"),
      archivedAt: try row.decode("archived_at"), mergedIntoID: try row.decode("merged_into"),
      lastActivityAt: try row.decode("last_activity_at"))
  }

  static let writableColumns = """
    account_id, first_name, last_name, title, department, emails, email_addresses, phones, phone_numbers, address,
    email_opt_out, phone_opt_out, description, external_id, tags, owner_id, email_keys, person_key
    """

  /// The values of ``writableColumns``, in order.
  var matchSubject: MatchSubject { fields.matchSubject }

  var writableValues: PostgresQuery {
    let f = fields
    let emails = StoredChannel.json(f.emails)
    let phones = StoredChannel.json(f.phones)
    return """
      \(f.accountID), \(f.firstName), \(f.lastName), \(f.title), \(f.department), \(emails)::jsonb,
      \(f.emails.map(\.address))::text[], \(phones)::jsonb, \(f.phones.map(\.number))::text[], \(f.address?.storedJSON)::jsonb,
      \(f.emailOptOut), \(f.phoneOptOut), \(f.description), \(f.externalID), \(f.tags)::text[], \(ownerID),
      \(MatchKeys.storedEmailKeys(f.emails.map(\.address)))::text[],
      \(MatchKeys.personName(first: f.firstName, last: f.lastName))
      """
  }
}
