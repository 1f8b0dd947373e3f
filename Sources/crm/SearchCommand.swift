import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm search TEXT`: one box across leads, contacts, accounts, deals, tickets and invoices.
struct SearchCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "search",
    abstract:
      "Find leads, contacts, accounts, deals, tickets and invoices by name, company, email, phone, domain, subject or number.",
    discussion: """
      Case and accents do not matter, Chinese and Japanese names match by substring, a phone number
      matches in any format, a small typo still finds the word, an invoice is found by its number or
      the number's beginning. Only what you may see is searched.

      Examples:
        crm search "muller"
        crm search 销售易 --type account --type lead
        crm search "+1 (415) 555-0100"
        crm search "#1042"
        crm search INV-2027 --type invoice
      """)

  @OptionGroup var client: ClientOptions
  @Argument(help: "What to look for (2 to 200 characters).") var text: String
  @Option(
    name: .customLong("type"), help: "account, contact, lead, opportunity, ticket or invoice; repeat for several (default all).")
  var types: [String] = []
  @Option(help: "Results per page (1-100).") var limit: Int32 = 20
  @OptionGroup var paging: PageOption

  func run() async throws {
    try await runReportingErrors {
      let recordTypes = try types.map(RecordTypeName.parse)
      let response = try await client.withClient { grpc, metadata in
        try await Crm_V1_SearchService.Client(wrapping: grpc).search(
          .with {
            $0.query = text
            $0.recordTypes = recordTypes
            $0.pageSize = limit
            $0.pageToken = paging.pageToken
          }, metadata: metadata)
      }
      if response.sampled {
        Output.note(
          "over 1,000 records of a type hold \"\(text)\": these are the best of the first 1,000; a longer query narrows them")
      }
      Output.more(response.nextPageToken)
      if client.json { return try Output.printJSON(response.results) }
      Output.printTable(
        ["Type", "ID", "Name", "Detail"],
        response.results.map { result in
          switch result.record {
          case .lead(let l):
            ["lead", l.id, [l.firstName, l.lastName].filter { !$0.isEmpty }.joined(separator: " "), l.company]
          case .contact(let c):
            [
              "contact", c.id, [c.firstName, c.lastName].filter { !$0.isEmpty }.joined(separator: " "),
              c.emails.first?.address ?? "",
            ]
          case .account(let a): ["account", a.id, a.name, a.domain]
          case .opportunity(let d): ["opportunity", d.id, d.name, d.hasAmount ? Output.money(d.amount) : ""]
          case .ticket(let t): ["ticket", t.id, "#\(t.number) \(t.subject)", Output.name(t.status)]
          case .invoice(let i): ["invoice", i.id, i.number, "\(Output.money(i.total)) \(Output.name(i.state))"]
          case nil: ["", "", "", ""]
          }
        })
    }
  }
}
