import CRMCore
import CRMProto
import CRMServer
import CRMStore
import CRMTestSupport
import Foundation
import GRPCCore
import Testing

@Suite("CLI: crm rules and crm approvals")
struct RuleCLITests {
  /// Runs `crm` with `arguments` against `server` to its end: exit status, standard output, standard error.
  static func crm(_ arguments: [String], server: CrmdProcess, token: String) async throws -> (Int32, String, String) {
    try await runBlocking {
      try ImportCLITests.CRMProcess.launch(arguments, server: server, token: token, capturingOutput: true).finishReading()
    }
  }

  /// The `id` of the first JSON object `crm … --json` printed.
  static func id(_ json: String) throws -> String {
    let line = try #require(json.split(separator: "\n").first)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    return try #require(object["id"] as? String)
  }

  @Test("a rule from the README's example acts on a new lead; a bad field exits 4; a lead is submitted, approved and shown")
  func rulesAndApprovals() async throws {
    let tenant = try await TestTenant.make()
    let server = try await runBlocking { try CrmdProcess.start() }
    defer { server.kill() }
    let token = tenant.adminSecret

    let (created, _, createErrors) = try await Self.crm(
      [
        "rules", "create", "--type", "lead", "--name", "Hot web leads", "--on", "create", "--when", "source = web_form",
        "--when", "company_size > 500", "--set", "status=working", "--tag", "hot", "--task", "Call within the hour",
        "--task-due-hours", "1", "--event", "hot_lead",
      ], server: server, token: token)
    #expect(created == 0, "\(createErrors)")
    let (listed, table, _) = try await Self.crm(["rules", "list"], server: server, token: token)
    #expect(listed == 0 && table.contains("source = web_form and company_size > 500"))
    #expect(table.contains("set status=working; tag hot; task \"Call within the hour\" due +1h; event hot_lead"))
    let (refused, _, reason) = try await Self.crm(
      ["rules", "create", "--type", "lead", "--name", "Bad", "--when", "salary > 5", "--tag", "x"], server: server, token: token)
    #expect(refused == 4 && reason.contains("rule.conditions[0].field"))

    let (_, leadJSON, _) = try await Self.crm(
      ["leads", "create", "--last-name", "Big", "--source", "web_form", "--company-size", "900", "--json"], server: server,
      token: token)
    let lead = try Self.id(leadJSON)
    let (_, shown, _) = try await Self.crm(["leads", "get", lead], server: server, token: token)
    #expect(shown.contains("working") && shown.contains("hot"))
    let (_, history, _) = try await Self.crm(["leads", "history", lead], server: server, token: token)
    #expect(history.contains("rule \"Hot web leads\"") && history.contains("event hot_lead"))

    // Switched off, the rule leaves the next lead alone; switched on again, it acts.
    let (_, rules, _) = try await Self.crm(["rules", "list", "--json"], server: server, token: token)
    let rule = try Self.id(rules)
    let (disabled, off, _) = try await Self.crm(["rules", "disable", rule], server: server, token: token)
    #expect(disabled == 0 && off.contains("active    no"))
    let (_, quietJSON, _) = try await Self.crm(
      ["leads", "create", "--last-name", "Quiet", "--source", "web_form", "--company-size", "900", "--json"], server: server,
      token: token)
    let (_, quiet, _) = try await Self.crm(["leads", "get", try Self.id(quietJSON)], server: server, token: token)
    #expect(!quiet.contains("working"))
    let (enabled, on, _) = try await Self.crm(["rules", "enable", rule], server: server, token: token)
    #expect(enabled == 0 && on.contains("active    yes"))

    // An approval process from a file, a submission, the queue, a decision.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("process-\(UUID().uuidString).json")
    defer { try? FileManager.default.removeItem(at: file) }
    try """
    {"recordType": "RECORD_TYPE_LEAD", "name": "Big leads",
     "entryConditions": [{"field": "company_size", "operator": "RULE_OPERATOR_GREATER_THAN", "value": 500}],
     "steps": [{"name": "Admin check", "userId": "\(tenant.admin.userID.lowercasedString)"}],
     "onApprove": [{"setField": {"field": "status", "value": "qualified"}}]}
    """.write(to: file, atomically: true, encoding: .utf8)
    let (defined, _, defineErrors) = try await Self.crm(
      ["approvals", "define", "--file", file.path], server: server, token: token)
    #expect(defined == 0, "\(defineErrors)")
    let (submitted, _, submitErrors) = try await Self.crm(
      ["approvals", "submit", "lead", lead, "--comment", "please"], server: server, token: token)
    #expect(submitted == 0, "\(submitErrors)")
    let (again, _, _) = try await Self.crm(["approvals", "submit", "lead", lead], server: server, token: token)
    #expect(again == 6, "a second pending request is a conflict")
    let (_, queue, _) = try await Self.crm(["approvals", "list", "--json"], server: server, token: token)
    let request = try Self.id(queue)
    let (approved, decided, _) = try await Self.crm(
      ["approvals", "approve", request, "--comment", "ok"], server: server, token: token)
    #expect(approved == 0 && decided.contains("approved: ok"))
    let (_, after, _) = try await Self.crm(["leads", "get", lead], server: server, token: token)
    #expect(after.contains("qualified"))
    let (_, requests, _) = try await Self.crm(["approvals", "history", "lead", lead], server: server, token: token)
    #expect(requests.contains("Big leads") && requests.contains("approved"))
  }

