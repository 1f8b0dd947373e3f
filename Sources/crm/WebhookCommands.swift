import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm webhooks`: the change feed pushed to HTTP endpoints, signed (docs/webhooks.md).
struct Webhooks: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "webhooks", abstract: "Send changes to your HTTP endpoints, signed, in order, with retries.",
    subcommands: [Create.self, List.self, Get.self, Update.self, Delete.self, RotateSecret.self, Deliveries.self, Redeliver.self])

  static func print(_ webhooks: [Crm_V1_Webhook], json: Bool) throws {
    if json { return try Output.printJSON(webhooks) }
    Output.printTable(
      ["ID", "URL", "EVENTS", "ACTIVE", "CURSOR", "NEXT ATTEMPT"],
      webhooks.map {
        [
          $0.id, $0.url, $0.eventTypes.joined(separator: ","), $0.active ? "yes" : "no (\($0.disabledReason))", $0.cursor,
          Output.time($0.nextAttemptTime),
        ]
      })
  }

  static func printOne(_ webhook: Crm_V1_Webhook, json: Bool) throws {
    if json { return Swift.print(try Output.json(webhook)) }
    Output.printRecord([
      ("id", webhook.id), ("etag", webhook.etag), ("url", webhook.url), ("description", webhook.description_p),
      ("events", webhook.eventTypes.joined(separator: ", ")), ("changed fields", webhook.changedFields.joined(separator: ", ")),
      ("skip origins", webhook.skipOrigins.joined(separator: ", ")), ("active", webhook.active ? "yes" : "no"),
      ("disabled because", webhook.disabledReason), ("owner", webhook.ownerID), ("cursor", webhook.cursor),
      ("next attempt", Output.time(webhook.nextAttemptTime)),
      ("old secret signs until", Output.time(webhook.previousSecretExpireTime)), ("created", Output.time(webhook.createTime)),
    ])
  }

  /// Prints a secret where a person will see it once.
  static func reveal(_ secret: String) {
    // On one stdout line with its label, after the subscription: a person reading the terminal sees
    // what it is; a script takes `--json`.
    Swift.print("\nsigning secret (shown only now; verify deliveries with it): \(secret)")
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Subscribe an endpoint to changes; prints its signing secret, shown only now.",
      discussion: """
        Event types are RECORD.VERB — RECORD one of account, contact, lead, interaction, opportunity, task,
        ticket; VERB one of created, updated, archived, restored, merged, event (a trigger rule's custom event) —
        or * in either half.

        Example: crm webhooks create https://hooks.example.com/crm --event 'lead.*' --event ticket.updated
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The endpoint's http(s) URL.") var url: String
    @Option(name: .customLong("event"), help: "An event type pattern (repeatable; default: *).") var events: [String] = []
    @Option(help: "What it is for.") var description = ""
    @Option(name: .customLong("changed-field"), help: "Send updates only when this field changed (repeatable).")
    var changedFields: [String] = []
    @Option(name: .customLong("skip-origin"), help: "Do not send changes made with this x-client-origin (repeatable).")
    var skipOrigins: [String] = []
    @Option(name: .customLong("from"), help: "Replay from this change-feed cursor (default: only what changes from now on).")
    var startCursor = ""
    @Flag(help: "Create it turned off.") var inactive = false

    func run() async throws {
      try await runReportingErrors {
        let request = Crm_V1_CreateWebhookRequest.with {
          $0.webhook = .with {
            $0.url = url
            $0.eventTypes = events.isEmpty ? ["*"] : events
            $0.description_p = description
            $0.changedFields = changedFields
            $0.skipOrigins = skipOrigins
            $0.active = !inactive
          }
          $0.startCursor = startCursor
        }
        let created = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).createWebhook(request, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(created)) }
        try Webhooks.printOne(created.webhook, json: false)
        Webhooks.reveal(created.secret)
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Your tenant's webhooks (an integration user's own).")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await runReportingErrors {
        let list = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).listWebhooks(.init(), metadata: metadata)
        }
        try Webhooks.print(list.webhooks, json: client.json)
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One webhook: where it is in the feed, why it is off.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        let webhook = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).getWebhook(.with { $0.id = id }, metadata: metadata)
        }
        try Webhooks.printOne(webhook, json: client.json)
      }
    }
  }

  struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change a webhook; --enable turns it back on and retries the event it stopped at.",
      discussion: "Only the options given change. Example: crm webhooks update ID --enable")
    @OptionGroup var client: ClientOptions
    @Argument var id: String
    @Option var url: String?
    @Option var description: String?
    @Option(name: .customLong("event"), help: "Replace the event types (repeatable).") var events: [String] = []
    @Option(name: .customLong("changed-field"), help: "Replace the changed-field filter (repeatable).") var changedFields:
      [String] = []
    @Flag(help: "Clear the changed-field filter.") var anyField = false
    @Option(name: .customLong("skip-origin"), help: "Replace the skipped origins (repeatable).") var skipOrigins: [String] = []
    @Flag(help: "Turn it on.") var enable = false
    @Flag(help: "Turn it off.") var disable = false
    @Option(help: "Only if it still has this etag.") var etag = ""

    func validate() throws {
      if enable && disable { throw ValidationError("--enable and --disable exclude each other") }
      if anyField && !changedFields.isEmpty { throw ValidationError("--any-field and --changed-field exclude each other") }
    }

    func run() async throws {
      try await runReportingErrors {
        var paths: [String] = []
        var webhook = Crm_V1_Webhook.with {
          $0.id = id
          $0.etag = etag
        }
        if let url {
          webhook.url = url
          paths.append("url")
        }
        if let description {
          webhook.description_p = description
          paths.append("description")
        }
        if !events.isEmpty {
          webhook.eventTypes = events
          paths.append("event_types")
        }
        if !changedFields.isEmpty || anyField {
          webhook.changedFields = changedFields
          paths.append("changed_fields")
        }
        if !skipOrigins.isEmpty {
          webhook.skipOrigins = skipOrigins
          paths.append("skip_origins")
        }
        if enable || disable {
          webhook.active = enable
          paths.append("active")
        }
        guard !paths.isEmpty else { throw ValidationError("nothing to change: give at least one option") }
        let request = Crm_V1_UpdateWebhookRequest.with {
          $0.webhook = webhook
          $0.updateMask = .with { $0.paths = paths }
        }
        let updated = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).updateWebhook(request, metadata: metadata)
        }
        try Webhooks.printOne(updated, json: client.json)
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a webhook and its delivery history.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
      try await runReportingErrors {
        _ = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).deleteWebhook(.with { $0.id = id }, metadata: metadata)
        }
      }
    }
  }

  struct RotateSecret: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rotate-secret",
      abstract: "A new signing secret; the old one keeps signing beside it for the grace period.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String
    @Option(help: "Seconds the old secret keeps signing (default 86400; 0 stops it at once; at most 604800).")
    var grace: Int32?

    func run() async throws {
      try await runReportingErrors {
        let request = Crm_V1_RotateWebhookSecretRequest.with {
          $0.id = id
          if let grace { $0.gracePeriodSeconds = grace }
        }
        let rotated = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).rotateWebhookSecret(request, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(rotated)) }
        try Webhooks.printOne(rotated.webhook, json: false)
        Webhooks.reveal(rotated.secret)
      }
    }
  }

  struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "A webhook's deliveries, newest first; --dead lists the dead letters.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String
    @Flag(help: "Only dead letters (every attempt failed).") var dead = false
    @Flag(help: "Only deliveries waiting for their next attempt.") var pending = false
    @Option(help: "At most this many.") var limit: Int32 = 50
    @OptionGroup var paging: PageOption

    func run() async throws {
      try await runReportingErrors {
        var statuses: [Crm_V1_WebhookDeliveryStatus] = []
        if dead { statuses.append(.dead) }
        if pending { statuses.append(.pending) }
        let request = Crm_V1_ListWebhookDeliveriesRequest.with {
          $0.webhookID = id
          $0.statuses = statuses
          $0.pageSize = limit
          $0.pageToken = paging.pageToken
        }
        let page = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).listWebhookDeliveries(request, metadata: metadata)
        }
        Output.more(page.nextPageToken)
        if client.json { return try Output.printJSON(page.deliveries) }
        Output.printTable(
          ["DELIVERY", "EVENT", "TYPE", "RECORD", "STATUS", "TRIES", "HTTP", "MS", "NEXT ATTEMPT", "ERROR"],
          page.deliveries.map {
            [
              $0.id, $0.eventCursor, $0.eventType, $0.recordID,
              Output.name($0.status) + ($0.redelivery ? " (redelivery)" : ""), String($0.attempts),
              $0.responseStatus == 0 ? "-" : String($0.responseStatus), String($0.latencyMs), Output.time($0.nextAttemptTime),
              $0.error,
            ]
          })
      }
    }
  }

  struct Redeliver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send a delivery's event again now, once (same webhook-id), and print how it went.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The webhook.") var id: String
    @Argument(help: "The delivery (see `crm webhooks deliveries`).") var delivery: String

    func run() async throws {
      try await runReportingErrors {
        let again = try await client.withClient { grpc, metadata in
          try await Crm_V1_WebhookService.Client(wrapping: grpc).redeliverWebhook(
            .with {
              $0.webhookID = id
              $0.deliveryID = delivery
            }, metadata: metadata)
        }
        if client.json { return Swift.print(try Output.json(again)) }
        Output.printRecord([
          ("delivery", again.id), ("event", again.eventCursor), ("status", Output.name(again.status)),
          ("http", again.responseStatus == 0 ? "none" : String(again.responseStatus)), ("ms", String(again.latencyMs)),
          ("error", again.error),
        ])
      }
    }
  }
}
