import CRMCore
import CRMProto
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Testing

/// The list filters answered through `crm_filter_ids` (migration 0073): each finds what it names, in
/// the caller's tenant only, and under the caller's visibility.
@Suite("Server: list filters by tag, email, phone and prefix")
struct ListFilterRPCTests {
  /// The ids of one tenant's records that every filter should find.
  struct Seeded {
    var contact = ""
    var account = ""
    var lead = ""
    var deal = ""
    var ticket = ""
  }

  static func seed(_ client: GRPCClient<HTTP2ClientTransport.Posix>, auth: Metadata) async throws -> Seeded {
    var seeded = Seeded()
    seeded.account =
      try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "Zephyrine Looms"
            $0.tags = ["gold"]
          }
        }, metadata: auth
      ).id
    seeded.contact =
      try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.firstName = "Ilse"
            $0.lastName = "Zephyrine"
            $0.emails = [.with { $0.address = "ilse@zephyrine.example" }]
            $0.tags = ["gold"]
          }
        }, metadata: auth
      ).id
    seeded.lead =
      try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with {
          $0.lead = .with {
            $0.lastName = "Okafor"
            $0.company = "Zephyrine Dyeworks"
            $0.emails = [.with { $0.address = "okafor@zephyrine.example" }]
            $0.phones = [.with { $0.number = "+1 415 555 0199" }]
            $0.tags = ["gold"]
          }
        }, metadata: auth
      ).id
    seeded.deal =
      try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Zephyrine renewal"
            $0.accountID = seeded.account
            $0.tags = ["gold"]
          }
        }, metadata: auth
      ).id
    seeded.ticket =
      try await Crm_V1_TicketService.Client(wrapping: client).createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Loom jammed"
            $0.requesterContactID = seeded.contact
            $0.tags = ["gold"]
          }
        }, metadata: auth
      ).id
    return seeded
  }

  /// Every filtered list's ids, in a fixed order.
  static func lists(_ client: GRPCClient<HTTP2ClientTransport.Posix>, auth: Metadata) async throws -> [[String]] {
    let contacts = Crm_V1_ContactService.Client(wrapping: client)
    let accounts = Crm_V1_AccountService.Client(wrapping: client)
    let leads = Crm_V1_LeadService.Client(wrapping: client)
    let deals = Crm_V1_OpportunityService.Client(wrapping: client)
    let tickets = Crm_V1_TicketService.Client(wrapping: client)
    return [
      try await contacts.listContacts(.with { $0.tag = "gold" }, metadata: auth).contacts.map(\.id),
      try await contacts.listContacts(.with { $0.email = "ILSE@zephyrine.example" }, metadata: auth).contacts.map(\.id),
      try await contacts.listContacts(.with { $0.namePrefix = "zephyr" }, metadata: auth).contacts.map(\.id),
      try await accounts.listAccounts(.with { $0.namePrefix = "Zeph" }, metadata: auth).accounts.map(\.id),
      try await accounts.listAccounts(.with { $0.tag = "gold" }, metadata: auth).accounts.map(\.id),
      try await leads.listLeads(.with { $0.companyPrefix = "zephyrine d" }, metadata: auth).leads.map(\.id),
      try await leads.listLeads(.with { $0.phone = "+1 (415) 555-0199" }, metadata: auth).leads.map(\.id),
      try await leads.listLeads(.with { $0.email = "okafor@zephyrine.example" }, metadata: auth).leads.map(\.id),
      try await leads.listLeads(.with { $0.tag = "gold" }, metadata: auth).leads.map(\.id),
      try await deals.listOpportunities(.with { $0.namePrefix = "zephyrine" }, metadata: auth).opportunities.map(\.id),
      try await deals.listOpportunities(.with { $0.tag = "gold" }, metadata: auth).opportunities.map(\.id),
      try await tickets.listTickets(.with { $0.tag = "gold" }, metadata: auth).tickets.map(\.id),
    ]
  }

  @Test("each filter finds its records, only in the caller's tenant, and a prefix's wildcards are text")
  func tenants() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make("other")
    try await TestServer.withClient { client in
      let auth = TestServer.auth(tenant.adminSecret)
      let mine = try await Self.seed(client, auth: auth)
      _ = try await Self.seed(client, auth: TestServer.auth(other.adminSecret))
      let expected = [
        [mine.contact], [mine.contact], [mine.contact], [mine.account], [mine.account], [mine.lead], [mine.lead],
        [mine.lead], [mine.lead], [mine.deal], [mine.deal], [mine.ticket],
      ]
      let found = try await Self.lists(client, auth: auth)
      #expect(found == expected)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      #expect(try await accounts.listAccounts(.with { $0.namePrefix = "Z%" }, metadata: auth).accounts.isEmpty)
      #expect(try await accounts.listAccounts(.with { $0.namePrefix = "_eph" }, metadata: auth).accounts.isEmpty)
    }
  }

  @Test("a rep under private sharing finds through a filter only what they may see")
  func visibility() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      for type in [Crm_V1_RecordType.contact, .account, .lead, .opportunity] {
        _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
          .with {
            $0.rule = .with {
              $0.recordType = type
              $0.mode = .private
            }
          }, metadata: admin)
      }
      _ = try await Self.seed(client, auth: admin)
      let seen = try await Self.lists(client, auth: TestServer.auth(repSecret))
      // Tickets are the assignees' and the service desk's, not covered by sharing rules: not checked here.
      #expect(seen.dropLast() == Array(repeating: [], count: seen.count - 1), "\(seen)")
    }
  }
}