  @Test("crm assignment create defines a team rotation a trigger rule's --assign routes through; delete removes it")
  func assignmentFromTheCLI() async throws {
    let tenant = try await TestTenant.make()
    let (alice, _) = try await tenant.makeUser(.salesRep)
    let (bob, _) = try await tenant.makeUser(.salesRep)
    let server = try await runBlocking { try CrmdProcess.start() }
    defer { server.kill() }
    let token = tenant.adminSecret
    let (refused, _, why) = try await Self.crm(
      ["assignment", "create", "--type", "lead", "--name", "Nobody", "--user", alice.userID.lowercasedString, "--pool", "x"],
      server: server, token: token)
    #expect(refused != 0 && why.contains("exactly one of"))
    let (created, rule, createErrors) = try await Self.crm(
      [
        "assignment", "create", "--type", "lead", "--name", "Banking team", "--industry", "banking",
        "--member", alice.userID.lowercasedString + ":2", "--member", bob.userID.lowercasedString, "--cap", "50",
      ], server: server, token: token)
    #expect(created == 0 && rule.contains("Banking team"), "\(createErrors)")
    let (_, listed, _) = try await Self.crm(["assignment", "list"], server: server, token: token)
    #expect(listed.contains("industry banking") && listed.contains("×2"))
    _ = try await Self.crm(
      ["rules", "create", "--type", "lead", "--name", "Route banks", "--on", "update", "--when", "industry changed", "--assign"],
      server: server, token: token)
    let (_, leadJSON, _) = try await Self.crm(
      ["leads", "create", "--last-name", "Vault", "--json"], server: server, token: token)
    let lead = try Self.id(leadJSON)
    let (updated, shown, _) = try await Self.crm(
      ["leads", "update", lead, "--industry", "Banking"], server: server, token: token)
    #expect(updated == 0 && shown.contains(alice.userID.lowercasedString), "the heavier member takes the first turn")

    let (_, rules, _) = try await Self.crm(["assignment", "list", "--json"], server: server, token: token)
    let (deleted, _, _) = try await Self.crm(["assignment", "delete", try Self.id(rules)], server: server, token: token)
    #expect(deleted == 0)
    let (_, empty, _) = try await Self.crm(["assignment", "list", "--json"], server: server, token: token)
    #expect(empty.isEmpty)
  }
}
