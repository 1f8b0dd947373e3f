import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: tickets and SLA clocks")
struct TicketRPCTests {
  static func utc(_ text: String) -> Timestamp {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return Timestamp(microsecondsSinceEpoch: Int64(formatter.date(from: text)!.timeIntervalSince1970) * 1_000_000)
  }
  static func proto(_ text: String) -> Google_Protobuf_Timestamp {
    let t = utc(text)
    return .init(seconds: t.microsecondsSinceEpoch / 1_000_000, nanos: 0)
  }
  static func minutes(_ duration: Google_Protobuf_Duration) -> Int64 { duration.seconds / 60 }

  /// Berlin business hours (Mon–Fri 09:00–17:00) and a policy: normal tickets get a 60-minute first
  /// reply (warning 15 before), a 120-minute next reply and a one-day resolution in business time;
  /// urgent ones 30 minutes and 4 hours of calendar time, no next-reply target.
  static func configure(_ client: GRPCClient<HTTP2ClientTransport.Posix>, admin: Metadata) async throws -> (
    calendar: Crm_V1_BusinessCalendar, policy: Crm_V1_SLAPolicy
  ) {
    let sla = Crm_V1_SLAService.Client(wrapping: client)
    let calendar = try await sla.createBusinessCalendar(
      .with {
        $0.calendar = .with {
          $0.name = "Berlin office"
          $0.timeZone = "Europe/Berlin"
          $0.intervals = (1...5).map { day in
            .with {
              $0.weekday = Int32(day)
              $0.startMinute = 9 * 60
              $0.minutes = 8 * 60
            }
          }
        }
      }, metadata: admin)
    let policy = try await sla.createSLAPolicy(
      .with {
        $0.policy = .with {
          $0.name = "Standard"
          $0.calendarID = calendar.id
          $0.targets = [
            .with {
              $0.priority = .normal
              $0.firstReply = .with {
                $0.minutes = 60
                $0.businessHours = true
                $0.warningMinutes = 15
              }
              $0.nextReply = .with {
                $0.minutes = 120
                $0.businessHours = true
              }
              $0.resolution = .with {
                $0.minutes = 480
                $0.businessHours = true
              }
            },
            .with {
              $0.priority = .urgent
              $0.firstReply = .with { $0.minutes = 30 }
              $0.resolution = .with { $0.minutes = 240 }
            },
          ]
        }
      }, metadata: admin)
    return (calendar, policy)
  }

