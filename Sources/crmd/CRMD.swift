import ArgumentParser

/// crmd: the CRM server.
@main
struct CRMD: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crmd",
    abstract: "The CRM server: accounts, contacts and their history over gRPC, stored in PostgreSQL.",
    discussion: """
      With no database configured, crmd runs its own PostgreSQL cluster under its data directory.
      Every option can also be set with the CRM_* environment variable named in its help; a flag wins
      over the variable, and the variable over the default.

      Examples:
        crmd                                   # embedded PostgreSQL in ./crm-data, gRPC on 127.0.0.1:50051
        CRM_DATABASE_URL=postgresql://crm@db/crm crmd --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
        crmd admin create-token --user-email admin@localhost --name laptop
      """,
    subcommands: [Serve.self, Admin.self],
    defaultSubcommand: Serve.self
  )
}
