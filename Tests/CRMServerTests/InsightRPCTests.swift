import CRMCore
import CRMProto
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Testing

@Suite("Server: the customer 360")
struct InsightRPCTests {
  @Test("one call shows the account's hierarchy, contacts, deals, tickets, money, tasks, origin and latest activity")
  func accountView() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let lead = try await ConversionRPCTests.lead(client, auth: admin, company: "Navy Labs", email: "grace@navy360.example")
      let converted = try await Crm_V1_LeadService.Client(wrapping: client).convertLead(
        .with {
          $0.leadID = lead.id
          $0.etag = lead.etag
          $0.opportunity = .with { $0.amount = BillingRPCTests.usd(90_000) }
        }, metadata: admin)
      let account = converted.account.id
      let contact = converted.contact.id
      let parent = try await BillingRPCTests.account(client, "Navy Holdings", auth: admin)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      var linked = converted.account
      linked.parentID = parent
      _ = try await accounts.updateAccount(
        .with {
          $0.account = linked
          $0.updateMask = .with { $0.paths = ["parent_id"] }
        }, metadata: admin)
      _ = try await BillingRPCTests.account(client, "Navy Labs West", parent: account, auth: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let ticket = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Cannot log in"
            $0.requesterContactID = contact
          }
        }, metadata: admin)
      _ = try await Crm_V1_TaskService.Client(wrapping: client).createTask(
        .with {
          $0.task = .with {
            $0.subject = "Renewal call"
            $0.related = FieldSecurityTests.ref(.account, account)
          }
        }, metadata: admin)
      _ = try await Crm_V1_BillingService.Client(wrapping: client).upsertInvoice(
        BillingRPCTests.invoice(
          "in_360", account: account, total: BillingRPCTests.usd(250), issue: BillingRPCTests.day(2026, 10, 1),
          due: BillingRPCTests.day(2026, 10, 31)), metadata: admin)

      let insight = Crm_V1_InsightService.Client(wrapping: client)
      let view = try await insight.getCustomer360(.with { $0.accountID = account }, metadata: admin)
      #expect(view.account.id == account && !view.hasContact)
      #expect(view.hierarchy.section.available && view.hierarchy.ancestors.map(\.name) == ["Navy Holdings"])
      #expect(view.hierarchy.childCount == 1 && view.hierarchy.children.map(\.name) == ["Navy Labs West"])
      #expect(view.contacts.total == 1 && view.contacts.contacts.map(\.id) == [contact])
      #expect(view.pipeline.openCount == 1 && view.pipeline.openOpportunities.first?.id == converted.opportunity.id)
      // 90,000 at the first stage's 10 %.
      #expect(view.pipeline.openAmount == [BillingRPCTests.usd(90_000)])
      #expect(view.pipeline.weightedAmount == [BillingRPCTests.usd(9_000)])
      #expect(view.service.openCount == 1 && view.service.openTickets.first?.id == ticket.id)
      #expect(view.financials.section.available && view.financials.panel.currencies.first?.totalDue == BillingRPCTests.usd(250))
      #expect(view.tasks.upcoming.map(\.subject) == ["Renewal call"])
      #expect(view.origin.firstTouch.id == lead.id && view.origin.sources.map(\.leads) == [1])
      #expect(view.timeline.section.available && !view.timeline.entries.isEmpty)
      #expect(view.hasReadTime)

      // The contact's view: its own tickets and timeline, its account's sections.
      let byContact = try await insight.getCustomer360(.with { $0.contactID = contact }, metadata: admin)
      #expect(byContact.contact.id == contact && byContact.account.id == account)
      #expect(byContact.service.openTickets.map(\.id) == [ticket.id] && byContact.origin.firstTouch.id == lead.id)
      #expect(byContact.tasks.section.available && byContact.tasks.upcoming.isEmpty)

      // Bad requests name the field; another tenant sees nothing.
      for request in [
        Crm_V1_GetCustomer360Request(), .with { $0.accountID = "nope" },
        .with {
          $0.accountID = account
          $0.contactID = contact
        },
        .with {
          $0.accountID = account
          $0.sectionSize = 51
        },
      ] {
        #expect(await BillingRPCTests.code { _ = try await insight.getCustomer360(request, metadata: admin) } == .invalidArgument)
      }
      let other = try await TestTenant.make()
      #expect(
        await BillingRPCTests.code {
          _ = try await insight.getCustomer360(.with { $0.accountID = account }, metadata: TestServer.auth(other.adminSecret))
        } == .notFound)
    }
  }

  @Test("each section is what the caller may see: a peer sees the account, not its owner's private deals or its money")
  func visibility() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      // Deals private: a rep sees their own (accounts stay public to read).
      _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
        .with {
          $0.rule = .with {
            $0.recordType = .opportunity
            $0.mode = .private
          }
        }, metadata: admin)
      let owner = rep.userID.lowercasedString
      let account = try await BillingRPCTests.account(client, "Rep's customer", owner: owner, auth: admin)
      _ = try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Rep's deal"
            $0.accountID = account
            $0.ownerID = owner
            $0.amount = BillingRPCTests.usd(1_000)
          }
        }, metadata: admin)
      _ = try await Crm_V1_BillingService.Client(wrapping: client).upsertInvoice(
        BillingRPCTests.invoice("in_peer", account: account), metadata: admin)
      let insight = Crm_V1_InsightService.Client(wrapping: client)

      let mine = try await insight.getCustomer360(.with { $0.accountID = account }, metadata: TestServer.auth(repSecret))
      #expect(mine.pipeline.openCount == 1 && mine.financials.section.available)

      let peer = try await insight.getCustomer360(.with { $0.accountID = account }, metadata: TestServer.auth(peerSecret))
      #expect(peer.account.id == account, "accounts are public to read")
      #expect(peer.pipeline.section.available && peer.pipeline.openCount == 0 && peer.pipeline.openAmount.isEmpty)
      #expect(!peer.financials.section.available && peer.financials.section.unavailableReason.hasPrefix("billing data is shown"))
      #expect(!peer.financials.hasPanel)
      #expect(peer.contacts.section.available && peer.timeline.section.available)
    }
  }
}