  @Test("a ticket's life on a business calendar: first reply, pending pause, customer reopen, re-target, solve, auto-close, follow-up")
  func lifecycle() async throws {
    let tenant = try await TestTenant.make()
    let (agent, agentSecret) = try await tenant.makeUser(.salesRep)
    // Monday 1 June 2026, 08:00 in Berlin: before opening.
    let clock = ManualWallClock(Self.utc("2026-06-01T06:00:00Z"))
    let jobs = TicketStore(database: tenant.database, now: clock.now)
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let auth = TestServer.auth(agentSecret)
      let (_, policy) = try await Self.configure(client, admin: admin)
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Acme Textiles" } }, metadata: admin)
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Weber"
            $0.accountID = account.id
          }
        }, metadata: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)

      var ticket = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Order 4711 arrived damaged"
            $0.description_p = "Two bolts of linen were wet."
            $0.requesterContactID = contact.id
            $0.channel = .email
          }
          $0.openingMessageID = "<order-4711@customer.example>"
        }, metadata: auth)
      #expect(ticket.status == .new && ticket.priority == .normal && ticket.number >= 1000)
      #expect(ticket.accountID == account.id, "the account defaults to the requester's")
      #expect(ticket.slaPolicyID == policy.id && ticket.slaState == .active)
      // 60 business minutes from the 09:00 opening: 10:00 CEST.
      #expect(ticket.nextBreachTime == Self.proto("2026-06-01T08:00:00Z"))
      let opening = try await tickets.listComments(.with { $0.ticketID = ticket.id }, metadata: auth).comments
      #expect(opening.count == 1 && opening[0].authorKind == .customer && opening[0].authorContactID == contact.id)

      // 09:50: past the warning (09:45); the job warns once, however often it runs.
      clock.set(Self.utc("2026-06-01T07:50:00Z"))
      #expect(try await jobs.fireDueClocks(tenant: tenant.tenantID).warned == 1)
      #expect(try await jobs.fireDueClocks(tenant: tenant.tenantID) == SLAJobReport(warned: 0, breached: 0))
      ticket = try await tickets.getTicket(.with { $0.id = "#\(ticket.number)" }, metadata: auth)
      #expect(ticket.slaState == .warning)

      // 09:55: the agent replies; first reply is met, the ticket opens.
      clock.set(Self.utc("2026-06-01T07:55:00Z"))
      let reply = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.public = true
          $0.body = "Sorry to hear that. We are sending replacements."
        }, metadata: auth)
      ticket = reply.ticket
      #expect(ticket.status == .open && ticket.firstResponseTime == Self.proto("2026-06-01T07:55:00Z"))
      // Resolution: 480 business minutes from 09:00 Monday run out at Monday's close, so the clock is
      // due at the next opening (a reply before it is still within the target): Tuesday 09:00.
      #expect(ticket.nextBreachTime == Self.proto("2026-06-02T07:00:00Z") && ticket.slaState == .active)

      // 10:00: pending pauses resolution (60 business minutes counted).
      clock.set(Self.utc("2026-06-01T08:00:00Z"))
      ticket = try await tickets.updateTicket(
        .with {
          $0.ticket = .with {
            $0.id = ticket.id
            $0.etag = ticket.etag
            $0.status = .pending
          }
          $0.updateMask = .with { $0.paths = ["status"] }
        }, metadata: auth)
      #expect(ticket.status == .pending && ticket.slaState == .paused && !ticket.hasNextBreachTime)

      // Tuesday 09:00: the customer writes back; the ticket reopens, next reply starts.
      clock.set(Self.utc("2026-06-02T07:00:00Z"))
      let back = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.authorKind = .customer
          $0.body = "Thanks — when will they arrive?"
          $0.messageID = "<re-4711@customer.example>"
          $0.channel = .email
        }, metadata: auth)
      ticket = back.ticket
      #expect(ticket.status == .open && back.comment.public && back.comment.authorContactID == contact.id)
      // Next reply: 120 business minutes, 11:00 CEST; resolution has 420 left, 16:00.
      #expect(ticket.nextBreachTime == Self.proto("2026-06-02T09:00:00Z"))
      // The same message again is a no-op.
      let again = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.authorKind = .customer
          $0.body = "Thanks — when will they arrive?"
          $0.messageID = "<re-4711@customer.example>"
        }, metadata: auth)
      #expect(again.duplicate && again.comment.id == back.comment.id && again.ticket.etag == ticket.etag)

      // 09:30: urgent. Urgent has no next-reply target (cancelled) and a 4-hour calendar-time
      // resolution: 90 business minutes are already counted, so 150 calendar minutes remain: 12:00.
      clock.set(Self.utc("2026-06-02T07:30:00Z"))
      ticket = try await tickets.updateTicket(
        .with {
          $0.ticket = .with {
            $0.id = ticket.id
            $0.priority = .urgent
          }
          $0.updateMask = .with { $0.paths = ["priority"] }
        }, metadata: auth)
      #expect(ticket.nextBreachTime == Self.proto("2026-06-02T10:00:00Z"))
      let sla = try await tickets.getTicketSLA(.with { $0.ticketID = ticket.id }, metadata: auth)
      let resolution = try #require(sla.instances.first { $0.metric == .resolution })
      #expect(resolution.state == .active && Self.minutes(resolution.elapsed) == 90)
      // Paused Monday 10:00–17:00: seven business hours credited, kept across the re-target.
      #expect(Self.minutes(resolution.paused) == 7 * 60)
      #expect(resolution.entries.map(\.kind) == [.activated, .paused, .resumed, .retargeted])
      #expect(resolution.entries[3].note == "priority changed" && resolution.entries[3].actorID == agent.userID.lowercasedString)
      let nextReply = try #require(sla.instances.first { $0.metric == .nextReply })
      #expect(nextReply.state == .cancelled)
      #expect(sla.instances.first { $0.metric == .firstReply }?.state == .achieved)

      // Solved at 10:00; a customer comment reopens it (a new resolution clock), then solved again.
      clock.set(Self.utc("2026-06-02T08:00:00Z"))
      ticket = try await Self.setStatus(tickets, ticket, .solved, auth: auth)
      #expect(ticket.hasSolvedTime && ticket.slaState == .none && !ticket.hasNextBreachTime)
      clock.set(Self.utc("2026-06-02T08:30:00Z"))
      ticket = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.authorKind = .customer
          $0.body = "One more bolt is missing."
        }, metadata: auth
      ).ticket
      #expect(ticket.status == .open && !ticket.hasSolvedTime && ticket.slaState == .active)
      ticket = try await Self.setStatus(tickets, ticket, .solved, auth: auth)
      let instances = try await tickets.getTicketSLA(.with { $0.ticketID = ticket.id }, metadata: auth).instances
      #expect(instances.filter { $0.metric == .resolution }.map(\.instance) == [1, 2])

      // Nothing goes back to new; solved tickets close by themselves after four days.
      #expect(await code { try await Self.setStatus(tickets, ticket, .new, auth: auth) } == .failedPrecondition)
      clock.set(Self.utc("2026-06-05T08:00:00Z"))
      #expect(try await jobs.closeSolved(tenant: tenant.tenantID) == 0)
      clock.set(Self.utc("2026-06-06T09:00:00Z"))
      #expect(try await jobs.closeSolved(tenant: tenant.tenantID) == 1)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: auth)
      #expect(ticket.status == .closed && ticket.hasClosedTime)
      #expect(await code { try await Self.setStatus(tickets, ticket, .open, auth: auth) } == .failedPrecondition)
      let agentOnClosed = await code {
        try await tickets.addComment(
          .with {
            $0.ticketID = ticket.id
            $0.public = true
            $0.body = "Anything else?"
          }, metadata: auth)
      }
      #expect(agentOnClosed == .failedPrecondition)

      // The customer writes to the closed ticket: a follow-up opens, linked to it.
      let followUp = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.authorKind = .customer
          $0.body = "The replacement is the wrong colour."
          $0.channel = .email
        }, metadata: auth)
      #expect(followUp.openedFollowUp && followUp.ticket.id != ticket.id)
      #expect(followUp.ticket.followUpOfID == ticket.id && followUp.ticket.status == .new)
      #expect(followUp.ticket.requesterContactID == contact.id && followUp.ticket.subject == ticket.subject)
      #expect(followUp.comment.ticketID == followUp.ticket.id && followUp.ticket.slaState == .active)

      // Both tickets, their comments, status changes and the SLA warning are on the customer's and
      // the account's timelines.
      let interactions = Crm_V1_InteractionService.Client(wrapping: client)
      for ref in [("contact", Crm_V1_RecordType.contact, contact.id), ("account", .account, account.id)] {
        let timeline = try await interactions.getTimeline(
          .with {
            $0.record = .with {
              $0.recordType = ref.1
              $0.recordID = ref.2
            }
            $0.pageSize = 100
          }, metadata: auth)
        let ticketEntries = timeline.entries.filter { $0.record.recordType == .ticket }
        #expect(Set(ticketEntries.map(\.record.recordID)) == [ticket.id, followUp.ticket.id], "\(ref.0)")
        let fields = Set(ticketEntries.flatMap { $0.change.changes.map(\.field) })
        #expect(fields.isSuperset(of: ["status", "comment", "sla_warned"]), "\(ref.0): \(fields)")
      }
    }
  }

  static func setStatus(
    _ tickets: Crm_V1_TicketService.Client<HTTP2ClientTransport.Posix>, _ ticket: Crm_V1_Ticket, _ status: Crm_V1_TicketStatus,
    auth: Metadata
  ) async throws -> Crm_V1_Ticket {
    try await tickets.updateTicket(
      .with {
        $0.ticket = .with {
          $0.id = ticket.id
          $0.status = status
        }
        $0.updateMask = .with { $0.paths = ["status"] }
      }, metadata: auth)
  }

  @Test("a holiday added while a ticket is open moves its due time; a calendar in use cannot be archived")
  func holidayEditedWhileOpen() async throws {
    let tenant = try await TestTenant.make()
    let clock = ManualWallClock(Self.utc("2026-06-01T07:00:00Z"))  // Monday 09:00 in Berlin
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let (calendar, _) = try await Self.configure(client, admin: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      var ticket = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Holiday" } }, metadata: admin)
      _ = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.public = true
          $0.body = "On it"
        }, metadata: admin)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      // Resolution, 480 business minutes from Monday 09:00: due at Tuesday's opening.
      #expect(ticket.nextBreachTime == Self.proto("2026-06-02T07:00:00Z"))
      var edited = calendar
      edited.holidays = [.with { $0.year = 2026; $0.month = 6; $0.day = 2 }]
      let sla = Crm_V1_SLAService.Client(wrapping: client)
      let saved = try await sla.updateBusinessCalendar(.with { $0.calendar = edited }, metadata: admin)
      #expect(saved.holidays.count == 1)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      #expect(ticket.nextBreachTime == Self.proto("2026-06-03T07:00:00Z"), "Tuesday is a holiday now: due Wednesday 09:00")
      let stale = await code { try await sla.updateBusinessCalendar(.with { $0.calendar = edited }, metadata: admin) }
      #expect(stale == .aborted)
      let inUse = await code { try await sla.deleteBusinessCalendar(.with { $0.id = calendar.id }, metadata: admin) }
      #expect(inUse == .failedPrecondition)
    }
  }

  @Test("CSAT: one survey per ticket, issued on the first solve, answered once without signing in, closed after 28 days")
  func satisfaction() async throws {
    let tenant = try await TestTenant.make()
    let clock = ManualWallClock(Self.utc("2026-06-01T07:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let surveys = Crm_V1_SatisfactionService.Client(wrapping: client)
      var first = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Rate me" } }, metadata: admin)
      #expect(first.satisfactionToken.isEmpty)
      first = try await Self.setStatus(tickets, first, .solved, auth: admin)
      let token = first.satisfactionToken
      #expect(token.hasPrefix("csat_") && token.count > 40)
      // Reopened and solved again: the same survey, not a second one.
      first = try await Self.setStatus(tickets, first, .open, auth: admin)
      first = try await Self.setStatus(tickets, first, .solved, auth: admin)
      #expect(first.satisfactionToken == token)

      let wrong = await code { try await surveys.submitSatisfaction(.with { $0.token = token; $0.rating = 6 }) }
      #expect(wrong == .invalidArgument)
      #expect(await code { try await surveys.submitSatisfaction(.with { $0.token = "csat_nope"; $0.rating = 4 }) } == .notFound)
      // No authorization metadata at all: the token is the credential.
      let answer = try await surveys.submitSatisfaction(
        .with {
          $0.token = token
          $0.rating = 4
          $0.comment = "Quick and kind."
        })
      #expect(answer.rating == 4)
      #expect(await code { try await surveys.submitSatisfaction(.with { $0.token = token; $0.rating = 1 }) } == .failedPrecondition)
      first = try await tickets.getTicket(.with { $0.id = first.id }, metadata: admin)
      #expect(first.satisfactionRating == 4 && first.satisfactionComment == "Quick and kind.")

      // A survey left unanswered closes 28 days after the solve.
      var late = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Rate me later" } }, metadata: admin)
      late = try await Self.setStatus(tickets, late, .solved, auth: admin)
      clock.advance(minutes: 28 * 24 * 60 + 1)
      let expired = await code {
        try await surveys.submitSatisfaction(.with { $0.token = late.satisfactionToken; $0.rating = 5 })
      }
      #expect(expired == .failedPrecondition)
      // Other RPCs still need a token.
      #expect(await code { try await tickets.getTicket(.with { $0.id = late.id }) } == .unauthenticated)
    }
  }

  @Test("two nodes running the SLA job together fire each warning and breach exactly once")
  func jobExactlyOnce() async throws {
    let tenant = try await TestTenant.make()
    let clock = ManualWallClock(Self.utc("2026-06-01T06:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      _ = try await Self.configure(client, admin: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      for index in 0..<40 {
        _ = try await tickets.createTicket(
          .with { $0.ticket = .with { $0.subject = "Printer \(index) is on fire" } }, metadata: admin)
      }
    }
    // Monday 11:00: every first reply is past its warning and its due time.
    clock.set(Self.utc("2026-06-01T09:00:00Z"))
    let nodes = [TicketStore(database: tenant.database, now: clock.now), TicketStore(database: tenant.database, now: clock.now)]
    let reports = try await withThrowingTaskGroup(of: SLAJobReport.self) { group in
      for node in nodes {
        for _ in 0..<3 { group.addTask { try await node.fireDueClocks(tenant: tenant.tenantID, batchSize: 7) } }
      }
      return try await group.reduce(into: [SLAJobReport]()) { $0.append($1) }
    }
    #expect(reports.map(\.warned).reduce(0, +) == 40 && reports.map(\.breached).reduce(0, +) == 40)
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    let fired = try connection.query(
      """
      SELECT kind, count(*) AS n, count(DISTINCT ticket_id) AS tickets FROM sla_events
      WHERE tenant_id = \(tenant.tenantID) AND kind IN ('warned', 'breached') GROUP BY kind ORDER BY kind
      """)
    #expect(try fired.rows.map { try ($0.decode("kind", as: String.self), $0.decode("n", as: Int64.self)) }.map { "\($0.0)=\($0.1)" }
      == ["breached=40", "warned=40"])
    let logged: Int64 = try connection.query(
      "SELECT count(*) AS n FROM change_log WHERE tenant_id = \(tenant.tenantID) AND record_type = 'ticket' AND request_id = 'sla-job'"
    )[0].decode("n")
    #expect(logged == 80)
    let states: [String] = try connection.query(
      "SELECT DISTINCT sla_state FROM tickets WHERE tenant_id = \(tenant.tenantID)"
    ).rows.map { try $0.decode("sla_state") }
    #expect(states == ["breached"])
    #expect(try await nodes[0].fireDueClocks(tenant: tenant.tenantID) == SLAJobReport(warned: 0, breached: 0))
  }

  @Test("lists filter by status, priority, assignee and SLA state, and order by next breach with keyset pages")
  func lists() async throws {
    let tenant = try await TestTenant.make()
    let (agent, agentSecret) = try await tenant.makeUser(.salesRep)
    let clock = ManualWallClock(Self.utc("2026-06-01T07:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      _ = try await Self.configure(client, admin: admin)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      var created: [Crm_V1_Ticket] = []
      // Created a minute apart: each first reply is due a minute after the one before.
      for index in 0..<7 {
        created.append(
          try await tickets.createTicket(
            .with {
              $0.ticket = .with {
                $0.subject = "Ticket \(index)"
                $0.priority = index == 6 ? .low : .normal
                if index % 2 == 0 { $0.assigneeID = agent.userID.lowercasedString }
                $0.tags = index < 3 ? ["vip"] : []
              }
            }, metadata: admin))
        clock.advance(minutes: 1)
      }
      // The low-priority one has no target under the policy: no clock, listed last.
      #expect(created[6].slaState == .none && !created[6].hasNextBreachTime)
      var seen: [String] = []
      var token = ""
      repeat {
        let page = try await tickets.listTickets(
          .with {
            $0.orderBy = .nextBreach
            $0.pageSize = 3
            $0.pageToken = token
          }, metadata: admin)
        seen += page.tickets.map(\.subject)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(seen == (0..<7).map { "Ticket \($0)" })
      let newest = try await tickets.listTickets(.with { $0.pageSize = 2 }, metadata: admin)
      #expect(newest.tickets.map(\.subject) == ["Ticket 6", "Ticket 5"])
      let mine = try await tickets.listTickets(
        .with {
          $0.assigneeID = agent.userID.lowercasedString
          $0.includeTotalSize = true
        }, metadata: TestServer.auth(agentSecret))
      #expect(mine.totalSize == 4 && Set(mine.tickets.map(\.subject)) == ["Ticket 0", "Ticket 2", "Ticket 4", "Ticket 6"])
      let vipUnassigned = try await tickets.listTickets(
        .with {
          $0.tag = "VIP"
          $0.unassigned = true
        }, metadata: admin)
      #expect(vipUnassigned.tickets.map(\.subject) == ["Ticket 1"])
      let soon = try await tickets.listTickets(
        .with {
          $0.breachesBefore = Self.proto("2026-06-01T08:02:30Z")
          $0.orderBy = .nextBreach
        }, metadata: admin)
      #expect(soon.tickets.map(\.subject) == ["Ticket 0", "Ticket 1", "Ticket 2"])
      let low = try await tickets.listTickets(.with { $0.priorities = [.low] }, metadata: admin)
      #expect(low.tickets.map(\.subject) == ["Ticket 6"])
      let none = try await tickets.listTickets(.with { $0.slaStates = [.none] }, metadata: admin)
      #expect(none.tickets.map(\.subject) == ["Ticket 6"])
      let badToken = await code {
        try await tickets.listTickets(
          .with {
            $0.orderBy = .newest
            $0.pageToken = newest.nextPageToken + "x"
          }, metadata: admin)
      }
      #expect(badToken == .invalidArgument)
    }
  }

  @Test("bad input names its field; stale etags abort; other tenants see nothing; merges carry comments over")
  func rulesAndMerges() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make()
    let clock = ManualWallClock(Self.utc("2026-06-01T07:00:00Z"))
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with { $0.contact = .with { $0.lastName = "Nakamura" } }, metadata: admin)
      let cases: [(Crm_V1_CreateTicketRequest, String)] = [
        (.with { $0.ticket = .with { $0.subject = "  " } }, "ticket.subject"),
        (.with { $0.ticket = .with { $0.subject = "x"; $0.priority = .init(rawValue: 42)! } }, "ticket.priority"),
        (
          .with {
            $0.ticket = .with {
              $0.subject = "x"; $0.requesterContactID = contact.id; $0.requesterLeadID = UUID.v7().lowercasedString
            }
          }, "ticket.requester_lead_id"
        ),
        (.with { $0.ticket = .with { $0.subject = "x"; $0.assigneeID = "bob" } }, "ticket.assignee_id"),
        (.with { $0.ticket = .with { $0.subject = "x"; $0.status = .closed } }, "ticket.status"),
        (.with { $0.ticket = .with { $0.subject = "x'); DROP TABLE tickets; --"; $0.assigneeID = UUID.v7().lowercasedString } }, "ticket.assignee_id"),
        (.with { $0.ticket = .with { $0.subject = "x"; $0.description_p = String(repeating: "a", count: 100_001) } }, "ticket.description"),
        (.with { $0.ticket = .with { $0.subject = "x" }; $0.openingAuthor = .customer }, "opening_author"),
      ]
      for (request, field) in cases {
        do {
          _ = try await tickets.createTicket(request, metadata: admin)
          Issue.record("\(field): accepted")
        } catch let error as RPCError {
          #expect(error.code == .invalidArgument, "\(field): \(error)")
          #expect(error.message.contains(field), "\(field): \(error.message)")
        }
      }
      let target = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Invoice question"
            $0.description_p = "Why two invoices?"
            $0.requesterContactID = contact.id
          }
          $0.openingMessageID = "<a@x>"
        }, metadata: admin)
      let source = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Invoice question (again)"
            $0.description_p = "Still two invoices."
            $0.requesterContactID = contact.id
          }
          $0.openingMessageID = "<b@x>"
        }, metadata: admin)
      let stale = await code {
        try await tickets.updateTicket(
          .with {
            $0.ticket = .with {
              $0.id = target.id
              $0.etag = "99"
              $0.subject = "changed"
            }
            $0.updateMask = .with { $0.paths = ["subject"] }
          }, metadata: admin)
      }
      #expect(stale == .aborted)
      #expect(
        await code { try await tickets.getTicket(.with { $0.id = target.id }, metadata: TestServer.auth(other.adminSecret)) }
          == .notFound)
      #expect(
        await code {
          try await tickets.addComment(
            .with {
              $0.ticketID = target.id
              $0.body = "hi"
            }, metadata: TestServer.auth(other.adminSecret))
        } == .notFound)
      // A named customer author must exist (comments carry no foreign key to contacts).
      let ghost = await code {
        try await tickets.addComment(
          .with {
            $0.ticketID = target.id
            $0.authorKind = .customer
            $0.authorContactID = UUID.v7().lowercasedString
            $0.body = "from nobody"
          }, metadata: admin)
      }
      #expect(ghost == .notFound)
      // The merge happens later than the comments it carries (on one frozen instant their order would
      // fall to their random ids).
      clock.advance(minutes: 1)
      let merged = try await tickets.mergeTickets(
        .with {
          $0.targetID = target.id
          $0.sourceIds = [source.id]
        }, metadata: admin)
      #expect(merged.id == target.id)
      let closed = try await tickets.getTicket(.with { $0.id = source.id }, metadata: admin)
      #expect(closed.status == .closed && closed.mergedIntoID == target.id && closed.slaState == .none)
      let comments = try await tickets.listComments(.with { $0.ticketID = target.id }, metadata: admin).comments
      #expect(comments.map(\.body) == ["Why two invoices?", "Still two invoices.", "Merged in: #\(source.number)."])
      #expect(comments[1].mergedFromTicketID == source.id && comments[2].authorKind == .system && !comments[2].public)
      // Mail threaded on the source now lands on the target: its message ids moved.
      let connection = try TestDatabase.ownerConnection()
      defer { connection.close() }
      let owner: UUID = try connection.query(
        "SELECT ticket_id FROM ticket_message_ids WHERE tenant_id = \(tenant.tenantID) AND message_id = '<b@x>'")[0]
        .decode("ticket_id")
      #expect(owner.lowercasedString == target.id)
      #expect(
        await code {
          try await tickets.mergeTickets(
            .with {
              $0.targetID = target.id
              $0.sourceIds = [source.id]
            }, metadata: admin)
        } == .failedPrecondition)
    }
  }
}

