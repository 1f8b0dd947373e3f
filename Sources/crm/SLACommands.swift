import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm sla …`
struct SLACommands: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sla",
    abstract: "Business calendars, SLA policies and service settings (admins change them; everyone reads).",
    subcommands: [Calendars.self, Policies.self, Escalations.self, Settings.self, RunJobs.self])

  static let weekdays = ["mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7]

  /// `mon-fri=09:00-17:00`, `sat,sun=10:00-14:00`, `fri=22:00-06:00` (past midnight) as intervals.
  static func intervals(_ spec: String) throws -> [Crm_V1_BusinessInterval] {
    let usage = "--hours takes DAYS=HH:MM-HH:MM, e.g. mon-fri=09:00-17:00 or sat=22:00-06:00"
    let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { throw ValidationError(usage) }
    var days: [Int] = []
    for item in parts[0].lowercased().split(separator: ",") {
      let range = item.split(separator: "-").map(String.init)
      guard let first = range.first.flatMap({ weekdays[$0] }), let last = (range.count == 2 ? weekdays[range[1]] : first),
        range.count <= 2, first <= last
      else { throw ValidationError(usage) }
      days += Array(first...last)
    }
    let times = parts[1].split(separator: "-").map(String.init)
    func minute(_ text: String) throws -> Int {
      let hm = text.split(separator: ":").compactMap { Int($0) }
      guard hm.count == 2, (0...24).contains(hm[0]), (0..<60).contains(hm[1]) else { throw ValidationError(usage) }
      return hm[0] * 60 + hm[1]
    }
    guard times.count == 2 else { throw ValidationError(usage) }
    let start = try minute(times[0]) % 1440
    let end = try minute(times[1])
    let length = end > start ? end - start : end + 1440 - start
    return days.map { day in
      .with {
        $0.weekday = Int32(day)
        $0.startMinute = Int32(start)
        $0.minutes = Int32(length)
      }
    }
  }

  /// `2026-12-25` as a date.
  static func date(_ text: String) throws -> Crm_V1_Date {
    let parts = text.split(separator: "-").compactMap { Int32($0) }
    guard parts.count == 3 else { throw ValidationError("--holiday takes YYYY-MM-DD, e.g. 2026-12-25") }
    return .with {
      $0.year = parts[0]
      $0.month = parts[1]
      $0.day = parts[2]
    }
  }

  static func printCalendars(_ calendars: [Crm_V1_BusinessCalendar], json: Bool) throws {
    if json { return try Output.printJSON(calendars) }
    let names = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    Output.printTable(
      ["NAME", "ZONE", "HOURS", "HOLIDAYS", "ID"],
      calendars.map { calendar in
        let hours =
          calendar.intervals.isEmpty
          ? "24×7"
          : calendar.intervals.map { interval in
            let start = Int(interval.startMinute)
            let end = (start + Int(interval.minutes)) % 1440
            return String(
              format: "%@ %02d:%02d-%02d:%02d", names[Int(interval.weekday)], start / 60, start % 60, end / 60, end % 60)
          }.joined(separator: ", ")
        return [calendar.name, calendar.timeZone, hours, "\(calendar.holidays.count)", calendar.id]
      })
  }

  static func printPolicies(_ policies: [Crm_V1_SLAPolicy], json: Bool) throws {
    if json { return try Output.printJSON(policies) }
    Output.printTable(
      ["#", "NAME", "TARGETS", "CALENDAR", "ID"],
      policies.map { policy in
        let targets = policy.targets.map { row in
          let metrics = [("first", row.firstReply, row.hasFirstReply), ("next", row.nextReply, row.hasNextReply),
                         ("resolve", row.resolution, row.hasResolution)]
            .filter(\.2).map { "\($0.0) \($0.1.minutes)m\($0.1.businessHours ? "b" : "")" }
          return "\(Output.name(row.priority)): \(metrics.joined(separator: " "))"
        }.joined(separator: "; ")
        return ["\(policy.position + 1)", policy.name, targets, String(policy.calendarID.prefix(8)), policy.id]
      })
  }

  struct Calendars: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Working hours in a time zone, with holidays.", subcommands: [List.self, Create.self, Update.self, Delete.self])

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "The tenant's calendars.")
      @OptionGroup var client: ClientOptions
      @Flag(help: "Also archived ones.") var all = false

      func run() async throws {
        try await runReportingErrors {
          let calendars = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).listBusinessCalendars(
              .with { $0.includeArchived = all }, metadata: metadata
            ).calendars
          }
          try SLACommands.printCalendars(calendars, json: client.json)
        }
      }
    }

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Add a calendar.",
        discussion: "Example: crm sla calendars create --name Berlin --zone Europe/Berlin --hours mon-fri=09:00-17:00 --holiday 2026-12-25")
      @OptionGroup var client: ClientOptions
      @Option var name: String
      @Option(help: "An IANA time zone, e.g. Europe/Berlin.") var zone: String
      @Option(help: "Open hours, DAYS=HH:MM-HH:MM (repeatable; none: 24×7).") var hours: [String] = []
      @Option(help: "A closed day, YYYY-MM-DD (repeatable).") var holiday: [String] = []

      func run() async throws {
        try await runReportingErrors {
          var calendar = Crm_V1_BusinessCalendar()
          calendar.name = name
          calendar.timeZone = zone
          calendar.intervals = try hours.flatMap(SLACommands.intervals)
          calendar.holidays = try holiday.map(SLACommands.date)
          let created = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).createBusinessCalendar(.with { $0.calendar = calendar }, metadata: metadata)
          }
          try SLACommands.printCalendars([created], json: client.json)
        }
      }
    }

    struct Update: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Change a calendar; open SLA clocks counting by it are recomputed.",
        discussion: "Example (add a holiday): crm sla calendars update ID --add-holiday 2026-12-31")
      @OptionGroup var client: ClientOptions
      @Argument var id: String
      @Option var name: String?
      @Option(help: "A new IANA time zone.") var zone: String?
      @Option(help: "Replace the open hours, DAYS=HH:MM-HH:MM (repeatable).") var hours: [String] = []
      @Option(help: "Add a closed day (repeatable).") var addHoliday: [String] = []
      @Option(help: "Remove a closed day (repeatable).") var removeHoliday: [String] = []

      func run() async throws {
        try await runReportingErrors {
          let updated = try await client.withClient { grpc, metadata in
            let service = Crm_V1_SLAService.Client(wrapping: grpc)
            var calendar = try await service.getBusinessCalendar(.with { $0.id = id }, metadata: metadata)
            if let name { calendar.name = name }
            if let zone { calendar.timeZone = zone }
            if !hours.isEmpty { calendar.intervals = try hours.flatMap(SLACommands.intervals) }
            let removed = try removeHoliday.map(SLACommands.date)
            calendar.holidays = calendar.holidays.filter { !removed.contains($0) } + (try addHoliday.map(SLACommands.date))
            return try await service.updateBusinessCalendar(.with { $0.calendar = calendar }, metadata: metadata)
          }
          try SLACommands.printCalendars([updated], json: client.json)
        }
      }
    }

    struct Delete: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Archive a calendar no policy uses.")
      @OptionGroup var client: ClientOptions
      @Argument var id: String

      func run() async throws {
        try await runReportingErrors {
          let archived = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).deleteBusinessCalendar(.with { $0.id = id }, metadata: metadata)
          }
          try SLACommands.printCalendars([archived], json: client.json)
        }
      }
    }
  }

  struct Policies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "SLA policies: the first (in order) whose conditions match a ticket applies.",
      subcommands: [List.self, Create.self, Delete.self, Reorder.self])

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "The policies in the order they are tried.")
      @OptionGroup var client: ClientOptions
      @Flag(help: "Also archived ones.") var all = false

      func run() async throws {
        try await runReportingErrors {
          let policies = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).listSLAPolicies(.with { $0.includeArchived = all }, metadata: metadata)
              .policies
          }
          try SLACommands.printPolicies(policies, json: client.json)
        }
      }
    }

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Add a policy.",
        discussion: """
          Targets are PRIORITY.METRIC=MINUTES, with a trailing b for business hours; warnings likewise.
          Example: crm sla policies create --name Gold --calendar CAL_ID --account-tier strategic \\
            --target urgent.first_reply=30 --target urgent.resolution=240 \\
            --target normal.first_reply=60b --target normal.next_reply=120b --target normal.resolution=480b \\
            --warning normal.first_reply=15
          Or give the whole policy as JSON (the API's SLAPolicy): --file gold.json
          """)
      @OptionGroup var client: ClientOptions
      @Option var name: String?
      @Option(help: "The policy as JSON (crm.v1.SLAPolicy).") var file: String?
      @Option(help: "The calendar business-hours targets count by (default: the tenant's).") var calendar: String?
      @Option(help: "A target, PRIORITY.METRIC=MINUTES[b] (repeatable).") var target: [String] = []
      @Option(help: "A warning, PRIORITY.METRIC=MINUTES before the due time (repeatable).") var warning: [String] = []
      @Option(help: "Condition: a priority (repeatable).") var priority: [String] = []
      @Option(help: "Condition: a channel (repeatable).") var channel: [String] = []
      @Option(help: "Condition: a ticket type (repeatable).") var type: [String] = []
      @Option(help: "Condition: a group (repeatable).") var group: [String] = []
      @Option(help: "Condition: a ticket tag (repeatable).") var tag: [String] = []
      @Option(help: "Condition: the account's tier (repeatable).") var accountTier: [String] = []
      @Option(help: "Where in the order (1 = first; default last).") var position: Int32?

      func run() async throws {
        try await runReportingErrors {
          var policy = Crm_V1_SLAPolicy()
          if let file {
            policy = try Crm_V1_SLAPolicy(jsonString: String(contentsOfFile: file, encoding: .utf8))
          }
          if let name { policy.name = name }
          if let calendar { policy.calendarID = calendar }
          if let position { policy.position = max(0, position - 1) }
          policy.conditions.priorities += try priority.map { try Tickets.pick($0, Tickets.priorities, option: "--priority") }
          policy.conditions.channels += try channel.map { try Tickets.pick($0, Tickets.channels, option: "--channel") }
          policy.conditions.types += try type.map { try Tickets.pick($0, Tickets.types, option: "--type") }
          policy.conditions.groupIds += group
          policy.conditions.tags += tag
          policy.conditions.accountTiers += accountTier
          for (spec, isWarning) in target.map({ ($0, false) }) + warning.map({ ($0, true) }) {
            let usage = "\(isWarning ? "--warning" : "--target") takes PRIORITY.METRIC=MINUTES, e.g. normal.first_reply=60b"
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts.first?.split(separator: ".").map(String.init) ?? []
            guard parts.count == 2, key.count == 2 else { throw ValidationError(usage) }
            let priority = try Tickets.pick(key[0], Tickets.priorities, option: "priority")
            let metric = try Tickets.pick(key[1], Tickets.metrics, option: "metric")
            let business = parts[1].hasSuffix("b")
            guard let minutes = Int32(business ? String(parts[1].dropLast()) : parts[1]) else { throw ValidationError(usage) }
            var index = policy.targets.firstIndex { $0.priority == priority }
            if index == nil {
              policy.targets.append(.with { $0.priority = priority })
              index = policy.targets.count - 1
            }
            func apply(_ target: inout Crm_V1_SLATarget) {
              if isWarning {
                target.warningMinutes = minutes
              } else {
                target.minutes = minutes
                target.businessHours = business
              }
            }
            switch metric {
            case .firstReply: apply(&policy.targets[index!].firstReply)
            case .nextReply: apply(&policy.targets[index!].nextReply)
            default: apply(&policy.targets[index!].resolution)
            }
          }
          let created = try await client.withClient { [policy] grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).createSLAPolicy(.with { $0.policy = policy }, metadata: metadata)
          }
          try SLACommands.printPolicies([created], json: client.json)
        }
      }
    }

    struct Delete: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Archive a policy: it stops applying.")
      @OptionGroup var client: ClientOptions
      @Argument var id: String

      func run() async throws {
        try await runReportingErrors {
          let archived = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).deleteSLAPolicy(.with { $0.id = id }, metadata: metadata)
          }
          try SLACommands.printPolicies([archived], json: client.json)
        }
      }
    }

    struct Reorder: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Set the order: every live policy id, first tried first.")
      @OptionGroup var client: ClientOptions
      @Argument var ids: [String]

      func run() async throws {
        try await runReportingErrors {
          let ordered = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).reorderSLAPolicies(.with { $0.policyIds = ids }, metadata: metadata)
              .policies
          }
          try SLACommands.printPolicies(ordered, json: client.json)
        }
      }
    }
  }

  struct Escalations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Escalation rules: on an SLA warning, a breach level or a ticket's age in a status, act once.",
      subcommands: [List.self, Create.self, Delete.self])

    static func print(_ rules: [Crm_V1_EscalationRule], json: Bool) throws {
      if json { return try Output.printJSON(rules) }
      Output.printTable(
        ["#", "NAME", "TRIGGER", "ACTIONS", "ID"],
        rules.map { rule in
          let trigger: String =
            switch rule.trigger {
            case .warning(let w): "\(Output.name(w.metric)) warning"
            case .breach(let b): "\(Output.name(b.metric)) breach L\(b.level) +\(b.afterMinutes)m"
            case .age(let a): "\(Output.name(a.status)) for \(a.minutes)m"
            case nil: ""
            }
          var actions: [String] = []
          if !rule.actions.assigneeID.isEmpty { actions.append("assign \(rule.actions.assigneeID.prefix(8))") }
          if !rule.actions.groupID.isEmpty { actions.append("group \(rule.actions.groupID.prefix(8))") }
          if rule.actions.raisePriorityTo != .unspecified { actions.append("priority ≥ \(Output.name(rule.actions.raisePriorityTo))") }
          if !rule.actions.addTag.isEmpty { actions.append("tag \(rule.actions.addTag)") }
          if rule.actions.taskForManager { actions.append("task manager") }
          return ["\(rule.position + 1)", rule.name + (rule.disabled ? " (off)" : ""), trigger, actions.joined(separator: ", "), rule.id]
        })
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "The rules in the order they are tried.")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let rules = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).listEscalationRules(.init(), metadata: metadata).rules
          }
          try Escalations.print(rules, json: client.json)
        }
      }
    }

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Add a rule.",
        discussion: """
          Examples:
            crm sla escalations create --name "Breach: to tier 2" --breach resolution --level 2 --after 240 --assign USER_ID --group TEAM_ID
            crm sla escalations create --name "At risk" --warning first_reply --tag at-risk --priority high
            crm sla escalations create --name "Pending 2 days" --age pending --minutes 2880 --task-manager
          """)
      @OptionGroup var client: ClientOptions
      @Option var name: String
      @Option(help: "Trigger on this metric's warning.") var warning: String?
      @Option(help: "Trigger on this metric's breach.") var breach: String?
      @Option(help: "Breach level 1-4.") var level: Int32 = 1
      @Option(help: "Minutes after the breach.") var after: Int32 = 0
      @Option(help: "Trigger on a ticket's age in this status.") var age: String?
      @Option(help: "Minutes in the status (with --age).") var minutes: Int32 = 0
      @Option(help: "Only tickets with this tag (repeatable).") var ifTag: [String] = []
      @Option(help: "Only tickets of this priority (repeatable).") var ifPriority: [String] = []
      @Option(help: "Reassign to this user.") var assign: String?
      @Option(help: "Move to this group (team).") var group: String?
      @Option(help: "Raise the priority to this.") var priority: String?
      @Option(help: "Add this tag.") var tag: String?
      @Flag(help: "Task the assignee's manager.") var taskManager = false

      func run() async throws {
        try await runReportingErrors {
          var rule = Crm_V1_EscalationRule()
          rule.name = name
          if let warning {
            let metric = try Tickets.pick(warning, Tickets.metrics, option: "--warning")
            rule.warning = .with { $0.metric = metric }
          }
          if let breach {
            let metric = try Tickets.pick(breach, Tickets.metrics, option: "--breach")
            rule.breach = .with {
              $0.metric = metric
              $0.level = level
              $0.afterMinutes = after
            }
          }
          if let age {
            let status = try Tickets.pick(age, Tickets.statuses, option: "--age")
            rule.age = .with {
              $0.status = status
              $0.minutes = minutes
            }
          }
          rule.conditions.tags = ifTag
          rule.conditions.priorities = try ifPriority.map { try Tickets.pick($0, Tickets.priorities, option: "--if-priority") }
          rule.actions.assigneeID = assign ?? ""
          rule.actions.groupID = group ?? ""
          if let priority { rule.actions.raisePriorityTo = try Tickets.pick(priority, Tickets.priorities, option: "--priority") }
          rule.actions.addTag = tag ?? ""
          rule.actions.taskForManager = taskManager
          let created = try await client.withClient { [rule] grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).createEscalationRule(.with { $0.rule = rule }, metadata: metadata)
          }
          try Escalations.print([created], json: client.json)
        }
      }
    }

    struct Delete: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Archive a rule: it stops firing.")
      @OptionGroup var client: ClientOptions
      @Argument var id: String

      func run() async throws {
        try await runReportingErrors {
          _ = try await client.withClient { grpc, metadata in
            try await Crm_V1_SLAService.Client(wrapping: grpc).deleteEscalationRule(.with { $0.id = id }, metadata: metadata)
          }
        }
      }
    }
  }

  struct RunJobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "run-jobs",
      abstract: "Fire due SLA warnings and breaches, escalations and auto-closes for your tenant now (admins).")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let result = try await client.withClient { grpc, metadata in
          try await Crm_V1_SLAService.Client(wrapping: grpc).runSLAJob(.init(), metadata: metadata)
        }
        if client.json { return try Output.printJSON([result]) }
        print("warned \(result.warned), breached \(result.breached), escalations \(result.escalations), closed \(result.closed)")
      }
    }
  }

  struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the service settings, or change the ones given.",
      discussion: "Example: crm sla settings --auto-close-days 7 --default-calendar CAL_ID --resolution-paused-in pending")
    @OptionGroup var client: ClientOptions
    @Option(help: "Days after which solved tickets close (1-365).") var autoCloseDays: Int32?
    @Option(help: "The calendar targets use when their policy names none (\"\" for 24×7).") var defaultCalendar: String?
    @Option(help: "What an unknown email sender becomes: contact or lead.") var unknownSender: String?
    @Option(help: "Statuses that pause next reply (repeatable; \"none\" for none).") var nextReplyPausedIn: [String] = []
    @Option(help: "Statuses that pause resolution (repeatable; \"none\" for none).") var resolutionPausedIn: [String] = []

    func run() async throws {
      try await runReportingErrors {
        let settings = try await client.withClient { grpc, metadata in
          let service = Crm_V1_SLAService.Client(wrapping: grpc)
          var settings = try await service.getServiceSettings(.init(), metadata: metadata)
          let changing =
            autoCloseDays != nil || defaultCalendar != nil || unknownSender != nil || !nextReplyPausedIn.isEmpty
            || !resolutionPausedIn.isEmpty
          guard changing else { return settings }
          if let autoCloseDays { settings.autoCloseDays = autoCloseDays }
          if let defaultCalendar { settings.defaultCalendarID = defaultCalendar }
          if let unknownSender {
            settings.unknownSender = try Tickets.pick(unknownSender, ["contact": .contact, "lead": .lead], option: "--unknown-sender")
          }
          func statuses(_ names: [String]) throws -> [Crm_V1_TicketStatus] {
            try names.filter { $0 != "none" }.map { try Tickets.pick($0, Tickets.statuses, option: "status") }
          }
          if !nextReplyPausedIn.isEmpty { settings.nextReplyPausedIn = try statuses(nextReplyPausedIn) }
          if !resolutionPausedIn.isEmpty { settings.resolutionPausedIn = try statuses(resolutionPausedIn) }
          return try await service.updateServiceSettings(.with { $0.settings = settings }, metadata: metadata)
        }
        if client.json { return try Output.printJSON([settings]) }
        Output.printRecord([
          ("auto-close days", "\(settings.autoCloseDays)"),
          ("default calendar", settings.defaultCalendarID.isEmpty ? "24×7 UTC" : settings.defaultCalendarID),
          ("unknown sender becomes", Output.name(settings.unknownSender)),
          ("next reply paused in", settings.nextReplyPausedIn.map { Output.name($0) }.joined(separator: ", ")),
          ("resolution paused in", settings.resolutionPausedIn.map { Output.name($0) }.joined(separator: ", ")),
          ("etag", settings.etag),
        ])
      }
    }
  }
}
