import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm accounts …`
struct Accounts: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create, read, change, archive and list accounts.",
    subcommands: [
      Create.self, Get.self, List.self, Update.self, Delete.self, Undelete.self, Merge.self, History.self, ContactsOf.self,
      Hierarchy.self,
    ])

  static func printAccounts(_ accounts: [Crm_V1_Account], json: Bool) throws {
    if json { return try Output.printJSON(accounts) }
    Output.printTable(
      ["ID", "NAME", "DOMAIN", "TYPE", "OWNER", "ETAG", "UPDATED"],
      accounts.map {
        [$0.id, $0.name, $0.domain, Self.typeName($0.type), String($0.ownerID.prefix(8)), $0.etag, Output.time($0.updateTime)]
      })
  }

  static func printAccount(_ account: Crm_V1_Account, json: Bool) throws {
    if json { return print(try Output.json(account)) }
    let revenue =
      account.hasAnnualRevenue
      ? "\(account.annualRevenue.currencyCode) \(account.annualRevenue.units)\(account.annualRevenue.nanos == 0 ? "" : String(format: ".%02d", abs(account.annualRevenue.nanos) / 10_000_000))"
      : ""
    Output.printRecord([
      ("id", account.id), ("name", account.name), ("website", account.website), ("domain", account.domain),
      ("industry", account.industry), ("type", typeName(account.type)), ("tier", tierName(account.tier)),
      ("employees", account.hasEmployeeCount ? String(account.employeeCount) : ""), ("annual revenue", revenue),
      ("phone", account.phone), ("country", account.billingAddress.regionCode), ("parent", account.parentID),
      ("external id", account.externalID), ("registration id", account.registrationID),
      ("tags", account.tags.joined(separator: ", ")), ("owner", account.ownerID),
      ("description", account.description_p), ("etag", account.etag), ("created", Output.time(account.createTime)),
      ("updated", Output.time(account.updateTime)), ("archived", Output.time(account.archiveTime)),
      ("merged into", account.mergedIntoID),
    ])
  }

  static func typeName(_ type: Crm_V1_AccountType) -> String {
    type == .unspecified ? "" : Output.name(type)
  }

  static func tierName(_ tier: Crm_V1_AccountTier) -> String {
    tier == .unspecified ? "" : Output.name(tier)
  }
}

/// The account fields a command may set; only those given are sent (and named in the update mask).
struct AccountFieldOptions: ParsableArguments {
  @Option(help: "Name.") var name: String?
  @Option(help: "Website or domain, e.g. acme.com.") var website: String?
  @Option(help: "Industry.") var industry: String?
  @Option(help: "prospect, customer, partner, reseller, vendor, competitor or other.") var type: String?
  @Option(help: "strategic, key, standard or long_tail.") var tier: String?
  @Option(help: "Number of employees.") var employees: Int32?
  @Option(help: "Annual revenue, e.g. \"USD 1250000.50\".") var revenue: String?
  @Option(help: "Phone number.") var phone: String?
  @Option(help: "Billing country, ISO code (e.g. US); also used to normalize the phone.") var country: String?
  @Option(help: "Parent account id.") var parent: String?
  @Option(help: "Description.") var description: String?
  @Option(help: "External id (unique in the tenant).") var externalID: String?
  @Option(help: "Registration id: unified social credit code, VAT id or company number.") var registrationID: String?
  @Option(help: "Tag; repeat for several (replaces all tags on update).") var tag: [String] = []
  @Option(help: "Owner's user id.") var owner: String?

  /// Writes the given options into `account` and returns their field-mask paths.
  func apply(to account: inout Crm_V1_Account) throws -> [String] {
    var paths: [String] = []
    if let name { account.name = name; paths.append("name") }
    if let website { account.website = website; paths.append("website") }
    if let industry { account.industry = industry; paths.append("industry") }
    if let type {
      let types: [String: Crm_V1_AccountType] = [
        "prospect": .prospect, "customer": .customer, "partner": .partner, "reseller": .reseller, "vendor": .vendor,
        "competitor": .competitor, "other": .other, "none": .unspecified,
      ]
      guard let value = types[type.lowercased()] else {
        throw ValidationError("--type must be one of \(types.keys.sorted().joined(separator: ", "))")
      }
      account.type = value
      paths.append("type")
    }
    if let tier {
      let tiers: [String: Crm_V1_AccountTier] = [
        "strategic": .strategic, "key": .key, "standard": .standard, "long_tail": .longTail, "none": .unspecified,
      ]
      guard let value = tiers[tier.lowercased()] else {
        throw ValidationError("--tier must be one of \(tiers.keys.sorted().joined(separator: ", "))")
      }
      account.tier = value
      paths.append("tier")
    }
    if let employees { account.employeeCount = employees; paths.append("employee_count") }
    if let revenue { account.annualRevenue = try Self.money(revenue); paths.append("annual_revenue") }
    if let phone { account.phone = phone; paths.append("phone") }
    if let country { account.billingAddress.regionCode = country; paths.append("billing_address") }
    if let parent { account.parentID = parent; paths.append("parent_id") }
    if let description { account.description_p = description; paths.append("description") }
    if let externalID { account.externalID = externalID; paths.append("external_id") }
    if let registrationID { account.registrationID = registrationID; paths.append("registration_id") }
    if !tag.isEmpty { account.tags = tag; paths.append("tags") }
    if let owner { account.ownerID = owner; paths.append("owner_id") }
    return paths
  }

  /// Parses "USD 1250000.50".
  static func money(_ text: String, option: String = "--revenue") throws -> Crm_V1_Money {
    let parts = text.split(separator: " ")
    guard parts.count == 2, let amount = Decimal(string: String(parts[1])) else {
      throw ValidationError("\(option) must look like \"USD 1250000.50\"")
    }
    let units = NSDecimalNumber(decimal: amount).int64Value
    let fraction = (amount - Decimal(units)) * 1_000_000_000
    return .with {
      $0.currencyCode = String(parts[0]).uppercased()
      $0.units = units
      $0.nanos = Int32(NSDecimalNumber(decimal: fraction).int32Value)
    }
  }
}

extension Accounts {
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create an account.",
      discussion: "Example: crm accounts create --name \"Acme Corp\" --website acme.com --country US --tag vip")
    @OptionGroup var client: ClientOptions
    @OptionGroup var fields: AccountFieldOptions
    @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?
    @OptionGroup var duplicates: DuplicateActionOption

    func run() async throws {
      try await runReportingErrors {
        var account = Crm_V1_Account()
        _ = try fields.apply(to: &account)
        let request = Crm_V1_CreateAccountRequest.with {
          $0.account = account
          $0.requestID = requestID ?? ""
          $0.duplicateAction = duplicates.action
        }
        let created = try await client.withClient { client, metadata in
          try await Crm_V1_AccountService.Client(wrapping: client).createAccount(request, metadata: metadata)
        }
        try Accounts.printAccount(created, json: client.json)
        Duplicates.warn(created.duplicateFindings, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one account.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let account = try await client.withClient { client, metadata in
          try await Crm_V1_AccountService.Client(wrapping: client).getAccount(.with { $0.id = id }, metadata: metadata)
        }
        try Accounts.printAccount(account, json: client.json)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List accounts, one page at a time.",
      discussion: "Example: crm accounts list --name-prefix ac --order updated --limit 20")
    @OptionGroup var client: ClientOptions
    @Option(help: "Name prefix (case-insensitive).") var namePrefix: String?
    @Option(help: "Exact domain.") var domain: String?
    @Option(help: "Tag.") var tag: String?
    @Option(help: "Owner's user id.") var owner: String?
    @Option(help: "Parent account id.") var parent: String?
    @Option(help: "name or updated.") var order: String = "name"
    @Option(help: "active, archived or all.") var archived: String = "active"
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption
    @Flag(help: "Fetch every page.") var all = false

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ListAccountsRequest()
        request.namePrefix = namePrefix ?? ""
        request.domain = domain ?? ""
        request.tag = tag ?? ""
        request.ownerID = owner ?? ""
        request.parentID = parent ?? ""
        request.pageSize = limit
        request.pageToken = paging.pageToken
        request.orderBy = order == "updated" ? .updateTimeDesc : .name
        request.archiveFilter = try ArchiveOption.parse(archived)
        let (accounts, next) = try await client.withClient { client, metadata in
          let service = Crm_V1_AccountService.Client(wrapping: client)
          var collected: [Crm_V1_Account] = []
          var page = request
          while true {
            let response = try await service.listAccounts(page, metadata: metadata)
            collected += response.accounts
            if !all || response.nextPageToken.isEmpty { return (collected, response.nextPageToken) }
            page.pageToken = response.nextPageToken
          }
        }
        try Accounts.printAccounts(accounts, json: client.json)
        Output.more(next)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change the given fields of an account.",
      discussion: "Only the options you pass change. Pass --etag to fail (exit 6) if someone changed it since you read it.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String
    @OptionGroup var fields: AccountFieldOptions
    @Option(help: "The etag you read; the update fails if the account changed since.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        var account = Crm_V1_Account()
        account.id = id
        account.etag = etag ?? ""
        let paths = try fields.apply(to: &account)
        guard !paths.isEmpty else { throw CLIError(message: "nothing to change: pass at least one field option", code: 2) }
        let request = Crm_V1_UpdateAccountRequest.with {
          $0.account = account
          $0.updateMask = .with { $0.paths = paths }
        }
        let updated = try await client.withClient { client, metadata in
          try await Crm_V1_AccountService.Client(wrapping: client).updateAccount(request, metadata: metadata)
        }
        try Accounts.printAccount(updated, json: client.json)
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Archive an account (restore it with undelete).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Accounts.setArchived(true, client: client, id: id, etag: etag) }
    }
  }

  struct Undelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore an archived account.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Accounts.setArchived(false, client: client, id: id, etag: etag) }
    }
  }

  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Merge duplicate accounts into one.",
      discussion: "Example: crm accounts merge SURVIVOR_ID DUPLICATE_ID --take title=DUPLICATE_ID\n" + MergeOptions.discussion)
    @OptionGroup var client: ClientOptions
    @OptionGroup var merge: MergeOptions

    func run() async throws {
      try await runReportingErrors {
        let request = try merge.request()
        let survivor = try await client.withClient { grpc, metadata in
          try await Crm_V1_AccountService.Client(wrapping: grpc).mergeAccounts(request, metadata: metadata)
        }
        try Accounts.printAccount(survivor, json: client.json)
      }
    }
  }

  struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an account's change history, newest first.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String
    @Option(help: "Entries to show.") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        try await HistoryPrinter.run(client: client, type: .account, id: id, limit: limit, pageToken: paging.pageToken)
      }
    }
  }

  struct ContactsOf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "contacts", abstract: "List an account's contacts.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { client, metadata in
          try await Crm_V1_AccountService.Client(wrapping: client).listAccountContacts(
            .with {
              $0.accountID = id; $0.pageSize = limit; $0.pageToken = paging.pageToken
            }, metadata: metadata)
        }
        try Contacts.printContacts(response.contacts, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }

  struct Hierarchy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the account tree an account belongs to.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The account id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { client, metadata in
          try await Crm_V1_AccountService.Client(wrapping: client).getAccountHierarchy(.with { $0.id = id }, metadata: metadata)
        }
        if client.json { return print(try Output.json(response)) }
        for node in response.nodes {
          print(String(repeating: "  ", count: Int(node.depth)) + "\(node.account.name)  (\(node.account.id))")
        }
      }
    }
  }
}

/// Parses --archived.
enum ArchiveOption {
  static func parse(_ text: String) throws -> Crm_V1_ArchiveFilter {
    switch text {
    case "active": return .active
    case "archived": return .archived
    case "all": return .all
    default: throw ValidationError("--archived must be active, archived or all")
    }
  }
}

/// Prints a record's history.
enum HistoryPrinter {
  static func run(client: ClientOptions, type: Crm_V1_RecordType, id: String, limit: Int32, pageToken: String) async throws {
    let response = try await client.withClient { grpc, metadata in
      try await Crm_V1_ChangeService.Client(wrapping: grpc).getRecordHistory(
        .with {
          $0.recordType = type
          $0.recordID = id
          $0.pageSize = limit
          $0.pageToken = pageToken
        }, metadata: metadata)
    }
    Output.more(response.nextPageToken)
    if client.json { return try Output.printJSON(response.entries) }
    for entry in response.entries {
      print(
        "\(Output.time(entry.changeTime))  #\(entry.sequence)  \(Output.name(entry.operation))  by \(entry.actorID.prefix(8))"
          + cause(entry))
      printChanges(entry.changes)
    }
  }

  /// `  event NAME` and `  rule NAME` when a trigger rule made the entry; empty otherwise.
  static func cause(_ entry: Crm_V1_ChangeEntry) -> String {
    var text = entry.eventName.isEmpty ? "" : "  event \(entry.eventName)"
    if !entry.ruleID.isEmpty {
      text += "  rule " + (entry.ruleName.isEmpty ? String(entry.ruleID.prefix(8)) : "\"\(entry.ruleName)\"")
    }
    return text
  }

  /// Each changed field, indented: `field: old → new`.
  static func printChanges(_ changes: [Crm_V1_FieldChange]) {
    for change in changes {
      print("    \(change.field): \(Output.value(change.oldValue)) → \(Output.value(change.newValue))")
    }
  }
}

extension Accounts {
  /// Archives (`true`) or restores a account and prints it.
  static func setArchived(_ archived: Bool, client: ClientOptions, id: String, etag: String?) async throws {
    let account = try await client.withClient { grpc, metadata in
      let service = Crm_V1_AccountService.Client(wrapping: grpc)
      if archived {
        return try await service.deleteAccount(
          .with {
            $0.id = id; $0.etag = etag ?? ""
          }, metadata: metadata)
      }
      return try await service.undeleteAccount(
        .with {
          $0.id = id; $0.etag = etag ?? ""
        }, metadata: metadata)
    }
    try printAccount(account, json: client.json)
  }
}
