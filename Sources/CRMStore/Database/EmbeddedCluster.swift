import Crypto
import Foundation
import LibPQ
public import Logging

/// A PostgreSQL cluster that crmd runs itself when no database URL is configured.
///
/// On first start it runs `initdb` under `<dataDirectory>/pg`; every start runs `pg_ctl start` with
/// the server listening only on a Unix socket inside that folder (no TCP port), and ``stop()`` runs
/// `pg_ctl stop -m fast`. PostgreSQL refuses to run as root, so when crmd is root the cluster runs as
/// the `postgres` system user (or `nobody`), through `setpriv`, and owns its folder.
///
/// A previous crmd that died without stopping its cluster leaves it running: the next start finds it
/// answering and reuses it. A stale `postmaster.pid` (its process gone, or the PID reused by an
/// unrelated process) is removed before starting.
public struct EmbeddedCluster: Sendable {
  /// Why the cluster could not be prepared or started.
  public struct Failure: Error, CustomStringConvertible {
    /// What happened and where to look.
    public var description: String
  }

  /// crmd's data directory (the cluster lives in its `pg` folder).
  public let dataDirectory: URL
  /// The database crmd uses inside the cluster.
  public let databaseName = "crm"
  /// The database superuser `initdb` creates.
  public let superuser = "crm"
  let logger: Logger

  /// The cluster's own folder (PGDATA), which also holds its socket: `<dataDirectory>/pg`, or, when
  /// crmd is root and the unprivileged user cannot reach the data directory (say it is under `/root`),
  /// `/var/lib/crm/clusters/<hash of the data directory's path>`.
  public let clusterDirectory: URL

  /// A cluster under `dataDirectory`; nothing happens until ``start()``.
  public init(dataDirectory: URL, logger: Logger = Logger(label: "crm.embedded-postgres")) {
    let data = dataDirectory.standardizedFileURL
    self.dataDirectory = data
    self.logger = logger
    if let user = Self.unprivilegedUser(), !Self.canTraverse(data.deletingLastPathComponent(), as: user) {
      let digest = SHA256.hash(data: Data(data.path.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
      clusterDirectory = URL(fileURLWithPath: "/var/lib/crm/clusters/\(digest)")
    } else {
      clusterDirectory = data.appendingPathComponent("pg")
    }
  }

  /// The connection string for crmd's database over the Unix socket.
  public var connectionString: String {
    "host=\(clusterDirectory.path) dbname=\(databaseName) user=\(superuser) connect_timeout=5 application_name=crmd"
  }

  /// Initializes the cluster if needed, starts it (or reuses a running one), and creates the database.
  ///
  /// - Returns: `true` when this call started the server, `false` when it was already running.
  @discardableResult
  public func start() throws -> Bool {
    let binaries = try Self.findBinaries()
    let runAs = Self.unprivilegedUser()
    try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
    let parent = clusterDirectory.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
    if runAs != nil {
      // The cluster's parent must be traversable by the cluster's user.
      try run("/bin/chmod", ["0755", parent.path])
      if parent != dataDirectory {
        logger.notice(
          "the data directory is out of reach of the postgres user; the cluster lives elsewhere",
          metadata: ["db.path": "\(clusterDirectory.path)"])
      }
    }
    let versionFile = clusterDirectory.appendingPathComponent("PG_VERSION")
    if !FileManager.default.fileExists(atPath: versionFile.path) {
      logger.info("initializing embedded PostgreSQL cluster", metadata: ["db.path": "\(clusterDirectory.path)"])
      try? FileManager.default.removeItem(at: clusterDirectory)
      try FileManager.default.createDirectory(at: clusterDirectory, withIntermediateDirectories: true)
      if let runAs { try run("/bin/chown", ["-R", "\(runAs):\(runAs)", clusterDirectory.path]) }
      try run(
        binaries.appendingPathComponent("initdb").path,
        ["-D", clusterDirectory.path, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        as: runAs)
    } else if let runAs {
      try run("/bin/chown", ["-R", "\(runAs):\(runAs)", clusterDirectory.path])
    }
    var started = false
    if PostgresConnection.ping(connectionString: maintenanceConnectionString) {
      logger.info("reusing the embedded PostgreSQL cluster that is already running")
    } else {
      started = true
      removeStalePidFile()
      // wal_level = logical: the change feed reads committed changes through logical decoding.
      let options = "-c listen_addresses='' -k \(clusterDirectory.path) -c max_connections=100 -c wal_level=logical"
      try run(
        binaries.appendingPathComponent("pg_ctl").path,
        [
          "start", "-w", "-t", "60", "-D", clusterDirectory.path, "-l",
          clusterDirectory.appendingPathComponent("server.log").path,
          "-o", options,
        ],
        as: runAs)
      logger.info("started embedded PostgreSQL", metadata: ["db.socket": "\(clusterDirectory.path)"])
    }
    try createDatabaseIfMissing()
    return started
  }

  /// Stops the cluster (fast shutdown: open sessions are ended, nothing committed is lost).
  public func stop() {
    guard let binaries = try? Self.findBinaries() else { return }
    do {
      try run(
        binaries.appendingPathComponent("pg_ctl").path, ["stop", "-w", "-m", "fast", "-D", clusterDirectory.path],
        as: Self.unprivilegedUser())
      logger.info("stopped embedded PostgreSQL")
    } catch {
      logger.error("could not stop embedded PostgreSQL", metadata: ["error": "\(error)"])
    }
  }

  var maintenanceConnectionString: String {
    "host=\(clusterDirectory.path) dbname=postgres user=\(superuser) connect_timeout=5"
  }

  private func createDatabaseIfMissing() throws {
    let connection = try PostgresConnection(connectionString: maintenanceConnectionString)
    defer { connection.close() }
    let exists = try connection.query("SELECT 1 FROM pg_database WHERE datname = \(databaseName)").count > 0
    if !exists {
      do {
        try connection.execute(unsafeSQL: "CREATE DATABASE crm")
      } catch let error as PostgresError where error.sqlState == "42P04" {
        // Another crmd created it first.
      }
    }
  }

  /// Removes `postmaster.pid` when no postgres process owns it any more.
  private func removeStalePidFile() {
    let pidFile = clusterDirectory.appendingPathComponent("postmaster.pid")
    guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
      let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) })
    else { return }
    let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
      .trimmingCharacters(in: .whitespacesAndNewlines)
    if command != "postgres" {
      logger.warning("removing stale postmaster.pid left by a crashed run", metadata: ["db.pid": "\(pid)"])
      try? FileManager.default.removeItem(at: pidFile)
    }
  }

