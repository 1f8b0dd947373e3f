import CRMCore
import CRMProto
import Foundation
import SwiftProtobuf

extension Crm_V1_Contact {
  /// The API form of a contact.
  init(_ contact: Contact) {
    self.init()
    let f = contact.fields
    id = contact.id.lowercasedString
    etag = contact.etag
    createTime = .init(contact.createdAt)
    updateTime = .init(contact.updatedAt)
    if let archivedAt = contact.archivedAt { archiveTime = .init(archivedAt) }
    mergedIntoID = contact.mergedIntoID?.lowercasedString ?? ""
    if let activity = contact.lastActivityAt { lastActivityTime = .init(activity) }
    ownerID = contact.ownerID.lowercasedString
    accountID = f.accountID?.lowercasedString ?? ""
    firstName = f.firstName ?? ""
    lastName = f.lastName ?? ""
    title = f.title ?? ""
    department = f.department ?? ""
    emails = f.emails.map { email in
      .with {
        $0.address = email.address
        $0.label = email.label
        $0.primary = email.isPrimary
      }
    }
    phones = f.phones.map { phone in
      .with {
        $0.number = phone.number
        $0.label = phone.label
        $0.primary = phone.isPrimary
      }
    }
    if let postal = f.address { address = Crm_V1_PostalAddress(postal) }
    emailOptOut = f.emailOptOut
    phoneOptOut = f.phoneOptOut
    description_p = f.description ?? ""
    externalID = f.externalID ?? ""
    tags = f.tags
    createUserID = contact.createdBy?.lowercasedString ?? ""
    updateUserID = contact.updatedBy?.lowercasedString ?? ""
  }

  /// The caller-settable fields, validated and normalized under `prefix`; only `only` when given.
  func fields(prefix: String, only: Set<ContactField>?, into violations: inout Violations) -> ContactFields {
    var fields = ContactFields()
    fields.accountID = RequestFields.optionalID(accountID, field: "\(prefix).account_id", into: &violations)
    fields.firstName = firstName
    fields.lastName = lastName
    fields.title = title
    fields.department = department
    fields.emails = emails.map { ContactEmail(address: $0.address, label: $0.label, isPrimary: $0.primary) }
    fields.phones = phones.map { ContactPhone(number: $0.number, label: $0.label, isPrimary: $0.primary) }
    fields.address = hasAddress ? address.domain : nil
    fields.emailOptOut = emailOptOut
    fields.phoneOptOut = phoneOptOut
    fields.description = description_p
    fields.externalID = externalID
    fields.tags = tags
    return fields.normalized(prefix: prefix, only: only, into: &violations)
  }
}
