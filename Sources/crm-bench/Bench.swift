import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram
import SwiftProtobuf
import Synchronization

/// crm-bench: drives real gRPC load at crmd and reports throughput and latency percentiles.
@main
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crm-bench",
    abstract: "Load-test crmd over gRPC and report RPS and p50/p90/p99 latency from an HDR histogram.",
    discussion: """
      Scenarios:
        get      GetAccount of random ids, sampled from the first --sample accounts that ListAccounts returns
        create   CreateAccount with generated names
        create-lead  CreateLead of a new person (source, industry, size and region vary; duplicates allowed)
        health   grpc.health.v1.Health/Check: no token, one `SELECT 1`; the floor of the gRPC stack plus a pool hop
        capture  CaptureLead of a web form from a new person each call
        find-duplicates  FindDuplicates of --candidates
        convert  ConvertLead into a new account, contact and deal (the lead is created first, untimed)
        move-stage  MoveOpportunityStage back and forth between two open stages, one deal per worker
        create-duplicate  CreateLead whose phone is one of --phone-pool seeded numbers (+14155 and six digits,
                 `k` for k in 0..<pool), so the duplicate check finds existing leads on every call
        forecast GetForecast of the caller for --period (default the current one) in USD
        search   Search for a query drawn at random from --queries FILE
        claim    --concurrency reps (made for the run) claim from a pool of --pool-records leads at random;
                 reports successful claims per second, conflicts, and double claims (must be 0)
        feed-lag follows StreamChanges from the feed's end for --duration seconds (or until --idle-seconds
                 pass without an event after the first) and reports events per second and each event's lag
                 (arrival here minus its commit time in PostgreSQL)
      Each of --concurrency workers keeps one call in flight on a shared HTTP/2 connection pool; with
      --rate, the workers together start that many calls a second instead (open loop: a call's latency
      counts from when it was due, so a stalled server shows as latency, not as fewer calls).

      Example:
        crm-bench --scenario get --concurrency 16 --duration 20 --warmup 3
      """)

  @Option(help: "Server address host:port (env: CRM_ADDRESS; default: 127.0.0.1:50051).") var address: String?
  @Option(help: "Bearer token (env: CRM_TOKEN).") var token: String?
  @Option(
    help:
      "get, create, health, capture, find-duplicates, convert, move-stage, claim, create-duplicate, financials, receivables, … (see above)."
  )
  var scenario: String = "get"
  @Option(help: "For find-duplicates: a CSV of candidates (first name, last name, email, company).")
  var candidates: String?
  @Option(help: "Calls in flight.") var concurrency: Int = 16
  @Option(help: "Measured seconds.") var duration: Double = 10
  @Option(help: "Unmeasured seconds first.") var warmup: Double = 2
  @Option(help: "For feed-lag: stop once this many seconds pass without an event after the first; 0: follow for --duration.")
  var idleSeconds: Double = 0
  @Option(help: "How many account ids to sample for the get scenario.") var sample: Int = 10_000
  @Option(
    help:
      "For financials: the account whose hierarchy's panel is read; for customer360, the one account read (default: a sample).")
  var account: String?
  @Option(help: "HTTP/2 connections to spread the workers over.") var connections: Int = 2
  @Option(help: "For claim: leads in the pool.") var poolRecords: Int = 10_000
  @Option(help: "For create-duplicate: how many seeded phone numbers to draw from.") var phonePool: Int = 0
  @Option(help: "Calls a second across all workers (open loop); 0: as fast as each worker can (closed loop).")
  var rate: Double = 0
  @Option(help: "For forecast: the period read (default the current one).") var period: String = ""
  @Option(help: "For search: a file of queries, one per line, drawn at random.") var queries: String?
  @Flag(help: "Print one JSON object instead of text.") var json = false

  func run() async throws {
    let address = address ?? ProcessInfo.processInfo.environment["CRM_ADDRESS"] ?? "127.0.0.1:50051"
    guard let secret = token ?? ProcessInfo.processInfo.environment["CRM_TOKEN"] else {
      throw ValidationError("set CRM_TOKEN or pass --token")
    }
    guard Self.scenarios.contains(scenario) else {
      throw ValidationError("--scenario must be one of \(Self.scenarios.joined(separator: ", "))")
    }
    if scenario == "create-duplicate", !(1...1_000_000).contains(phonePool) {
      throw ValidationError("create-duplicate needs --phone-pool 1–1000000 (the seeded numbers)")
    }
    if scenario == "financials", account == nil { throw ValidationError("financials needs --account ACCOUNT_ID") }
    var searches: [String] = []
    if scenario == "search" {
      guard let queries, let text = try? String(contentsOfFile: queries, encoding: .utf8) else {
        throw ValidationError("search needs --queries FILE")
      }
      searches = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
      if searches.isEmpty { throw ValidationError("no queries in \(queries)") }
    }
    var people: [[String]] = []
    if scenario == "find-duplicates" {
      guard let candidates, let text = try? String(contentsOfFile: candidates, encoding: .utf8) else {
        throw ValidationError("find-duplicates needs --candidates FILE")
      }
      people = text.split(whereSeparator: \.isNewline).map {
        $0.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
      }
      .filter { $0.count >= 4 }
      if people.isEmpty { throw ValidationError("no candidates in \(candidates)") }
    }
    guard concurrency > 0, connections > 0, duration > 0 else {
      throw ValidationError("--concurrency, --connections and --duration must be positive")
    }
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
      throw ValidationError("--address must be host:port")
    }
    let host = String(address[..<colon])
    let metadata: Metadata = ["authorization": "Bearer \(secret)"]
    let transports = try (0..<connections).map { _ in
      try HTTP2ClientTransport.Posix(target: .dns(host: host, port: port), transportSecurity: .plaintext)
    }
    let clients = transports.map { GRPCClient(transport: $0) }
    if scenario == "feed-lag" {
      let report = try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await clients[0].runConnections() }
        defer { for client in clients { client.beginGracefulShutdown() } }
        return try await FeedLag.follow(
          client: clients[0], metadata: metadata, duration: .milliseconds(Int(duration * 1000)),
          idle: idleSeconds > 0 ? .milliseconds(Int(idleSeconds * 1000)) : nil)
      }
      print(report.report(json: json))
      return
    }
    let result = try await withThrowingTaskGroup(of: Void.self) { group in
      for client in clients { group.addTask { try await client.runConnections() } }
      defer { for client in clients { client.beginGracefulShutdown() } }
      let ids =
        scenario == "get" || scenario == "customer360" && account == nil
        ? try await sampleIDs(client: clients[0], metadata: metadata)
        : scenario == "financials" || scenario == "customer360" ? [account ?? ""] : scenario == "search" ? searches : []
      if scenario == "get", ids.isEmpty { throw ValidationError("no accounts to get: seed some first") }
      let setup = try await Setup.make(
        scenario: scenario, client: clients[0], metadata: metadata, workers: concurrency, poolRecords: poolRecords)
      let load = Load(
        scenario: scenario, clients: clients, metadata: metadata, ids: ids, people: people, setup: setup,
        phonePool: phonePool, period: period, concurrency: concurrency, rate: rate, warmup: .milliseconds(Int(warmup * 1000)),
        duration: .milliseconds(Int(duration * 1000)))
      var outcome = try await load.run()
      if scenario == "claim" {
        outcome.extra = try await setup.claimCheck(client: clients[0], metadata: metadata, outcome: outcome)
      }
      return outcome
    }
    print(result.report(json: json, scenario: scenario, concurrency: concurrency))
  }

  static let scenarios = [
    "get", "create", "health", "capture", "find-duplicates", "convert", "move-stage", "claim", "create-duplicate",
    "create-ticket", "add-comment", "list-tickets", "feed-lag", "create-lead", "financials", "receivables", "customer360",
    "forecast", "search",
  ]

  func sampleIDs(client: GRPCClient<HTTP2ClientTransport.Posix>, metadata: Metadata) async throws -> [String] {
    let service = Crm_V1_AccountService.Client(wrapping: client)
    var ids: [String] = []
    var token = ""
    repeat {
      let page = try await service.listAccounts(
        .with {
          $0.pageSize = 1000; $0.pageToken = token
        }, metadata: metadata)
      ids += page.accounts.map(\.id)
      token = page.nextPageToken
    } while !token.isEmpty && ids.count < sample
    return ids
  }
}