@Suite("Server: support mail into tickets")
struct SupportMailRPCTests {
  static func mail(
    from: String, subject: String, id: String, inReplyTo: String? = nil, references: [String] = [],
    to: String = "support@acme.example", body: String = "Hello"
  ) -> Crm_V1_CaptureSupportEmailRequest {
    var lines = ["From: \(from)", "To: \(to)", "Subject: \(subject)", "Message-ID: <\(id)>"]
    if let inReplyTo { lines.append("In-Reply-To: <\(inReplyTo)>") }
    if !references.isEmpty { lines.append("References: " + references.map { "<\($0)>" }.joined(separator: " ")) }
    let raw = lines.joined(separator: "\r\n") + "\r\n\r\n" + body + "\r\n"
    return .with { $0.email = .with { $0.raw = Data(raw.utf8) } }
  }

  @Test("a support key turns mail into tickets and threads replies by token, In-Reply-To, References and merges")
  func threading() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let capture = Crm_V1_CaptureService.Client(wrapping: client)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let key = try await capture.createCaptureKey(
        .with {
          $0.channel = .email
          $0.support = true
          $0.name = "support@acme.example"
        }, metadata: admin)
      #expect(key.key.support)
      let support = TestServer.auth(key.secret)
      // A support key reaches CaptureSupportEmail only.
      #expect(await code { try await capture.captureLead(.with { $0.email = .with { $0.raw = Data("From: a@b.c\r\n\r\nx".utf8) } }, metadata: support) } == .permissionDenied)

