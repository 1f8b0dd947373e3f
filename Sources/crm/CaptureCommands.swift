import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm capture …`
struct CaptureCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "capture",
    abstract: "Capture leads from web forms, emails and calls; manage capture keys.",
    discussion: """
      A capture creates a lead, or logs the message on the lead or contact it comes from. Sending the same
      form, email (Message-ID) or --message-id again changes nothing. Works with a full token or a capture
      key for the channel (CRM_TOKEN=<key secret>).
      """,
    subcommands: [Form.self, Email.self, Call.self, Keys.self])

  static let channels: [String: Crm_V1_LeadSource] = [
    "web-form": .webForm, "email": .email, "phone": .phone, "chat": .chat, "event": .event, "partner": .partner,
  ]

  /// Options every capture shares.
  struct Common: ParsableArguments {
    @Option(help: "The channel's own message id (makes re-sending idempotent).") var messageID: String?
    @Option(help: "Campaign for a new lead.") var campaign: String?
    @Option(help: "A tag for a new lead; repeat for several.") var tag: [String] = []
    @Option(help: "ISO 3166-1 country, to read local phone numbers, e.g. US.") var region: String?

    func apply(to request: inout Crm_V1_CaptureLeadRequest) {
      request.messageID = messageID ?? ""
      request.campaign = campaign ?? ""
      request.tags = tag
      request.regionCode = region ?? ""
    }
  }

  static func send(_ request: Crm_V1_CaptureLeadRequest, client: ClientOptions) async throws {
    let response = try await client.withClient { grpc, metadata in
      try await Crm_V1_CaptureService.Client(wrapping: grpc).captureLead(request, metadata: metadata)
    }
    if client.json { return print(try Output.json(response)) }
    let what: String
    switch response.outcome {
    case .createdLead: what = "created lead \(response.record.recordID)"
    case .loggedOnLead: what = "logged on lead \(response.record.recordID)"
    case .loggedOnContact: what = "logged on contact \(response.record.recordID)"
    case .accepted, .unspecified, .UNRECOGNIZED: what = "accepted"
    }
    print("\(what) (interaction \(response.interactionID)\(response.replayed ? ", already captured before" : ""))")
  }

  struct Form: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Capture a web-form submission.",
      discussion:
        "Example: crm capture form --field email=ada@example.com --field name=\"Ada Lovelace\" --form-name \"Contact us\"")
    @OptionGroup var client: ClientOptions
    @OptionGroup var common: Common
    @Option(help: "A submitted field as name=value; repeat.") var field: [String] = []
    @Option(help: "Map a form field onto a lead field as name=lead_field; repeat.") var map: [String] = []
    @Option(help: "The form's name (the lead's source detail).") var formName: String?
    @Option(help: "The page the form was on.") var pageURL: String?

    func run() async throws {
      try await runReportingErrors {
        let fields = try keyValuePairs(field, option: "--field", form: "NAME=VALUE")
        let fieldMap = try keyValuePairs(map, option: "--map", form: "FORM_FIELD=LEAD_FIELD")
        var request = Crm_V1_CaptureLeadRequest()
        common.apply(to: &request)
        request.webForm = .with {
          $0.fields = fields
          $0.fieldMap = fieldMap
          $0.formName = formName ?? ""
          $0.pageURL = pageURL ?? ""
        }
        try await CaptureCommand.send(request, client: client)
      }
    }

    func validate() throws {
      _ = try keyValuePairs(field, option: "--field", form: "NAME=VALUE")
      _ = try keyValuePairs(map, option: "--map", form: "FORM_FIELD=LEAD_FIELD")
    }
  }

  struct Email: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Capture a raw RFC 5322 email (a .eml file, or - for stdin): a lead, or with --support a ticket.",
      discussion: "Examples: crm capture email message.eml; crm capture email --support reply.eml")
    @OptionGroup var client: ClientOptions
    @OptionGroup var common: Common
    @Argument(help: "The message file, or - to read standard input.") var file: String
    @Flag(help: "Support mail: a new ticket, or a comment on the ticket it threads onto (not a lead).") var support = false

    func run() async throws {
      try await runReportingErrors {
        let data: Data
        if file == "-" {
          data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
          guard let read = FileManager.default.contents(atPath: file) else {
            throw CLIError(message: "cannot read \(file)", code: 2)
          }
          data = read
        }
        if support {
          let result = try await client.withClient { grpc, metadata in
            try await Crm_V1_CaptureService.Client(wrapping: grpc).captureSupportEmail(
              .with { $0.email = .with { $0.raw = data } }, metadata: metadata)
          }
          if client.json { return print(try Output.json(result)) }
          print("\(Output.name(result.outcome)): ticket #\(result.ticket.number) \(result.ticket.id)")
          return
        }
        var request = Crm_V1_CaptureLeadRequest()
        common.apply(to: &request)
        request.email = .with { $0.raw = data }
        try await CaptureCommand.send(request, client: client)
      }
    }
  }

  struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Capture a phone call.",
      discussion: "Example: crm capture call --from \"+1 415 555 0132\" --name \"Sam Caller\" --minutes 3 --summary \"pricing\"")
    @OptionGroup var client: ClientOptions
    @OptionGroup var common: Common
    @Option(help: "The caller's number.") var from: String
    @Option(help: "The caller's name.") var name: String?
    @Option(help: "The number dialled.") var to: String?
    @Option(help: "How long, in minutes.") var minutes: Int32?
    @Option(help: "Notes or a transcript.") var summary: String?

    func run() async throws {
      try await runReportingErrors {
        var request = Crm_V1_CaptureLeadRequest()
        common.apply(to: &request)
        request.phoneCall = .with {
          $0.callerNumber = from
          $0.callerName = name ?? ""
          $0.calledNumber = to ?? ""
          if let minutes { $0.durationSeconds = minutes * 60 }
          $0.summary = summary ?? ""
        }
        try await CaptureCommand.send(request, client: client)
      }
    }
  }

  struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Capture keys: tokens that may only capture leads for one channel (admins).",
      subcommands: [Create.self, List.self, Revoke.self])

    static func printKeys(_ keys: [Crm_V1_CaptureKey], json: Bool) throws {
      if json { return try Output.printJSON(keys) }
      Output.printTable(
        ["ID", "NAME", "CHANNEL", "PER MINUTE", "OWNER", "CREATED", "REVOKED", "LAST USED"],
        keys.map {
          [
            $0.id, $0.name, Output.name($0.channel), String($0.rateLimitPerMinute), $0.ownerID, Output.time($0.createTime),
            $0.hasRevokeTime ? Output.time($0.revokeTime) : "", $0.hasLastUseTime ? Output.time($0.lastUseTime) : "",
          ]
        })
    }

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Issue a capture key; prints the secret once.",
        discussion: "Example: crm capture keys create --channel web-form --name \"pricing page\" --per-minute 30")
      @OptionGroup var client: ClientOptions
      @Option(help: "web-form, email, phone, chat, event or partner.") var channel: String
      @Option(help: "A label.") var name: String = ""
      @Option(help: "The user captured leads belong to (default: you).") var owner: String?
      @Option(help: "Calls allowed per minute.") var perMinute: Int32 = 60
      @Option(help: "Expire after this many days.") var expiresInDays: Int?
      @Flag(help: "A support key (--channel email): it captures support mail into tickets only.") var support = false

      func validate() throws {
        guard CaptureCommand.channels[channel] != nil else {
          throw ValidationError("--channel must be one of \(CaptureCommand.channels.keys.sorted().joined(separator: ", "))")
        }
      }

      func run() async throws {
        try await runReportingErrors {
          let request = Crm_V1_CreateCaptureKeyRequest.with {
            $0.channel = CaptureCommand.channels[channel]!
            $0.name = name
            $0.ownerID = owner ?? ""
            $0.rateLimitPerMinute = perMinute
            $0.support = support
            if let days = expiresInDays {
              $0.expireTime = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(Double(days) * 86_400))
            }
          }
          let response = try await client.withClient { grpc, metadata in
            try await Crm_V1_CaptureService.Client(wrapping: grpc).createCaptureKey(request, metadata: metadata)
          }
          if client.json { return print(try Output.json(response)) }
          FileHandle.standardError.write(
            Data("capture key \(response.key.id) (store the secret now; it is not shown again)\n".utf8))
          print(response.secret)
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "List capture keys (never their secrets).")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let keys = try await client.withClient { grpc, metadata in
            try await Crm_V1_CaptureService.Client(wrapping: grpc).listCaptureKeys(.init(), metadata: metadata).keys
          }
          try Keys.printKeys(keys, json: client.json)
        }
      }
    }

    struct Revoke: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Revoke a capture key.")
      @OptionGroup var client: ClientOptions
      @Argument(help: "The key id.") var id: String

      func run() async throws {
        try await runReportingErrors {
          let key = try await client.withClient { grpc, metadata in
            try await Crm_V1_CaptureService.Client(wrapping: grpc).revokeCaptureKey(.with { $0.id = id }, metadata: metadata)
          }
          try Keys.printKeys([key], json: client.json)
        }
      }
    }
  }
}