/// One measured run: workers that each keep one call in flight, recording into their own histogram.
struct Load: Sendable {
  let scenario: String
  let clients: [GRPCClient<HTTP2ClientTransport.Posix>]
  let metadata: Metadata
  let ids: [String]
  /// Candidates for find-duplicates: first name, last name, email, company.
  let people: [[String]]
  /// What the operate scenarios made before the run.
  let setup: Setup
  /// For create-duplicate: how many seeded phone numbers there are.
  let phonePool: Int
  /// For forecast: the period read.
  let period: String
  let concurrency: Int
  /// Calls a second across all workers; 0 for closed loop.
  let rate: Double
  let warmup: Duration
  let duration: Duration

  struct Outcome: Sendable {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var errors = 0
    var elapsed: Duration = .zero
    /// Claim: calls that lost to another rep, and the ids each worker won.
    var conflicts = 0
    var won: [String] = []
    /// Extra JSON members for the report.
    var extra = ""
  }

  func run() async throws -> Outcome {
    let start = ContinuousClock.now
    let measureFrom = start + warmup
    let stopAt = measureFrom + duration
    var total = Outcome()
    try await withThrowingTaskGroup(of: Outcome.self) { group in
      for worker in 0..<concurrency {
        let client = clients[worker % clients.count]
        group.addTask {
          try await work(worker: worker, client: client, start: start, measureFrom: measureFrom, stopAt: stopAt)
        }
      }
      for try await outcome in group {
        total.histogram.add(outcome.histogram)
        total.errors += outcome.errors
        total.conflicts += outcome.conflicts
        total.won += outcome.won
      }
    }
    total.elapsed = duration
    return total
  }

