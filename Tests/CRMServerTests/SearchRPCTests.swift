import CRMCore
import CRMProto
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: search")
struct SearchRPCTests {
  typealias Client = Crm_V1_SearchService.Client<HTTP2ClientTransport.Posix>

  /// The ids a search answers, in order.
  static func ids(_ search: Client, _ query: String, types: [Crm_V1_RecordType] = [], auth: Metadata) async throws -> [String] {
    try await search.search(
      .with {
        $0.query = query
        $0.recordTypes = types
      }, metadata: auth
    ).results.map(Self.id)
  }

  /// Makes contacts private to their owners' hierarchy in the tenant `admin` belongs to.
  static func privateContacts(_ client: GRPCClient<HTTP2ClientTransport.Posix>, admin: Metadata) async throws {
    _ = try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
      .with {
        $0.rule = .with {
          $0.recordType = .contact
          $0.mode = .private
        }
      }, metadata: admin)
  }

  static func id(_ result: Crm_V1_SearchResult) -> String {
    switch result.record {
    case .lead(let lead): lead.id
    case .contact(let contact): contact.id
    case .account(let account): account.id
    case .opportunity(let deal): deal.id
    case .ticket(let ticket): ticket.id
    case .invoice(let invoice): invoice.id
    case nil: ""
    }
  }

  @Test("names, companies, emails, phones in any format, CJK substrings, accents and typos; ranked and keyset-paged")
  func matching() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make("other")
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with {
          $0.lead = .with {
            $0.firstName = "Zoë"
            $0.lastName = "Müller"
            $0.company = "北京销售易科技有限公司"
            $0.emails = [.with { $0.address = "zoe@mueller.example" }]
            $0.phones = [.with { $0.number = "+1 415 555 0100" }]
          }
        }, metadata: admin)
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.firstName = "John"
            $0.lastName = "Smith"
            $0.emails = [.with { $0.address = "john.smith@acme.example" }]
          }
        }, metadata: admin)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with {
          $0.account = .with {
            $0.name = "Acme GmbH"
            $0.website = "https://acme.example"
          }
        }, metadata: admin)
      let deal = try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
        .with {
          $0.opportunity = .with {
            $0.name = "Acme renewal 2027"
            $0.accountID = account.id
          }
        }, metadata: admin)
      let ticket = try await Crm_V1_TicketService.Client(wrapping: client).createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Printer on fire"
            $0.requesterContactID = contact.id
          }
        }, metadata: admin)

      let search = Client(wrapping: client)
      #expect(try await Self.ids(search, "muller", auth: admin) == [lead.id])
      #expect(try await Self.ids(search, "ZOË", auth: admin) == [lead.id])
      #expect(try await Self.ids(search, "销售易", auth: admin) == [lead.id])
      #expect(try await Self.ids(search, "415-555-0100", auth: admin) == [lead.id])
      #expect(try await Self.ids(search, "(415) 555 0100", auth: admin) == [lead.id])
      #expect(try await Self.ids(search, "jonh smith", auth: admin) == [contact.id])
      #expect(try await Self.ids(search, "#\(ticket.number)", auth: admin) == [ticket.id])
      #expect(try await Self.ids(search, "printer", auth: admin) == [ticket.id])
      // What starts with the query ranks before what only holds it.
      let acme = try await search.search(.with { $0.query = "acme" }, metadata: admin).results
      #expect(Set(acme.prefix(2).map(Self.id)) == [account.id, deal.id] && acme.last.map(Self.id) == contact.id)
      #expect(acme.count == 3 && acme[0].score >= 2 && acme[2].score >= 1 && acme[2].score < acme[1].score)
      #expect(try await Self.ids(search, "acme", types: [.contact], auth: admin) == [contact.id])
      // Keyset pages: one result each, the same order, nothing twice.
      var token = ""
      var paged: [String] = []
      repeat {
        let page = try await search.search(
          .with {
            $0.query = "acme"
            $0.pageSize = 1
            $0.pageToken = token
          }, metadata: admin)
        paged += page.results.map(Self.id)
        token = page.nextPageToken
      } while !token.isEmpty && paged.count < 10
      #expect(paged == acme.map(Self.id))

      // Wildcards and SQL are text; another tenant finds nothing of this one.
      for query in ["%%", "__", "'; DROP TABLE leads; --", "\\\\"] {
        #expect(try await Self.ids(search, query, auth: admin).isEmpty, "\(query)")
      }
      #expect(try await Self.ids(search, "muller", auth: TestServer.auth(other.adminSecret)).isEmpty)

      // Bad requests name the field.
      for (request, field) in [
        (Crm_V1_SearchRequest.with { $0.query = "" }, "query"), (.with { $0.query = "x" }, "query"),
        (.with { $0.query = String(repeating: "y", count: 201) }, "query"),
        (
          .with {
            $0.query = "acme"; $0.pageSize = 101
          }, "page_size"
        ),
        (
          .with {
            $0.query = "acme"; $0.recordTypes = [.task]
          }, "record_types[0]"
        ),
        (
          .with {
            $0.query = "acme"; $0.pageToken = "forged"
          }, "page_token"
        ),
      ] {
        #expect(await HardeningRPCTests.violations { try await search.search(request, metadata: admin) } == [field])
      }
    }
  }

  @Test("a whole address exactly, words in any order, a typo corrected by fewest edits")
  func phases() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      func contact(_ first: String, _ last: String, _ email: String) async throws -> String {
        try await contacts.createContact(
          .with {
            $0.contact = .with {
              $0.firstName = first
              $0.lastName = last
              $0.emails = [.with { $0.address = email }]
            }
          }, metadata: admin
        ).id
      }
      let ann = try await contact("Ann", "Quillfeather", "ann@quill.example")
      let joann = try await contact("Joann", "Quillfeather", "joann@quill.example")
      let john = try await contact("John", "Pemberton", "jp@pember.example")
      _ = try await contact("José", "Pemberton", "jose@pember.example")
      _ = try await contact("Jones", "Pemberton", "jones@pember.example")
      let search = Client(wrapping: client)

      // A whole address finds who has it, and only them (score 3); part of one is a substring.
      let exact = try await search.search(.with { $0.query = "Ann@Quill.example" }, metadata: admin).results
      #expect(exact.map(Self.id) == [ann] && exact[0].score == 3)
      #expect(Set(try await Self.ids(search, "quill.example", auth: admin)) == [ann, joann])
      // Words in another order are a near match (below 1).
      let reordered = try await search.search(.with { $0.query = "pemberton john" }, metadata: admin).results
      #expect(reordered.map(Self.id) == [john] && reordered[0].score < 1)
      // "jonh" is one swap from "john" and two edits from "jose" and "jones": only John Smith's kind.
      #expect(try await Self.ids(search, "jonh pemberton", auth: admin) == [john])
      // A word nothing resembles finds nothing.
      #expect(try await Self.ids(search, "zzqxv", auth: admin).isEmpty)
      // A renamed record's new words are corrected to as well (the update trigger, migration 0076).
      var renamed = try await contacts.getContact(.with { $0.id = ann }, metadata: admin)
      renamed.lastName = "Vanderquill"
      _ = try await contacts.updateContact(
        .with {
          $0.contact = renamed
          $0.updateMask = .with { $0.paths = ["last_name"] }
        }, metadata: admin)
      #expect(try await Self.ids(search, "vandrquill", auth: admin) == [ann])
    }
  }

  @Test("a word held by more than 1,000 records ranks a sample, says so, and keeps a rep's own records in it")
  func sample() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      try await Self.privateContacts(client, admin: admin)
      let connection = try TestDatabase.ownerConnection()
      try connection.query(
        """
        INSERT INTO contacts (tenant_id, id, owner_id, first_name, last_name, created_by, updated_by)
        SELECT \(tenant.tenantID), crm_uuid_v7(), \(tenant.admin.userID), 'Person' || n, 'Wolfenbarger',
          \(tenant.admin.userID), \(tenant.admin.userID)
        FROM generate_series(1, 1100) AS n
        """)
      let mine = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Wolfenbarger"
            $0.ownerID = rep.userID.lowercasedString
          }
        }, metadata: admin)
      let search = Client(wrapping: client)
      let first = try await search.search(.with { $0.query = "wolfenbarger" }, metadata: admin)
      // The shortest text ranks first, within the sample: "wolfenbarger" alone, if the sample holds it.
      #expect(first.sampled && first.results.count == 20 && !first.nextPageToken.isEmpty)
      // Paging ends with the sample.
      var token = first.nextPageToken
      var seen = Set(first.results.map(Self.id))
      var pages = 1
      while !token.isEmpty && pages < 20 {
        let page = try await search.search(
          .with {
            $0.query = "wolfenbarger"
            $0.pageSize = 100
            $0.pageToken = token
          }, metadata: admin)
        seen.formUnion(page.results.map(Self.id))
        token = page.nextPageToken
        pages += 1
      }
      #expect(token.isEmpty && seen.count == 1000)
      // The rep sees only their own record, and finds it: their sample is drawn from what they may see.
      let theirs = try await search.search(.with { $0.query = "wolfenbarger" }, metadata: TestServer.auth(repSecret))
      #expect(theirs.results.map(Self.id) == [mine.id] && !theirs.sampled)
    }
  }

  @Test("invoices by number or its beginning, in any case, seen as their billing is: by the account's owner, not a peer")
  func invoices() async throws {
    let tenant = try await TestTenant.make()
    let (owner, ownerSecret) = try await tenant.makeUser(.salesRep)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let billing = Crm_V1_BillingService.Client(wrapping: client)
      let account = try await BillingRPCTests.account(
        client, "Hollowbrook Mills", owner: owner.userID.lowercasedString, auth: admin)
      let first = try await billing.upsertInvoice(
        BillingRPCTests.invoice("in_a", account: account, number: "HBM-2027-0042"), metadata: admin)
      let second = try await billing.upsertInvoice(
        BillingRPCTests.invoice("in_b", account: account, number: "HBM-2027-0042-R1"), metadata: admin)
      let search = Client(wrapping: client)

      // The whole number first (score 3), then the longer one it begins.
      let found = try await search.search(.with { $0.query = "hbm-2027-0042" }, metadata: admin).results
      #expect(found.map(Self.id) == [first.invoice.id, second.invoice.id])
      #expect(found.first?.score == 3 && found.first?.invoice.number == "HBM-2027-0042")
      #expect(try await Self.ids(search, "HBM-2027", types: [.invoice], auth: admin).count == 2)
      // Digits and dashes are a number here, not a phone; the middle of a number is not its beginning.
      #expect(try await Self.ids(search, "2027-0042", types: [.invoice], auth: admin).isEmpty)
      // Wildcards are text.
      #expect(try await Self.ids(search, "HBM%", types: [.invoice], auth: admin).isEmpty)
      #expect(try await Self.ids(search, "HBM-2027", auth: TestServer.auth(ownerSecret)).count == 2)
      #expect(try await Self.ids(search, "HBM-2027", auth: TestServer.auth(peerSecret)).isEmpty)
    }
  }

  @Test("visibility is applied inside the search: a rep finds private records only once they are theirs")
  func visibility() async throws {
    let tenant = try await TestTenant.make()
    let (rep, repSecret) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let repAuth = TestServer.auth(repSecret)
      try await Self.privateContacts(client, admin: admin)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let hidden = try await contacts.createContact(
        .with { $0.contact = .with { $0.lastName = "Quixotic" } }, metadata: admin)
      let search = Client(wrapping: client)
      #expect(try await Self.ids(search, "quixotic", auth: admin) == [hidden.id])
      #expect(try await Self.ids(search, "quixotic", auth: repAuth).isEmpty)
      var mine = hidden
      mine.ownerID = rep.userID.lowercasedString
      _ = try await contacts.updateContact(
        .with {
          $0.contact = mine
          $0.updateMask = .with { $0.paths = ["owner_id"] }
        }, metadata: admin)
      #expect(try await Self.ids(search, "quixotic", auth: repAuth) == [hidden.id])
    }
  }
}
