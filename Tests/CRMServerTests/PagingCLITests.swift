import CRMTestSupport
import Foundation
import Testing

@Suite("CLI: paging through lists")
struct PagingCLITests {
  /// The token of the `more: --page-token …` line `crm` wrote to standard error, if any.
  static func more(_ errors: String) -> String? {
    errors.split(separator: "\n").first { $0.hasPrefix("more: --page-token ") }.map {
      String($0.dropFirst("more: --page-token ".count))
    }
  }

  @Test("crm tickets list pages with --page-token; with --json the next token still comes, on standard error")
  func ticketsPage() async throws {
    let tenant = try await TestTenant.make()
    let server = try await runBlocking { try CrmdProcess.start() }
    defer { server.kill() }
    let token = tenant.adminSecret
    for number in 1...3 {
      let (status, _, errors) = try await RuleCLITests.crm(
        ["tickets", "create", "--subject", "Printer \(number) jammed"], server: server, token: token)
      #expect(status == 0, "\(errors)")
    }

    let (listed, first, firstErrors) = try await RuleCLITests.crm(
      ["tickets", "list", "--limit", "2", "--json"], server: server, token: token)
    let firstLines = first.split(separator: "\n")
    #expect(listed == 0 && firstLines.count == 2, "\(first)\(firstErrors)")
    #expect(try firstLines.allSatisfy { try JSONSerialization.jsonObject(with: Data($0.utf8)) is [String: Any] })
    let next = try #require(Self.more(firstErrors), "no next page token on standard error: \(firstErrors)")

    // `--page` (the billing commands' spelling) is the same option.
    let (paged, second, secondErrors) = try await RuleCLITests.crm(
      ["tickets", "list", "--limit", "2", "--json", "--page", next], server: server, token: token)
    let secondLines = second.split(separator: "\n")
    #expect(paged == 0 && secondLines.count == 1, "\(second)\(secondErrors)")
    #expect(Self.more(secondErrors) == nil, "the last page names no next one")
    #expect(!firstLines.contains(secondLines[0]))

    let (table, shown, tableErrors) = try await RuleCLITests.crm(
      ["tickets", "list", "--limit", "2", "--page-token", next], server: server, token: token)
    #expect(table == 0 && shown.contains("Printer 3 jammed") && !shown.contains("Printer 1 jammed"), "\(tableErrors)")
  }
}