  func work(
    worker: Int, client: GRPCClient<HTTP2ClientTransport.Posix>, start: ContinuousClock.Instant,
    measureFrom: ContinuousClock.Instant, stopAt: ContinuousClock.Instant
  ) async throws -> Outcome {
    let accounts = Crm_V1_AccountService.Client(wrapping: client)
    let health = Grpc_Health_V1_Health.Client(wrapping: client)
    let capture = Crm_V1_CaptureService.Client(wrapping: client)
    let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
    let leads = Crm_V1_LeadService.Client(wrapping: client)
    let deals = Crm_V1_OpportunityService.Client(wrapping: client)
    let pools = Crm_V1_PoolService.Client(wrapping: client)
    let tickets = Crm_V1_TicketService.Client(wrapping: client)
    let billing = Crm_V1_BillingService.Client(wrapping: client)
    let insight = Crm_V1_InsightService.Client(wrapping: client)
    let forecasts = Crm_V1_ForecastService.Client(wrapping: client)
    var outcome = Outcome()
    var generator = SystemRandomNumberGenerator()
    var sequence = 0
    var reported = false
    var moves = 0
    var calls = 0
    while true {
      var began = ContinuousClock.now
      if rate > 0 {
        // This worker's next slot in the shared schedule; latency counts from it.
        let due = start + .nanoseconds(Int64(Double(calls * concurrency + worker) / rate * 1e9))
        calls += 1
        if due > began { try await Task.sleep(until: due, clock: .continuous) }
        began = due
      }
      if began >= stopAt { return outcome }
      var failed = false
      do {
        if scenario == "convert" {
          sequence += 1
          let id = "\(worker)-\(sequence)-\(UInt32.random(in: 0...UInt32.max, using: &generator))"
          let lead = try await leads.createLead(
            .with {
              $0.lead = .with {
                $0.firstName = "Bench"
                $0.lastName = "Convert \(id)"
                $0.company = "Convert Co \(id)"
                $0.emails = [.with { $0.address = "convert-\(id)@bench.example" }]
              }
              $0.duplicateAction = .allow
            }, metadata: metadata)
          began = ContinuousClock.now
          _ = try await leads.convertLead(
            .with {
              $0.leadID = lead.id
              $0.opportunity = .with {
                $0.amount = .with {
                  $0.currencyCode = "USD"
                  $0.units = 25_000
                }
              }
            }, metadata: metadata)
        } else if scenario == "create-ticket" {
          sequence += 1
          _ = try await tickets.createTicket(
            .with {
              $0.ticket = .with {
                $0.subject = "Bench ticket \(worker)-\(sequence)"
                $0.description_p = "The printer on floor \(sequence % 9) is jammed again."
                $0.requesterContactID = setup.contacts[worker]
                $0.channel = .email
              }
            }, metadata: metadata)
        } else if scenario == "add-comment" {
          // Alternating the customer's message and the agent's reply keeps the next-reply clock busy.
          sequence += 1
          // A pair of messages per ticket, then the next of this worker's tickets: conversations stay
          // the length real ones have.
          let perWorker = setup.tickets.count / max(1, setup.contacts.count)
          let ticket = setup.tickets[worker * perWorker + (sequence / 2) % perWorker]
          _ = try await tickets.addComment(
            .with {
              $0.ticketID = ticket
              $0.authorKind = sequence % 2 == 0 ? .agent : .customer
              $0.public = true
              $0.body = "Message \(sequence) on this ticket."
            }, metadata: metadata)
        } else if scenario == "list-tickets" {
          _ = try await tickets.listTickets(
            .with {
              $0.orderBy = .nextBreach
              $0.statuses = [.new, .open, .pending, .onHold]
              $0.pageSize = 50
            }, metadata: metadata)
        } else if scenario == "financials" {
          _ = try await billing.getAccountFinancials(
            .with {
              $0.accountID = ids[0]
              $0.includeChildren = true
            }, metadata: metadata)
        } else if scenario == "customer360" {
          _ = try await insight.getCustomer360(
            .with { $0.accountID = ids[Int.random(in: 0..<ids.count, using: &generator)] }, metadata: metadata)
        } else if scenario == "search" {
          _ = try await Crm_V1_SearchService.Client(wrapping: client).search(
            .with { $0.query = ids[Int.random(in: 0..<ids.count, using: &generator)] }, metadata: metadata)
        } else if scenario == "forecast" {
          _ = try await forecasts.getForecast(
            .with {
              $0.period = period
              $0.currencyCode = "USD"
            }, metadata: metadata)
        } else if scenario == "receivables" {
          _ = try await billing.listReceivables(.with { $0.pageSize = 50 }, metadata: metadata)
        } else if scenario == "move-stage" {
          moves += 1
          _ = try await deals.moveOpportunityStage(
            .with {
              $0.id = setup.deals[worker]
              $0.stageID = setup.stages[moves % 2]
            }, metadata: metadata)
        } else if scenario == "claim" {
          let id = setup.poolLeads[Int.random(in: 0..<setup.poolLeads.count, using: &generator)]
          do {
            _ = try await pools.claim(
              .with {
                $0.record = .with {
                  $0.recordType = .lead
                  $0.recordID = id
                }
              }, metadata: setup.reps[worker])
            outcome.won.append(id)
          } catch let error as RPCError where error.code == .failedPrecondition {
            // Someone else was first: the expected answer, not a failure; not timed as a claim.
            if began >= measureFrom, ContinuousClock.now <= stopAt { outcome.conflicts += 1 }
            continue
          }
        } else if scenario == "health" {
          _ = try await health.check(.init())
        } else if scenario == "get" {
          _ = try await accounts.getAccount(
            .with { $0.id = ids[Int.random(in: 0..<ids.count, using: &generator)] }, metadata: metadata)
        } else if scenario == "capture" {
          sequence += 1
          let id = "\(worker)-\(sequence)-\(UInt32.random(in: 0...UInt32.max, using: &generator))"
          _ = try await capture.captureLead(
            .with {
              $0.webForm = .with {
                $0.fields = [
                  "email": "visitor-\(id)@capture.example", "name": "Visitor \(id)", "company": "Company \(id)",
                  "message": "Please call me back about pricing",
                ]
                $0.formName = "Contact us"
              }
            }, metadata: metadata)
        } else if scenario == "create-duplicate" {
          sequence += 1
          let seeded = Int.random(in: 0..<phonePool, using: &generator)
          let digits = String(seeded)
          _ = try await leads.createLead(
            .with {
              $0.lead = .with {
                $0.firstName = "Bench"
                $0.lastName = "Duplicate \(worker)-\(sequence)"
                $0.phones = [.with { $0.number = "+14155" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits }]
              }
              // The tenant's rule (warn by default): the lead is written and the matches come back.
            }, metadata: metadata)
        } else if scenario == "create-lead" {
          sequence += 1
          let id = "\(worker)-\(sequence)-\(UInt32.random(in: 0...UInt32.max, using: &generator))"
          _ = try await leads.createLead(
            .with {
              $0.lead = .with {
                $0.firstName = "Bench"
                $0.lastName = "Lead \(id)"
                $0.company = "Company \(id)"
                $0.emails = [.with { $0.address = "lead-\(id)@bench.example" }]
                $0.source = sequence % 2 == 0 ? .webForm : .phone
                $0.industry = ["Software", "Retail", "Machinery", "Finance"][sequence % 4]
                $0.companySize = Int32(sequence % 1000)
                $0.regionCode = sequence % 3 == 0 ? "US" : "DE"
              }
              $0.duplicateAction = .allow
            }, metadata: metadata)
        } else if scenario == "find-duplicates" {
          let person = people[Int.random(in: 0..<people.count, using: &generator)]
          _ = try await duplicates.findDuplicates(
            .with {
              $0.candidate = .with {
                $0.firstName = person[0]
                $0.lastName = person[1]
                $0.emails = [person[2]]
                $0.company = person[3]
              }
              $0.recordTypes = [.lead]
            }, metadata: metadata)
        } else {
          sequence += 1
          _ = try await accounts.createAccount(
            .with {
              $0.account = .with {
                $0.name = "Bench \(worker)-\(sequence)-\(UInt32.random(in: 0...UInt32.max, using: &generator))"
              }
            }, metadata: metadata)
        }
      } catch {
        failed = true
        // Say why once, so a run that only fails does not pass for a slow one.
        if worker == 0, !reported {
          reported = true
          FileHandle.standardError.write(Data("crm-bench: first error of worker 0: \(error)\n".utf8))
        }
      }
      let ended = ContinuousClock.now
      guard began >= measureFrom, ended <= stopAt else { continue }
      if failed {
        outcome.errors += 1
      } else {
        let micros = (ended - began).components
        _ = outcome.histogram.record(UInt64(micros.seconds) * 1_000_000 + UInt64(micros.attoseconds / 1_000_000_000_000))
      }
    }
  }
}

