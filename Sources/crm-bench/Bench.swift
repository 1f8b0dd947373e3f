import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram
import SwiftProtobuf

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
        health   grpc.health.v1.Health/Check: no token, one `SELECT 1`; the floor of the gRPC stack plus a pool hop
      Each of --concurrency workers keeps one call in flight on a shared HTTP/2 connection pool.

      Example:
        crm-bench --scenario get --concurrency 16 --duration 20 --warmup 3
      """)

  @Option(help: "Server address host:port (env: CRM_ADDRESS; default: 127.0.0.1:50051).") var address: String?
  @Option(help: "Bearer token (env: CRM_TOKEN).") var token: String?
  @Option(help: "get, create, health, capture (web-form CaptureLead, new people) or find-duplicates.")
  var scenario: String = "get"
  @Option(help: "For find-duplicates: a CSV of candidates (first name, last name, email, company).")
  var candidates: String?
  @Option(help: "Calls in flight.") var concurrency: Int = 16
  @Option(help: "Measured seconds.") var duration: Double = 10
  @Option(help: "Unmeasured seconds first.") var warmup: Double = 2
  @Option(help: "How many account ids to sample for the get scenario.") var sample: Int = 10_000
  @Option(help: "HTTP/2 connections to spread the workers over.") var connections: Int = 2
  @Flag(help: "Print one JSON object instead of text.") var json = false

  func run() async throws {
    let address = address ?? ProcessInfo.processInfo.environment["CRM_ADDRESS"] ?? "127.0.0.1:50051"
    guard let secret = token ?? ProcessInfo.processInfo.environment["CRM_TOKEN"] else {
      throw ValidationError("set CRM_TOKEN or pass --token")
    }
    guard Self.scenarios.contains(scenario) else {
      throw ValidationError("--scenario must be one of \(Self.scenarios.joined(separator: ", "))")
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
    let result = try await withThrowingTaskGroup(of: Void.self) { group in
      for client in clients { group.addTask { try await client.runConnections() } }
      defer { for client in clients { client.beginGracefulShutdown() } }
      let ids = scenario == "get" ? try await sampleIDs(client: clients[0], metadata: metadata) : []
      if scenario == "get", ids.isEmpty { throw ValidationError("no accounts to get: seed some first") }
      let load = Load(
        scenario: scenario, clients: clients, metadata: metadata, ids: ids, people: people, concurrency: concurrency,
        warmup: .milliseconds(Int(warmup * 1000)), duration: .milliseconds(Int(duration * 1000)))
      return try await load.run()
    }
    print(result.report(json: json, scenario: scenario, concurrency: concurrency))
  }

  static let scenarios = ["get", "create", "health", "capture", "find-duplicates"]

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
  let concurrency: Int
  let warmup: Duration
  let duration: Duration

  struct Outcome: Sendable {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var errors = 0
    var elapsed: Duration = .zero
  }

  func run() async throws -> Outcome {
    let start = ContinuousClock.now
    let measureFrom = start + warmup
    let stopAt = measureFrom + duration
    var total = Outcome()
    try await withThrowingTaskGroup(of: Outcome.self) { group in
      for worker in 0..<concurrency {
        let client = clients[worker % clients.count]
        group.addTask { try await work(worker: worker, client: client, measureFrom: measureFrom, stopAt: stopAt) }
      }
      for try await outcome in group {
        total.histogram.add(outcome.histogram)
        total.errors += outcome.errors
      }
    }
    total.elapsed = duration
    return total
  }

  func work(
    worker: Int, client: GRPCClient<HTTP2ClientTransport.Posix>, measureFrom: ContinuousClock.Instant,
    stopAt: ContinuousClock.Instant
  ) async throws -> Outcome {
    let accounts = Crm_V1_AccountService.Client(wrapping: client)
    let health = Grpc_Health_V1_Health.Client(wrapping: client)
    let capture = Crm_V1_CaptureService.Client(wrapping: client)
    let duplicates = Crm_V1_DuplicateService.Client(wrapping: client)
    var outcome = Outcome()
    var generator = SystemRandomNumberGenerator()
    var sequence = 0
    var reported = false
    while true {
      let began = ContinuousClock.now
      if began >= stopAt { return outcome }
      var failed = false
      do {
        if scenario == "health" {
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
          #"{"scenario":"%@","concurrency":%d,"calls":%llu,"errors":%d,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}"#,
        scenario, concurrency, histogram.totalCount, errors, rps, ms(50), ms(90), ms(99), Double(histogram.max) / 1000)
    }
    return String(
      format: "%@ c=%d: %llu calls, %d errors, %.1f RPS, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms",
      scenario, concurrency, histogram.totalCount, errors, rps, ms(50), ms(90), ms(99), Double(histogram.max) / 1000)
  }
}