      let first = try await capture.captureSupportEmail(
        Self.mail(from: "Ada Lovelace <ada@example.org>", subject: "Fwd: Engine stalls", id: "m1@example.org", body: "It stalls."),
        metadata: support)
      #expect(first.outcome == .created && first.requesterCreated && first.requester.recordType == .contact)
      #expect(first.ticket.subject == "Engine stalls" && first.ticket.channel == .email && first.ticket.status == .new)
      #expect(first.comment.body == "It stalls." && first.comment.authorKind == .customer)
      let again = try await capture.captureSupportEmail(
        Self.mail(from: "Ada Lovelace <ada@example.org>", subject: "Fwd: Engine stalls", id: "m1@example.org"), metadata: support)
      #expect(again.outcome == .duplicate && again.ticket.id == first.ticket.id && again.ticket.etag == first.ticket.etag)

      // The agent's reply went out with its own Message-ID; the customer's answer threads by In-Reply-To.
      let reply = try await tickets.addComment(
        .with {
          $0.ticketID = first.ticket.id
          $0.public = true
          $0.body = "Which model?"
          $0.messageID = "r1@acme.example"
          $0.status = .pending
        }, metadata: admin)
      #expect(reply.ticket.status == .pending)
      let answer = try await capture.captureSupportEmail(
        Self.mail(from: "ada@example.org", subject: "Re: Engine stalls", id: "m2@example.org", inReplyTo: "r1@acme.example"),
        metadata: support)
      #expect(answer.outcome == .commented && answer.ticket.id == first.ticket.id && answer.ticket.status == .open)
      #expect(!answer.requesterCreated && answer.requester.recordID == first.requester.recordID)
      // References only, newest first.
      let byReferences = try await capture.captureSupportEmail(
        Self.mail(from: "ada@example.org", subject: "more", id: "m3@example.org", references: ["unknown@x", "m2@example.org"]),
        metadata: support)
      #expect(byReferences.outcome == .commented && byReferences.ticket.id == first.ticket.id)
      // The token in the subject, from the requester; from a stranger it opens a ticket of their own.
      let token = try await capture.captureSupportEmail(
        Self.mail(from: "ada@example.org", subject: "Re: [#\(first.ticket.number)] update", id: "m4@example.org"), metadata: support)
      #expect(token.outcome == .commented && token.ticket.id == first.ticket.id)
      let plus = try await capture.captureSupportEmail(
        Self.mail(from: "ada@example.org", subject: "update", id: "m5@example.org", to: "support+\(first.ticket.number)@acme.example"),
        metadata: support)
      #expect(plus.outcome == .commented && plus.ticket.id == first.ticket.id)
      let stranger = try await capture.captureSupportEmail(
        Self.mail(from: "Eve <eve@example.net>", subject: "Re: [#\(first.ticket.number)] let me in", id: "m6@example.net"),
        metadata: support)
      #expect(stranger.outcome == .created && stranger.ticket.id != first.ticket.id && stranger.requesterCreated)