extension Load.Outcome {
  func report(json: Bool, scenario: String, concurrency: Int) -> String {
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rps = Double(histogram.totalCount) / seconds
    func ms(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
    if json {
      return String(
        format:
          #"{"scenario":"%@","concurrency":%d,"calls":%llu,"errors":%d,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f%@}"#,
        scenario, concurrency, histogram.totalCount, errors, rps, ms(50), ms(90), ms(99), Double(histogram.max) / 1000, extra)
    }
    return String(
      format: "%@ c=%d: %llu calls, %d errors, %.1f RPS, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms%@",
      scenario, concurrency, histogram.totalCount, errors, rps, ms(50), ms(90), ms(99), Double(histogram.max) / 1000, extra)
  }
}

/// What the operate scenarios make before the measured run, as the admin the token names.
struct Setup: Sendable {
  /// move-stage: one deal per worker, and the two open stages it moves between.
  var deals: [String] = []
  var stages: [String] = []
  /// claim: one rep's metadata per worker, the pool and its leads.
  var reps: [Metadata] = []
  var poolID = ""
  var poolLeads: [String] = []
  /// How many tickets each add-comment worker spreads its messages over.
  static let ticketsPerWorker = 200
  /// create-ticket: one requester contact per worker; add-comment: ``ticketsPerWorker`` tickets per worker.
  var contacts: [String] = []
  var tickets: [String] = []

