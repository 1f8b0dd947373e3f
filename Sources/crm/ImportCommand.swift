import ArgumentParser
import CRMProto
import CSV
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Synchronization

/// `crm import FILE.csv --type leads …`
struct ImportCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Import leads, contacts, accounts, invoices or payments from a CSV file: streamed, resumable, exactly once.",
    discussion: """
      The first line names the columns. Columns map to fields by name (first_name, email, company, …) or
      by common aliases (E-Mail, Mobile, Company Name, …); --map COLUMN=FIELD maps any other. A bad row
      never stops the import: failed rows go to FILE.failed.csv with the reason, and crm exits with 8
      unless --allow-errors. If the import stops (Ctrl-C, a lost network, a restarted server), run the
      same command with --resume: it continues where the server says it stopped, and no row is written
      twice.

      Invoices and payments come from a billing system's export: one row per invoice line (or payment
      allocation), the invoice's own columns repeated or left empty on its further rows, consecutive rows
      with the same source_system and external_id making one invoice. Each is upserted by that key, so
      the same export imported twice writes nothing new (docs/billing.md, "Importing").

      Examples:
        crm import leads.csv --type leads --map "Work Email=email" --duplicate-action block
        crm import invoice-lines.csv --type invoices --map "Invoice=external_id" --map "Customer=customer_external_id"
        crm import accounts.csv --type accounts --upsert-by external-id --map "ERP Id=external_id"
        crm import leads.csv --type leads --resume
      """)

  @OptionGroup var client: ClientOptions
  @Argument(help: "The CSV file (UTF-8, with or without a BOM; quotes and embedded newlines are fine).") var file: String
  @Option(help: "leads, contacts, accounts, invoices or payments.") var type: String
  @Option(help: "Map a column to a field as COLUMN=FIELD; repeat.") var map: [String] = []
  @Option(help: "Update matching records instead of creating: email or external-id.") var upsertBy: String?
  @Option(help: "allow, warn or block likely duplicates (default: the tenant's rule).") var duplicateAction: String?
  @Option(help: "The import's id (default: derived from the file's path, size and time).") var importID: String?
  @Flag(help: "Continue an import of this file that stopped.") var resume = false
  @Flag(help: "Exit 0 even when rows failed.") var allowErrors = false
  @Option(help: "Where to write the failed rows (default: FILE.failed.csv).") var failedRows: String?
  @Option(help: "Rows per batch (1–1000).") var batchSize: Int = 500
  @Option(help: "The field delimiter.") var delimiter: String = ","

  static let types: [String: Crm_V1_RecordType] = [
    "leads": .lead, "contacts": .contact, "accounts": .account, "invoices": .invoice, "payments": .payment,
  ]

  /// Invoices and payments: facts of several rows, upserted by their source key.
  var isBilling: Bool { type == "invoices" || type == "payments" }

  func validate() throws {
    guard Self.types[type] != nil else {
      throw ValidationError("--type must be leads, contacts, accounts, invoices or payments")
    }
    if isBilling, upsertBy != nil || duplicateAction != nil {
      throw ValidationError(
        "invoices and payments are always upserted by source_system and external_id: drop --upsert-by and --duplicate-action")
    }
    if let upsertBy, !["email", "external-id"].contains(upsertBy) {
      throw ValidationError("--upsert-by must be email or external-id")
    }
    if let duplicateAction, !["allow", "warn", "block"].contains(duplicateAction) {
      throw ValidationError("--duplicate-action must be allow, warn or block")
    }
    guard (1...1000).contains(batchSize) else { throw ValidationError("--batch-size must be 1–1000") }
    guard delimiter.unicodeScalars.count == 1 else { throw ValidationError("--delimiter must be one character") }
    _ = try keyValuePairs(map, option: "--map", form: "COLUMN=FIELD")
  }

  func run() async throws {
    try await runReportingErrors {
      let summary = try await ImportRun(command: self).run()
      if summary.failed > 0, !allowErrors {
        throw CLIError(
          message: "\(summary.failed) row(s) of this import failed; see \(summary.failedPath ?? "the output")", code: 8)
      }
    }
  }
}

/// One run of `crm import`: reads the file as it streams, sends batches, writes failed rows.
struct ImportRun {
  let command: ImportCommand

  struct Summary {
    var failed: Int64
    var failedPath: String?
  }

  /// Everything the sending and receiving sides share.
  final class Shared: Sendable {
    /// Started: the row to resume from (or an error to stop with).
    let started = Mutex<Result<Crm_V1_ImportStarted, CLIError>?>(nil)
    /// Rows sent but not answered yet, by index, kept for the failed-rows file.
    let pending = Mutex<[Int64: [String]]>([:])
    let progress = Mutex(Progress())
    /// Why sending stopped, when it did.
    let sendingError = Mutex<(any Error)?>(nil)
  }

