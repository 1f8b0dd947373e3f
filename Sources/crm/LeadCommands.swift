import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm leads …`
struct Leads: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Capture, qualify and list leads.",
    subcommands: [
      Create.self, Get.self, List.self, Update.self, Status.self, Convert.self, Delete.self, Undelete.self, Merge.self,
      History.self, LeadFunnelCommand.self,
    ])

  static func printLeads(_ leads: [Crm_V1_Lead], json: Bool) throws {
    if json { return try Output.printJSON(leads) }
    Output.printTable(
      ["ID", "NAME", "COMPANY", "EMAIL", "STATUS", "SOURCE", "SCORE", "ETAG"],
      leads.map {
        [
          $0.id, "\($0.firstName) \($0.lastName)".trimmingCharacters(in: .whitespaces), $0.company,
          $0.emails.first(where: \.primary)?.address ?? "", Output.name($0.status),
          $0.source == .unspecified ? "" : Output.name($0.source),
          $0.hasPredictiveScore
            ? "\($0.predictiveScore.score) \(Output.name($0.predictiveScore.tier))" : $0.hasScore ? String($0.score) : "",
          $0.etag,
        ]
      })
  }

  static func printLead(_ lead: Crm_V1_Lead, json: Bool) throws {
    if json { return print(try Output.json(lead)) }
    Output.printRecord([
      ("id", lead.id), ("name", "\(lead.firstName) \(lead.lastName)".trimmingCharacters(in: .whitespaces)),
      ("company", lead.company), ("title", lead.title), ("status", Output.name(lead.status)),
      ("disqualified", lead.disqualifiedReason),
      ("emails", lead.emails.map { $0.address + ($0.primary ? " (primary)" : "") }.joined(separator: ", ")),
      ("phones", lead.phones.map { $0.number + ($0.primary ? " (primary)" : "") }.joined(separator: ", ")),
      ("website", lead.website), ("region", lead.regionCode), ("industry", lead.industry),
      ("source", lead.source == .unspecified ? "" : Output.name(lead.source)), ("campaign", lead.campaign),
      ("external id", lead.externalID), ("registration id", lead.registrationID), ("tags", lead.tags.joined(separator: ", ")),
      ("owner", lead.ownerID),
      ("etag", lead.etag), ("created", Output.time(lead.createTime)), ("updated", Output.time(lead.updateTime)),
      ("archived", Output.time(lead.archiveTime)), ("merged into", lead.mergedIntoID),
      ("converted", Output.time(lead.convertTime)), ("→ account", lead.convertedAccountID),
      ("→ contact", lead.convertedContactID), ("→ deal", lead.convertedOpportunityID),
      ("score", lead.hasScore ? String(lead.score) : ""),
      (
        "learned score",
        lead.hasPredictiveScore
          ? "\(lead.predictiveScore.score) (\(Output.name(lead.predictiveScore.tier)), model \(lead.predictiveScore.modelVersion))"
          : ""
      ),
      ("why", lead.predictiveScore.reasons.map(\.text).joined(separator: "; ")),
    ])
  }

  static let sources: [String: Crm_V1_LeadSource] = [
    "web_form": .webForm, "email": .email, "phone": .phone, "chat": .chat, "event": .event, "partner": .partner,
    "import": .import, "api": .api,
  ]

  static let statuses: [String: Crm_V1_LeadStatus] = [
    "new": .new, "working": .working, "nurturing": .nurturing, "qualified": .qualified, "converted": .converted,
    "disqualified": .disqualified,
  ]

  /// Archives (`true`) or restores a lead and prints it.
  static func setArchived(_ archived: Bool, client: ClientOptions, id: String, etag: String?) async throws {
    let lead = try await client.withClient { grpc, metadata in
      let service = Crm_V1_LeadService.Client(wrapping: grpc)
      if archived {
        return try await service.deleteLead(
          .with {
            $0.id = id; $0.etag = etag ?? ""
          }, metadata: metadata)
      }
      return try await service.undeleteLead(
        .with {
          $0.id = id; $0.etag = etag ?? ""
        }, metadata: metadata)
    }
    try printLead(lead, json: client.json)
  }
}

/// The lead fields a command may set; only those given are sent.
struct LeadFieldOptions: ParsableArguments {
  @Option(help: "First name.") var firstName: String?
  @Option(help: "Last name.") var lastName: String?
  @Option(help: "Company.") var company: String?
  @Option(help: "Job title.") var title: String?
  @Option(help: "Email; repeat for several, the first is primary.") var email: [String] = []
  @Option(help: "Phone; repeat for several, the first is primary.") var phone: [String] = []
  @Option(help: "Website or domain.") var website: String?
  @Option(help: "Country or region, ISO code (e.g. US); also used to normalize phones.") var region: String?
  @Option(help: "Industry.") var industry: String?
  @Option(help: "Employees at the company.") var companySize: Int32?
  @Option(help: "Score, 0-100.") var score: Int32?
  @Option(help: "web_form, email, phone, chat, event, partner, import or api.") var source: String?
  @Option(help: "Detail about the source, e.g. the form or event.") var sourceDetail: String?
  @Option(help: "Campaign.") var campaign: String?
  @Option(help: "External id (unique in the tenant).") var externalID: String?
  @Option(help: "Registration id: unified social credit code, VAT id or company number.") var registrationID: String?
  @Option(help: "Tag; repeat for several.") var tag: [String] = []
  @Option(help: "Description.") var description: String?
  @Option(help: "Owner's user id.") var owner: String?

  /// Writes the given options into `lead` and returns their field-mask paths.
  func apply(to lead: inout Crm_V1_Lead) throws -> [String] {
    var paths: [String] = []
    if let firstName { lead.firstName = firstName; paths.append("first_name") }
    if let lastName { lead.lastName = lastName; paths.append("last_name") }
    if let company { lead.company = company; paths.append("company") }
    if let title { lead.title = title; paths.append("title") }
    if !email.isEmpty {
      lead.emails = email.enumerated().map { index, address in
        .with {
          $0.address = address; $0.primary = index == 0
        }
      }
      paths.append("emails")
    }
    if !phone.isEmpty {
      lead.phones = phone.enumerated().map { index, number in
        .with {
          $0.number = number; $0.primary = index == 0
        }
      }
      paths.append("phones")
    }
    if let website { lead.website = website; paths.append("website") }
    if let region { lead.regionCode = region; paths.append("region_code") }
    if let industry { lead.industry = industry; paths.append("industry") }
    if let companySize { lead.companySize = companySize; paths.append("company_size") }
    if let score { lead.score = score; paths.append("score") }
    if let source {
      guard let value = Leads.sources[source] else {
        throw ValidationError("--source must be one of \(Leads.sources.keys.sorted().joined(separator: ", "))")
      }
      lead.source = value
      paths.append("source")
    }
    if let sourceDetail { lead.sourceDetail = sourceDetail; paths.append("source_detail") }
    if let campaign { lead.campaign = campaign; paths.append("campaign") }
    if let externalID { lead.externalID = externalID; paths.append("external_id") }
    if let registrationID { lead.registrationID = registrationID; paths.append("registration_id") }
    if !tag.isEmpty { lead.tags = tag; paths.append("tags") }
    if let description { lead.description_p = description; paths.append("description") }
    if let owner { lead.ownerID = owner; paths.append("owner_id") }
    return paths
  }
}

extension Leads {
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a lead (status new).",
      discussion: "Example: crm leads create --first-name Grace --company \"Navy Labs\" --email grace@navy.example --source event"
    )
    @OptionGroup var client: ClientOptions
    @OptionGroup var fields: LeadFieldOptions
    @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?
    @OptionGroup var duplicates: DuplicateActionOption

    func run() async throws {
      try await runReportingErrors {
        var lead = Crm_V1_Lead()
        _ = try fields.apply(to: &lead)
        let request = Crm_V1_CreateLeadRequest.with {
          $0.lead = lead
          $0.requestID = requestID ?? ""
          $0.duplicateAction = duplicates.action
        }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).createLead(request, metadata: metadata)
        }
        try Leads.printLead(created, json: client.json)
        Duplicates.warn(created.duplicateFindings, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one lead.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String

    func run() async throws {
      try await runReportingErrors {
        let lead = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).getLead(.with { $0.id = id }, metadata: metadata)
        }
        try Leads.printLead(lead, json: client.json)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List leads, one page at a time.",
      discussion: "Example: crm leads list --status new --status working --source web_form")
    @OptionGroup var client: ClientOptions
    @Option(help: "Status; repeat for several.") var status: [String] = []
    @Option(help: "Source channel.") var source: String?
    @Option(help: "Campaign.") var campaign: String?
    @Option(help: "Any of the lead's emails.") var email: String?
    @Option(help: "Company name prefix.") var companyPrefix: String?
    @Option(help: "Owner's user id.") var owner: String?
    @Option(help: "Tag.") var tag: String?
    @Option(help: "name, updated or score (the learned score, highest first).") var order: String = "name"
    @Option(help: "active, archived or all.") var archived: String = "active"
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ListLeadsRequest()
        request.statuses = try status.map { text in
          guard let value = Leads.statuses[text] else {
            throw ValidationError("--status must be one of \(Leads.statuses.keys.sorted().joined(separator: ", "))")
          }
          return value
        }
        if let source {
          guard let value = Leads.sources[source] else { throw ValidationError("unknown --source \(source)") }
          request.source = value
        }
        request.campaign = campaign ?? ""
        request.email = email ?? ""
        request.companyPrefix = companyPrefix ?? ""
        request.ownerID = owner ?? ""
        request.tag = tag ?? ""
        request.orderBy = order == "updated" ? .updateTimeDesc : order == "score" ? .scoreDesc : .name
        request.archiveFilter = try ArchiveOption.parse(archived)
        request.pageSize = limit
        request.pageToken = paging.pageToken
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).listLeads(request, metadata: metadata)
        }
        try Leads.printLeads(response.leads, json: client.json)
        Output.more(response.nextPageToken)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change the given fields of a lead (not its status).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @OptionGroup var fields: LeadFieldOptions
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        var lead = Crm_V1_Lead()
        lead.id = id
        lead.etag = etag ?? ""
        let paths = try fields.apply(to: &lead)
        guard !paths.isEmpty else { throw CLIError(message: "nothing to change: pass at least one field option", code: 2) }
        let updated = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).updateLead(
            .with {
              $0.lead = lead; $0.updateMask = .with { $0.paths = paths }
            }, metadata: metadata)
        }
        try Leads.printLead(updated, json: client.json)
      }
    }
  }

  struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Move a lead along its lifecycle.",
      discussion: "Example: crm leads status ID disqualified --reason \"no budget\"   (exit 6 for a move the lifecycle forbids)")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @Argument(help: "new, working, nurturing, qualified or disqualified.") var status: String
    @Option(help: "Why (required to disqualify).") var reason: String?
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        guard let value = Leads.statuses[status] else {
          throw ValidationError("status must be one of \(Leads.statuses.keys.sorted().joined(separator: ", "))")
        }
        let lead = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).setLeadStatus(
            .with {
              $0.id = id; $0.status = value; $0.reason = reason ?? ""; $0.etag = etag ?? ""
            }, metadata: metadata)
        }
        try Leads.printLead(lead, json: client.json)
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Archive a lead.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Leads.setArchived(true, client: client, id: id, etag: etag) }
    }
  }

  struct Undelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore an archived lead.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @Option(help: "The etag you read.") var etag: String?

    func run() async throws {
      try await runReportingErrors { try await Leads.setArchived(false, client: client, id: id, etag: etag) }
    }
  }

  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Merge duplicate leads into one.",
      discussion: "Example: crm leads merge SURVIVOR_ID DUPLICATE_ID --take title=DUPLICATE_ID\n" + MergeOptions.discussion)
    @OptionGroup var client: ClientOptions
    @OptionGroup var merge: MergeOptions

    func run() async throws {
      try await runReportingErrors {
        let request = try merge.request()
        let survivor = try await client.withClient { grpc, metadata in
          try await Crm_V1_LeadService.Client(wrapping: grpc).mergeLeads(request, metadata: metadata)
        }
        try Leads.printLead(survivor, json: client.json)
      }
    }
  }

  struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a lead's change history, newest first.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @Option(help: "Entries to show.") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        try await HistoryPrinter.run(client: client, type: .lead, id: id, limit: limit, pageToken: paging.pageToken)
      }
    }
  }
}

extension Leads {
  struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Convert a lead into an account, a contact and optionally a deal (one transaction).",
      discussion: """
        By default the account and contact are new, made from the lead. --match-account / --match-contact use the
        tenant's duplicate rule's best match instead (or create one when nothing matches); --account / --contact name
        existing records. --deal creates an opportunity too.

        Example: crm leads convert LEAD_ID --match-account --deal --amount "USD 48000" --close-date 2027-03-31
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The lead id.") var id: String
    @Option(help: "Use this existing account.") var account: String?
    @Flag(help: "Use the duplicate rule's best matching account, or create one.") var matchAccount = false
    @Option(help: "Name for a new account (default: the lead's company).") var accountName: String?
    @Option(help: "Use this existing contact.") var contact: String?
    @Flag(help: "Use the duplicate rule's best matching contact, or create one.") var matchContact = false
    @Flag(help: "Create a deal too.") var deal = false
    @Option(help: "Deal name (default: the account's name).") var dealName: String?
    @Option(help: "Deal amount, e.g. \"USD 48000\".") var amount: String?
    @Option(help: "Deal close date, YYYY-MM-DD.") var closeDate: String?
    @Option(help: "Deal stage id or name (default: the default pipeline's first stage).") var stage: String?
    @Option(help: "Owner of what is created (default: the lead's owner).") var owner: String?
    @Option(help: "The lead's etag you read.") var etag: String?
    @Option(help: "Idempotency key: repeating it returns the first conversion.") var requestID: String?

    func validate() throws {
      if account != nil && matchAccount { throw ValidationError("pass --account or --match-account, not both") }
      if contact != nil && matchContact { throw ValidationError("pass --contact or --match-contact, not both") }
      if !deal && (dealName != nil || amount != nil || closeDate != nil || stage != nil) {
        throw ValidationError("--deal-name, --amount, --close-date and --stage describe the deal: add --deal")
      }
    }

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ConvertLeadRequest()
        request.leadID = id
        request.etag = etag ?? ""
        request.requestID = requestID ?? ""
        request.ownerID = owner ?? ""
        if let account {
          request.accountTarget = .existing
          request.accountID = account
        } else if matchAccount {
          request.accountTarget = .matched
        }
        if let accountName { request.account.name = accountName }
        if let contact {
          request.contactTarget = .existing
          request.contactID = contact
        } else if matchContact {
          request.contactTarget = .matched
        }
        var opportunity = Crm_V1_Opportunity()
        if deal {
          opportunity.name = dealName ?? ""
          if let amount { opportunity.amount = try AccountFieldOptions.money(amount) }
          if let closeDate { opportunity.closeDate = try OpportunityFieldOptions.date(closeDate, option: "--close-date") }
        }
        let result = try await client.withClient { grpc, metadata in
          if deal {
            opportunity.stageID = try await Opportunities.stageID(
              stage, service: Crm_V1_OpportunityService.Client(wrapping: grpc), metadata: metadata)
            request.opportunity = opportunity
          }
          return try await Crm_V1_LeadService.Client(wrapping: grpc).convertLead(request, metadata: metadata)
        }
        if client.json { return print(try Output.json(result)) }
        Output.printRecord([
          ("lead", "\(result.lead.id) (converted)"),
          ("account", "\(result.account.id) \(result.account.name)\(result.accountCreated ? " (new)" : "")"),
          (
            "contact",
            "\(result.contact.id) \(result.contact.firstName) \(result.contact.lastName)\(result.contactCreated ? " (new)" : "")"
          ),
          (
            "deal",
            result.hasOpportunity ? "\(result.opportunity.id) \(result.opportunity.name) — \(result.opportunity.stageName)" : ""
          ),
        ])
      }
    }
  }
}
