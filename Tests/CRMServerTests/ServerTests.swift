import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCProtobuf
import SwiftProtobuf
import Testing

@Suite("Server: accounts over real gRPC")
struct AccountRPCTests {
  @Test("create, get, update with etag, archive and restore; each error code where it belongs")
  func lifecycle() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let auth = TestServer.auth(tenant.adminSecret)
      let created = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = "Acme"; $0.externalID = "A-1"
          }
        }, metadata: auth)
      #expect(try await accounts.getAccount(.with { $0.id = created.id }, metadata: auth) == created)

      let update = Crm_V1_UpdateAccountRequest.with {
        $0.account = .with {
          $0.id = created.id; $0.etag = created.etag; $0.industry = "Robotics"
        }
        $0.updateMask = .with { $0.paths = ["industry"] }
      }
      let updated = try await accounts.updateAccount(update, metadata: auth)
      #expect(updated.industry == "Robotics")
      #expect(updated.name == "Acme")
      #expect(await code { try await accounts.updateAccount(update, metadata: auth) } == .aborted)
      #expect(
        await code {
          try await accounts.createAccount(
            .with {
              $0.account = .with {
                $0.name = "Dup"; $0.externalID = "A-1"
              }
            }, metadata: auth)
        } == .alreadyExists)
      #expect(await code { try await accounts.getAccount(.with { $0.id = UUID().uuidString }, metadata: auth) } == .notFound)
      #expect(await code { try await accounts.getAccount(.with { $0.id = created.id }) } == .unauthenticated)
      #expect(
        await code { try await accounts.getAccount(.with { $0.id = created.id }, metadata: TestServer.auth("crm_forged")) }
          == .unauthenticated)
      #expect(
        await code {
          try await accounts.updateAccount(
            .with {
              $0.account = .with { $0.id = created.id }; $0.updateMask = .with { $0.paths = ["id"] }
            }, metadata: auth)
        } == .invalidArgument)

      let archived = try await accounts.deleteAccount(.with { $0.id = created.id }, metadata: auth)
      #expect(archived.hasArchiveTime)
      #expect(
        await code {
          try await accounts.updateAccount(
            .with {
              $0.account = .with {
                $0.id = created.id; $0.name = "x"
              }
              $0.updateMask = .with { $0.paths = ["name"] }
            }, metadata: auth)
        } == .failedPrecondition)
      let listed = try await accounts.listAccounts(.with { $0.archiveFilter = .archived }, metadata: auth)
      #expect(listed.accounts.map(\.id) == [created.id])
      #expect(try await accounts.undeleteAccount(.with { $0.id = created.id }, metadata: auth).hasArchiveTime == false)
    }
  }

  @Test("invalid input answers INVALID_ARGUMENT with a BadRequest naming every field")
  func badRequestDetails() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      do {
        _ = try await accounts.createAccount(
          .with {
            $0.account = .with {
              $0.name = ""
              $0.website = "::::"
              $0.parentID = "not-a-uuid"
              $0.annualRevenue = .with {
                $0.currencyCode = "usd!"; $0.units = 1
              }
              $0.tags = [String(repeating: "t", count: 100)]
            }
            $0.requestID = String(repeating: "r", count: 200)
          }, metadata: TestServer.auth(tenant.adminSecret))
        Issue.record("expected INVALID_ARGUMENT")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        let status = try #require(try error.unpackGoogleRPCStatus())
        let fields = status.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field)
        #expect(
          Set(fields) == [
            "account.name", "account.website", "account.parent_id", "account.annual_revenue.currency_code", "account.tags[0]",
            "request_id",
          ])
      }
    }
  }

  @Test("SQL metacharacters and emoji round-trip byte for byte")
  func metacharacters() async throws {
    let tenant = try await TestTenant.make()
    let nasty = "Robert'); DROP TABLE accounts;-- \\ \"quoted\" % _ $1 😀👩‍👩‍👧 漢字"
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let auth = TestServer.auth(tenant.adminSecret)
      let created = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = nasty; $0.description_p = nasty + "\nline 2"
          }
        }, metadata: auth)
      let fetched = try await accounts.getAccount(.with { $0.id = created.id }, metadata: auth)
      #expect(Array(fetched.name.utf8) == Array(nasty.utf8))
      #expect(fetched.description_p == nasty + "\nline 2")
      let found = try await accounts.listAccounts(.with { $0.namePrefix = "robert'); drop" }, metadata: auth)
      #expect(found.accounts.map(\.id) == [created.id])
    }
  }

  @Test("a 10 MB string is refused and the server keeps serving")
  func hugeInput() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let auth = TestServer.auth(tenant.adminSecret)
      let huge = String(repeating: "x", count: 10 * 1024 * 1024)
      let failure = await code {
        try await accounts.createAccount(.with { $0.account = .with { $0.name = huge } }, metadata: auth)
      }
      #expect(failure == .invalidArgument, "got \(String(describing: failure))")
      // Past the transport's limit (16 MiB) the stream is refused before any handler runs.
      let oversized = String(repeating: "z", count: 20 * 1024 * 1024)
      #expect(
        await code {
          try await accounts.createAccount(.with { $0.account = .with { $0.description_p = oversized } }, metadata: auth)
        } != nil)
      let long = String(repeating: "y", count: 100_000)
      #expect(
        await code { try await accounts.createAccount(.with { $0.account = .with { $0.name = long } }, metadata: auth) }
          == .invalidArgument)
      #expect(
        try await accounts.createAccount(.with { $0.account = .with { $0.name = "Still up" } }, metadata: auth).name == "Still up"
      )
    }
  }
}

