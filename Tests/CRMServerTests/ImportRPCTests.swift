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
import Synchronization
import Testing

@Suite("Server: streaming bulk import")
struct ImportRPCTests {
  static let columns = ["First Name", "Last Name", "E-Mail", "Company", "Mobile", "Notes"]

  /// Row `index` of a generated file: every 50th row repeats an earlier row's email, every 97th has an
  /// invalid email.
  static func row(_ index: Int64, tag: String) -> Crm_V1_ImportRow {
    let email =
      index % 97 == 96
      ? "not-an-email-\(index)" : index % 50 == 49 ? "person\(index - 10)@\(tag).example" : "person\(index)@\(tag).example"
    return .with {
      $0.index = index
      $0.values = ["Ada\(index)", "Lovelace", email, "Engines \(index % 7)", "", "row \(index), \"quoted\"\nsecond line"]
    }
  }

  static func header(_ importID: String, mode: Crm_V1_ImportMode = .insert, type: Crm_V1_RecordType = .lead)
    -> Crm_V1_ImportRequest
  {
    .with {
      $0.header = .with {
        $0.recordType = type
        $0.importID = importID
        $0.mode = mode
        $0.duplicateAction = .block
        $0.columns = columns
        $0.sourceName = "people.csv"
      }
    }
  }

  static func batch(_ range: Range<Int64>, tag: String) -> Crm_V1_ImportRequest {
    .with { $0.rows = .with { $0.rows = range.map { row($0, tag: tag) } } }
  }

  /// Streams `requests` and collects every answer.
  static func run(
    _ client: GRPCClient<some ClientTransport>, _ requests: [Crm_V1_ImportRequest], auth: Metadata
  ) async throws -> [Crm_V1_ImportResponse] {
    try await Crm_V1_ImportService.Client(wrapping: client).import(
      request: StreamingClientRequest(metadata: auth) { writer in
        for request in requests { try await writer.write(request) }
      }
    ) { response in
      var answers: [Crm_V1_ImportResponse] = []
      for try await message in response.messages { answers.append(message) }
      return answers
    }
  }

  static func results(_ answers: [Crm_V1_ImportResponse]) -> [Crm_V1_ImportRowResult] {
    answers.flatMap { answer -> [Crm_V1_ImportRowResult] in
      if case .results(let results) = answer.message { return results.results }
      return []
    }
  }

  static func leadCount(_ tenant: TestTenant, tag: String) throws -> Int64 {
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    return try connection.query(
      "SELECT count(*) AS n FROM leads WHERE tenant_id = \(tenant.tenantID) AND email_addresses[1] LIKE \("%@" + tag + ".example")"
    )[0].decode("n")
  }