      // Merged: later mail for the source lands on the target.
      _ = try await tickets.mergeTickets(
        .with {
          $0.targetID = stranger.ticket.id
          $0.sourceIds = [first.ticket.id]
        }, metadata: admin)
      let afterMerge = try await capture.captureSupportEmail(
        Self.mail(from: "ada@example.org", subject: "Re: Engine stalls", id: "m7@example.org", inReplyTo: "m1@example.org"),
        metadata: support)
      #expect(afterMerge.outcome == .commented && afterMerge.ticket.id == stranger.ticket.id)

      // Closed: a follow-up opens. Unknown senders become leads when the tenant says so.
      _ = try await TicketRPCTests.setStatus(tickets, stranger.ticket, .closed, auth: admin)
      let followUp = try await capture.captureSupportEmail(
        Self.mail(from: "eve@example.net", subject: "Re: let me in", id: "m8@example.net", inReplyTo: "m6@example.net"),
        metadata: support)
      #expect(followUp.outcome == .followUp && followUp.ticket.followUpOfID == stranger.ticket.id)
      let sla = Crm_V1_SLAService.Client(wrapping: client)
      var settings = try await sla.getServiceSettings(.init(), metadata: admin)
      settings.unknownSender = .lead
      _ = try await sla.updateServiceSettings(.with { $0.settings = settings }, metadata: admin)
      let lead = try await capture.captureSupportEmail(
        Self.mail(from: "Grace <grace@example.com>", subject: "Pricing", id: "m9@example.com"), metadata: support)
      #expect(lead.outcome == .created && lead.requester.recordType == .lead && lead.ticket.requesterLeadID == lead.requester.recordID)
      let bad = await code { try await capture.captureSupportEmail(.with { $0.email = .with { $0.raw = Data("no headers".utf8) } }, metadata: support) }
      #expect(bad == .invalidArgument)
    }
  }
}

