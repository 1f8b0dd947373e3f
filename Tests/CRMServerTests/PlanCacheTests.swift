import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: the write paths' statements keep their cached plans")
struct PlanCacheTests {
  /// PostgreSQL plans a prepared statement for its parameters five times, then keeps a generic plan only
  /// if that plan does not look costlier than the custom ones did. A statement whose parameter lets the
  /// planner fold a part away (`AND NOT $2` around a subquery) or size an array (`= ANY($2)`) never gets
  /// there: it is planned again on every call. Two of those in AddComment cost a fifth of the database's
  /// CPU; this runs the common writes on a one-connection pool, as an admin and as a rep, and lists every
  /// statement of that connection still being planned per call (stage moves and deals included).
  ///
  /// Not here: CaptureLead and ConvertLead. Their duplicate check joins candidates under a
  /// `tenant_id = $n` filter, so, like the reads below, it is custom-planned whenever tenants differ in
  /// size (here, in the shared database) and settles on a generic plan in a fresh one.
  ///
  /// Writes address rows by primary key, so their plans do not depend on the data. Reads are not
  /// checked: a list's `tenant_id = $1` is planned per call by design whenever tenants differ in size
  /// (a small tenant's custom plan is cheaper than the generic one made for the average tenant), which
  /// depends on what else the shared test database holds.
  @Test("creating, updating and commenting on records plans each statement once")
  func writesKeepGenericPlans() async throws {
    let tenant = try await TestTenant.make()
    let (_, repSecret) = try await tenant.makeUser(.salesRep)
    let database = Database(
      configuration: .init(
        connectionString: try TestDatabase.connectionString(), maxConnections: 1, acquireTimeout: .seconds(120)))
    do {
      try await TestServer.withClient(database: database) { (client) async throws -> Void in
        let leads = Crm_V1_LeadService.Client(wrapping: client)
        let contacts = Crm_V1_ContactService.Client(wrapping: client)
        let accounts = Crm_V1_AccountService.Client(wrapping: client)
        let interactions = Crm_V1_InteractionService.Client(wrapping: client)
        let tickets = Crm_V1_TicketService.Client(wrapping: client)
        _ = try await Crm_V1_SLAService.Client(wrapping: client).createSLAPolicy(
          .with {
            $0.policy = .with {
              $0.name = "Standard"
              $0.targets = [
                .with {
                  $0.priority = .normal
                  $0.firstReply = .with { $0.minutes = 60 }
                  $0.nextReply = .with { $0.minutes = 120 }
                  $0.resolution = .with { $0.minutes = 480 }
                }
              ]
            }
          }, metadata: TestServer.auth(tenant.adminSecret))
        let deals = Crm_V1_OpportunityService.Client(wrapping: client)
        let pipeline = try #require(
          try await deals.listPipelines(.init(), metadata: TestServer.auth(tenant.adminSecret)).pipelines.first { $0.isDefault })
        let stages = pipeline.stages.filter { $0.category == .open && $0.requiredFields.isEmpty }.map(\.id)
        try #require(stages.count >= 2)
        for secret in [tenant.adminSecret, repSecret] {
          let auth = TestServer.auth(secret)
          let customer = try await accounts.createAccount(
            .with { $0.account = .with { $0.name = "Planned customer" } }, metadata: auth)
          let contact = try await contacts.createContact(
            .with {
              $0.contact = .with {
                $0.lastName = "Planner"; $0.accountID = customer.id
              }
            }, metadata: auth)
          let deal = try await deals.createOpportunity(
            .with {
              $0.opportunity = .with {
                $0.name = "Plans deal"
                $0.accountID = customer.id
                $0.primaryContactID = contact.id
              }
            }, metadata: auth)
          var ticket = try await tickets.createTicket(
            .with {
              $0.ticket = .with {
                $0.subject = "Plans"; $0.requesterContactID = contact.id
              }
            }, metadata: auth)
          for round in 0..<8 {
            _ = try await tickets.createTicket(
              .with {
                $0.ticket = .with {
                  $0.subject = "Plans \(round)"; $0.requesterContactID = contact.id
                }
              }, metadata: auth)
            _ = try await tickets.addComment(
              .with {
                $0.ticketID = ticket.id
                $0.authorKind = round % 2 == 0 ? .customer : .agent
                $0.public = true
                $0.body = "Message \(round)"
              }, metadata: auth)
            ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: auth)
            ticket = try await tickets.updateTicket(
              .with {
                $0.ticket = .with {
                  $0.id = ticket.id
                  $0.etag = ticket.etag
                  $0.tags = ["round-\(round)"]
                }
                $0.updateMask = .with { $0.paths = ["tags"] }
              }, metadata: auth)
            let lead = try await leads.createLead(
              .with {
                $0.lead = .with {
                  $0.lastName = "Lead \(round)"; $0.company = "Plans Ltd"
                }
              }, metadata: auth)
            _ = try await leads.updateLead(
              .with {
                $0.lead = .with {
                  $0.id = lead.id
                  $0.etag = lead.etag
                  $0.title = "Buyer"
                }
                $0.updateMask = .with { $0.paths = ["title"] }
              }, metadata: auth)
            let account = try await accounts.createAccount(
              .with { $0.account = .with { $0.name = "Plans \(round)" } }, metadata: auth)
            _ = try await accounts.updateAccount(
              .with {
                $0.account = .with {
                  $0.id = account.id
                  $0.etag = account.etag
                  $0.industry = "Textiles"
                }
                $0.updateMask = .with { $0.paths = ["industry"] }
              }, metadata: auth)
            _ = try await deals.moveOpportunityStage(
              .with {
                $0.id = deal.id
                $0.stageID = stages[round % 2 == 0 ? 1 : 0]
              }, metadata: auth)
            _ = try await interactions.logInteraction(
              .with {
                $0.interaction = .with {
                  $0.kind = .call
                  $0.subject = "Call \(round)"
                  $0.links = [
                    .with {
                      $0.recordType = .contact
                      $0.recordID = contact.id
                    },
                    .with {
                      $0.recordType = .lead
                      $0.recordID = lead.id
                    },
                  ]
                }
              }, metadata: auth)
          }
        }
      }
      let replanned = try await Self.replanned(database)
      #expect(replanned.isEmpty, "planned on every call:\n\(replanned.joined(separator: "\n"))")
    } catch {
      await database.close()
      throw error
    }
    await database.close()
  }

  /// The statements prepared on `database`'s one connection that PostgreSQL has planned more than five
  /// times without settling on a generic plan, with how often.
  static func replanned(_ database: Database) async throws -> [String] {
    try await database.pool.withConnection { connection in
      try connection.query(
        """
        SELECT regexp_replace(statement, '\\s+', ' ', 'g') AS statement, custom_plans FROM pg_prepared_statements
        WHERE generic_plans = 0 AND custom_plans > 5 ORDER BY custom_plans DESC
        """
      ).rows.map { "\(try $0.decode("custom_plans", as: Int.self))× \(try $0.decode("statement", as: String.self))" }
    }
  }
}