  static func make(
    scenario: String, client: GRPCClient<HTTP2ClientTransport.Posix>, metadata: Metadata, workers: Int, poolRecords: Int
  ) async throws -> Setup {
    var setup = Setup()
    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    switch scenario {
    case "create-ticket", "add-comment":
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      for worker in 0..<workers {
        let contact = try await contacts.createContact(
          .with {
            $0.contact = .with {
              $0.lastName = "Requester \(run) \(worker)"
              $0.emails = [.with { $0.address = "requester-\(run)-\(worker)@bench.example" }]
            }
            $0.duplicateAction = .allow
          }, metadata: metadata)
        setup.contacts.append(contact.id)
        for index in 0..<(scenario == "add-comment" ? Self.ticketsPerWorker : 0) {
          setup.tickets.append(
            try await Crm_V1_TicketService.Client(wrapping: client).createTicket(
              .with {
                $0.ticket = .with {
                  $0.subject = "Comment bench \(run) \(worker) \(index)"
                  $0.requesterContactID = contact.id
                }
              }, metadata: metadata
            ).id)
        }
      }
    case "move-stage":
      let pipeline = try await Crm_V1_OpportunityService.Client(wrapping: client).listPipelines(.init(), metadata: metadata)
        .pipelines.first { $0.isDefault }
      guard let pipeline, pipeline.stages.count > 2 else { throw ValidationError("no default pipeline with two open stages") }
      let open = pipeline.stages.filter { $0.category == .open && $0.requiredFields.isEmpty }
      guard open.count >= 2 else { throw ValidationError("the default pipeline needs two open stages without required fields") }
      setup.stages = [open[0].id, open[1].id]
      let account = try await Crm_V1_AccountService.Client(wrapping: client).createAccount(
        .with { $0.account = .with { $0.name = "Move bench \(run)" } }, metadata: metadata)
      for worker in 0..<workers {
        setup.deals.append(
          try await Crm_V1_OpportunityService.Client(wrapping: client).createOpportunity(
            .with {
              $0.opportunity = .with {
                $0.name = "Move bench \(run) \(worker)"
                $0.accountID = account.id
              }
            }, metadata: metadata
          ).id)
      }
    case "claim":
      let admin = Crm_V1_AdminService.Client(wrapping: client)
      var members: [String] = []
      for worker in 0..<workers {
        let user = try await admin.createUser(
          .with {
            $0.email = "claim-\(run)-\(worker)@bench.example"
            $0.displayName = "Claimer \(worker)"
            $0.role = .salesRep
          }, metadata: metadata)
        let token = try await admin.createToken(
          .with {
            $0.userID = user.id
            $0.name = "crm-bench"
          }, metadata: metadata)
        members.append(user.id)
        setup.reps.append(["authorization": "Bearer \(token.secret)"])
      }
      let pools = Crm_V1_PoolService.Client(wrapping: client)
      let pool = try await pools.createPool(
        .with {
          $0.pool = .with {
            $0.name = "Claim bench \(run)"
            $0.recordType = .lead
          }
        }, metadata: metadata)
      _ = try await pools.setPoolMembers(
        .with {
          $0.poolID = pool.id
          $0.members = members.map { id in .with { $0.userID = id } }
        }, metadata: metadata)
      setup.poolID = pool.id
      // Create the leads with the workers' concurrency, then move them into the pool 1,000 at a time.
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      setup.poolLeads = try await withThrowingTaskGroup(of: [String].self) { group in
        for worker in 0..<workers {
          group.addTask {
            var ids: [String] = []
            for index in stride(from: worker, to: poolRecords, by: workers) {
              ids.append(
                try await leads.createLead(
                  .with {
                    $0.lead = .with { $0.company = "Pooled \(run) \(index)" }
                    $0.duplicateAction = .allow
                  }, metadata: metadata
                ).id)
            }
            return ids
          }
        }
        return try await group.reduce(into: []) { $0 += $1 }
      }
      let assignment = Crm_V1_AssignmentService.Client(wrapping: client)
      for chunk in stride(from: 0, to: setup.poolLeads.count, by: 1000) {
        _ = try await assignment.reassignRecords(
          .with {
            $0.recordType = .lead
            $0.ids = Array(setup.poolLeads[chunk..<min(chunk + 1000, setup.poolLeads.count)])
            $0.toPoolID = pool.id
            $0.reason = "bench"
          }, metadata: metadata)
      }
    default:
      break
    }
    return setup
  }

