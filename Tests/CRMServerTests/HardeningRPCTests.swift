import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
import LibPQ
import SwiftProtobuf
import Synchronization
import Testing

/// Defects an outside client found (issue 13), each through a real gRPC connection.
@Suite("Server: hostile input")
struct HardeningRPCTests {
  /// The field violations of an INVALID_ARGUMENT, or `nil` for any other outcome.
  static func violations(_ call: () async throws -> some Any) async -> [String]? {
    do {
      _ = try await call()
      return nil
    } catch let error as RPCError {
      guard error.code == .invalidArgument, let status = try? error.unpackGoogleRPCStatus() else { return nil }
      return status.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field)
    } catch {
      return nil
    }
  }

  @Test("a page token edited, forged or cut answers INVALID_ARGUMENT on page_token, never INTERNAL")
  func forgedPageTokens() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      for index in 0..<3 {
        _ = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Paged \(index)" } }, metadata: auth)
      }
      let first = try await leads.listLeads(
        .with {
          $0.pageSize = 1
          $0.orderBy = .updateTimeDesc
        }, metadata: auth)
      let issued = first.nextPageToken
      #expect(!issued.isEmpty)
      // The token still works as issued.
      let second = try await leads.listLeads(
        .with {
          $0.pageSize = 1; $0.orderBy = .updateTimeDesc; $0.pageToken = issued
        }, metadata: auth)
      #expect(second.leads.count == 1 && second.leads.first?.id != first.leads.first?.id)

      // An outside client's forgery: the payload's key changed to what no timestamp parses from.
      let parts = issued.split(separator: ".").map(String.init)
      #expect(parts.count == 2)
      var payload = parts[0].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
      while payload.count % 4 != 0 { payload += "=" }
      let decoded = try #require(Data(base64Encoded: payload))
      var json = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
      var forgeries: [String] = []
      for key in ["garbage", "99999-99-99", "294277-01-01 00:00:00+00"] {
        json["key"] = key
        let edited = try JSONSerialization.data(withJSONObject: json).base64EncodedString()
          .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        forgeries += [edited + "." + parts[1], edited]
      }
      forgeries += [String(issued.dropLast(3)), issued + "A", "garbage", String(repeating: "x", count: 10_000)]
      for token in forgeries {
        let fields = await Self.violations {
          try await leads.listLeads(
            .with {
              $0.pageSize = 1; $0.orderBy = .updateTimeDesc; $0.pageToken = token
            }, metadata: auth)
        }
        #expect(fields == ["page_token"], "\(token.prefix(60))")
      }
      // Other lists carry the same check.
      let tasks = Crm_V1_TaskService.Client(wrapping: client)
      #expect(await Self.violations { try await tasks.listMyTasks(.with { $0.pageToken = forgeries[0] }, metadata: auth) } == ["page_token"])
      let imports = Crm_V1_ImportService.Client(wrapping: client)
      #expect(await Self.violations { try await imports.listImports(.with { $0.pageToken = forgeries[0] }, metadata: auth) } == ["page_token"])
    }
  }

  @Test("a data exception from PostgreSQL (SQLSTATE class 22) answers INVALID_ARGUMENT", arguments: ["22007", "22008", "22P02", "22003", "22001"])
  func dataExceptions(sqlState: String) {
    let error = ErrorMapping.rpcError(for: PostgresError(kind: .server, sqlState: sqlState, serverMessage: "date/time field value out of range: \"99999-99-99\""))
    #expect(error.code == .invalidArgument && !error.message.contains("99999"))
  }

  @Test("thousands of bad mask paths answer a small INVALID_ARGUMENT that any client can read", arguments: [100, 1_000, 100_000])
  func boundedErrors(paths: Int) async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let auth = TestServer.auth(tenant.adminSecret)
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let lead = try await leads.createLead(.with { $0.lead = .with { $0.lastName = "Masked" } }, metadata: auth)
      let request = Crm_V1_UpdateLeadRequest.with {
        $0.lead = .with {
          $0.id = lead.id; $0.lastName = "Changed"
        }
        $0.updateMask = .with { $0.paths = (0..<paths).map { "no_such_field_\($0)" } }
      }
      do {
        _ = try await leads.updateLead(request, metadata: auth)
        Issue.record("\(paths) unknown paths were accepted")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        let status = try #require(try error.unpackGoogleRPCStatus())
        let violations = status.details.compactMap(\.badRequest).flatMap(\.violations)
        #expect(violations.allSatisfy { $0.field == "update_mask" || $0.field == "request" })
        if paths <= 100 {
          // Each path is looked at: the first 20 are named, the last entry counts the rest.
          #expect(violations.count == Violations.limit + 1)
          #expect(violations.last?.reason == "TOO_MANY_VIOLATIONS" && violations.last?.violationDescription.hasPrefix("\(paths - 20) more") == true)
        } else {
          // Past the most paths a mask may name, the mask is refused before any path is looked at.
          #expect(violations.map(\.reason) == ["TOO_MANY"])
        }
        let size = error.metadata.reduce(0) { total, entry in
          switch entry.value {
          case .string(let text): total + entry.key.utf8.count + text.utf8.count
          case .binary(let bytes): total + entry.key.utf8.count + bytes.count
          }
        }
        #expect(size + error.message.utf8.count < 8 * 1024, "the error is \(size) bytes")
      }
      // Nothing changed.
      #expect(try await leads.getLead(.with { $0.id = lead.id }, metadata: auth).lastName == "Masked")
    }
  }

  @Test("a burst of wrong tokens from one address is throttled before it reaches the database; known tokens still work")
  func wrongTokenBurst() async throws {
    let tenant = try await TestTenant.make()
    // The server's clock stands still: nothing refills while the test runs, however slowly it runs.
    let clock = Mutex(ContinuousClock.now)
    try await TestServer.withClient(now: { clock.withLock { $0 } }) { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let good = TestServer.auth(tenant.adminSecret)
      _ = try await accounts.listAccounts(.init(), metadata: good)
      // Malformed secrets are refused without a lookup, and count too.
      #expect(await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth("guess")) } == .unauthenticated)
      var codes: [RPCError.Code?] = []
      for _ in 0..<40 {
        let guess = TokenSecret.generate()
        codes.append(await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth(guess)) })
      }
      let unauthenticated = codes.prefix { $0 == .unauthenticated }.count
      #expect(unauthenticated == RequestInterceptor.failedSignInsPerMinute - 1, "\(codes)")
      #expect(codes.dropFirst(unauthenticated).allSatisfy { $0 == .resourceExhausted }, "\(codes)")
      do {
        _ = try await accounts.listAccounts(.init(), metadata: TestServer.auth(TokenSecret.generate()))
        Issue.record("a throttled guess went through")
      } catch let error as RPCError {
        let status = try #require(try error.unpackGoogleRPCStatus())
        #expect(error.code == .resourceExhausted && status.details.contains { $0.retryInfo != nil })
      }
      // The admin's token, known to this node, still works.
      _ = try await accounts.listAccounts(.init(), metadata: good)
      // Two seconds later the address has earned one more guess (30 a minute).
      clock.withLock { $0 = $0 + .milliseconds(2_100) }
      #expect(await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth(TokenSecret.generate())) } == .unauthenticated)
      #expect(await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth(TokenSecret.generate())) } == .resourceExhausted)
    }
  }

  @Test("a message over --max-request-bytes is logged as a warning with peer and method, and the server goes on")
  func oversizedMessage() async throws {
    let tenant = try await TestTenant.make()
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("crmd-\(UUID().uuidString.prefix(8)).log")
    defer { try? FileManager.default.removeItem(at: log) }
    let server = try await runBlocking { try CrmdProcess.start(["--max-request-bytes", "4096"], log: log) }
    defer { server.kill() }
    let auth = TestServer.auth(tenant.adminSecret)
    try await server.withClient { client in
      let leads = Crm_V1_LeadService.Client(wrapping: client)
      let big = Crm_V1_CreateLeadRequest.with {
        $0.lead = .with {
          $0.lastName = "Oversized"
          $0.description_p = String(repeating: "x", count: 20_000)
        }
      }
      // The transport resets the stream (see docs/DECISIONS.md, Message size): the call fails.
      #expect(await code { try await leads.createLead(big, metadata: auth) } != nil)
    }
    // The server is still there for the next caller.
    try await server.withClient { client in
      let lead = try await Crm_V1_LeadService.Client(wrapping: client).createLead(
        .with { $0.lead = .with { $0.lastName = "Small" } }, metadata: auth)
      #expect(!lead.id.isEmpty)
    }
    var lines: [Substring] = []
    try await waitUntil("crmd to log the unreadable request") {
      lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
      return lines.contains { $0.contains("request message unreadable") }
    }
    let line = try #require(lines.first { $0.contains("request message unreadable") })
    // swift-log's stream format: timestamp, level, label, metadata, [source] message.
    func level(_ line: Substring) -> Substring? { line.split(separator: " ").dropFirst().first }
    #expect(level(line) == "warning" && line.contains("rpc.peer=") && line.contains("LeadService/CreateLead"), "\(line)")
    #expect(!lines.contains { level($0) == "error" || level($0) == "critical" }, "\(lines.joined(separator: "\n"))")
  }
}
