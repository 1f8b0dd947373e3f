import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm duplicates …`
struct Duplicates: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Find likely duplicates across leads, contacts and accounts.",
    subcommands: [Find.self])

  struct Find: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Matches for a would-be record, or for an existing one (--lead/--contact/--account ID), best first.",
      discussion: """
        Examples:
          crm duplicates find --email grace@navy.example --company "Navy Labs" --ignore-plus-tags
          crm duplicates find --contact CONTACT_ID --min-score 0.3
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "First name.") var firstName: String?
    @Option(help: "Last name.") var lastName: String?
    @Option(help: "Company.") var company: String?
    @Option(help: "Email; repeat for several.") var email: [String] = []
    @Option(help: "Phone; repeat for several.") var phone: [String] = []
    @Option(help: "Website or domain.") var website: String?
    @Option(help: "Country for phones without +.") var region: String?
    @Option(help: "An existing lead's id.") var lead: String?
    @Option(help: "An existing contact's id.") var contact: String?
    @Option(help: "An existing account's id.") var account: String?
    @Option(help: "Leave out matches scoring below this (0-1).") var minScore: Double = 0.5
    @Option(help: "At most this many matches (1-100).") var limit: Int32 = 20
    @Flag(help: "Treat name+tag@domain as name@domain.") var ignorePlusTags = false

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_FindDuplicatesRequest()
        let references: [(String?, Crm_V1_RecordType)] = [(lead, .lead), (contact, .contact), (account, .account)]
        if let (id, type) = references.first(where: { $0.0 != nil }) {
          request.record = .with {
            $0.recordType = type; $0.recordID = id!
          }
        } else {
          request.candidate = .with {
            $0.firstName = firstName ?? ""
            $0.lastName = lastName ?? ""
            $0.company = company ?? ""
            $0.emails = email
            $0.phones = phone
            $0.website = website ?? ""
            $0.regionCode = region ?? ""
          }
        }
        request.minScore = minScore
        request.maxMatches = limit
        request.ignorePlusTags = ignorePlusTags
        let response = try await client.withClient { grpc, metadata in
          try await Crm_V1_DuplicateService.Client(wrapping: grpc).findDuplicates(request, metadata: metadata)
        }
        if client.json { return try Output.printJSON(response.matches) }
        Output.printTable(
          ["TYPE", "ID", "NAME", "SCORE", "WHY"],
          response.matches.map { match in
            [
              Output.name(match.recordType), match.recordID, match.displayName, String(format: "%.2f", match.score),
              match.reasons.map { "\($0.key) \($0.kind == .similar ? String(format: "~%.2f", $0.similarity) : "=") \($0.value)" }
                .joined(separator: "; "),
            ]
          })
      }
    }
  }
}