  struct Progress {
    var sent: Int64 = 0
    var answered: Int64 = 0
    var created: Int64 = 0
    var updated: Int64 = 0
    var skipped: Int64 = 0
    var failed: Int64 = 0
    var alreadyDone: Int64 = 0
    var bytesRead: Int64 = 0
  }

  func run() async throws -> Summary {
    let path = command.file
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let stream = InputStream(fileAtPath: path)
    else {
      throw CLIError(message: "cannot read \(path)", code: 2)
    }
    let fileSize = (attributes[.size] as? NSNumber)?.int64Value ?? 0
    let reader: CSVReader
    do {
      reader = try CSVReader(stream: stream, hasHeaderRow: true, delimiter: command.delimiter.unicodeScalars.first!)
    } catch {
      throw CLIError(message: "\(path) is not a CSV file this can read: \(error)", code: 4)
    }
    guard let columns = reader.headerRow, !columns.isEmpty else {
      throw CLIError(message: "\(path) has no header line", code: 4)
    }
    let importID = command.importID ?? Self.derivedID(path: path, attributes: attributes)
    let mapping = try keyValuePairs(command.map, option: "--map", form: "COLUMN=FIELD")
    let header = Crm_V1_ImportRequest.with {
      $0.header = .with {
        $0.recordType = ImportCommand.types[command.type]!
        $0.importID = importID
        $0.mode =
          switch command.upsertBy {
          case "email": .upsertByEmail
          case "external-id": .upsertByExternalID
          default: .insert
          }
        $0.duplicateAction =
          switch command.duplicateAction {
          case "allow": .allow
          case "warn": .warn
          case "block": .block
          default: .unspecified
          }
        $0.columns = columns
        $0.fieldMapping = mapping
        $0.sourceName = URL(fileURLWithPath: path).lastPathComponent
      }
    }
    let failedPath = command.failedRows ?? path + ".failed.csv"
    let failedWriter = FailedRowsWriter(path: failedPath, columns: columns)
    let shared = Shared()
    let start = ContinuousClock.now
    let display = ProgressDisplay(fileSize: fileSize)
    let ticker = Task {
      while !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(250))
        display.show(shared.progress.withLock { $0 }, since: start)
      }
    }
    defer { ticker.cancel() }

    let job: Crm_V1_ImportJob
    do {
      job = try await call(
        header: header, shared: shared, reader: reader, failedWriter: failedWriter, path: path, importID: importID)
    } catch {
      ticker.cancel()
      display.finish()
      try? failedWriter.close()
      throw Self.reason(stopping: error, sendingError: shared.sendingError.withLock { $0 }, importID: importID)
    }
    ticker.cancel()
    display.finish()
    try failedWriter.close()
    let elapsed = ContinuousClock.now - start
    let seconds = max(elapsed.seconds, 0.001)
    let progress = shared.progress.withLock { $0 }
    let rate = Double(progress.answered - progress.alreadyDone) / seconds
    var line =
      "imported \(path) (import \(job.importID)): \(job.created) created, \(job.updated) updated, "
      + "\(job.duplicateSkipped) \(command.isBilling ? "already stored at this version" : "duplicates skipped"), "
      + "\(job.failed) failed — \(job.processedRows) rows in all; "
      + String(format: "this run %.1f s, %.0f rows/s", seconds, rate)
    if job.failed > 0, FileManager.default.fileExists(atPath: failedPath) { line += "; failed rows in \(failedPath)" }
    FileHandle.standardError.write(Data((line + "\n").utf8))
    if command.client.json { print(try Output.json(job)) }
    let failedFileExists = FileManager.default.fileExists(atPath: failedPath)
    return Summary(failed: job.failed, failedPath: failedFileExists ? failedPath : nil)
  }

  /// What to report when the import stopped with `error`.
  ///
  /// The sending side's own failure (an unreadable file, a refused resume) is the reason when there is
  /// one; its cancellation is not — it only follows the call's failure (a server that went away),
  /// which is then the reason. A stop that a later run can continue says how.
  static func reason(stopping error: any Error, sendingError: (any Error)?, importID: String) -> any Error {
    if let own = sendingError as? CLIError { return own }
    var failure =
      (error as? CLIError)
      ?? CLIError(message: "the import stopped: \(error is CancellationError ? "the call was cancelled" : "\(error)")", code: 7)
    if failure.code == 7 {
      failure.message +=
        "\nthe rows answered so far are saved: run the same command with --resume to continue import \(importID)"
    }
    return failure
  }

  /// The import call: sends the file's rows as the server asks, collects the answers.
  func call(
    header: Crm_V1_ImportRequest, shared: Shared, reader: CSVReader, failedWriter: FailedRowsWriter, path: String,
    importID: String
  ) async throws -> Crm_V1_ImportJob {
    nonisolated(unsafe) let unsafeReader = reader
    let resume = command.resume
    let batchSize = command.batchSize
    // Four batches unanswered; for invoices and payments also the rows of one fact the server holds
    // until its last row has come (up to 5,001).
    let window = 4 * batchSize + (command.isBilling ? 5001 : 0)
    return try await command.client.withClient { grpc, metadata in
      try await Crm_V1_ImportService.Client(wrapping: grpc).import(
        request: StreamingClientRequest(metadata: metadata) { writer in
          do {
            try await writer.write(header)
            // Wait for the server to say where to start.
            var started: Crm_V1_ImportStarted?
            while started == nil {
              switch shared.started.withLock({ $0 }) {
              case .success(let value): started = value
              case .failure(let error): throw error
              case nil: try await Task.sleep(for: .milliseconds(5))
              }
            }
            let resumeFrom = started!.resumeFrom
            // The failed rows before the resume point, from the server's ledger: the error file is
            // written anew with them, so it lists every failed row of the import once, including
            // those of batches the server committed after an earlier run lost the stream.
            let earlier = resumeFrom > 0 ? try await Self.failedRows(grpc, metadata, importID: importID, before: resumeFrom) : [:]
            var index: Int64 = -1
            var batch: [Crm_V1_ImportRow] = []
            while let values = unsafeReader.next() {
              index += 1
              if index < resumeFrom {
                if let reason = earlier[index] { try failedWriter.write(index: index, values: values, reason: reason) }
                continue
              }
              shared.progress.withLock { $0.bytesRead += Int64(values.reduce(values.count) { $0 + $1.utf8.count }) }
              batch.append(
                .with {
                  $0.index = index
                  $0.values = values
                })
              if batch.count == batchSize {
                try await Self.send(batch, writer: writer, shared: shared, window: window)
                batch.removeAll(keepingCapacity: true)
              }
            }
            // CSV.swift records `cannotReadFile` when it meets the end of the file; anything else stopped it.
            if let error = unsafeReader.error, !(error is CSVError && "\(error)" == "cannotReadFile") {
              throw CLIError(message: "reading \(path) stopped at row \(index + 1): \(error)", code: 4)
            }
            if !batch.isEmpty { try await Self.send(batch, writer: writer, shared: shared, window: window) }
          } catch {
            // The call itself then fails as a closed stream: keep the reason to report it instead.
            shared.sendingError.withLock { $0 = error }
            throw error
          }
        }
      ) { response in
        var final: Crm_V1_ImportJob?
        for try await message in response.messages {
          switch message.message {
          case .started(let started):
            if started.resumeFrom > 0, !resume {
              shared.started.withLock {
                $0 = .failure(
                  CLIError(
                    message:
                      "this file was imported before (import \(started.job.importID), \(started.resumeFrom) rows done): run again with --resume to continue, or --import-id NEW to import it anew",
                    code: 6))
              }
            } else {
              if started.resumeFrom > 0 {
                FileHandle.standardError.write(Data("resuming import \(importID) at row \(started.resumeFrom)\n".utf8))
              }
              shared.started.withLock { $0 = .success(started) }
            }
          case .results(let results):
            try Self.record(results.results, shared: shared, failedWriter: failedWriter)
          case .summary(let summary):
            final = summary.job
          case nil:
            break
          }
        }
        guard let final else { throw CLIError(message: "the server ended the import without a summary", code: 7) }
        return final
      }
    }
  }

  /// Sends a batch, keeping its rows until answered; waits while `window` rows are unanswered so the
  /// client's memory stays flat too.
  static func send(
    _ batch: [Crm_V1_ImportRow], writer: RPCWriter<Crm_V1_ImportRequest>, shared: Shared, window: Int
  ) async throws {
    while shared.pending.withLock({ $0.count }) >= window { try await Task.sleep(for: .milliseconds(2)) }
    shared.pending.withLock { pending in for row in batch { pending[row.index] = row.values } }
    shared.progress.withLock { $0.sent += Int64(batch.count) }
    try await writer.write(.with { $0.rows = .with { $0.rows = batch } })
  }

  /// Counts results and writes failed rows.
  static func record(_ results: [Crm_V1_ImportRowResult], shared: Shared, failedWriter: FailedRowsWriter) throws {
    var failed: [(Int64, [String], String)] = []
    shared.pending.withLock { pending in
      for result in results {
        let values = pending.removeValue(forKey: result.index) ?? []
        if result.outcome == .failed, !result.alreadyImported {
          failed.append((result.index, values, reason(result)))
        }
      }
    }
    shared.progress.withLock { progress in
      for result in results {
        progress.answered += 1
        if result.alreadyImported {
          progress.alreadyDone += 1
          continue
        }
        switch result.outcome {
        case .created: progress.created += 1
        case .updated: progress.updated += 1
        case .duplicateSkipped: progress.skipped += 1
        case .failed: progress.failed += 1
        case .unspecified, .UNRECOGNIZED: break
        }
      }
    }
    for (index, values, reason) in failed { try failedWriter.write(index: index, values: values, reason: reason) }
  }

  /// The `_error` cell of a failed row.
  static func reason(_ result: Crm_V1_ImportRowResult) -> String {
    result.errors.map { error in
      [error.column.isEmpty ? error.field : error.column, error.description_p].filter { !$0.isEmpty }.joined(separator: ": ")
    }.joined(separator: "; ")
  }

  /// The import's failed rows with an index below `before`, by index, with their reasons.
  static func failedRows(
    _ grpc: GRPCClient<HTTP2ClientTransport.Posix>, _ metadata: Metadata, importID: String, before: Int64
  ) async throws -> [Int64: String] {
    let imports = Crm_V1_ImportService.Client(wrapping: grpc)
    var reasons: [Int64: String] = [:]
    var token = ""
    repeat {
      let page = try await imports.listFailedImportRows(
        .with {
          $0.importID = importID
          $0.beforeIndex = before
          $0.pageSize = 1000
          $0.pageToken = token
        }, metadata: metadata)
      for row in page.rows { reasons[row.index] = reason(row) }
      token = page.nextPageToken
    } while !token.isEmpty
    return reasons
  }

  /// A stable id for a file: its path, size and modification time.
  static func derivedID(path: String, attributes: [FileAttributeKey: Any]) -> String {
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
    let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in "\(absolute)|\(size)|\(Int64(modified * 1000))".utf8 {
      hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
      .unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
    return "\(String(String.UnicodeScalarView(name)).prefix(80))-\(String(hash, radix: 16))"
  }
}

