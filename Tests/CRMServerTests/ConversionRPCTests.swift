import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
import SwiftProtobuf
import Testing

@Suite("Server: lead conversion")
struct ConversionRPCTests {
  static func lead(
    _ client: GRPCClient<some ClientTransport>, auth: Metadata, company: String?, email: String, registrationID: String = ""
  ) async throws -> Crm_V1_Lead {
    try await Crm_V1_LeadService.Client(wrapping: client).createLead(
      .with {
        $0.lead = .with {
          $0.firstName = "Grace"
          $0.lastName = "Hopper"
          if let company { $0.company = company }
          $0.title = "Rear Admiral"
          $0.emails = [.with { $0.address = email }]
          $0.phones = [.with { $0.number = "+1 415 555 0142" }]
          $0.website = "https://www.navylabs.example"
          $0.regionCode = "US"
          $0.industry = "Defense"
          $0.companySize = 1200
          $0.tags = ["conference"]
          $0.registrationID = registrationID
        }
        $0.duplicateAction = .allow
      }, metadata: auth)
  }

  @Test("conversion makes an account, a contact and a deal from the lead, once, with its interactions on their timelines")
  func convertNew() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await Self.lead(client, auth: auth, company: "Navy Labs", email: "grace@navylabs.example")
      let when = Int64(Date().timeIntervalSince1970) - 3600
      _ = try await Crm_V1_InteractionService.Client(wrapping: client).logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .call
            $0.subject = "Discovery call"
            $0.startTime = .init(seconds: when, nanos: 0)
            $0.links = [.with {
              $0.recordType = .lead
              $0.recordID = lead.id
            }]
          }
        }, metadata: auth)
      let request = Crm_V1_ConvertLeadRequest.with {
        $0.leadID = lead.id
        $0.etag = lead.etag
        $0.opportunity = .with {
          $0.amount = .with {
            $0.currencyCode = "USD"
            $0.units = 90_000
          }
          $0.closeDate = .with {
            $0.year = 2027
            $0.month = 6
            $0.day = 30
          }
        }
        $0.requestID = "convert-grace"
      }
      let result = try await leads.convertLead(request, metadata: auth)
      #expect(result.accountCreated && result.contactCreated)
      #expect(result.account.name == "Navy Labs" && result.account.domain == "navylabs.example")
      #expect(result.account.industry == "Defense" && result.account.employeeCount == 1200 && result.account.type == .prospect)
      #expect(result.account.billingAddress.regionCode == "US" && result.account.tags == ["conference"])
      #expect(result.contact.firstName == "Grace" && result.contact.lastName == "Hopper" && result.contact.title == "Rear Admiral")
      #expect(result.contact.emails.map(\.address) == ["grace@navylabs.example"] && result.contact.accountID == result.account.id)
      #expect(result.opportunity.name == "Navy Labs" && result.opportunity.accountID == result.account.id)
      #expect(result.opportunity.primaryContactID == result.contact.id && result.opportunity.sourceLeadID == lead.id)
      #expect(result.opportunity.amount.units == 90_000 && result.opportunity.stageName == "Prospecting")
      #expect(result.lead.status == .converted && result.lead.convertedAccountID == result.account.id)
      #expect(result.lead.convertedContactID == result.contact.id && result.lead.convertedOpportunityID == result.opportunity.id)
      #expect(result.lead.hasConvertTime)
      // The lead's interactions are on the new records' timelines, and their activity follows.
      for (type, id) in [(Crm_V1_RecordType.account, result.account.id), (.contact, result.contact.id), (.opportunity, result.opportunity.id)] {
        let timeline = try await Crm_V1_InteractionService.Client(wrapping: client).getTimeline(
          .with {
            $0.record = .with {
              $0.recordType = type
              $0.recordID = id
            }
          }, metadata: auth)
        #expect(timeline.entries.contains { $0.interaction.subject == "Discovery call" }, "\(type)")
      }
      let account = try await Crm_V1_AccountService.Client(wrapping: client).getAccount(
        .with { $0.id = result.account.id }, metadata: auth)
      #expect(account.lastActivityTime.seconds == when)

      // The same request id returns the first result; a second conversion is refused.
      let again = try await leads.convertLead(request, metadata: auth)
      #expect(again.account.id == result.account.id && again.contact.id == result.contact.id)
      #expect(again.opportunity.id == result.opportunity.id && again.accountCreated && again.contactCreated)
      let twice = await code {
        try await leads.convertLead(.with { $0.leadID = lead.id }, metadata: auth)
      }
      #expect(twice == .failedPrecondition)
      let accounts = try await Crm_V1_AccountService.Client(wrapping: client).listAccounts(
        .with { $0.namePrefix = "Navy Labs" }, metadata: auth)
      #expect(accounts.accounts.count == 1)
    }
  }

  @Test("MATCHED uses the duplicate rule's best match; EXISTING names a record; the rest refuse clearly")
  func convertMatchedAndExisting() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let known = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "Navy Laboratories"
            $0.registrationID = "91310000MA1FL4TQ3X"
          }
        }, metadata: auth)
      let person = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.firstName = "G."
            $0.lastName = "Hopper"
            $0.emails = [.with { $0.address = "grace@navylabs.example" }]
          }
        }, metadata: auth)
      // The standard account rule counts registration ids (0.95), not a shared domain alone (0.5).
      let lead = try await Self.lead(
        client, auth: auth, company: "Navy Labs", email: "grace@navylabs.example", registrationID: "91310000ma1fl4tq3x")
      let matched = try await leads.convertLead(
        .with {
          $0.leadID = lead.id
          $0.accountTarget = .matched
          $0.contactTarget = .matched
        }, metadata: auth)
      #expect(!matched.accountCreated && matched.account.id == known.id)
      #expect(!matched.contactCreated && matched.contact.id == person.id)
      #expect(!matched.hasOpportunity && matched.lead.convertedOpportunityID.isEmpty)

      // Nothing matches: MATCHED creates.
      let fresh = try await Self.lead(client, auth: auth, company: "Brand New Co", email: "ceo@brandnew.example")
      let unmatched = try await leads.convertLead(
        .with {
          $0.leadID = fresh.id
          $0.accountTarget = .matched
          $0.contactTarget = .existing
          $0.contactID = person.id
        }, metadata: auth)
      #expect(unmatched.accountCreated && unmatched.account.name == "Brand New Co")
      #expect(!unmatched.contactCreated && unmatched.contact.id == person.id)

      let orphan = try await Self.lead(client, auth: auth, company: nil, email: "solo@nowhere.example")
      do {
        _ = try await leads.convertLead(.with { $0.leadID = orphan.id }, metadata: auth)
        Issue.record("a lead without a company converted into a nameless account")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        let fields = try #require(try error.unpackGoogleRPCStatus()).details.compactMap(\.badRequest).flatMap(\.violations)
        #expect(fields.map(\.field) == ["account.name"])
      }
      let named = try await leads.convertLead(
        .with {
          $0.leadID = orphan.id
          $0.account = .with { $0.name = "Solo Consulting" }
        }, metadata: auth)
      #expect(named.account.name == "Solo Consulting")

      let missing = await code {
        try await leads.convertLead(
          .with {
            $0.leadID = fresh.id
            $0.accountTarget = .existing
            $0.accountID = UUID().uuidString.lowercased()
          }, metadata: auth)
      }
      #expect(missing == .failedPrecondition)  // fresh is converted already
      let disqualified = try await Self.lead(client, auth: auth, company: "Nope Inc", email: "no@nope.example")
      _ = try await leads.setLeadStatus(
        .with {
          $0.id = disqualified.id
          $0.status = .disqualified
          $0.reason = "Student project"
        }, metadata: auth)
      let refused = await code { try await leads.convertLead(.with { $0.leadID = disqualified.id }, metadata: auth) }
      #expect(refused == .failedPrecondition)
      let open = try await Self.lead(client, auth: auth, company: "Ghost Account Co", email: "x@ghost.example")
      let ghost = await code {
        try await leads.convertLead(
          .with {
            $0.leadID = open.id
            $0.accountTarget = .existing
            $0.accountID = UUID().uuidString.lowercased()
          }, metadata: auth)
      }
      #expect(ghost == .notFound)
      let badTarget = await code {
        try await leads.convertLead(
          .with {
            $0.leadID = open.id
            $0.accountID = known.id
          }, metadata: auth)
      }
      #expect(badTarget == .invalidArgument)
    }
  }

  @Test("a conversion whose deal cannot be created writes nothing at all")
  func rollback() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await Self.lead(client, auth: auth, company: "Rollback Industries", email: "grace@rollback.example")
      let interaction = try await Crm_V1_InteractionService.Client(wrapping: client).logInteraction(
        .with {
          $0.interaction = .with {
            $0.kind = .note
            $0.links = [.with {
              $0.recordType = .lead
              $0.recordID = lead.id
            }]
          }
        }, metadata: auth)
      let proposal = try await Crm_V1_OpportunityService.Client(wrapping: client).listPipelines(.init(), metadata: auth)
        .pipelines[0].stages.first { $0.name == "Proposal" }!
      // Proposal needs an amount and a close date: the deal fails after the account and contact were written.
      let failed = await code {
        try await leads.convertLead(
          .with {
            $0.leadID = lead.id
            $0.opportunity = .with { $0.stageID = proposal.id }
            $0.requestID = "rollback-1"
          }, metadata: auth)
      }
      #expect(failed == .failedPrecondition)
      let after = try await leads.getLead(.with { $0.id = lead.id }, metadata: auth)
      #expect(after.etag == lead.etag && after.status == .new && after.convertedAccountID.isEmpty)
      let accounts = try await Crm_V1_AccountService.Client(wrapping: client).listAccounts(.init(), metadata: auth)
      #expect(accounts.accounts.isEmpty)
      let contacts = try await Crm_V1_ContactService.Client(wrapping: client).listContacts(.init(), metadata: auth)
      #expect(contacts.contacts.isEmpty)
      let deals = try await Crm_V1_OpportunityService.Client(wrapping: client).listOpportunities(.init(), metadata: auth)
      #expect(deals.opportunities.isEmpty)
      let note = try await Crm_V1_InteractionService.Client(wrapping: client).getInteraction(
        .with { $0.id = interaction.id }, metadata: auth)
      #expect(note.etag == interaction.etag && note.links.count == 1)
      // The failed request id was not used up: the corrected request may reuse it.
      let converted = try await leads.convertLead(
        .with {
          $0.leadID = lead.id
          $0.opportunity = .with {
            $0.stageID = proposal.id
            $0.amount = .with {
              $0.currencyCode = "EUR"
              $0.units = 5000
            }
            $0.closeDate = .with {
              $0.year = 2027
              $0.month = 1
              $0.day = 31
            }
          }
          $0.requestID = "rollback-1"
        }, metadata: auth)
      #expect(converted.opportunity.stageID == proposal.id && converted.lead.status == .converted)
    }
  }
}
