import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import SwiftProtobuf

/// `crm admin …`: users, teams, tokens, tenants and sharing (admin role).
struct Admin: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Manage users, teams, tokens, tenants and sharing (needs an admin token).",
    subcommands: [Users.self, Teams.self, Tokens.self, Tenants.self, Sharing.self, FieldSecurityCommand.self])

  static func role(_ text: String) throws -> Crm_V1_Role {
    let roles: [String: Crm_V1_Role] = [
      "admin": .admin, "manager": .manager, "sales_rep": .salesRep, "service_agent": .serviceAgent, "integration": .integration,
      "collector": .collector,
    ]
    guard let role = roles[text] else {
      throw ValidationError("--role must be one of \(roles.keys.sorted().joined(separator: ", "))")
    }
    return role
  }

  static func printUsers(_ users: [Crm_V1_User], json: Bool) throws {
    if json { return try Output.printJSON(users) }
    Output.printTable(
      ["ID", "EMAIL", "NAME", "ROLE", "TEAM", "ACTIVE"],
      users.map {
        [$0.id, $0.email, $0.displayName, Output.name($0.role), String($0.teamID.prefix(8)), $0.active ? "yes" : "no"]
      })
  }

  static func printTokens(_ tokens: [Crm_V1_Token], json: Bool) throws {
    if json { return try Output.printJSON(tokens) }
    Output.printTable(
      ["ID", "USER", "NAME", "CREATED", "EXPIRES", "REVOKED", "LAST USED"],
      tokens.map {
        [
          $0.id, String($0.userID.prefix(8)), $0.name, Output.time($0.createTime), Output.time($0.expireTime),
          Output.time($0.revokeTime), Output.time($0.lastUseTime),
        ]
      })
  }
}