/// The failed rows, as a CSV with the original columns plus the row number and the reason. Each run
/// writes it anew: a resumed run first writes the earlier runs' failed rows from the server's ledger.
/// (`@unchecked Sendable`: the CSV writer is only touched under `lock`.)
final class FailedRowsWriter: @unchecked Sendable {
  let path: String
  let columns: [String]
  private let lock = NSLock()
  private var writer: CSVWriter?

  init(path: String, columns: [String]) {
    self.path = path
    self.columns = columns
  }

  func write(index: Int64, values: [String], reason: String) throws {
    try lock.withLock {
      if writer == nil {
        guard let stream = OutputStream(toFileAtPath: path, append: false) else {
          throw CLIError(message: "cannot write \(path)", code: 2)
        }
        let created = try CSVWriter(stream: stream)
        try created.write(row: columns + ["_row", "_error"])
        writer = created
      }
      writer!.beginNewRow()
      try writer!.write(row: values + [String(index + 2), reason])
    }
  }

  func close() throws {
    lock.withLock { writer?.stream.close() }
  }
}

/// The live progress line on stderr (only when it is a terminal).
struct ProgressDisplay: Sendable {
  let fileSize: Int64
  let enabled = isatty(2) == 1

  func show(_ progress: ImportRun.Progress, since start: ContinuousClock.Instant) {
    guard enabled else { return }
    let elapsed = ContinuousClock.now - start
    let seconds = max(elapsed.seconds, 0.001)
    let rate = Double(progress.answered) / seconds
    var eta = ""
    if fileSize > 0, progress.bytesRead > 0, rate > 0 {
      let fraction = min(Double(progress.bytesRead) / Double(fileSize), 1)
      let remaining = fraction > 0 ? seconds / fraction - seconds : 0
      eta = String(format: "  ETA %d:%02d", Int(remaining) / 60, Int(remaining) % 60)
      let width = 24
      let filled = Int(fraction * Double(width))
      eta = " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]" + eta
    }
    let line = String(
      format: "\r%@ rows  %@ rows/s  %@ errors%@", Self.grouped(progress.answered), Self.grouped(Int64(rate)),
      Self.grouped(progress.failed), eta)
    FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
  }

  func finish() {
    if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
  }

  static func grouped(_ value: Int64) -> String {
    let digits = String(value)
    var out = ""
    for (offset, character) in digits.enumerated() {
      if offset > 0, (digits.count - offset) % 3 == 0 { out.append(",") }
      out.append(character)
    }
    return out
  }
}