  @Test("one stream: a result per row, bad rows and duplicates reported, counts in the summary and GetImport")
  func importLeads() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let requests =
        [Self.header("first")] + stride(from: Int64(0), to: 1200, by: 400).map { Self.batch($0..<$0 + 400, tag: "a") }
      let answers = try await Self.run(client, requests, auth: auth)
      guard case .started(let started) = answers.first?.message else { throw TestDatabase.Missing() }
      #expect(started.resumeFrom == 0 && !started.resumed)
      let results = Self.results(answers)
      #expect(results.map(\.index) == Array(0..<1200))
      let invalid = results.filter { $0.outcome == .failed }
      #expect(
        invalid.count == 12 && invalid.allSatisfy { $0.errors.first?.field == "email" && $0.errors.first?.column == "E-Mail" })
      let skipped = results.filter { $0.outcome == .duplicateSkipped }
      #expect(skipped.count == 24 && skipped.allSatisfy { $0.matches.count == 1 })
      #expect(results.filter { $0.outcome == .created }.count == 1164)
      guard case .summary(let summary) = answers.last?.message else { throw TestDatabase.Missing() }
      #expect(summary.job.state == .completed && summary.job.created == 1164 && summary.job.failed == 12)
      #expect(summary.job.duplicateSkipped == 24 && summary.job.nextIndex == 1200)
      #expect(try Self.leadCount(tenant, tag: "a") == 1164)

      let imports = Crm_V1_ImportService.Client(wrapping: client)
      let job = try await imports.getImport(.with { $0.importID = "first" }, metadata: auth)
      #expect(job.processedRows == 1200 && job.sourceName == "people.csv")
      #expect(try await imports.listImports(.with { _ in }, metadata: auth).imports.map(\.importID) == ["first"])
      // The lead keeps what the row said, multi-line note included, with its source.
      let leads = try await Crm_V1_LeadService.Client(wrapping: client).listLeads(
        .with { $0.email = "person5@a.example" }, metadata: auth)
      #expect(leads.leads.first?.description_p == "row 5, \"quoted\"\nsecond line" && leads.leads.first?.source == .import)
      // Another tenant sees none of it.
      let other = try await TestTenant.make()
      #expect(
        await code { try await imports.getImport(.with { $0.importID = "first" }, metadata: TestServer.auth(other.adminSecret)) }
          == .notFound)
    }
  }

  @Test("a client that dies mid-way resumes where it stopped; re-sent rows are never written twice")
  func resumeAfterClientFailure() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      struct Dropped: Error {}
      // The client sends two batches, waits for the first answer, then fails its side of the stream.
      let firstResults = Mutex(0)
      do {
        _ = try await Crm_V1_ImportService.Client(wrapping: client).import(
          request: StreamingClientRequest(metadata: auth) { writer in
            try await writer.write(Self.header("resume"))
            try await writer.write(Self.batch(0..<300, tag: "r"))
            try await writer.write(Self.batch(300..<600, tag: "r"))
            while firstResults.withLock({ $0 }) < 600 { try await Task.sleep(for: .milliseconds(10)) }
            throw Dropped()
          }
        ) { response in
          for try await message in response.messages {
            if case .results(let results) = message.message { firstResults.withLock { $0 += results.results.count } }
          }
        }
        Issue.record("the failed request stream did not fail the call")
      } catch {}
      // The server hears of the broken stream on its own schedule: wait for it to mark the import.
      var interrupted = Crm_V1_ImportJob()
      for _ in 0..<100 {
        interrupted = try await Crm_V1_ImportService.Client(wrapping: client).getImport(
          .with { $0.importID = "resume" }, metadata: auth)
        if interrupted.state != .running { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      #expect(interrupted.state == .interrupted && interrupted.nextIndex == 600)

      // The resumed stream deliberately re-sends everything from row 0.
      let answers = try await Self.run(
        client, [Self.header("resume")] + [Self.batch(0..<400, tag: "r"), Self.batch(400..<900, tag: "r")], auth: auth)
      guard case .started(let started) = answers.first?.message else { throw TestDatabase.Missing() }
      #expect(started.resumed && started.resumeFrom == 600)
      let results = Self.results(answers)
      #expect(results.filter(\.alreadyImported).map(\.index) == Array(0..<600))
      guard case .summary(let summary) = answers.last?.message else { throw TestDatabase.Missing() }
      #expect(summary.job.processedRows == 900 && summary.job.nextIndex == 900)
      #expect(try Self.leadCount(tenant, tag: "r") == summary.job.created)
    }
  }

  @Test("crmd killed with SIGKILL mid-import: the resumed import has every row exactly once")
  func resumeAfterServerKill() async throws {
    let tenant = try await TestTenant.make()
    let auth = TestServer.auth(tenant.adminSecret)
    let total: Int64 = 6000
    // A short lease: the killed node stops renewing it, and readers on any node see that soon.
    let first = try await runBlocking { try CrmdProcess.start(["--import-lease-seconds", "1"]) }
    let received = Mutex(0)
    do {
      try await first.withClient { client in
        _ = try await Crm_V1_ImportService.Client(wrapping: client).import(
          request: StreamingClientRequest(metadata: auth) { writer in
            try await writer.write(Self.header("killed"))
            for start in stride(from: Int64(0), to: total, by: 500) {
              try await writer.write(Self.batch(start..<start + 500, tag: "k"))
            }
            // Keep the stream open until the response side has killed the server under it.
            try await waitUntil("crmd to be killed mid-import") { !first.process.isRunning }
          }
        ) { response in
          for try await message in response.messages {
            guard case .results(let results) = message.message else { continue }
            let count = received.withLock {
              $0 += results.results.count
              return $0
            }
            if count >= 1000 { first.kill() }
          }
        }
      }
    } catch {}
    first.kill()
    #expect(received.withLock { $0 } >= 1000)

    let second = try await runBlocking { try CrmdProcess.start() }
    defer { second.kill() }
    // The stream died with its node, which could not say so: its lease runs out instead.
    try await second.withClient { client in
      let imports = Crm_V1_ImportService.Client(wrapping: client)
      try await waitUntil("the killed node's import to read as interrupted") {
        try await imports.getImport(.with { $0.importID = "killed" }, metadata: auth).state == .interrupted
      }
    }
    let answers = try await second.withClient { client in
      try await Self.run(
        client, [Self.header("killed")] + stride(from: Int64(0), to: total, by: 500).map { Self.batch($0..<$0 + 500, tag: "k") },
        auth: auth)
    }
    guard case .started(let started) = answers.first?.message, case .summary(let summary) = answers.last?.message else {
      throw TestDatabase.Missing()
    }
    #expect(started.resumed && started.resumeFrom >= 1000)
    #expect(summary.job.processedRows == total)
    let created = Self.results(answers).filter { $0.outcome == .created || ($0.alreadyImported && $0.outcome == .created) }
    #expect(Int64(created.count) == summary.job.created)
    // Exactly once: the rows that create a lead made one each — no duplicates, none lost.
    #expect(try Self.leadCount(tenant, tag: "k") == summary.job.created)
    #expect(summary.job.created + summary.job.failed + summary.job.duplicateSkipped == total)
  }

  @Test("upsert by external id updates the mapped fields only; upsert by email matches contacts")
  func upserts() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      func accounts(_ id: String, industry: String) -> [Crm_V1_ImportRequest] {
        [
          .with {
            $0.header = .with {
              $0.recordType = .account
              $0.importID = id
              $0.mode = .upsertByExternalID
              $0.columns = ["Account Name", "ERP Id", "Sector"]
              $0.fieldMapping = ["ERP Id": "external_id", "Sector": "industry"]
            }
          },
          .with {
            $0.rows = .with {
              $0.rows = (0..<10).map { index in
                .with {
                  $0.index = Int64(index)
                  $0.values = ["Account \(index)", "ERP-\(index)", industry]
                }
              }
            }
          },
        ]
      }
      let created = Self.results(try await Self.run(client, accounts("acc-1", industry: "Retail"), auth: auth))
      #expect(created.allSatisfy { $0.outcome == .created })
      let updated = Self.results(try await Self.run(client, accounts("acc-2", industry: "Banking"), auth: auth))
      #expect(updated.allSatisfy { $0.outcome == .updated } && updated.map(\.recordID) == created.map(\.recordID))
      let account = try await Crm_V1_AccountService.Client(wrapping: client).getAccount(
        .with { $0.id = created[3].recordID }, metadata: auth)
      #expect(account.industry == "Banking" && account.name == "Account 3" && account.etag == "2")

      let contact = try await Crm_V1_ContactService.Client(wrapping: client).createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Known"
            $0.emails = [.with { $0.address = "known@c.example" }]
          }
        }, metadata: auth)
      let byEmail = Self.results(
        try await Self.run(
          client,
          [
            .with {
              $0.header = .with {
                $0.recordType = .contact
                $0.importID = "contacts-1"
                $0.mode = .upsertByEmail
                $0.columns = ["email", "title", "name"]
              }
            },
            .with {
              $0.rows = .with {
                $0.rows = [
                  .with {
                    $0.index = 0; $0.values = ["KNOWN@c.example", "CFO", ""]
                  },
                  .with {
                    $0.index = 1; $0.values = ["new@c.example", "CEO", "Nu Person"]
                  },
                  .with {
                    $0.index = 2; $0.values = ["new@c.example", "Founder", ""]
                  },
                  .with {
                    $0.index = 3; $0.values = ["nameless@c.example", "CTO", ""]
                  },
                ]
              }
            },
          ], auth: auth))
      #expect(byEmail.map(\.outcome) == [.updated, .created, .updated, .failed])
      #expect(byEmail[3].errors.first?.reason == "REQUIRED")
      #expect(byEmail[0].recordID == contact.id && byEmail[2].recordID == byEmail[1].recordID)
      let founder = try await Crm_V1_ContactService.Client(wrapping: client).getContact(
        .with { $0.id = byEmail[1].recordID }, metadata: auth)
      #expect(founder.title == "Founder" && founder.lastName == "Person")  // the empty cell erased nothing
      let known = try await Crm_V1_ContactService.Client(wrapping: client).getContact(
        .with { $0.id = contact.id }, metadata: auth)
      #expect(known.title == "CFO" && known.lastName == "Known")
    }
  }

  @Test("a bad header or batch is INVALID_ARGUMENT naming the field; a reused id with another type is refused")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let cases: [([Crm_V1_ImportRequest], String)] = [
        ([Self.batch(0..<1, tag: "v")], "header"),
        (
          [
            .with {
              $0.header = .with {
                $0.recordType = .lead; $0.columns = ["email"]
              }
            }
          ], "header.import_id"
        ),
        (
          [
            .with {
              $0.header = .with {
                $0.importID = "x"; $0.recordType = .interaction; $0.columns = ["email"]
              }
            }
          ], "header.record_type"
        ),
        (
          [
            .with {
              $0.header = .with {
                $0.importID = "x"; $0.recordType = .lead; $0.columns = ["shoe size"]
              }
            }
          ], "header.columns"
        ),
        (
          [
            .with {
              $0.header = .with {
                $0.importID = "x"; $0.recordType = .lead; $0.columns = ["a"]; $0.fieldMapping = ["a": "shoe_size"]
              }
            }
          ],
          "header.field_mapping[\"a\"]"
        ),
        (
          [
            .with {
              $0.header = .with {
                $0.importID = "x"; $0.recordType = .account; $0.mode = .upsertByEmail; $0.columns = ["name"]
              }
            }
          ],
          "header.mode"
        ),
        ([Self.header("v1"), .with { $0.rows = .with { $0.rows = [.with { $0.index = -1 }] } }], "rows[0].index"),
      ]
      for (requests, field) in cases {
        do {
          _ = try await Self.run(client, requests, auth: auth)
          Issue.record("\(field): accepted")
        } catch let error as RPCError {
          #expect(error.code == .invalidArgument, "\(field)")
          let status = try #require(try error.unpackGoogleRPCStatus())
          #expect(status.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field).contains(field), "\(field)")
        }
      }
      _ = try await Self.run(client, [Self.header("typed")], auth: auth)
      #expect(
        await code { try await Self.run(client, [Self.header("typed", type: .contact)], auth: auth) } == .failedPrecondition)
    }
  }
}