@Suite("Server: request ids")
struct RequestIDTests {
  @Test("the caller's x-request-id comes back on success and on error; without one the server makes one")
  func echoed() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      var metadata = TestServer.auth(tenant.adminSecret)
      metadata.addString("trace-123", forKey: "x-request-id")
      let echoed = try await accounts.createAccount(
        .with {
          $0.account = .with { $0.name = "Traced" }; $0.requestID = "create-1"
        }, metadata: metadata
      ) { response in
        Array(response.metadata[stringValues: "x-request-id"])
      }
      #expect(echoed == ["trace-123"])
      do {
        _ = try await accounts.getAccount(.with { $0.id = "bad" }, metadata: metadata)
        Issue.record("expected INVALID_ARGUMENT")
      } catch let error as RPCError {
        #expect(Array(error.metadata[stringValues: "x-request-id"]) == ["trace-123"])
      }
      let generated = try await accounts.listAccounts(.init(), metadata: TestServer.auth(tenant.adminSecret)) { response in
        Array(response.metadata[stringValues: "x-request-id"])
      }
      #expect(generated.count == 1)
      #expect(UUID(uuidString: generated[0]) != nil)
    }
  }
}

@Suite("Server: isolation between tenants and users")
struct IsolationRPCTests {
  @Test("a token of tenant B gets NOT_FOUND for tenant A's ids in get, list, history and updates")
  func tenantIsolation() async throws {
    let a = try await TestTenant.make("A")
    let b = try await TestTenant.make("B")
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let contacts = Crm_V1_ContactService.Client(wrapping: client)
      let changes = Crm_V1_ChangeService.Client(wrapping: client)
      let account = try await accounts.createAccount(
        .with {
          $0.account = .with {
            $0.name = "A's secret"; $0.tags = ["a-only"]
          }
        }, metadata: TestServer.auth(a.adminSecret))
      let contact = try await contacts.createContact(
        .with {
          $0.contact = .with {
            $0.lastName = "Secret"; $0.accountID = account.id
          }
        }, metadata: TestServer.auth(a.adminSecret))
      let bAuth = TestServer.auth(b.adminSecret)
      #expect(await code { try await accounts.getAccount(.with { $0.id = account.id }, metadata: bAuth) } == .notFound)
      #expect(await code { try await contacts.getContact(.with { $0.id = contact.id }, metadata: bAuth) } == .notFound)
      #expect(await code { try await accounts.batchGetAccounts(.with { $0.ids = [account.id] }, metadata: bAuth) } == .notFound)
      #expect(try await accounts.listAccounts(.with { $0.tag = "a-only" }, metadata: bAuth).accounts.isEmpty)
      #expect(try await accounts.listAccounts(.init(), metadata: bAuth).accounts.isEmpty)
      #expect(
        await code { try await accounts.listAccountContacts(.with { $0.accountID = account.id }, metadata: bAuth) } == .notFound)
      #expect(
        await code {
          try await changes.getRecordHistory(
            .with {
              $0.recordType = .account; $0.recordID = account.id
            }, metadata: bAuth)
        } == .notFound)
      #expect(await code { try await accounts.deleteAccount(.with { $0.id = account.id }, metadata: bAuth) } == .notFound)
      #expect(
        await code {
          try await accounts.updateAccount(
            .with {
              $0.account = .with {
                $0.id = account.id; $0.name = "pwned"
              }
              $0.updateMask = .with { $0.paths = ["name"] }
            }, metadata: bAuth)
        } == .notFound)
      #expect(
        await code {
          try await contacts.createContact(
            .with {
              $0.contact = .with {
                $0.lastName = "x"; $0.accountID = account.id
              }
            }, metadata: bAuth)
        } == .invalidArgument)
    }
  }

  @Test("a private record is invisible to a peer rep and visible to the owner's manager")
  func privateRecords() async throws {
    let tenant = try await TestTenant.make()
    let (manager, managerSecret) = try await tenant.makeUser(.manager)
    let team = try await tenant.makeTeam("Sales", manager: manager.userID)
    let (_, repSecret) = try await tenant.makeUser(.salesRep, team: team)
    let (_, peerSecret) = try await tenant.makeUser(.salesRep, team: team)
    try await TestServer.withClient { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let admin = Crm_V1_AdminService.Client(wrapping: client)
      _ = try await admin.setSharingRule(
        .with {
          $0.rule = .with {
            $0.recordType = .account; $0.mode = .private
          }
        }, metadata: TestServer.auth(tenant.adminSecret))
      let mine = try await accounts.createAccount(
        .with { $0.account = .with { $0.name = "Rep only" } }, metadata: TestServer.auth(repSecret))
      #expect(
        await code { try await accounts.getAccount(.with { $0.id = mine.id }, metadata: TestServer.auth(peerSecret)) }
          == .notFound)
      #expect(try await accounts.listAccounts(.init(), metadata: TestServer.auth(peerSecret)).accounts.isEmpty)
      #expect(try await accounts.getAccount(.with { $0.id = mine.id }, metadata: TestServer.auth(managerSecret)).id == mine.id)
      #expect(await code { try await admin.listUsers(.init(), metadata: TestServer.auth(repSecret)) } == .permissionDenied)
    }
  }

  @Test("a revoked token stops working at once")
  func revokedToken() async throws {
    let tenant = try await TestTenant.make()
    let (rep, _) = try await tenant.makeUser(.salesRep)
    try await TestServer.withClient { (client) async throws -> Void in
      let admin = Crm_V1_AdminService.Client(wrapping: client)
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let adminAuth = TestServer.auth(tenant.adminSecret)
      let minted = try await admin.createToken(
        .with {
          $0.userID = rep.userID.lowercasedString; $0.name = "laptop"
        }, metadata: adminAuth)
      #expect(try await accounts.listAccounts(.init(), metadata: TestServer.auth(minted.secret)).accounts.isEmpty)
      _ = try await admin.revokeToken(.with { $0.id = minted.token.id }, metadata: adminAuth)
      #expect(
        await code { try await accounts.listAccounts(.init(), metadata: TestServer.auth(minted.secret)) } == .unauthenticated)
      let tokens = try await admin.listTokens(.with { $0.userID = rep.userID.lowercasedString }, metadata: adminAuth)
      #expect(tokens.tokens.contains { $0.id == minted.token.id && $0.hasRevokeTime })
    }
  }
}

