import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Testing

@Suite("Server: field-level security")
struct FieldSecurityTests {
  typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

  /// One of each record, owned by (or shared with) the sales rep, each with `marker` in the field
  /// the rep's role may not see.
  struct Fixture: Sendable {
    let marker: String
    let rep: Principal
    let repAuth: Metadata
    let admin: Metadata
    let lead: String
    let contact: String
    let account: String
    let opportunity: String
    let ticket: String
    let task: String
    let interaction: String
    let pool: String
    let pooledLead: String

    /// Every record's id: a response to the rep must still name one (the record, only without the
    /// field), or its missing marker would prove nothing.
    var ids: [String] { [lead, contact, account, opportunity, ticket, task, interaction, pooledLead] }
  }

  typealias Call = @Sendable (Client, Metadata, Fixture) async throws -> any SwiftProtobuf.Message

  /// Every read RPC whose response can carry a record or a change, with a call that reaches the
  /// fixture's marker. `everyReadRPC` fails when the API gains such an RPC that is not here.
  static let reads: [String: Call] = [
    "crm.v1.LeadService/GetLead": { c, m, f in
      try await Crm_V1_LeadService.Client(wrapping: c).getLead(.with { $0.id = f.lead }, metadata: m)
    },
    "crm.v1.LeadService/BatchGetLeads": { c, m, f in
      try await Crm_V1_LeadService.Client(wrapping: c).batchGetLeads(.with { $0.ids = [f.lead] }, metadata: m)
    },
    "crm.v1.LeadService/ListLeads": { c, m, _ in try await Crm_V1_LeadService.Client(wrapping: c).listLeads(.init(), metadata: m)
    },
    "crm.v1.ContactService/GetContact": { c, m, f in
      try await Crm_V1_ContactService.Client(wrapping: c).getContact(.with { $0.id = f.contact }, metadata: m)
    },
    "crm.v1.ContactService/BatchGetContacts": { c, m, f in
      try await Crm_V1_ContactService.Client(wrapping: c).batchGetContacts(.with { $0.ids = [f.contact] }, metadata: m)
    },
    "crm.v1.ContactService/ListContacts": { c, m, _ in
      try await Crm_V1_ContactService.Client(wrapping: c).listContacts(.init(), metadata: m)
    },
    "crm.v1.InsightService/GetCustomer360": { c, m, f in
      try await Crm_V1_InsightService.Client(wrapping: c).getCustomer360(.with { $0.accountID = f.account }, metadata: m)
    },
    "crm.v1.AccountService/GetAccount": { c, m, f in
      try await Crm_V1_AccountService.Client(wrapping: c).getAccount(.with { $0.id = f.account }, metadata: m)
    },
    "crm.v1.AccountService/BatchGetAccounts": { c, m, f in
      try await Crm_V1_AccountService.Client(wrapping: c).batchGetAccounts(.with { $0.ids = [f.account] }, metadata: m)
    },
    "crm.v1.AccountService/ListAccounts": { c, m, _ in
      try await Crm_V1_AccountService.Client(wrapping: c).listAccounts(.init(), metadata: m)
    },
    "crm.v1.AccountService/GetAccountHierarchy": { c, m, f in
      try await Crm_V1_AccountService.Client(wrapping: c).getAccountHierarchy(.with { $0.id = f.account }, metadata: m)
    },
    "crm.v1.AccountService/ListAccountContacts": { c, m, f in
      try await Crm_V1_AccountService.Client(wrapping: c).listAccountContacts(.with { $0.accountID = f.account }, metadata: m)
    },
    "crm.v1.OpportunityService/GetOpportunity": { c, m, f in
      try await Crm_V1_OpportunityService.Client(wrapping: c).getOpportunity(.with { $0.id = f.opportunity }, metadata: m)
    },
    "crm.v1.OpportunityService/BatchGetOpportunities": { c, m, f in
      try await Crm_V1_OpportunityService.Client(wrapping: c).batchGetOpportunities(
        .with { $0.ids = [f.opportunity] }, metadata: m)
    },
    "crm.v1.ForecastService/ListForecastDeals": { c, m, f in
      try await Crm_V1_ForecastService.Client(wrapping: c).listForecastDeals(
        .with {
          $0.userID = f.rep.userID.lowercasedString
          $0.period = "2027-Q1"
          $0.currencyCode = "USD"
          $0.column = .pipeline
        }, metadata: m)
    },
    "crm.v1.SearchService/Search": { c, m, _ in
      try await Crm_V1_SearchService.Client(wrapping: c).search(.with { $0.query = "secretive" }, metadata: m)
    },
    "crm.v1.OpportunityService/ListOpportunities": { c, m, _ in
      try await Crm_V1_OpportunityService.Client(wrapping: c).listOpportunities(.init(), metadata: m)
    },
    "crm.v1.TicketService/GetTicket": { c, m, f in
      try await Crm_V1_TicketService.Client(wrapping: c).getTicket(.with { $0.id = f.ticket }, metadata: m)
    },
    "crm.v1.TicketService/BatchGetTickets": { c, m, f in
      try await Crm_V1_TicketService.Client(wrapping: c).batchGetTickets(.with { $0.ids = [f.ticket] }, metadata: m)
    },
    "crm.v1.TicketService/ListTickets": { c, m, _ in
      try await Crm_V1_TicketService.Client(wrapping: c).listTickets(.init(), metadata: m)
    },
    "crm.v1.TicketService/GetTicketSLA": { c, m, f in
      try await Crm_V1_TicketService.Client(wrapping: c).getTicketSLA(.with { $0.ticketID = f.ticket }, metadata: m)
    },
    "crm.v1.TaskService/GetTask": { c, m, f in
      try await Crm_V1_TaskService.Client(wrapping: c).getTask(.with { $0.id = f.task }, metadata: m)
    },
    "crm.v1.TaskService/ListMyTasks": { c, m, f in
      try await Crm_V1_TaskService.Client(wrapping: c).listMyTasks(
        .with { $0.userID = f.rep.userID.lowercasedString }, metadata: m)
    },
    "crm.v1.InteractionService/GetInteraction": { c, m, f in
      try await Crm_V1_InteractionService.Client(wrapping: c).getInteraction(.with { $0.id = f.interaction }, metadata: m)
    },
    "crm.v1.InteractionService/ListInteractions": { c, m, f in
      try await Crm_V1_InteractionService.Client(wrapping: c).listInteractions(
        .with { $0.record = ref(.lead, f.lead) }, metadata: m)
    },
    "crm.v1.InteractionService/GetTimeline": { c, m, f in
      try await Crm_V1_InteractionService.Client(wrapping: c).getTimeline(.with { $0.record = ref(.lead, f.lead) }, metadata: m)
    },
    "crm.v1.PoolService/ListPoolRecords": { c, m, f in
      try await Crm_V1_PoolService.Client(wrapping: c).listPoolRecords(.with { $0.poolID = f.pool }, metadata: m)
    },
    "crm.v1.ChangeService/GetRecordHistory": { c, m, f in
      try await Crm_V1_ChangeService.Client(wrapping: c).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = f.lead
        }, metadata: m)
    },
    "crm.v1.ChangeService/ListChanges": { c, m, _ in
      try await Crm_V1_ChangeService.Client(wrapping: c).listChanges(.with { $0.pageSize = 1000 }, metadata: m)
    },
    "crm.v1.ChangeService/StreamChanges": { c, m, f in
      // The backlog up to the lead's last change (its description update), then the stream is let go.
      try await Crm_V1_ChangeService.Client(wrapping: c).streamChanges(.init(), metadata: m) { response in
        var events = Crm_V1_ListChangesResponse()
        for try await event in response.messages {
          events.events.append(event)
          if event.change.recordID == f.lead && event.change.operation == .update { break }
        }
        return events
      }
    },
  ]

  /// The RPCs that write and answer with what they wrote: their responses go through the same
  /// redaction as the reads (checked for UpdateLead), and their requests through the write check.
  static let writes: Set<String> = [
    "AccountService/CreateAccount", "AccountService/DeleteAccount", "AccountService/MergeAccounts",
    "AccountService/UndeleteAccount", "AccountService/UpdateAccount", "CaptureService/CaptureSupportEmail",
    "ContactService/CreateContact", "ContactService/DeleteContact", "ContactService/MergeContacts",
    "ContactService/UndeleteContact", "ContactService/UpdateContact", "InteractionService/DeleteInteraction",
    "InteractionService/LogInteraction", "InteractionService/UpdateInteraction", "LeadService/ConvertLead",
    "LeadService/CreateLead", "LeadService/DeleteLead", "LeadService/MergeLeads", "LeadService/SetLeadStatus",
    "LeadService/UndeleteLead", "LeadService/UpdateLead", "OpportunityService/CloseOpportunityLost",
    "OpportunityService/CloseOpportunityWon", "OpportunityService/CreateOpportunity", "OpportunityService/DeleteOpportunity",
    "OpportunityService/MoveOpportunityStage", "OpportunityService/ReopenOpportunity", "OpportunityService/UndeleteOpportunity",
    "OpportunityService/UpdateOpportunity", "PoolService/AssignFromPool", "PoolService/Claim", "PoolService/MoveToPool",
    "PoolService/Release", "TaskService/CreateTask", "TaskService/DeleteTask", "TaskService/UpdateTask",
    "TicketService/AddComment", "TicketService/CreateTicket", "TicketService/DeleteTicket", "TicketService/MergeTickets",
    "TicketService/SetTicketDueTime", "TicketService/UndeleteTicket", "TicketService/UpdateTicket",
  ]

  static func ref(_ type: Crm_V1_RecordType, _ id: String) -> Crm_V1_RecordRef {
    .with {
      $0.recordType = type
      $0.recordID = id
    }
  }

  static func rule(_ role: Crm_V1_Role, _ type: Crm_V1_RecordType, _ field: String, _ access: Crm_V1_FieldAccess)
    -> Crm_V1_SetFieldSecurityRequest
  {
    .with {
      $0.rule = .with {
        $0.role = role
        $0.recordType = type
        $0.field = field
        $0.access = access
      }
    }
  }

  /// The text form of a response, where a leaked marker would show.
  static func text(_ message: any SwiftProtobuf.Message) -> String {
    (try? message.jsonString()) ?? message.textFormatString()
  }

  /// A tenant whose sales reps may not see the description of any record (nor an interaction's body)
  /// nor edit a lead's company, and one of each record carrying a marker there.
  static func withFixture(_ body: @Sendable (Client, Fixture) async throws -> Void) async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient(feed: true) { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      let marker = "MARKER-\(UUID().uuidString.prefix(8))"
      let adminService = Crm_V1_AdminService.Client(wrapping: client)
      for type in [Crm_V1_RecordType.lead, .contact, .account, .opportunity, .ticket, .task] {
        _ = try await adminService.setFieldSecurity(rule(.salesRep, type, "description", .hidden), metadata: admin)
      }
      _ = try await adminService.setFieldSecurity(rule(.salesRep, .interaction, "body", .hidden), metadata: admin)
      _ = try await adminService.setFieldSecurity(rule(.salesRep, .lead, "company", .readOnly), metadata: admin)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Secretive" } }, metadata: repAuth)
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = lead.id
            $0.description_p = marker
          }
          $0.updateMask = .with { $0.paths = ["description"] }
        }, metadata: admin)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "Acme \(marker)".replacingOccurrences(of: marker, with: "Corp")
            $0.description_p = marker
          }
        }, metadata: admin)
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Quiet"
            $0.accountID = account.id
            $0.description_p = marker
          }
        }, metadata: admin)
      let opportunity = try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Deal"
            $0.accountID = account.id
            $0.description_p = marker
            // The rep's, with an amount and a close date, so the rep's forecast lists it.
            $0.ownerID = rep.userID.lowercasedString
            $0.amount = OpportunityRPCTests.money(1_000)
            $0.closeDate = OpportunityRPCTests.date(2027, 2, 15)
          }
        }, metadata: admin)
      let ticket = try await Crm_V1_TicketService.Client(wrapping: client).createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Broken"
            $0.description_p = marker
            $0.requesterContactID = contact.id
          }
        }, metadata: admin)
      let task = try await Crm_V1_TaskService.Client(wrapping: client).createTask(
        .with {
          $0.task = .with {
            $0.subject = "Call back"
            $0.description_p = marker
            $0.related = ref(.lead, lead.id)
            $0.ownerID = rep.userID.lowercasedString
          }
        }, metadata: admin)
      let interaction = try await Crm_V1_InteractionService.Client(wrapping: client).logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .call
            $0.subject = "Intro"
            $0.body = marker
            $0.links = [ref(.lead, lead.id)]
          }
        }, metadata: admin)
      // A pool the rep is in, holding a lead with the marker.
      let (pool, pooled) = try await PoolRPCTests.pool(client, auth: admin, members: [rep.userID], leads: 1)
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = pooled[0]
            $0.description_p = marker
          }
          $0.updateMask = .with { $0.paths = ["description"] }
        }, metadata: admin)
      let fixture = Fixture(
        marker: marker, rep: rep, repAuth: repAuth, admin: admin, lead: lead.id, contact: contact.id, account: account.id,
        opportunity: opportunity.id, ticket: ticket.id, task: task.id, interaction: interaction.id, pool: pool.id,
        pooledLead: pooled[0])
      // The feed has the lead's update before anyone reads it.
      _ = try await ChangeFeedTests.events(Crm_V1_ChangeService.Client(wrapping: client), metadata: admin) { events in
        events.contains { $0.change.recordID == lead.id && $0.change.operation == .update }
      }
      try await body(client, fixture)
    }
  }

  @Test("every read RPC that can return a record or a change leaves out what the caller's role may not see")
  func everyReadRPC() async throws {
    let governed = FieldGuard.shared.governedMethods
    let unclassified = governed.filter { Self.reads[$0] == nil && !Self.writes.contains(String($0.dropFirst("crm.v1.".count))) }
    #expect(unclassified.isEmpty, "add these RPCs to FieldSecurityTests.reads (with a call) or .writes: \(unclassified)")
    #expect(Set(Self.reads.keys).isSubset(of: Set(governed)), "reads lists an RPC that carries no records")
    try await Self.withFixture { client, fixture in
      for (method, call) in Self.reads.sorted(by: { $0.key < $1.key }) {
        let seen = Self.text(try await call(client, fixture.admin, fixture))
        #expect(seen.contains(fixture.marker), "\(method): the admin's answer should carry the marker (the fixture reaches it)")
        let redacted = Self.text(try await call(client, fixture.repAuth, fixture))
        #expect(!redacted.contains(fixture.marker), "\(method) shows a hidden field to a sales rep")
        #expect(fixture.ids.contains(where: redacted.contains), "\(method): the rep should still get the record")
      }
      // The rep still gets the records, only without the field.
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).getLead(
        .with { $0.id = fixture.lead }, metadata: fixture.repAuth)
      #expect(lead.lastName == "Secretive" && lead.description_p.isEmpty)
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .lead
          $0.recordID = fixture.lead
        }, metadata: fixture.repAuth)
      #expect(history.entries.map(\.operation) == [.update, .create], "the entry stays; its hidden change goes")
      #expect(history.entries[0].changes.allSatisfy { $0.field != "description" })
    }
  }

  @Test("writes naming a read-only or hidden field answer PERMISSION_DENIED naming it; the rest go through")
  func writes() async throws {
    try await Self.withFixture { client, fixture in
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      func denied(_ call: () async throws -> some Any) async -> String? {
        do {
          _ = try await call()
          return nil
        } catch let error as RPCError {
          return error.code == .permissionDenied ? error.message : "\(error.code)"
        } catch {
          return "\(error)"
        }
      }
      let current = try await leads.getLead(.with { $0.id = fixture.lead }, metadata: fixture.repAuth)
      for (path, value) in [("description", "mine now"), ("company", "Renamed")] {
        let message = await denied {
          try await leads.updateLead(
            .with {
              $0.lead = current
              $0.lead.description_p = value
              $0.lead.company = value
              $0.updateMask = .with { $0.paths = [path] }
            }, metadata: fixture.repAuth)
        }
        #expect(message?.contains("lead.\(path)") == true, "\(path): \(message ?? "allowed")")
      }
      // A mask that names only editable fields goes through, whatever else the record echoes back.
      var echoed = current
      echoed.title = "VP"
      echoed.company = "Echoed"
      let updated = try await leads.updateLead(
        .with {
          $0.lead = echoed
          $0.updateMask = .with { $0.paths = ["title"] }
        }, metadata: fixture.repAuth)
      #expect(updated.title == "VP" && updated.company.isEmpty && updated.description_p.isEmpty)
      let createDenied = await denied {
        try await leads.createLead(
          .with {
            $0.lead = .with {
              $0.lastName = "New"
              $0.description_p = "x"
            }
          }, metadata: fixture.repAuth)
      }
      #expect(createDenied?.contains("lead.description") == true)
      _ = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Allowed" } }, metadata: fixture.repAuth)
      let other = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Twin" } }, metadata: fixture.repAuth)
      let mergeDenied = await denied {
        try await leads.mergeLeads(
          .with {
            $0.survivorID = fixture.lead
            $0.merged = [.with { $0.id = other.id }]
            $0.fieldSources = ["company": other.id]
          }, metadata: fixture.repAuth)
      }
      #expect(mergeDenied?.contains("field_sources[company]") == true, "\(mergeDenied ?? "allowed")")
      // The admin is never restricted.
      _ = try await leads.updateLead(
        .with {
          $0.lead = .with {
            $0.id = fixture.lead
            $0.company = "Admin's"
          }
          $0.updateMask = .with { $0.paths = ["company"] }
        }, metadata: fixture.admin)
    }
  }

  @Test("a role that may not see deal amounts gets no sums of them: forecasts refuse, analytics and the 360 leave them out")
  func hiddenAmountSums() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      _ = try await Crm_V1_AdminService.Client(wrapping: client).setFieldSecurity(
        Self.rule(.salesRep, .opportunity, "amount", .hidden), metadata: admin)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "Sumless Mills"
            $0.ownerID = rep.userID.lowercasedString
          }
        }, metadata: admin)
      _ = try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "The only deal"
            $0.accountID = account.id
            $0.ownerID = rep.userID.lowercasedString
            $0.amount = OpportunityRPCTests.money(48_250, "EUR")
          }
        }, metadata: admin)

      let forecasts = Crm_V1_ForecastService.Client(wrapping: client)
      #expect(await code { try await forecasts.getForecast(.init(), metadata: repAuth) } == .permissionDenied)
      #expect(await code { try await forecasts.getForecastTrend(.init(), metadata: repAuth) } == .permissionDenied)
      #expect(try await forecasts.getForecast(.with { $0.currencyCode = "EUR" }, metadata: admin).rows.isEmpty == false)
      _ = try await forecasts.listQuotas(.init(), metadata: repAuth)

      let analytics = Crm_V1_AnalyticsService.Client(wrapping: client)
      #expect(try await analytics.getPipelineAnalytics(.init(), metadata: repAuth).currencies.isEmpty)
      let company = try await analytics.getPipelineAnalytics(.with { $0.company = true }, metadata: admin)
      #expect(company.currencies.map(\.currencyCode) == ["EUR"])

      let insight = Crm_V1_InsightService.Client(wrapping: client)
      let seen = try await insight.getCustomer360(.with { $0.accountID = account.id }, metadata: repAuth)
      #expect(seen.pipeline.openCount == 1 && seen.pipeline.openAmount.isEmpty && seen.pipeline.weightedAmount.isEmpty)
      let full = try await insight.getCustomer360(.with { $0.accountID = account.id }, metadata: admin)
      #expect(full.pipeline.openAmount.map(\.units) == [48_250])
      #expect(!Self.text(seen).contains("48250"))
    }
  }

  @Test("rules are validated, listed, and removed by setting a field editable; only admins set them")
  func administration() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let service = Crm_V1_AdminService.Client(wrapping: client)
      let bad = await HardeningRPCTests.violations {
        try await service.setFieldSecurity(Self.rule(.admin, .lead, "no_such_field", .unspecified), metadata: admin)
      }
      #expect(bad?.sorted() == ["rule.access", "rule.field", "rule.role"])
      let identity = await HardeningRPCTests.violations {
        try await service.setFieldSecurity(Self.rule(.salesRep, .lead, "id", .hidden), metadata: admin)
      }
      #expect(identity == ["rule.field"])
      #expect(
        await code {
          try await service.setFieldSecurity(Self.rule(.salesRep, .lead, "title", .hidden), metadata: TestServer.auth(repSecret))
        }
          == .permissionDenied)
      _ = try await service.setFieldSecurity(Self.rule(.salesRep, .lead, "title", .hidden), metadata: admin)
      let rules = try await service.setFieldSecurity(
        Self.rule(.integration, .account, "annual_revenue", .readOnly), metadata: admin)
      #expect(
        rules.rules.map { "\($0.role)/\($0.recordType)/\($0.field)/\($0.access)" } == [
          "integration/account/annual_revenue/readOnly", "salesRep/lead/title/hidden",
        ])
      let title = Crm_V1_LeadService.Client(wrapping: client)
      let created = try await title.createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Titled"
            $0.title = "CEO"
          }
        }, metadata: admin)
      #expect(try await title.getLead(.with { $0.id = created.id }, metadata: TestServer.auth(repSecret)).title.isEmpty)
      _ = try await service.setFieldSecurity(Self.rule(.salesRep, .lead, "title", .editable), metadata: admin)
      #expect(try await service.listFieldSecurity(.init(), metadata: admin).rules.count == 1)
      #expect(try await title.getLead(.with { $0.id = created.id }, metadata: TestServer.auth(repSecret)).title == "CEO")
    }
  }
}