extension Admin {
  struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Users.", subcommands: [Create.self, List.self, Update.self])

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Create a user.",
        discussion: "Example: crm admin users create --email rep@acme.com --role sales_rep --team TEAM_ID")
      @OptionGroup var client: ClientOptions
      @Option(help: "Email.") var email: String
      @Option(help: "admin, manager, sales_rep, service_agent, integration or collector.") var role: String
      @Option(help: "Display name.") var name: String = ""
      @Option(help: "Team id.") var team: String?

      func run() async throws {
        try await runReportingErrors {
          let parsedRole = try Admin.role(role)
          let request = Crm_V1_CreateUserRequest.with {
            $0.email = email
            $0.displayName = name
            $0.role = parsedRole
            $0.teamID = team ?? ""
          }
          let user = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).createUser(request, metadata: metadata)
          }
          try Admin.printUsers([user], json: client.json)
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "List users.")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let users = try await client.withClient { client, metadata in
            let service = Crm_V1_AdminService.Client(wrapping: client)
            var all: [Crm_V1_User] = []
            var token = ""
            repeat {
              let page = try await service.listUsers(
                .with {
                  $0.pageSize = 1000; $0.pageToken = token
                }, metadata: metadata)
              all += page.users
              token = page.nextPageToken
            } while !token.isEmpty
            return all
          }
          try Admin.printUsers(users, json: client.json)
        }
      }
    }

    struct Update: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Change a user's role, team, name or active flag.")
      @OptionGroup var client: ClientOptions
      @Argument(help: "The user id.") var id: String
      @Option(help: "New role.") var role: String?
      @Option(help: "New team id (\"\" for none).") var team: String?
      @Option(help: "New display name.") var name: String?
      @Option(help: "true or false.") var active: Bool?

      func run() async throws {
        try await runReportingErrors {
          var request = Crm_V1_UpdateUserRequest()
          request.id = id
          if let role { request.role = try Admin.role(role) }
          if let team { request.teamID = team }
          if let name { request.displayName = name }
          if let active { request.active = active }
          let user = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).updateUser(request, metadata: metadata)
          }
          try Admin.printUsers([user], json: client.json)
        }
      }
    }
  }

  struct Teams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Teams.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Create a team.")
      @OptionGroup var client: ClientOptions
      @Option(help: "Name.") var name: String
      @Option(help: "Parent team id.") var parent: String?
      @Option(help: "Manager's user id.") var manager: String?

      func run() async throws {
        try await runReportingErrors {
          let team = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).createTeam(
              .with {
                $0.name = name; $0.parentTeamID = parent ?? ""; $0.managerID = manager ?? ""
              }, metadata: metadata)
          }
          if client.json { return print(try Output.json(team)) }
          Output.printTable(["ID", "NAME", "PARENT", "MANAGER"], [[team.id, team.name, team.parentTeamID, team.managerID]])
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "List teams.")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let teams = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).listTeams(.init(), metadata: metadata).teams
          }
          if client.json { return try Output.printJSON(teams) }
          Output.printTable(["ID", "NAME", "PARENT", "MANAGER"], teams.map { [$0.id, $0.name, $0.parentTeamID, $0.managerID] })
        }
      }
    }
  }

  struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Mint a token for a user; prints the secret once.",
        discussion: "The secret goes to stdout alone (for scripts); its id goes to stderr.")
      @OptionGroup var client: ClientOptions
      @Option(help: "The user id.") var user: String
      @Option(help: "A label, e.g. laptop.") var name: String = ""
      @Option(help: "Expire after this many days.") var expiresInDays: Int?

      func run() async throws {
        try await runReportingErrors {
          var request = Crm_V1_CreateTokenRequest()
          request.userID = user
          request.name = name
          if let days = expiresInDays {
            request.expireTime = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(Double(days) * 86_400))
          }
          let response = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).createToken(request, metadata: metadata)
          }
          if client.json { return print(try Output.json(response)) }
          FileHandle.standardError.write(Data("token \(response.token.id) (store the secret now; it is not shown again)\n".utf8))
          print(response.secret)
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
      @OptionGroup var client: ClientOptions
      @Option(help: "Only this user's tokens.") var user: String?

      func run() async throws {
        try await runReportingErrors {
          let tokens = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).listTokens(
              .with { $0.userID = user ?? "" }, metadata: metadata
            ).tokens
          }
          try Admin.printTokens(tokens, json: client.json)
        }
      }
    }

    struct Revoke: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Revoke a token.")
      @OptionGroup var client: ClientOptions
      @Argument(help: "The token id.") var id: String

      func run() async throws {
        try await runReportingErrors {
          let token = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).revokeToken(.with { $0.id = id }, metadata: metadata)
          }
          try Admin.printTokens([token], json: client.json)
        }
      }
    }
  }

  struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tenants.", subcommands: [Create.self, Show.self])

    struct Create: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        abstract: "Create a tenant and its first admin (system tenant admins only).")
      @OptionGroup var client: ClientOptions
      @Option(help: "Tenant name.") var name: String
      @Option(help: "First admin's email.") var adminEmail: String
      @Option(help: "First admin's name.") var adminName: String = ""

      func run() async throws {
        try await runReportingErrors {
          let response = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).createTenant(
              .with {
                $0.name = name; $0.adminEmail = adminEmail; $0.adminDisplayName = adminName
              }, metadata: metadata)
          }
          if client.json { return print(try Output.json(response)) }
          print(
            "tenant \(response.tenant.id)\nadmin  \(response.admin.id) \(response.admin.email)\ntoken  \(response.adminToken)")
        }
      }
    }

    struct Show: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Show your tenant and its sharing rules.")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let tenant = try await client.withClient { client, metadata in
            try await Crm_V1_AdminService.Client(wrapping: client).getTenant(.init(), metadata: metadata)
          }
          if client.json { return print(try Output.json(tenant)) }
          Output.printRecord(
            [("id", tenant.id), ("name", tenant.name), ("system", tenant.system ? "yes" : "no")]
              + tenant.sharingRules.map { ("sharing \(Output.name($0.recordType))", Output.name($0.mode)) })
        }
      }
    }
  }

  struct Sharing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set how a record type is shared: public_read (default) or private.",
      discussion: "Example: crm admin sharing account private")
    @OptionGroup var client: ClientOptions
    @Argument(help: "account, contact, lead, opportunity, interaction, task or ticket.") var recordType: String
    @Argument(help: "public_read or private.") var mode: String

    func run() async throws {
      try await runReportingErrors {
        let type = try RecordTypeName.parse(recordType)
        guard mode == "public_read" || mode == "private" else { throw ValidationError("mode must be public_read or private") }
        let tenant = try await client.withClient { client, metadata in
          try await Crm_V1_AdminService.Client(wrapping: client).setSharingRule(
            .with {
              $0.rule = .with {
                $0.recordType = type; $0.mode = mode == "private" ? .private : .publicRead
              }
            }, metadata: metadata)
        }
        if client.json { return print(try Output.json(tenant)) }
        for rule in tenant.sharingRules { print("\(Output.name(rule.recordType)): \(Output.name(rule.mode))") }
      }
    }
  }

  struct FieldSecurityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "field-security",
      abstract: "Which fields a role may only read, or not see at all (admins are never restricted).",
      discussion: """
        crm admin field-security set sales_rep account annual_revenue hidden
        crm admin field-security set integration account description read_only
        crm admin field-security set sales_rep account annual_revenue editable   # removes the rule
        crm admin field-security list
        """,
      subcommands: [Set.self, List.self])

    static let levels: [String: Crm_V1_FieldAccess] = ["editable": .editable, "read_only": .readOnly, "hidden": .hidden]

    static func print(_ rules: Crm_V1_FieldSecurityRules, json: Bool) throws {
      if json { return try Output.printJSON(rules.rules) }
      Output.printTable(
        ["ROLE", "RECORD", "FIELD", "ACCESS"],
        rules.rules.map { [Output.name($0.role), Output.name($0.recordType), $0.field, Output.name($0.access)] })
    }

    struct Set: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Set how a role may treat one field.")
      @OptionGroup var client: ClientOptions
      @Argument(help: "manager, sales_rep, service_agent, integration or collector.") var role: String
      @Argument(help: "account, contact, lead, opportunity, interaction, task or ticket.") var recordType: String
      @Argument(help: "The field as the API names it, e.g. annual_revenue.") var field: String
      @Argument(help: "editable, read_only or hidden.") var access: String

      func run() async throws {
        try await runReportingErrors {
          guard let level = FieldSecurityCommand.levels[access] else {
            throw ValidationError("access must be editable, read_only or hidden")
          }
          let request = Crm_V1_SetFieldSecurityRequest.with {
            $0.rule = .with {
              $0.role = (try? Admin.role(role)) ?? .unspecified
              $0.recordType = (try? RecordTypeName.parse(recordType)) ?? .unspecified
              $0.field = field
              $0.access = level
            }
          }
          let rules = try await client.withClient { grpc, metadata in
            try await Crm_V1_AdminService.Client(wrapping: grpc).setFieldSecurity(request, metadata: metadata)
          }
          try FieldSecurityCommand.print(rules, json: client.json)
        }
      }
    }

    struct List: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "The tenant's field security rules.")
      @OptionGroup var client: ClientOptions

      func run() async throws {
        try await runReportingErrors {
          let rules = try await client.withClient { grpc, metadata in
            try await Crm_V1_AdminService.Client(wrapping: grpc).listFieldSecurity(.init(), metadata: metadata)
          }
          try FieldSecurityCommand.print(rules, json: client.json)
        }
      }
    }
  }
}