@Suite("Server: health and reflection")
struct PlatformRPCTests {
  @Test("health answers SERVING without a token; unknown services are NOT_FOUND")
  func health() async throws {
    try await TestServer.withClient { (client) async throws -> Void in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      #expect(try await health.check(.init()).status == .serving)
      #expect(try await health.check(.with { $0.service = "crm.v1.AccountService" }).status == .serving)
      #expect(await code { try await health.check(.with { $0.service = "nope.Service" }) } == .notFound)
    }
  }

  @Test("reflection lists the services and serves a file with its dependencies")
  func reflection() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { (client) async throws -> Void in
      let reflection = Grpc_Reflection_V1_ServerReflection.Client(wrapping: client)
      let answers = try await reflection.serverReflectionInfo(metadata: TestServer.auth(tenant.adminSecret)) { writer in
        try await writer.write(.with { $0.listServices = "" })
        try await writer.write(.with { $0.fileContainingSymbol = "crm.v1.AccountService.UpdateAccount" })
        try await writer.write(.with { $0.fileByFilename = "does/not/exist.proto" })
      } onResponse: { response in
        var collected: [Grpc_Reflection_V1_ServerReflectionResponse] = []
        for try await message in response.messages { collected.append(message) }
        return collected
      }
      #expect(answers.count == 3)
      let services = answers[0].listServicesResponse.service.map(\.name)
      #expect(services.contains("crm.v1.AccountService"))
      #expect(services.contains("grpc.health.v1.Health"))
      let files = try answers[1].fileDescriptorResponse.fileDescriptorProto.map {
        try Google_Protobuf_FileDescriptorProto(serializedBytes: $0)
      }
      #expect(files.first?.name == "crm/v1/accounts.proto")
      #expect(files.contains { $0.name == "google/protobuf/field_mask.proto" })
      #expect(answers[2].errorResponse.errorCode == Int32(RPCError.Code.notFound.rawValue))
    }
  }
}
