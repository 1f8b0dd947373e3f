import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm tickets …`
struct Tickets: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Service tickets: open, list (by next SLA breach), reply, add notes, change status, assign, merge, see SLA clocks.",
    subcommands: [
      Create.self, Get.self, List.self, Update.self, Reply.self, Note.self, Status.self, Assign.self, Merge.self, SLA.self,
      Due.self,
    ])

  static let statuses: [String: Crm_V1_TicketStatus] = [
    "new": .new, "open": .open, "pending": .pending, "on_hold": .onHold, "solved": .solved, "closed": .closed,
  ]
  static let priorities: [String: Crm_V1_TicketPriority] = ["low": .low, "normal": .normal, "high": .high, "urgent": .urgent]
  static let types: [String: Crm_V1_TicketType] = [
    "question": .question, "incident": .incident, "problem": .problem, "task": .task, "dispute": .dispute,
  ]
  static let channels: [String: Crm_V1_TicketChannel] = [
    "email": .email, "web_form": .webForm, "phone": .phone, "chat": .chat, "api": .api,
  ]
  static let metrics: [String: Crm_V1_SLAMetric] = [
    "first_reply": .firstReply, "next_reply": .nextReply, "resolution": .resolution,
  ]

  /// The value `text` names in `table`, or a usage error listing the choices.
  static func pick<T>(_ text: String, _ table: [String: T], option: String) throws -> T {
    guard let value = table[text.lowercased()] else {
      throw ValidationError("\(option) must be one of \(table.keys.sorted().joined(separator: ", "))")
    }
    return value
  }

  /// What a person reads in a list's SLA column: "due in 42m", "breached 3h ago", "paused", "—".
  static func slaLabel(_ ticket: Crm_V1_Ticket, now: Date = Date()) -> String {
    switch ticket.slaState {
    case .paused: return "paused"
    case .none, .unspecified, .UNRECOGNIZED: return "—"
    default: break
    }
    guard ticket.hasNextBreachTime else { return Output.name(ticket.slaState) }
    let seconds = Int(Double(ticket.nextBreachTime.seconds) - now.timeIntervalSince1970)
    let span = Self.span(abs(seconds))
    if seconds < 0 { return "breached \(span) ago" }
    return ticket.slaState == .warning ? "due in \(span) ⚠" : "due in \(span)"
  }

  /// A short span: 45s, 42m, 3h 5m, 2d 4h.
  static func span(_ seconds: Int) -> String {
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3600 { return "\(seconds / 60)m" }
    if seconds < 86_400 { return seconds % 3600 >= 60 ? "\(seconds / 3600)h \((seconds % 3600) / 60)m" : "\(seconds / 3600)h" }
    return seconds % 86_400 >= 3600 ? "\(seconds / 86_400)d \((seconds % 86_400) / 3600)h" : "\(seconds / 86_400)d"
  }

  static func printTickets(_ tickets: [Crm_V1_Ticket], json: Bool) throws {
    if json { return try Output.printJSON(tickets) }
    Output.printTable(
      ["#", "STATUS", "PRIORITY", "SLA", "SUBJECT", "ASSIGNEE", "ID"],
      tickets.map {
        [
          "#\($0.number)", Output.name($0.status), Output.name($0.priority), slaLabel($0), $0.subject,
          String($0.assigneeID.prefix(8)), $0.id,
        ]
      })
  }

  static func printTicket(_ ticket: Crm_V1_Ticket, json: Bool) throws {
    if json { return try Output.printJSON([ticket]) }
    Output.printRecord([
      ("ticket", "#\(ticket.number)"), ("id", ticket.id), ("etag", ticket.etag), ("subject", ticket.subject),
      ("status", Output.name(ticket.status)), ("priority", Output.name(ticket.priority)),
      ("type", ticket.type == .unspecified ? "" : Output.name(ticket.type)), ("channel", Output.name(ticket.channel)),
      ("sla", slaLabel(ticket)), ("next breach", Output.time(ticket.nextBreachTime)),
      ("requester contact", ticket.requesterContactID), ("requester lead", ticket.requesterLeadID),
      ("account", ticket.accountID), ("assignee", ticket.assigneeID), ("group", ticket.groupID),
      ("tags", ticket.tags.joined(separator: ", ")), ("first response", Output.time(ticket.firstResponseTime)),
      ("solved", Output.time(ticket.solvedTime)), ("closed", Output.time(ticket.closedTime)),
      ("merged into", ticket.mergedIntoID), ("follow-up of", ticket.followUpOfID), ("created", Output.time(ticket.createTime)),
      ("description", ticket.description_p),
    ])
  }

  /// The id a command-line argument names: a ticket id as it is, a number ("#1042" or "1042") looked up.
  static func ticketID(_ text: String, _ grpc: GRPCClient<HTTP2ClientTransport.Posix>, _ metadata: Metadata) async throws
    -> String
  {
    if UUID(uuidString: text) != nil { return text }
    return try await Crm_V1_TicketService.Client(wrapping: grpc).getTicket(.with { $0.id = text }, metadata: metadata).id
  }

  /// Updates the fields named in `paths` from `ticket`.
  static func update(_ client: ClientOptions, _ ticket: Crm_V1_Ticket, paths: [String]) async throws -> Crm_V1_Ticket {
    try await client.withClient { grpc, metadata in
      var ticket = ticket
      ticket.id = try await ticketID(ticket.id, grpc, metadata)
      return try await Crm_V1_TicketService.Client(wrapping: grpc).updateTicket(
        .with {
          $0.ticket = ticket
          $0.updateMask = .with { $0.paths = paths }
        }, metadata: metadata)
    }
  }

  /// Adds a comment and prints the ticket it landed on.
  static func comment(_ client: ClientOptions, _ request: Crm_V1_AddCommentRequest) async throws {
    let result = try await client.withClient { grpc, metadata in
      var request = request
      request.ticketID = try await ticketID(request.ticketID, grpc, metadata)
      return try await Crm_V1_TicketService.Client(wrapping: grpc).addComment(request, metadata: metadata)
    }
    if client.json { return try Output.printJSON([result]) }
    if result.duplicate { print("already recorded (same message id); nothing written") }
    if result.openedFollowUp { print("the ticket was closed: opened follow-up #\(result.ticket.number)") }
    try printTickets([result.ticket], json: false)
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Open a ticket.",
      discussion:
        "Example: crm tickets create --subject \"Order 4711 damaged\" --description \"Two bolts wet\" --contact ID --priority high"
    )
    @OptionGroup var client: ClientOptions
    @Option(help: "What it is about.") var subject: String
    @Option(help: "The request, as the customer put it (the first comment).") var description: String?
    @Option(help: "The requester contact.") var contact: String?
    @Option(help: "The requester lead.") var lead: String?
    @Option(help: "The account (default: the contact's).") var account: String?
    @Option(help: "low, normal, high or urgent.") var priority: String = "normal"
    @Option(help: "question, incident, problem, task or dispute.") var type: String?
    @Option(help: "email, web_form, phone, chat or api.") var channel: String = "api"
    @Option(help: "The agent working it.") var assignee: String?
    @Option(help: "The team working it.") var group: String?
    @Option(help: "A tag (repeatable).") var tag: [String] = []
    @Option(help: "Starting status (default new).") var status: String?
    @Option(help: "Makes a retry safe: the same id returns the first ticket.") var requestID: String?

    func run() async throws {
      try await runReportingErrors {
        var ticket = Crm_V1_Ticket()
        ticket.subject = subject
        ticket.description_p = description ?? ""
        ticket.requesterContactID = contact ?? ""
        ticket.requesterLeadID = lead ?? ""
        ticket.accountID = account ?? ""
        ticket.priority = try pick(priority, priorities, option: "--priority")
        if let type { ticket.type = try pick(type, types, option: "--type") }
        ticket.channel = try pick(channel, channels, option: "--channel")
        ticket.assigneeID = assignee ?? ""
        ticket.groupID = group ?? ""
        ticket.tags = tag
        if let status { ticket.status = try pick(status, statuses, option: "--status") }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_TicketService.Client(wrapping: grpc).createTicket(
            .with {
              $0.ticket = ticket
              $0.requestID = requestID ?? ""
            }, metadata: metadata)
        }
        try printTicket(created, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a ticket and its conversation.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String

    func run() async throws {
      try await runReportingErrors {
        let (ticket, comments) = try await client.withClient { grpc, metadata in
          let service = Crm_V1_TicketService.Client(wrapping: grpc)
          let ticket = try await service.getTicket(.with { $0.id = id }, metadata: metadata)
          // The whole conversation, however long: page until the server says there is no more.
          var comments: [Crm_V1_TicketComment] = []
          var token = ""
          repeat {
            let page = try await service.listComments(
              .with {
                $0.ticketID = ticket.id
                $0.pageSize = 1000
                $0.pageToken = token
              }, metadata: metadata)
            comments += page.comments
            token = page.nextPageToken
          } while !token.isEmpty
          return (ticket, comments)
        }
        if client.json {
          try Output.printJSON([ticket])
          return try Output.printJSON(comments)
        }
        try printTicket(ticket, json: false)
        for comment in comments {
          let who =
            switch comment.authorKind {
            case .agent: "agent \(comment.authorUserID.prefix(8))"
            case .customer: "customer"
            default: "crmd"
            }
          print("\n— \(Output.time(comment.createTime))  \(who)\(comment.public ? "" : "  (internal note)")")
          print(comment.body)
        }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List tickets (default: the open queue by next SLA breach).",
      discussion:
        "Examples: crm tickets list --mine; crm tickets list --status pending --status on_hold; crm tickets list --breaching-within 60"
    )
    @OptionGroup var client: ClientOptions
    @Option(help: "A status (repeatable; default: new, open, pending, on_hold).") var status: [String] = []
    @Option(help: "A priority (repeatable).") var priority: [String] = []
    @Option(help: "An assignee's id.") var assignee: String?
    @Flag(help: "Only tickets assigned to nobody.") var unassigned = false
    @Option(help: "A group (team) id.") var group: String?
    @Option(help: "An account id.") var account: String?
    @Option(help: "A tag.") var tag: String?
    @Option(help: "Only tickets whose next SLA clock is due within this many minutes (or overdue).") var breachingWithin: Int?
    @Option(help: "next_breach (default), newest or updated.") var order: String = "next_breach"
    @Flag(help: "Every status, solved and closed included.") var all = false
    @Option(help: "Page size (1-1000).") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_ListTicketsRequest()
        request.statuses =
          all
          ? []
          : status.isEmpty ? [.new, .open, .pending, .onHold] : try status.map { try pick($0, statuses, option: "--status") }
        request.priorities = try priority.map { try pick($0, priorities, option: "--priority") }
        request.assigneeID = assignee ?? ""
        request.unassigned = unassigned
        request.groupID = group ?? ""
        request.accountID = account ?? ""
        request.tag = tag ?? ""
        if let breachingWithin {
          request.breachesBefore = .init(date: Date().addingTimeInterval(Double(breachingWithin) * 60))
        }
        let orders: [String: Crm_V1_ListTicketsRequest.Order] = [
          "next_breach": .nextBreach, "newest": .newest, "updated": .updated,
        ]
        request.orderBy = try pick(order, orders, option: "--order")
        request.pageSize = limit
        request.pageToken = paging.pageToken
        let page = try await client.withClient { grpc, metadata in
          try await Crm_V1_TicketService.Client(wrapping: grpc).listTickets(request, metadata: metadata)
        }
        try printTickets(page.tickets, json: client.json)
        Output.more(page.nextPageToken)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change a ticket's fields (only those given).",
      discussion: "Example: crm tickets update ID --priority urgent --tag vip --etag 3")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Option(help: "Send the etag you read to refuse a stale write.") var etag: String?
    @Option var subject: String?
    @Option(help: "low, normal, high or urgent.") var priority: String?
    @Option(help: "question, incident, problem, task or dispute.") var type: String?
    @Option(help: "The team working it.") var group: String?
    @Option(help: "The account.") var account: String?
    @Option(help: "Replace the tags (repeatable).") var tag: [String] = []
    @Flag(help: "Remove every tag.") var clearTags = false

    func run() async throws {
      try await runReportingErrors {
        var ticket = Crm_V1_Ticket()
        ticket.id = id
        ticket.etag = etag ?? ""
        var paths: [String] = []
        if let subject {
          ticket.subject = subject
          paths.append("subject")
        }
        if let priority {
          ticket.priority = try pick(priority, priorities, option: "--priority")
          paths.append("priority")
        }
        if let type {
          ticket.type = try pick(type, types, option: "--type")
          paths.append("type")
        }
        if let group {
          ticket.groupID = group
          paths.append("group_id")
        }
        if let account {
          ticket.accountID = account
          paths.append("account_id")
        }
        if !tag.isEmpty || clearTags {
          ticket.tags = tag
          paths.append("tags")
        }
        guard !paths.isEmpty else { throw ValidationError("name at least one field to change") }
        try printTicket(try await Tickets.update(client, ticket, paths: paths), json: client.json)
      }
    }
  }

  struct Reply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Reply publicly (as you, the agent), or record the customer's message with --customer.",
      discussion: "Example: crm tickets reply ID \"Replacements ship today.\" --status pending")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Argument(help: "The message.") var body: String
    @Flag(help: "The message is the customer's (their requester, or --contact).") var customer = false
    @Option(help: "The customer contact who wrote it (with --customer).") var contact: String?
    @Option(help: "Set this status with the reply (agents): open, pending, on_hold, solved.") var status: String?
    @Option(help: "The channel's message id (an email's Message-ID).") var messageID: String?

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_AddCommentRequest()
        request.ticketID = id
        request.body = body
        request.public = true
        request.authorKind = customer ? .customer : .agent
        request.authorContactID = contact ?? ""
        request.messageID = messageID ?? ""
        if let status { request.status = try pick(status, statuses, option: "--status") }
        try await Tickets.comment(client, request)
      }
    }
  }

  struct Note: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add an internal note (agents see it; the customer does not).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Argument(help: "The note.") var body: String

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_AddCommentRequest()
        request.ticketID = id
        request.body = body
        try await Tickets.comment(client, request)
      }
    }
  }

  struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Move a ticket to open, pending, on_hold, solved or closed (never back to new; closed is final).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Argument(help: "The new status.") var status: String
    @Option(help: "Send the etag you read to refuse a stale write.") var etag: String?

    func run() async throws {
      try await runReportingErrors {
        var ticket = Crm_V1_Ticket()
        ticket.id = id
        ticket.etag = etag ?? ""
        ticket.status = try pick(status, statuses, option: "status")
        try printTicket(try await Tickets.update(client, ticket, paths: ["status"]), json: client.json)
      }
    }
  }

  struct Assign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Assign a ticket to an agent and/or a group (empty id: nobody).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Option(help: "The agent's user id (\"\" to unassign).") var to: String?
    @Option(help: "The group's team id (\"\" for none).") var group: String?

    func run() async throws {
      try await runReportingErrors {
        var ticket = Crm_V1_Ticket()
        ticket.id = id
        var paths: [String] = []
        if let to {
          ticket.assigneeID = to
          paths.append("assignee_id")
        }
        if let group {
          ticket.groupID = group
          paths.append("group_id")
        }
        guard !paths.isEmpty else { throw ValidationError("give --to, --group or both") }
        try printTicket(try await Tickets.update(client, ticket, paths: paths), json: client.json)
      }
    }
  }

  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Merge tickets into one: the others close, their comments and mail threading move over.",
      discussion: "Example: crm tickets merge TARGET_ID SOURCE_ID [SOURCE_ID…]")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket that stays.") var target: String
    @Argument(help: "The tickets merged into it.") var sources: [String]

    func run() async throws {
      try await runReportingErrors {
        let merged = try await client.withClient { grpc, metadata in
          let targetID = try await Tickets.ticketID(target, grpc, metadata)
          var sourceIDs: [String] = []
          for source in sources { sourceIDs.append(try await Tickets.ticketID(source, grpc, metadata)) }
          return try await Crm_V1_TicketService.Client(wrapping: grpc).mergeTickets(
            .with {
              $0.targetID = targetID
              $0.sourceIds = sourceIDs
            }, metadata: metadata)
        }
        try printTicket(merged, json: client.json)
      }
    }
  }

  struct SLA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "sla",
      abstract: "Show a ticket's SLA clocks: targets, due times, states, elapsed and paused time, and their logs.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Flag(help: "Also every clock's log.") var log = false

    func run() async throws {
      try await runReportingErrors {
        let response = try await client.withClient { grpc, metadata in
          let ticketID = try await Tickets.ticketID(id, grpc, metadata)
          return try await Crm_V1_TicketService.Client(wrapping: grpc).getTicketSLA(
            .with { $0.ticketID = ticketID }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([response]) }
        Output.printTable(
          ["METRIC", "#", "STATE", "TARGET", "DUE", "ELAPSED", "PAUSED"],
          response.instances.map { instance in
            [
              Output.name(instance.metric), "\(instance.instance)",
              Output.name(instance.state) + (instance.warning ? " ⚠" : ""),
              "\(instance.target.minutes)m \(instance.target.businessHours ? "business" : "calendar")",
              Output.time(instance.dueTime), Tickets.span(Int(instance.elapsed.seconds)),
              Tickets.span(Int(instance.paused.seconds)),
            ]
          })
        guard log else { return }
        for instance in response.instances {
          print("\n\(Output.name(instance.metric)) #\(instance.instance)")
          for entry in instance.entries {
            print("  \(Output.time(entry.time))  \(Output.name(entry.kind))  \(entry.note)")
          }
        }
      }
    }
  }

  struct Due: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set a running SLA clock's due time by hand (it sticks until cleared), or clear it.",
      discussion: "Example: crm tickets due ID resolution 2027-03-01T17:00:00Z; crm tickets due ID resolution --clear")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The ticket id or number (#1042).") var id: String
    @Argument(help: "first_reply, next_reply or resolution.") var metric: String
    @Argument(help: "The due time, ISO 8601.") var time: String?
    @Flag(help: "Clear a due time set by hand.") var clear = false

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_SetTicketDueTimeRequest()
        request.ticketID = id
        request.metric = try pick(metric, metrics, option: "metric")
        if let time {
          guard let date = ISO8601DateFormatter().date(from: time) else {
            throw ValidationError("the time must be ISO 8601, e.g. 2027-03-01T17:00:00Z")
          }
          request.dueTime = .init(date: date)
        } else if !clear {
          throw ValidationError("give a time, or --clear")
        }
        let ticket = try await client.withClient { grpc, metadata in
          var request = request
          request.ticketID = try await Tickets.ticketID(request.ticketID, grpc, metadata)
          return try await Crm_V1_TicketService.Client(wrapping: grpc).setTicketDueTime(request, metadata: metadata)
        }
        try printTicket(ticket, json: client.json)
      }
    }
  }
}

/// `crm service …`
struct ServiceCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "service", abstract: "The service desk's numbers.", subcommands: [Report.self])

  struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "SLA achievement, response and resolution times, backlog and CSAT over a period (managers, admins).",
      discussion: "Example: crm service report --from 2026-11-01 --to 2026-12-01")
    @OptionGroup var client: ClientOptions
    @Option(help: "First day, YYYY-MM-DD (UTC; default: 30 days ago).") var from: String?
    @Option(help: "Day after the last, YYYY-MM-DD (UTC; default: tomorrow).") var to: String?

    func run() async throws {
      try await runReportingErrors {
        let formatter = ISO8601DateFormatter()
        func day(_ text: String?, default fallback: Date) throws -> Date {
          guard let text else { return fallback }
          guard let date = formatter.date(from: text + "T00:00:00Z") else { throw ValidationError("dates are YYYY-MM-DD") }
          return date
        }
        let end = try day(to, default: Date().addingTimeInterval(86_400))
        let start = try day(from, default: end.addingTimeInterval(-31 * 86_400))
        let report = try await client.withClient { grpc, metadata in
          try await Crm_V1_TicketService.Client(wrapping: grpc).getServiceReport(
            .with {
              $0.startTime = .init(date: start)
              $0.endTime = .init(date: end)
            }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([report]) }
        print("SLA achievement")
        Output.printTable(
          ["BY", "KEY", "METRIC", "MET", "BREACHED", "RATE"],
          report.achievement.map {
            [
              $0.dimension, String($0.key.prefix(36)), Output.name($0.metric), "\($0.achieved)", "\($0.breached)",
              String(format: "%.0f%%", $0.achievementRate * 100),
            ]
          })
        func minutes(_ d: Google_Protobuf_Duration) -> String { Tickets.span(Int(d.seconds)) }
        print("\nTIMES        COUNT  MEDIAN  P90     SLA MEDIAN  SLA P90")
        for (label, d) in [("first reply", report.firstResponse), ("resolution ", report.resolution)] {
          print(
            "\(label)  \(String(d.count).padding(toLength: 5, withPad: " ", startingAt: 0))  \(minutes(d.median).padding(toLength: 6, withPad: " ", startingAt: 0))  \(minutes(d.p90).padding(toLength: 6, withPad: " ", startingAt: 0))  \(minutes(d.slaMedian).padding(toLength: 10, withPad: " ", startingAt: 0))  \(minutes(d.slaP90))"
          )
        }
        print("\nBacklog")
        Output.printTable(["STATUS", "AGE", "TICKETS"], report.backlog.map { [Output.name($0.status), $0.age, "\($0.count)"] })
        print("\nCSAT")
        Output.printTable(
          ["BY", "KEY", "SURVEYS", "ANSWERED", "RATE", "AVERAGE"],
          report.satisfaction.map {
            [
              $0.dimension, $0.key, "\($0.surveys)", "\($0.answers)", String(format: "%.0f%%", $0.responseRate * 100),
              String(format: "%.2f", $0.averageRating),
            ]
          })
      }
    }
  }
}