/// A `crmd` child process on the shared test database, for tests that kill it. (`Process` is not
/// `Sendable`; this only reads its pid and sends it a signal, which is safe from any thread.)
struct CrmdProcess: @unchecked Sendable {
  let process: Process
  let address: (host: String, port: Int)

  /// Starts `.build/debug/crmd` on a free port and waits until it listens.
  static func start(_ extraArguments: [String] = [], log: URL? = nil) throws -> CrmdProcess {
    let binary = Self.binary("crmd")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
      throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: binary.path + " (run swift build first)"])
    }
    let process = Process()
    process.executableURL = binary
    let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("crmd-\(UUID().uuidString)")
    // No background jobs and no webhook deliveries: they would recycle pools, raise alerts and send
    // webhooks in every tenant of the shared test database, under other tests' feet (a stale-deal test
    // once found its alert already raised; webhook tests found attempts they never made).
    process.arguments =
      ["--port", "0", "--data-dir", dataDir.path, "--job-interval-seconds", "0", "--webhook-workers", "0"] + extraArguments
    var environment = ProcessInfo.processInfo.environment
    environment["CRM_DATABASE_URL"] = try TestDatabase.connectionString()
    environment["CRM_TOKEN_FILE"] = dataDir.appendingPathComponent("admin-token").path
    environment["CRM_AUTH_CACHE_SECONDS"] = "0"
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    if let log {
      _ = FileManager.default.createFile(atPath: log.path, contents: nil)
      process.standardError = try FileHandle(forWritingTo: log)
    } else {
      process.standardError = FileHandle.nullDevice
    }
    try process.run()
    var text = ""
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
      let data = output.fileHandleForReading.availableData
      if data.isEmpty, !process.isRunning { break }
      text += String(decoding: data, as: UTF8.self)
      if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("crmd listening on ") }) {
        let address = line.dropFirst("crmd listening on ".count).split(separator: " ")[0]
        let parts = address.split(separator: ":")
        if parts.count == 2, let port = Int(parts[1]) {
          return CrmdProcess(process: process, address: (String(parts[0]), port))
        }
      }
    }
    process.terminate()
    throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "crmd did not start: \(text)"])
  }

  /// A product of this package's debug build (`swift build` builds it before the tests run).
  static func binary(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent(".build/debug/\(name)")
  }

  /// SIGKILL: no graceful shutdown, no chance to mark anything.
  func kill() {
    if process.isRunning {
      Foundation.kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  func withClient<T: Sendable>(_ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
    let transport = try HTTP2ClientTransport.Posix(
      target: .ipv4(address: address.host, port: address.port), transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { try await body($0) }
  }
}

@Suite("CLI: crm import")
struct ImportCLITests {
  /// A `crm` child process. (`Process` is not `Sendable`; this only waits for it, reads its pipe and
  /// signals it, which is safe from any thread.)
  struct CRMProcess: @unchecked Sendable {
    let process: Process
    let errors: Pipe
    let output: Pipe?

    /// Starts `crm` with `arguments` against `server`; its standard output is kept when `capturingOutput`.
    static func launch(_ arguments: [String], server: CrmdProcess, token: String, capturingOutput: Bool = false) throws
      -> CRMProcess
    {
      let process = Process()
      process.executableURL = CrmdProcess.binary("crm")
      process.arguments = arguments
      var environment = ProcessInfo.processInfo.environment
      environment["CRM_ADDRESS"] = "\(server.address.host):\(server.address.port)"
      environment["CRM_TOKEN"] = token
      process.environment = environment
      let errors = Pipe()
      let output = capturingOutput ? Pipe() : nil
      process.standardError = errors
      process.standardOutput = output ?? FileHandle.nullDevice
      try process.run()
      return CRMProcess(process: process, errors: errors, output: output)
    }

    /// Waits for the exit; returns the status and standard error.
    func finish() -> (Int32, String) {
      let (status, _, errors) = finishReading()
      return (status, errors)
    }

    /// Waits for the exit; returns the status, standard output (empty unless captured) and standard error.
    func finishReading() -> (Int32, String, String) {
      let out = output.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } ?? ""
      let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      return (process.terminationStatus, out, text)
    }

    /// SIGKILL: no chance to clean up or to say goodbye to the server.
    func kill() {
      if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
  }

  /// Runs `crm` with `arguments` to its end; returns its exit status and standard error.
  static func crm(_ arguments: [String], server: CrmdProcess, token: String) async throws -> (Int32, String) {
    try await runBlocking { try CRMProcess.launch(arguments, server: server, token: token).finish() }
  }

  /// The write end of a named pipe that `crm` reads as its CSV file: `crm` can send only what the test
  /// has written, so where an import stops is decided by the test, not by the machine's speed.
  final class PipeFeed: @unchecked Sendable {  // used from one test's threads, one call at a time
    let handle: FileHandle

    /// Opens `path` for writing once `reader` has opened it for reading.
    init(path: String, reader: CRMProcess) throws {
      signal(SIGPIPE, SIG_IGN)  // a reader that died makes write fail with EPIPE, not kill the tests
      var descriptor: Int32 = -1
      try waitUntilBlocking("crm to open its input \(path)") {
        guard reader.process.isRunning else { throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path]) }
        descriptor = open(path, O_WRONLY | O_NONBLOCK)
        return descriptor >= 0
      }
      _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
      handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }

    func write(_ text: String) throws { try handle.write(contentsOf: Data(text.utf8)) }
    func close() throws { try handle.close() }
  }

  /// A scratch directory for one test, with a named pipe `stream.csv` in it.
  static func scratchWithPipe(tag: String) throws -> (directory: URL, pipe: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crm-import-\(tag)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let pipe = directory.appendingPathComponent("stream.csv").path
    guard mkfifo(pipe, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: pipe]) }
    return (directory, pipe)
  }

  /// The test file: a BOM, a header, quoted fields with commas, doubled quotes, embedded newlines,
  /// non-ASCII names, CRLF line ends; rows `broken` have an invalid email.
  static func csv(rows: Range<Int>, tag: String, broken: Set<Int>, header: Bool) -> String {
    var text = header ? "\u{FEFF}Full Name,E-Mail,Company,Notes\r\n" : ""
    for index in rows {
      let email = broken.contains(index) ? "broken\(index)" : "cli\(index)@\(tag).example"
      text += "\"Zoë Nü\(index)\",\(email),\"Acme, Inc.\",\"line one\nline \"\"two\"\"\"\r\n"
    }
    return text
  }

  @Test("a CSV with a BOM, quotes, embedded newlines and UTF-8; killed with SIGKILL, then --resume: every row once")
  func killAndResume() async throws {
    let tenant = try await TestTenant.make()
    let server = try await runBlocking { try CrmdProcess.start() }
    defer { server.kill() }
    let tag = UUID().uuidString.prefix(8).lowercased()
    let (directory, fifo) = try Self.scratchWithPipe(tag: tag)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("people.csv").path
    let failedRows = directory.appendingPathComponent("failed.csv").path
    let options = ["--type", "leads", "--batch-size", "200", "--import-id", "cli-\(tag)", "--failed-rows", failedRows]

    // The first run reads a pipe that holds five whole batches; once the server has committed them,
    // crm is waiting for more input and is killed there: mid-way by construction.
    let killed = try await runBlocking {
      try CRMProcess.launch(["import", fifo] + options, server: server, token: tenant.adminSecret)
    }
    defer { killed.kill() }
    let feed = try await runBlocking { try PipeFeed(path: fifo, reader: killed) }
    try await runBlocking { try feed.write(Self.csv(rows: 0..<1_000, tag: tag, broken: [3], header: true)) }
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    func committed() throws -> Int64 {
      try owner.query("SELECT next_index FROM imports WHERE tenant_id = \(tenant.tenantID)").first?.decode("next_index") ?? 0
    }
    try await waitUntil("the server to commit the first 1,000 rows") { try committed() == 1_000 }
    // The sixth batch (with a bad row, 1050) reaches the server, which waits on this test's lock of
    // the import's row while crm is killed: it commits after the client is gone, so crm never hears
    // of row 1050's failure — the resumed run must still list it.
    let locker = try TestDatabase.ownerConnection()
    defer { locker.close() }
    try locker.execute(unsafeSQL: "BEGIN")
    try locker.query("SELECT 1 FROM imports WHERE tenant_id = \(tenant.tenantID) FOR UPDATE")
    try await runBlocking { try feed.write(Self.csv(rows: 1_000..<1_200, tag: tag, broken: [1_050], header: false)) }
    try await waitUntil("the sixth batch to wait on the test's lock") {
      try locker.query("SELECT count(*) AS n FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")[0]
        .decode("n", as: Int.self) == 1
    }
    killed.kill()
    let (killedStatus, _) = try await runBlocking { killed.finish() }
    #expect(killedStatus != 0)
    try feed.close()
    try locker.execute(unsafeSQL: "ROLLBACK")
    try await waitUntil("the sixth batch to commit without its client") { try committed() == 1_200 }

    // The whole file, at another path (the import id names the import, not the path).
    try Self.csv(rows: 0..<6_000, tag: tag, broken: [3, 1_050], header: true).write(
      toFile: file, atomically: true, encoding: .utf8)
    let (refused, message) = try await Self.crm(["import", file] + options, server: server, token: tenant.adminSecret)
    #expect(refused == 6 && message.contains("--resume"))
    let (status, summary) = try await Self.crm(["import", file, "--resume"] + options, server: server, token: tenant.adminSecret)
    #expect(status == 8, "two rows failed: \(summary)")
    #expect(summary.contains("5998 created") && summary.contains("2 failed") && summary.contains("6000 rows in all"))
    #expect(summary.contains("resuming import cli-\(tag) at row 1200"))
    let connection = try TestDatabase.ownerConnection()
    defer { connection.close() }
    let count: Int64 = try connection.query(
      "SELECT count(*) AS n FROM leads WHERE tenant_id = \(tenant.tenantID) AND email_addresses[1] LIKE \("%@" + tag + ".example")"
    )[0].decode("n")
    #expect(count == 5_998)
    let sample: String = try connection.query(
      "SELECT first_name || ' ' || last_name || '|' || description AS s FROM leads WHERE tenant_id = \(tenant.tenantID) AND email_addresses[1] = \("cli7@" + tag + ".example")"
    )[0].decode("s")
    #expect(sample == "Zoë Nü7|line one\nline \"two\"")
    let failed = try String(contentsOfFile: failedRows, encoding: .utf8)
    // Every failed row of the import once: row 3 (answered before the kill) and row 1050 (committed
    // after it, known only to the server's ledger).
    #expect(failed.components(separatedBy: "broken3,").count == 2 && failed.contains("_error"), "row 3 once: \(failed)")
    #expect(failed.components(separatedBy: "broken1050,").count == 2, "row 1050 once: \(failed)")
    #expect(failed.components(separatedBy: "broken").count == 3, "no other failed row, none twice: \(failed)")
  }

  @Test("crmd dying mid-import makes crm exit 7 (unavailable) and say how to resume")
  func serverDiesUnderCLI() async throws {
    let tenant = try await TestTenant.make()
    let server = try await runBlocking { try CrmdProcess.start() }
    defer { server.kill() }
    let tag = UUID().uuidString.prefix(8).lowercased()
    let (directory, fifo) = try Self.scratchWithPipe(tag: tag)
    defer { try? FileManager.default.removeItem(at: directory) }
    let running = try await runBlocking {
      try CRMProcess.launch(
        ["import", fifo, "--type", "leads", "--batch-size", "100", "--import-id", "dies-\(tag)"], server: server,
        token: tenant.adminSecret)
    }
    defer { running.kill() }
    let feed = try await runBlocking { try PipeFeed(path: fifo, reader: running) }
    try await runBlocking { try feed.write(Self.csv(rows: 0..<200, tag: tag, broken: [], header: true)) }
    let owner = try TestDatabase.ownerConnection()
    defer { owner.close() }
    try await waitUntil("the first rows to commit") {
      try owner.query("SELECT next_index FROM imports WHERE tenant_id = \(tenant.tenantID)").first?.decode(
        "next_index", as: Int64.self)
        == 200
    }
    server.kill()
    // crm reads its input on the sending side; the end of the input lets that side finish.
    try feed.close()
    let (status, message) = try await runBlocking { running.finish() }
    #expect(status == 7, "\(message)")
    #expect(message.contains("unavailable") && message.contains("--resume"), "\(message)")
    #expect(!message.contains("CancellationError"), "\(message)")
  }
}