  /// Runs a program to completion, optionally as another user; its output goes to `setup.log`.
  ///
  /// `posix_spawn` and `waitpid` rather than Foundation's `Process`: `pg_ctl` leaves a daemon holding
  /// the inherited output descriptor, and `Process.waitUntilExit` was seen never to return then.
  private func run(_ program: String, _ arguments: [String], as user: String? = nil) throws {
    let argv =
      user.map { ["/usr/bin/setpriv", "--reuid=\($0)", "--regid=\($0)", "--init-groups", "--", program] + arguments }
      ?? [program] + arguments
    let logPath = dataDirectory.appendingPathComponent("setup.log").path
    let status = try Subprocess.run(argv, outputPath: logPath)
    guard status == 0 else {
      throw Failure(description: "\(URL(fileURLWithPath: program).lastPathComponent) failed (exit \(status)); see \(logPath)")
    }
  }

  /// Whether `user` may enter `directory` and every folder above it (by owner or "other" permission
  /// bits; supplementary groups are not counted, so the answer errs on "no").
  static func canTraverse(_ directory: URL, as user: String) -> Bool {
    guard let entry = getpwnam(user) else { return false }
    let uid = entry.pointee.pw_uid
    let gid = entry.pointee.pw_gid
    var path = directory.standardizedFileURL.path
    while true {
      var info = stat()
      if stat(path, &info) == 0 {
        let mode = info.st_mode
        let allowed =
          (info.st_uid == uid && mode & S_IXUSR != 0) || (info.st_gid == gid && mode & S_IXGRP != 0) || mode & S_IXOTH != 0
        if !allowed { return false }
      }
      if path == "/" || path.isEmpty { return true }
      path = (path as NSString).deletingLastPathComponent
    }
  }

  /// The user to run PostgreSQL as when crmd is root; `nil` when crmd is not root.
  static func unprivilegedUser() -> String? {
    guard geteuid() == 0 else { return nil }
    if getpwnam("postgres") != nil { return "postgres" }
    return "nobody"
  }

  /// The folder with `initdb` and `pg_ctl`: `CRM_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`,
  /// else `PATH`.
  static func findBinaries() throws -> URL {
    let environment = ProcessInfo.processInfo.environment
    if let configured = environment["CRM_PG_BIN"], !configured.isEmpty { return URL(fileURLWithPath: configured) }
    let root = "/usr/lib/postgresql"
    if let versions = try? FileManager.default.contentsOfDirectory(atPath: root) {
      let newest = versions.compactMap(Int.init).sorted().last
      if let newest, FileManager.default.isExecutableFile(atPath: "\(root)/\(newest)/bin/initdb") {
        return URL(fileURLWithPath: "\(root)/\(newest)/bin")
      }
    }
    for directory in (environment["PATH"] ?? "").split(separator: ":") {
      if FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") { return URL(fileURLWithPath: String(directory)) }
    }
    throw Failure(description: "PostgreSQL server binaries not found: apt-get install postgresql, or set CRM_PG_BIN")
  }
}