@Suite("Server: escalation rules")
struct EscalationRPCTests {
  @Test("warnings, breach levels and age in status escalate once each: tag, priority, manager task, reassignment")
  func escalations() async throws {
    let tenant = try await TestTenant.make()
    let (manager, _) = try await tenant.makeUser(.manager)
    let tier1 = try await tenant.makeTeam("Tier 1", manager: manager.userID)
    let tier2 = try await tenant.makeTeam("Tier 2")
    let (agent, _) = try await tenant.makeUser(.salesRep, team: tier1)
    let (senior, _) = try await tenant.makeUser(.salesRep, team: tier2)
    let clock = ManualWallClock(TicketRPCTests.utc("2026-06-01T07:00:00Z"))
    let jobs = TicketStore(database: tenant.database, now: clock.now)
    let escalation = EscalationStore(database: tenant.database, now: clock.now)
    @Sendable func pass() async throws -> Int {
      _ = try await jobs.fireDueClocks(tenant: tenant.tenantID)
      // Two nodes at once: each firing happens once.
      async let a = escalation.run(tenant: tenant.tenantID)
      async let b = escalation.run(tenant: tenant.tenantID)
      return try await a + b
    }
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let sla = Crm_V1_SLAService.Client(wrapping: client)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let targets: Crm_V1_SLAPriorityTargets = .with {
        $0.firstReply = .with {
          $0.minutes = 60
          $0.warningMinutes = 15
        }
        $0.resolution = .with { $0.minutes = 120 }
      }
      _ = try await sla.createSLAPolicy(
        .with {
          $0.policy = .with {
            $0.name = "Calendar time"
            $0.targets = [Crm_V1_TicketPriority.normal, .high].map { priority in
              var row = targets
              row.priority = priority
              return row
            }
          }
        }, metadata: admin)
      let rules: [Crm_V1_EscalationRule] = [
        .with {
          $0.name = "Warn: tag at risk"
          $0.warning = .with { $0.metric = .firstReply }
          $0.actions = .with { $0.addTag = "At-Risk" }
        },
        .with {
          $0.name = "Breach L1: raise and tell the manager"
          $0.breach = .with {
            $0.metric = .resolution
            $0.level = 1
          }
          $0.actions = .with {
            $0.raisePriorityTo = .high
            $0.taskForManager = true
          }
        },
        .with {
          $0.name = "Breach L2: to tier 2"
          $0.breach = .with {
            $0.metric = .resolution
            $0.level = 2
            $0.afterMinutes = 240
          }
          $0.actions = .with {
            $0.assigneeID = senior.userID.lowercasedString
            $0.groupID = tier2.lowercasedString
          }
        },
        .with {
          $0.name = "Pending two days"
          $0.age = .with {
            $0.status = .pending
            $0.minutes = 2 * 24 * 60
          }
          $0.actions = .with { $0.addTag = "stale-pending" }
        },
        .with {
          $0.name = "Only VIP tickets"
          $0.warning = .with { $0.metric = .firstReply }
          $0.conditions = .with { $0.tags = ["vip"] }
          $0.actions = .with { $0.addTag = "vip-at-risk" }
        },
      ]
      for rule in rules { _ = try await sla.createEscalationRule(.with { $0.rule = rule }, metadata: admin) }
      #expect(try await sla.listEscalationRules(.init(), metadata: admin).rules.map(\.name) == rules.map(\.name))
      let invalid = await code {
        try await sla.createEscalationRule(
          .with {
            $0.rule = .with {
              $0.name = "bad"
              $0.breach = .with {
                $0.metric = .resolution
                $0.level = 5
              }
            }
          }, metadata: admin)
      }
      #expect(invalid == .invalidArgument)

      var ticket = try await tickets.createTicket(
        .with {
          $0.ticket = .with {
            $0.subject = "Line 3 is down"
            $0.assigneeID = agent.userID.lowercasedString
            $0.groupID = tier1.lowercasedString
          }
        }, metadata: admin)
      clock.advance(minutes: 50)
      #expect(try await pass() == 1)
      #expect(try await pass() == 0)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      #expect(ticket.tags == ["at-risk"] && ticket.priority == .normal)

      _ = try await tickets.addComment(
        .with {
          $0.ticketID = ticket.id
          $0.public = true
          $0.body = "Looking into it"
        }, metadata: admin)
      clock.advance(minutes: 80)  // resolution (120 min) breached 10 minutes ago
      #expect(try await pass() == 1)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      #expect(ticket.priority == .high && ticket.assigneeID == agent.userID.lowercasedString)
      let managerTasks = try await Crm_V1_TaskService.Client(wrapping: client).listMyTasks(
        .with { $0.userID = manager.userID.lowercasedString }, metadata: admin
      ).tasks
      #expect(managerTasks.count == 1 && managerTasks.first?.related.recordID == ticket.id)
      #expect(managerTasks.first?.priority == .high && managerTasks.first?.subject.hasPrefix("Escalated: #\(ticket.number)") == true)

      clock.advance(minutes: 240)
      #expect(try await pass() == 1)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      #expect(ticket.assigneeID == senior.userID.lowercasedString && ticket.groupID == tier2.lowercasedString)

      ticket = try await TicketRPCTests.setStatus(tickets, ticket, .pending, auth: admin)
      clock.advance(minutes: 2 * 24 * 60 - 1)
      #expect(try await pass() == 0)
      clock.advance(minutes: 2)
      #expect(try await pass() == 1)
      #expect(try await pass() == 0)
      ticket = try await tickets.getTicket(.with { $0.id = ticket.id }, metadata: admin)
      #expect(ticket.tags == ["at-risk", "stale-pending"])

      // The history names every rule that acted.
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .ticket
          $0.recordID = ticket.id
          $0.pageSize = 100
        }, metadata: admin)
      let named = history.entries.flatMap(\.changes).filter { $0.field == "escalation_rule" }.map { $0.newValue.structValue.fields["name"]?.stringValue ?? "" }
      #expect(Set(named) == ["Warn: tag at risk", "Breach L1: raise and tell the manager", "Breach L2: to tier 2", "Pending two days"])
    }
  }
}

