import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm duplicates …`
struct Duplicates: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Find likely duplicates across leads, contacts and accounts; show and set the duplicate rules.",
    subcommands: [Find.self, Rules.self, SetRule.self])

  static let actions: [String: Crm_V1_DuplicateAction] = ["allow": .allow, "warn": .warn, "block": .block]
  static let recordTypes: [String: Crm_V1_RecordType] = ["lead": .lead, "contact": .contact, "account": .account]

  /// The matches, one per line: type, id, name, score and why.
  static func describe(_ matches: [Crm_V1_DuplicateMatch]) -> [String] {
    matches.map { match in
      let why = match.reasons.map {
        "\($0.key) \($0.kind == .similar ? String(format: "~%.2f", $0.similarity) : "=") \($0.value)"
      }
      return "  \(Output.name(match.recordType)) \(match.recordID) \(match.displayName) "
        + "(score \(String(format: "%.2f", match.score)): \(why.joined(separator: "; ")))"
    }
  }

  /// Prints a create's duplicate warning on stderr (the record itself went to stdout).
  static func warn(_ findings: Crm_V1_DuplicateFindings, json: Bool) {
    let count = findings.matches.count + Int(findings.hiddenMatchCount)
    guard count > 0, !json else { return }
    var lines = ["warning: created, but it looks like \(count) existing record(s):"] + describe(findings.matches)
    if findings.hiddenMatchCount > 0 { lines.append("  and \(findings.hiddenMatchCount) you cannot see") }
    FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
  }

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
    @Option(help: "Registration id (unified social credit code, VAT id).") var registrationID: String?
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
            $0.registrationID = registrationID ?? ""
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

  struct Rules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the duplicate rule of each record type.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let rules = try await client.withClient { grpc, metadata in
          try await Crm_V1_DuplicateService.Client(wrapping: grpc).listDuplicateRules(.init(), metadata: metadata).rules
        }
        if client.json { return try Output.printJSON(rules) }
        Output.printTable(
          ["TYPE", "ACTION", "MIN SCORE", "KEYS", "LOOKS IN", "PLUS TAGS"],
          rules.map { rule in
            [
              Output.name(rule.recordType), Output.name(rule.action), String(format: "%.2f", rule.minScore),
              rule.matchKeys.joined(separator: ","), rule.matchRecordTypes.map { Output.name($0) }.joined(separator: ","),
              rule.ignorePlusTags ? "ignored" : "kept",
            ]
          })
      }
    }
  }

  struct SetRule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "set-rule",
      abstract: "Set what creating, capturing or importing a likely duplicate does (admins only).",
      discussion: """
        Example: crm duplicates set-rule --type lead --action block --key email --key phone --min-score 0.8
        """)
    @OptionGroup var client: ClientOptions
    @Option(help: "The record type written: lead, contact or account.") var type: String
    @Option(help: "allow, warn or block.") var action: String
    @Option(help: "A key that counts (email, phone, domain, company_name, person_name); repeat. Default: all.")
    var key: [String] = []
    @Option(help: "Where to look (lead, contact, account); repeat. Default: all three.") var lookIn: [String] = []
    @Option(help: "Matches scoring below this (0-1) do not count.") var minScore: Double = 0.8
    @Flag(help: "Treat name+tag@domain as name@domain.") var ignorePlusTags = false

    func run() async throws {
      try await runReportingErrors {
        guard let recordType = Duplicates.recordTypes[type] else {
          throw CLIError(message: "--type must be lead, contact or account", code: 2)
        }
        guard let ruleAction = Duplicates.actions[action] else {
          throw CLIError(message: "--action must be allow, warn or block", code: 2)
        }
        let types = try lookIn.map { name in
          guard let type = Duplicates.recordTypes[name] else {
            throw CLIError(message: "--look-in must be lead, contact or account", code: 2)
          }
          return type
        }
        let request = Crm_V1_SetDuplicateRuleRequest.with {
          $0.rule = .with {
            $0.recordType = recordType
            $0.action = ruleAction
            $0.matchKeys = key
            $0.matchRecordTypes = types
            $0.minScore = minScore
            $0.ignorePlusTags = ignorePlusTags
          }
        }
        let rule = try await client.withClient { grpc, metadata in
          try await Crm_V1_DuplicateService.Client(wrapping: grpc).setDuplicateRule(request, metadata: metadata)
        }
        if client.json { return print(try Output.json(rule)) }
        print(
          "\(Output.name(rule.recordType)): \(Output.name(rule.action)) from score \(rule.minScore) on \(rule.matchKeys.joined(separator: ", "))"
        )
      }
    }
  }
}

/// `--duplicate-action` for the create commands.
struct DuplicateActionOption: ParsableArguments {
  @Option(
    name: .customLong("duplicate-action"),
    help: "Override the tenant's duplicate rule: allow (you have checked), warn or block.")
  var name: String?

  func validate() throws {
    if let name, Duplicates.actions[name] == nil {
      throw ValidationError("--duplicate-action must be allow, warn or block")
    }
  }

  var action: Crm_V1_DuplicateAction { name.flatMap { Duplicates.actions[$0] } ?? .unspecified }
}