  /// After a claim run: double claims (a lead two workers both won; must be 0) and the pool's count,
  /// which must be the seeded leads less every claim.
  func claimCheck(
    client: GRPCClient<HTTP2ClientTransport.Posix>, metadata: Metadata, outcome: Load.Outcome
  ) async throws -> String {
    let doubles = outcome.won.count - Set(outcome.won).count
    var left = 0
    var token = ""
    repeat {
      let page = try await Crm_V1_PoolService.Client(wrapping: client).listPoolRecords(
        .with {
          $0.poolID = poolID
          $0.pageSize = 1000
          $0.pageToken = token
        }, metadata: metadata)
      left += page.records.count
      token = page.nextPageToken
    } while !token.isEmpty
    let consistent = left == poolLeads.count - Set(outcome.won).count
    return
      #","conflicts":\#(outcome.conflicts),"claimed_total":\#(Set(outcome.won).count),"double_claims":\#(doubles),"pool_left":\#(left),"consistent":\#(consistent)"#
  }
}

/// The feed-lag scenario: how far behind commit the change feed reaches a streaming consumer.
enum FeedLag {
  /// When the last event arrived, for the idle stop.
  final class LastArrival: Sendable {
    let instant = Mutex<ContinuousClock.Instant?>(nil)
  }

