import ArgumentParser

/// crm: the command-line client for crmd.
@main
struct CRM: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crm",
    abstract: "Work with a crmd server from the command line.",
    discussion: """
      Set CRM_ADDRESS (default 127.0.0.1:50051) and CRM_TOKEN once, or pass --address and --token.
      Output is a table for people; add --json for scripts (one JSON object per record, snake_case).

      Examples:
        export CRM_TOKEN=$(cat crm-data/admin-token)
        crm accounts create --name "Acme Corp" --website acme.com --country US --phone "(415) 555-0100" --tag vip
        crm accounts list --name-prefix ac
        crm accounts update ID --industry Manufacturing --etag 1
        crm contacts create --first-name Ada --last-name Lovelace --account ID --email ada@acme.com
        crm accounts history ID --json

      Exit codes: 0 ok, 2 usage, 3 not found, 4 invalid input, 5 not authenticated or not allowed,
      6 conflict (stale etag, already exists, wrong state), 7 server or database unavailable, 1 other.
      """,
    subcommands: [
      Accounts.self, Contacts.self, Leads.self, CaptureCommand.self, ImportCommand.self, Interactions.self, Timeline.self,
      Duplicates.self, Pipelines.self, Opportunities.self, Pools.self, Assignment.self, Tasks.self, Tickets.self,
      ServiceCommand.self,
      SLACommands.self, Billing.self, Disputes.self, Collections.self, Customer360Command.self, ForecastCommand.self,
      SearchCommand.self, ScoringCommand.self, Changes.self,
      Webhooks.self,
      Rules.self, Approvals.self, Fields.self,
      Admin.self,
    ]
  )
}