@Suite("Server: ticket assignment rules")
struct TicketAssignmentRPCTests {
  @Test("tickets are routed by priority and channel: a user, or a team rotation capped at open tickets per agent")
  func routing() async throws {
    let tenant = try await TestTenant.make()
    let (desk, _) = try await tenant.makeUser(.salesRep)
    let (alice, _) = try await tenant.makeUser(.salesRep)
    let (bob, _) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let rules = Crm_V1_AssignmentService.Client(wrapping: client)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let urgent = try await rules.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .ticket
            $0.name = "Urgent to the desk"
            $0.criteria = .with { $0.priorities = [.urgent] }
            $0.userID = desk.userID.lowercasedString
          }
        }, metadata: admin)
      _ = try await rules.createAssignmentRule(
        .with {
          $0.rule = .with {
            $0.recordType = .ticket
            $0.name = "Mail rotation"
            $0.criteria = .with { $0.channels = [.email] }
            $0.team = .with {
              $0.members = [alice, bob].map { user in .with { $0.userID = user.userID.lowercasedString } }
              $0.openRecordCap = 2
            }
          }
        }, metadata: admin)
      let pooled = await code {
        try await rules.createAssignmentRule(
          .with {
            $0.rule = .with {
              $0.recordType = .ticket
              $0.name = "No pools"
              $0.poolID = UUID.v7().lowercasedString
            }
          }, metadata: admin)
      }
      #expect(pooled == .invalidArgument)

      let first = try await tickets.createTicket(
        .with { $0.ticket = .with { $0.subject = "Down"; $0.priority = .urgent; $0.channel = .email } }, metadata: admin)
      #expect(first.assigneeID == desk.userID.lowercasedString)
      let history = try await Crm_V1_ChangeService.Client(wrapping: client).getRecordHistory(
        .with {
          $0.recordType = .ticket
          $0.recordID = first.id
        }, metadata: admin)
      #expect(history.entries.flatMap(\.changes).contains { $0.field == "assignment_rule" })

      var rotated: [Crm_V1_Ticket] = []
      for index in 0..<5 {
        rotated.append(
          try await tickets.createTicket(
            .with { $0.ticket = .with { $0.subject = "Mail \(index)"; $0.channel = .email } }, metadata: admin))
      }
      let names = [alice.userID.lowercasedString: "alice", bob.userID.lowercasedString: "bob", "": "nobody"]
      #expect(rotated.map { names[$0.assigneeID]! } == ["alice", "bob", "alice", "bob", "nobody"])
      // A solved ticket frees a slot under the cap.
      _ = try await TicketRPCTests.setStatus(tickets, rotated[0], .solved, auth: admin)
      let next = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Mail 5"; $0.channel = .email } }, metadata: admin)
      #expect(names[next.assigneeID] == "alice")
      // Named assignees are kept; phone tickets match no rule.
      let named = try await tickets.createTicket(
        .with { $0.ticket = .with { $0.subject = "Mine"; $0.channel = .email; $0.assigneeID = bob.userID.lowercasedString } },
        metadata: admin)
      #expect(named.assigneeID == bob.userID.lowercasedString)
      let phone = try await tickets.createTicket(.with { $0.ticket = .with { $0.subject = "Call"; $0.channel = .phone } }, metadata: admin)
      #expect(phone.assigneeID.isEmpty)
      let test = try await rules.testAssignment(
        .with {
          $0.record = .with {
            $0.recordType = .ticket
            $0.recordID = first.id
          }
        }, metadata: admin)
      #expect(test.rule.id == urgent.id)
    }
  }
}