  struct Report {
    var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var first: ContinuousClock.Instant?
    var last: ContinuousClock.Instant?

    func report(json: Bool) -> String {
      let span = first.flatMap { first in last.map { $0 - first } } ?? .zero
      let seconds = max(Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18, 1e-9)
      let rate = histogram.totalCount > 1 ? Double(histogram.totalCount - 1) / seconds : 0
      func ms(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
      if json {
        return String(
          format:
            #"{"scenario":"feed-lag","events":%llu,"events_per_s":%.1f,"lag_p50_ms":%.1f,"lag_p90_ms":%.1f,"lag_p99_ms":%.1f,"lag_max_ms":%.1f}"#,
          histogram.totalCount, rate, ms(50), ms(90), ms(99), Double(histogram.max) / 1000)
      }
      return String(
        format: "feed-lag: %llu events, %.1f events/s, lag p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms",
        histogram.totalCount, rate, ms(50), ms(90), ms(99), Double(histogram.max) / 1000)
    }
  }

  /// Follows the feed from its current end for `duration`, or until `idle` passes without an event
  /// after the first.
  static func follow(
    client: GRPCClient<HTTP2ClientTransport.Posix>, metadata: Metadata, duration: Duration, idle: Duration?
  ) async throws -> Report {
    let lastArrival = LastArrival()
    let changes = Crm_V1_ChangeService.Client(wrapping: client)
    var cursor = ""
    while true {
      let page = try await changes.listChanges(
        .with {
          $0.cursor = cursor; $0.pageSize = 1000
        }, metadata: metadata)
      if page.nextCursor == cursor { break }
      cursor = page.nextCursor
    }
    let start = cursor
    return try await withThrowingTaskGroup(of: Report?.self) { group in
      group.addTask {
        try await changes.streamChanges(.with { $0.cursor = start }, metadata: metadata) { response in
          var report = Report()
          do {
            for try await event in response.messages {
              let now = Date().timeIntervalSince1970
              let committed = Double(event.commitTime.seconds) + Double(event.commitTime.nanos) / 1e9
              report.histogram.record(UInt64(max(0, (now - committed) * 1_000_000)))
              let arrived = ContinuousClock.now
              if report.first == nil { report.first = arrived }
              report.last = arrived
              lastArrival.instant.withLock { $0 = arrived }
              if Task.isCancelled { break }
            }
          } catch is CancellationError {
          } catch let error as RPCError where error.code == .cancelled {
          }
          return report
        }
      }
      group.addTask {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end {
          try await Task.sleep(for: min(.seconds(1), end - ContinuousClock.now))
          if let idle, let last = lastArrival.instant.withLock({ $0 }), ContinuousClock.now - last > idle { break }
        }
        return nil
      }
      _ = try await group.next()
      group.cancelAll()
      var result = Report()
      while let next = try await group.next() { if let next { result = next } }
      return result
    }
  }
}
