import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm fields …`: custom fields' definitions (docs/custom-fields.md).
struct Fields: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Custom fields: a tenant's own fields on leads, contacts, accounts, deals, tickets and invoices.",
    subcommands: [List.self, Show.self, Define.self, Archive.self, Restore.self])

  static let types: [String: Crm_V1_CustomFieldType] = [
    "text": .text, "long_text": .longText, "integer": .integer, "decimal": .decimal, "money": .money,
    "boolean": .boolean, "date": .date, "timestamp": .timestamp, "single_choice": .singleChoice,
    "multi_choice": .multiChoice, "email": .email, "phone": .phone, "url": .url, "reference": .reference,
  ]

  /// What the type column shows: `text(255)`, `decimal(2)`, `single_choice: a|b|c`, `reference: account`.
  static func describe(_ field: Crm_V1_CustomField) -> String {
    let name = Output.name(field.type)
    switch field.type {
    case .text: return "\(name)(\(field.maxLength))"
    case .decimal: return "\(name)(\(field.scale))"
    case .singleChoice, .multiChoice:
      return "\(name): " + field.options.map { $0.retired ? "(\($0.value))" : $0.value }.joined(separator: "|")
    case .reference: return "\(name): \(Output.name(field.referenceType))"
    default: return name
    }
  }

  static func show(_ field: Crm_V1_CustomField) {
    Output.printRecord([
      ("id", field.id), ("etag", field.etag), ("record type", Output.name(field.recordType)), ("api name", field.apiName),
      ("label", field.label), ("type", describe(field)),
      (
        "flags",
        [field.required ? "required" : nil, field.unique ? "unique" : nil, field.filterable ? "filterable" : nil]
          .compactMap { $0 }.joined(separator: ", ")
      ),
      ("default", field.hasDefaultValue ? value(field.defaultValue) : ""), ("help", field.helpText),
      ("archived", field.hasArchiveTime ? Output.time(field.archiveTime) : ""),
    ])
  }

  static func value(_ value: Crm_V1_CustomFieldValue) -> String {
    switch value.kind {
    case .textValue(let text): text
    case .integerValue(let number): String(number)
    case .decimalValue(let numeral): numeral
    case .moneyValue(let money): Output.money(money)
    case .boolValue(let flag): flag ? "true" : "false"
    case .dateValue(let date): String(format: "%04d-%02d-%02d", date.year, date.month, date.day)
    case .timestampValue(let time): Output.time(time)
    case .choiceValue(let choice): choice
    case .choicesValue(let choices): choices.values.joined(separator: "|")
    case .referenceValue(let id): id
    case nil: ""
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The custom fields, in the order they were defined.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Only this record type (lead, contact, account, opportunity, ticket, invoice).") var type: String?
    @Flag(help: "Archived fields too.") var archived = false

    func run() async throws {
      try await runReportingErrors {
        let recordType = try type.map(RecordTypeName.parse) ?? .unspecified
        let fields = try await client.withClient { grpc, metadata in
          try await Crm_V1_CustomFieldService.Client(wrapping: grpc).listCustomFields(
            .with {
              $0.recordType = recordType
              $0.includeArchived = archived
            }, metadata: metadata
          ).fields
        }
        if client.json { return try Output.printJSON(fields) }
        Output.printTable(
          ["ID", "RECORD", "API NAME", "LABEL", "FLAGS", "TYPE"],
          fields.map { field in
            [
              field.id, Output.name(field.recordType), field.apiName, field.label,
              [
                field.required ? "required" : nil, field.unique ? "unique" : nil, field.filterable ? "filterable" : nil,
                field.hasArchiveTime ? "archived" : nil,
              ].compactMap { $0 }.joined(separator: ","),
              Fields.describe(field),
            ]
          })
      }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One custom field (archived ones too).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let field = try await client.withClient { grpc, metadata in
          try await Crm_V1_CustomFieldService.Client(wrapping: grpc).getCustomField(.with { $0.id = id }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(field)) }
        Fields.show(field)
      }
    }
  }

  struct Define: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Define a custom field (admins).",
      discussion: """
        Examples:
          crm fields define lead fabric_grade --label "Fabric grade" --type single_choice --option a=Grade A --option b=Grade B
          crm fields define account annual_bolts --label "Annual bolt volume" --type integer --filterable
          crm fields define opportunity seats --label Seats --type decimal --scale 0 --required
          crm fields define contact renewal_owner --label "Renewal owner" --type reference --references contact
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "lead, contact, account, opportunity, ticket or invoice.") var recordType: String
    @Argument(help: "The API name: lower-case letters, digits and underscores (e.g. fabric_grade).") var apiName: String
    @Option(help: "What people see.") var label: String
    @Option(
      help:
        "text, long_text, integer, decimal, money, boolean, date, timestamp, single_choice, multi_choice, email, phone, url or reference."
    )
    var type: String
    @Option(help: "Text: the longest value (default 255).") var maxLength: Int32?
    @Option(help: "Decimal: digits after the point (default 2).") var scale: Int32?
    @Option(help: "Choices: VALUE or VALUE=LABEL; repeat for each option.") var option: [String] = []
    @Option(help: "Reference: the record type referred to.") var references: String?
    @Option(help: "A help text for forms.") var help: String?
    @Flag(help: "Every record must have a value.") var required = false
    @Flag(help: "No two records may share a value.") var unique = false
    @Flag(help: "Indexed for list filters and sorts.") var filterable = false

    func run() async throws {
      try await runReportingErrors {
        guard let fieldType = Fields.types[type] else {
          throw ValidationError("--type must be one of \(Fields.types.keys.sorted().joined(separator: ", "))")
        }
        var field = Crm_V1_CustomField()
        field.recordType = try RecordTypeName.parse(recordType)
        field.apiName = apiName
        field.label = label
        field.type = fieldType
        if let maxLength { field.maxLength = maxLength }
        if let scale { field.scale = scale }
        field.options = option.map { text in
          let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
          return .with {
            $0.value = parts[0]
            $0.label = parts.count > 1 ? parts[1] : parts[0]
          }
        }
        if let references { field.referenceType = try RecordTypeName.parse(references) }
        field.helpText = help ?? ""
        field.required = required
        field.unique = unique
        field.filterable = filterable
        let sent = field
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_CustomFieldService.Client(wrapping: grpc).createCustomField(
            .with { $0.field = sent }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(created)) }
        Fields.show(created)
      }
    }
  }

  struct Archive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Archive a custom field: hidden from forms and writes; its definition stays (admins).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let field = try await client.withClient { grpc, metadata in
          try await Crm_V1_CustomFieldService.Client(wrapping: grpc).archiveCustomField(
            .with { $0.id = id }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(field)) }
        Fields.show(field)
      }
    }
  }

  struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore an archived custom field (admins).")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let field = try await client.withClient { grpc, metadata in
          try await Crm_V1_CustomFieldService.Client(wrapping: grpc).restoreCustomField(
            .with { $0.id = id }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(field)) }
        Fields.show(field)
      }
    }
  }
}