@Suite("Server: the service report")
struct ServiceReportRPCTests {
  @Test("SLA achievement by dimension, response and resolution times, backlog by age, CSAT rate; managers only")
  func report() async throws {
    let tenant = try await TestTenant.make()
    let group = try await tenant.makeTeam("Support")
    let (alice, _) = try await tenant.makeUser(.serviceAgent, team: group)
    let (bob, bobSecret) = try await tenant.makeUser(.serviceAgent, team: group)
    let t0 = TicketRPCTests.utc("2026-06-10T08:00:00Z")
    let clock = ManualWallClock(Timestamp(microsecondsSinceEpoch: t0.microsecondsSinceEpoch - 5 * 86_400_000_000))
    try await TestServer.withClient(slaClock: clock.now) { (client) async throws -> Void in
      let admin = TestServer.auth(tenant.adminSecret)
      let tickets = Crm_V1_TicketService.Client(wrapping: client)
      let policy = try await Crm_V1_SLAService.Client(wrapping: client).createSLAPolicy(
        .with {
          $0.policy = .with {
            $0.name = "Calendar"
            $0.targets = [
              .with {
                $0.priority = .normal
                $0.firstReply = .with { $0.minutes = 60 }
                $0.resolution = .with { $0.minutes = 240 }
              }
            ]
          }
        }, metadata: admin)
      func create(_ subject: String, _ agent: Principal) async throws -> Crm_V1_Ticket {
        try await tickets.createTicket(
          .with {
            $0.ticket = .with {
              $0.subject = subject
              $0.assigneeID = agent.userID.lowercasedString
              $0.groupID = group.lowercasedString
            }
          }, metadata: admin)
      }
      func reply(_ ticket: Crm_V1_Ticket) async throws {
        _ = try await tickets.addComment(
          .with {
            $0.ticketID = ticket.id
            $0.public = true
            $0.body = "On it"
          }, metadata: admin)
      }
      let old = try await create("Old one", alice)  // five days before t0, still new
      clock.set(t0)
      let quick = try await create("Quick", alice)
      let slow = try await create("Slow", bob)
      let waiting = try await create("Waiting", bob)
      _ = try await TicketRPCTests.setStatus(tickets, waiting, .pending, auth: admin)
      clock.advance(minutes: 30)
      try await reply(quick)
      clock.advance(minutes: 30)
      let solvedQuick = try await TicketRPCTests.setStatus(tickets, quick, .solved, auth: admin)
      clock.advance(minutes: 30)
      try await reply(slow)  // 90 minutes: first reply breached
      clock.advance(minutes: 210)
      _ = try await TicketRPCTests.setStatus(tickets, slow, .solved, auth: admin)  // 300 minutes: resolution breached
      _ = try await Crm_V1_SatisfactionService.Client(wrapping: client).submitSatisfaction(
        .with {
          $0.token = solvedQuick.satisfactionToken
          $0.rating = 5
        })

      let period: Crm_V1_GetServiceReportRequest = .with {
        $0.startTime = TicketRPCTests.proto("2026-06-09T00:00:00Z")
        $0.endTime = TicketRPCTests.proto("2026-06-11T00:00:00Z")
      }
      #expect(await code { try await tickets.getServiceReport(period, metadata: TestServer.auth(bobSecret)) } == .permissionDenied)
      let report = try await tickets.getServiceReport(period, metadata: admin)
      func row(_ dimension: String, _ key: String, _ metric: Crm_V1_SLAMetric) -> (Int64, Int64)? {
        report.achievement.first { $0.dimension == dimension && $0.key == key && $0.metric == metric }.map { ($0.achieved, $0.breached) }
      }
      #expect(row("all", "", .firstReply)! == (1, 1) && row("all", "", .resolution)! == (1, 1))
      #expect(row("agent", alice.userID.lowercasedString, .firstReply)! == (1, 0))
      #expect(row("agent", bob.userID.lowercasedString, .firstReply)! == (0, 1))
      #expect(row("policy", policy.id, .resolution)! == (1, 1) && row("priority", "normal", .firstReply)! == (1, 1))
      #expect(row("group", group.lowercasedString, .firstReply)! == (1, 1))
      #expect(report.firstResponse.count == 2 && report.firstResponse.median.seconds == 60 * 60)
      #expect(report.firstResponse.slaMedian.seconds == 60 * 60)
      #expect(report.resolution.count == 2 && report.resolution.median.seconds == 180 * 60)
      // The pending ticket's paused time is left out of the clocks' count, not of the wall clock.
      let backlog = Set(report.backlog.map { "\($0.status):\($0.age)=\($0.count)" })
      #expect(backlog == ["pending:<1d=1", "new:3-7d=1"], "\(backlog)")
      let all = try #require(report.satisfaction.first { $0.dimension == "all" })
      #expect(all.surveys == 2 && all.answers == 1 && all.responseRate == 0.5 && all.averageRating == 5)
      let bobs = report.satisfaction.first { $0.dimension == "agent" && $0.key == bob.userID.lowercasedString }
      #expect(bobs?.answers == 0 && bobs?.surveys == 1)
      _ = old
    }
  }
}
