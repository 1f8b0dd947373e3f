import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm contacts …`
struct Contacts: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create, read, change, archive and list contacts.",
    subcommands: [Create.self, Get.self, List.self, Update.self, Delete.self, Undelete.self, Merge.self, History.self])

  static func printContacts(_ contacts: [Crm_V1_Contact], json: Bool) throws {
    if json { return try Output.printJSON(contacts) }
    Output.printTable(
      ["ID", "NAME", "EMAIL", "PHONE", "ACCOUNT", "ETAG"],
      contacts.map {
        [
          $0.id, "\($0.firstName) \($0.lastName)".trimmingCharacters(in: .whitespaces),
          $0.emails.first(where: \.primary)?.address ?? "", $0.phones.first(where: \.primary)?.number ?? "",
          String($0.accountID.prefix(8)), $0.etag,
        ]
      })
  }

  static func printContact(_ contact: Crm_V1_Contact, json: Bool) throws {
    if json { return print(try Output.json(contact)) }
    Output.printRecord([
      ("id", contact.id), ("name", "\(contact.firstName) \(contact.lastName)".trimmingCharacters(in: .whitespaces)),
      ("title", contact.title), ("department", contact.department), ("account", contact.accountID),
      ("emails", contact.emails.map { $0.address + ($0.primary ? " (primary)" : "") }.joined(separator: ", ")),
      ("phones", contact.phones.map { $0.number + ($0.primary ? " (primary)" : "") }.joined(separator: ", ")),
      ("country", contact.address.regionCode),
      (
        "opt-outs",
        [contact.emailOptOut ? "email" : "", contact.phoneOptOut ? "phone" : ""].filter { !$0.isEmpty }.joined(separator: ", ")
      ),
      ("external id", contact.externalID), ("tags", contact.tags.joined(separator: ", ")), ("owner", contact.ownerID),
      ("description", contact.description_p), ("etag", contact.etag), ("created", Output.time(contact.createTime)),
      ("updated", Output.time(contact.updateTime)), ("archived", Output.time(contact.archiveTime)),
      ("merged into", contact.mergedIntoID),
    ])
  }
}

/// The contact fields a command may set; only those given are sent.
struct ContactFieldOptions: ParsableArguments {
  @Option(help: "First name.") var firstName: String?
  @Option(help: "Last name.") var lastName: String?
  @Option(help: "Account id.") var account: String?
  @Option(help: "Job title.") var title: String?
  @Option(help: "Department.") var department: String?
  @Option(help: "Email; repeat for several, the first is primary (replaces all on update).") var email: [String] = []
  @Option(help: "Phone; repeat for several, the first is primary (replaces all on update).") var phone: [String] = []
  @Option(help: "Country, ISO code (e.g. US); also used to normalize phones.") var country: String?
  @Option(help: "Opted out of email: true or false.") var emailOptOut: Bool?
  @Option(help: "Opted out of calls: true or false.") var phoneOptOut: Bool?
  @Option(help: "Description.") var description: String?
  @Option(help: "External id (unique in the tenant).") var externalID: String?
  @Option(help: "Tag; repeat for several.") var tag: [String] = []
  @Option(help: "Owner's user id.") var owner: String?

  /// Writes the given options into `contact` and returns their field-mask paths.
  func apply(to contact: inout Crm_V1_Contact) -> [String] {
    var paths: [String] = []
    if let firstName { contact.firstName = firstName; paths.append("first_name") }
    if let lastName { contact.lastName = lastName; paths.append("last_name") }
    if let account { contact.accountID = account; paths.append("account_id") }
    if let title { contact.title = title; paths.append("title") }
    if let department { contact.department = department; paths.append("department") }
    if !email.isEmpty {
      contact.emails = email.enumerated().map { index, address in
        .with {
          $0.address = address; $0.primary = index == 0
        }
      }
      paths.append("emails")
    }
    if !phone.isEmpty {
      contact.phones = phone.enumerated().map { index, number in
        .with {
          $0.number = number; $0.primary = index == 0
        }
      }
      paths.append("phones")
    }
    if let country { contact.address.regionCode = country; paths.append("address") }
    if let emailOptOut { contact.emailOptOut = emailOptOut; paths.append("email_opt_out") }
    if let phoneOptOut { contact.phoneOptOut = phoneOptOut; paths.append("phone_opt_out") }
    if let description { contact.description_p = description; paths.append("description") }
    if let externalID { contact.externalID = externalID; paths.append("external_id") }
    if !tag.isEmpty { contact.tags = tag; paths.append("tags") }
    if let owner { contact.ownerID = owner; paths.append("owner_id") }
    return paths
  }
}

extension Contacts {
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a contact.",
      discussion: "Example: crm contacts create --first-name Ada --last-name Lovelace --account ID --email ada@acme.com")
    @OptionGroup var client: ClientOptions
    @OptionGroup var fields: ContactFieldOptions
    @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?
    @OptionGroup var duplicates: DuplicateActionOption

    func run() async throws {
      try await runReportingErrors {
        var contact = Crm_V1_Contact()
        _ = fields.apply(to: &contact)
        let request = Crm_V1_CreateContactRequest.with {
          $0.contact = contact
          $0.requestID = requestID ?? ""
          $0.duplicateAction = duplicates.action
        }
        let created = try await client.withClient { client, metadata in
          try await Crm_V1_ContactService.Client(wrapping: client).createContact(request, metadata: metadata)
        }
        try Contacts.printContact(created, json: client.json)
        Duplicates.warn(created.duplicateFindings, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one contact.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The contact id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let contact = try await client.withClient { client, metadata in
          try await Crm_V1_ContactService.Client(wrapping: client).getContact(.with { $0.id = id }, metadata: metadata)
        }
        try Contacts.printContact(contact, json: client.json)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List contacts, one page at a time.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Prefix of the first or last name.") var namePrefix: String?
    @Option(help: "Any of the contact's emails.") var email: String?
    @Option(help: "Account id.") var account: String?
    @Option(help: "Tag.") var tag: String?
    @Option(help: "Owner's user id.") var owner: String?
    @Option(help: "name or updated.") var order: String = "name"
    @Option(help: "active, archived or all.") var archived: String = "active"
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ListContactsRequest()
        request.namePrefix = namePrefix ?? ""
        request.email = email ?? ""
        request.accountID = account ?? ""
        request.tag = tag ?? ""
        request.ownerID = owner ?? ""
        request.pageSize = limit
        request.pageToken = paging.pageToken
        request.orderBy = order == "updated" ? .updateTimeDesc : .name
        request.archiveFilter = try ArchiveOption.parse(archived)
        let response = try await client.withClient { client, metadata in
          try await Crm_V1_ContactService.Client(wrapping: client).listContacts(request, metadata: metadata)
        }
        try Contacts.printContacts(response.contacts, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change the given fields of a contact.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The contact id.") var id: String
    @OptionGroup var fields: ContactFieldOptions
    @Option(help: "The etag you read; the update fails if the contact changed since.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        var contact = Crm_V1_Contact()
        contact.id = id
        contact.etag = etag ?? ""
        let paths = fields.apply(to: &contact)
        guard !paths.isEmpty else { throw CLIError(message: "nothing to change: pass at least one field option", code: 2) }
        let request = Crm_V1_UpdateContactRequest.with {
          $0.contact = contact
          $0.updateMask = .with { $0.paths = paths }
        }
        let updated = try await client.withClient { client, metadata in
          try await Crm_V1_ContactService.Client(wrapping: client).updateContact(request, metadata: metadata)
        }
        try Contacts.printContact(updated, json: client.json)
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Archive a contact.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The contact id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Contacts.setArchived(true, client: client, id: id, etag: etag) }
    }
  }

  struct Undelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore an archived contact.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The contact id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Contacts.setArchived(false, client: client, id: id, etag: etag) }
    }
  }

  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Merge duplicate contacts into one.",
      discussion: "Example: crm contacts merge SURVIVOR_ID DUPLICATE_ID --take title=DUPLICATE_ID\n" + MergeOptions.discussion)
    @OptionGroup var client: ClientOptions
    @OptionGroup var merge: MergeOptions

    func run() async throws {
      try await runReportingErrors {
        let request = try merge.request()
        let survivor = try await client.withClient { grpc, metadata in
          try await Crm_V1_ContactService.Client(wrapping: grpc).mergeContacts(request, metadata: metadata)
        }
        try Contacts.printContact(survivor, json: client.json)
      }
    }
  }

  struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a contact's change history, newest first.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The contact id.") var id: String
    @Option(help: "Entries to show.") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        try await HistoryPrinter.run(client: client, type: .contact, id: id, limit: limit, pageToken: paging.pageToken)
      }
    }
  }
}

extension Contacts {
  /// Archives (`true`) or restores a contact and prints it.
  static func setArchived(_ archived: Bool, client: ClientOptions, id: String, etag: String?) async throws {
    let contact = try await client.withClient { grpc, metadata in
      let service = Crm_V1_ContactService.Client(wrapping: grpc)
      if archived {
        return try await service.deleteContact(
          .with {
            $0.id = id; $0.etag = etag ?? ""
          }, metadata: metadata)
      }
      return try await service.undeleteContact(
        .with {
          $0.id = id; $0.etag = etag ?? ""
        }, metadata: metadata)
    }
    try printContact(contact, json: client.json)
  }
}
