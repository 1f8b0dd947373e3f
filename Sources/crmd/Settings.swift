import ArgumentParser
import CRMServer
import CRMStore
import Foundation
import LibPQ
import Logging

/// Options shared by every crmd command that needs the database: flags, then `CRM_*` variables,
/// then defaults.
struct DatabaseOptions: ParsableArguments {
  @Option(name: .long, help: "PostgreSQL URL or connection string (env: CRM_DATABASE_URL; default: an embedded cluster).")
  var databaseURL: String?

  @Option(name: .long, help: "Where crmd keeps its embedded cluster and admin token (env: CRM_DATA_DIR; default: ./crm-data).")
  var dataDir: String?

  @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error (env: CRM_LOG_LEVEL; default: info).")
  var logLevel: String?

  /// The resolved database URL, or `nil` for the embedded cluster.
  var resolvedDatabaseURL: String? {
    let value = databaseURL ?? Environment.string("CRM_DATABASE_URL")
    return value?.isEmpty == false ? value : nil
  }

  /// The resolved data directory.
  var resolvedDataDirectory: URL {
    let path = dataDir ?? Environment.string("CRM_DATA_DIR") ?? "crm-data"
    return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
      .standardizedFileURL
  }

  /// Sets up logging once for the process.
  func bootstrapLogging() throws -> Logger {
    let text = logLevel ?? Environment.string("CRM_LOG_LEVEL") ?? "info"
    guard let level = Logger.Level(rawValue: text) else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
    }
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    return Logger(label: "crmd")
  }

  /// Starts the embedded cluster if no URL is set, and migrates; returns the connection string and
  /// the cluster to stop at exit: with `stopReusedCluster` false, only one this call started.
  func prepareDatabase(logger: Logger, stopReusedCluster: Bool = true) throws -> (String, EmbeddedCluster?) {
    let connectionString: String
    var cluster: EmbeddedCluster?
    if let url = resolvedDatabaseURL {
      connectionString = url
    } else {
      let embedded = EmbeddedCluster(dataDirectory: resolvedDataDirectory, logger: logger)
      let started = try embedded.start()
      cluster = started || stopReusedCluster ? embedded : nil
      connectionString = embedded.connectionString
    }
    do {
      try Migrator(logger: logger).migrate(connectionString: connectionString)
    } catch let error as PostgresError where error.kind == .connection {
      cluster?.stop()
      // For the operator at start-up: libpq's own words name the host or socket that failed.
      let detail = error.serverMessage.trimmingCharacters(in: .whitespacesAndNewlines)
      throw StartupError(description: "cannot reach PostgreSQL (\(detail)); check --database-url / CRM_DATABASE_URL")
    } catch {
      cluster?.stop()
      throw error
    }
    return (connectionString, cluster)
  }
}

/// A failure at start-up that is not about the command line: printed as one line, without usage.
struct StartupError: Error, CustomStringConvertible {
  var description: String
}

/// Reads `CRM_*` variables.
enum Environment {
  static func string(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
  }

  static func int(_ name: String) throws -> Int? {
    guard let text = string(name) else { return nil }
    guard let value = Int(text) else { throw ValidationError("\(name) must be a whole number") }
    return value
  }

  static func bool(_ name: String) throws -> Bool? {
    guard let text = string(name)?.lowercased() else { return nil }
    switch text {
    case "1", "true", "yes", "on": return true
    case "0", "false", "no", "off": return false
    default: throw ValidationError("\(name) must be true or false")
    }
  }
}
