import AsyncAlgorithms
import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.ImportService`: the streaming bulk import, and its progress.
///
/// The handler writes one batch at a time (one transaction) and answers its results as soon as it is
/// written, while a reader task decodes and maps the next batch: mapping rows overlaps the database's
/// work, a client that waits for each batch's results before sending the next is answered, and HTTP/2
/// flow control holds a faster client back, so memory stays at two batches however large the file.
public struct ImportService: Crm_V1_ImportService.SimpleServiceProtocol {
  let imports: ImportStore

  /// A service over `imports`.
  public init(imports: ImportStore) { self.imports = imports }

  /// Runs one import stream.
  public func `import`(
    request: RPCAsyncSequence<Crm_V1_ImportRequest, any Error>, response: RPCWriter<Crm_V1_ImportResponse>,
    context: ServerContext
  ) async throws {
    let call = try RequestContext.require()
    let changeContext = ChangeLog.Context(principal: call.principal, requestID: nil)
    // The reader task decodes the stream and maps each batch while this task writes the previous one;
    // the channel hands a step over only when this task takes it, so at most one batch waits.
    let steps = AsyncChannel<ImportStep>()
    var begun: ImportHeader?
    var written = 0
    // While the stream is open its import's lease is renewed, even when the client sends nothing for a
    // while; a stream that dies with this node stops renewing and readers soon see it interrupted.
    var heartbeat: Task<Void, Never>?
    defer { heartbeat?.cancel() }
    do {
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { [imports] in
          defer { steps.finish() }
          var iterator = request.makeAsyncIterator()
          guard let first = try await iterator.next(), case .header(let message) = first.message else {
            throw Self.missingHeader
          }
          let (header, mapping) = try message.domain()
          try mapping.checkFieldSecurity(changeContext.principal, type: header.recordType)
          await steps.send(.begin(header))
          // Billing rows of one fact may span batches: the last fact of a batch waits for the next
          // one (or the end of the stream), so that every invoice and payment is written whole.
          var assembler = BillingFactAssembler()
          while let next = try await iterator.next() {
            try Task.checkCancellation()
            switch next.message {
            case .rows(let batch):
              var violations = Violations()
              if batch.rows.count > ImportHeader.maxBatchRows {
                violations.add("rows", "at most \(ImportHeader.maxBatchRows) rows per batch", reason: "TOO_MANY")
              }
              for (index, row) in batch.rows.enumerated() where row.index < 0 {
                violations.add("rows[\(index)].index", "must not be negative", reason: "OUT_OF_RANGE")
              }
              try violations.check()
              if batch.rows.isEmpty { continue }
              if case .billing(let billing) = mapping {
                let (facts, continuesOversized) = assembler.facts(adding: batch.rows, mapping: billing)
                await steps.send(
                  .write(
                    billing.prepare(
                      facts, store: imports, header: header, context: changeContext, continuesOversized: continuesOversized)))
              } else {
                await steps.send(.write(try mapping.prepare(batch.rows, store: imports, header: header, context: changeContext)))
              }
            case .header:
              throw CRMError.invalid("header", "send the header once, first", reason: "INVALID")
            case nil:
              continue
            }
          }
          if case .billing(let billing) = mapping, let last = assembler.rest() {
            await steps.send(.write(billing.prepare([last], store: imports, header: header, context: changeContext)))
          }
        }
        // An error here cancels the reader; the reader's errors end the steps and are rethrown by
        // waitForAll.
        for await step in steps {
          switch step {
          case .begin(let header):
            let (job, resumed) = try await imports.begin(header, principal: call.principal)
            begun = header
            heartbeat = Task { [imports] in
              let every = imports.leaseDuration / 3
              while (try? await Task.sleep(for: every)) != nil {
                _ = try? await imports.renew(header.importID, principal: call.principal)
              }
            }
            try await response.write(
              .with {
                $0.started = .with {
                  $0.job = Crm_V1_ImportJob(job)
                  $0.resumeFrom = job.nextIndex
                  $0.resumed = resumed
                }
              })
          case .write(let write):
            let results = try await write()
            try await response.write(.with { $0.results = .with { $0.results = results.map(Crm_V1_ImportRowResult.init) } })
            // After batches 1, 2, 4, 8, …: the tables' statistics, while they grow from small (best
            // effort: an import never fails for them).
            written += 1
            if written & (written - 1) == 0, let header = begun {
              _ = try? await imports.refreshStatistics(for: header.recordType, principal: call.principal)
            }
          }
        }
        try await group.waitForAll()
      }
    } catch {
      if let begun { _ = try? await imports.end(begun.importID, completed: false, principal: call.principal) }
      throw error
    }
    guard let begun else { throw Self.missingHeader }
    let finished = try await imports.end(begun.importID, completed: true, principal: call.principal)
    try await response.write(.with { $0.summary = .with { $0.job = Crm_V1_ImportJob(finished) } })
  }

  static let missingHeader = CRMError.invalid(
    "header", "send an ImportHeader as the stream's first message", reason: "REQUIRED")

  /// One import's state.
  public func getImport(request: Crm_V1_GetImportRequest, context: ServerContext) async throws -> Crm_V1_ImportJob {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = Crm_V1_ImportHeader.importID(request.importID, field: "import_id", into: &violations)
    try violations.check()
    return Crm_V1_ImportJob(try await imports.get(id, principal: call.principal))
  }

  /// The tenant's imports, newest first.
  public func listImports(request: Crm_V1_ListImportsRequest, context: ServerContext) async throws
    -> Crm_V1_ListImportsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    try violations.check()
    let page = try await imports.list(pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    return .with {
      $0.imports = page.items.map(Crm_V1_ImportJob.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }

  /// An import's failed rows, in row order.
  public func listFailedImportRows(request: Crm_V1_ListFailedImportRowsRequest, context: ServerContext) async throws
    -> Crm_V1_ListFailedImportRowsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = Crm_V1_ImportHeader.importID(request.importID, field: "import_id", into: &violations)
    let pageSize = PageSize.resolve(request.pageSize, into: &violations)
    if request.beforeIndex < 0 { violations.add("before_index", "must not be negative", reason: "OUT_OF_RANGE") }
    try violations.check()
    let page = try await imports.failedRows(
      of: id, before: request.beforeIndex > 0 ? request.beforeIndex : nil, pageSize: pageSize, pageToken: request.pageToken,
      principal: call.principal)
    return .with {
      $0.rows = page.items.map(Crm_V1_ImportRowResult.init)
      $0.nextPageToken = page.nextPageToken ?? ""
    }
  }
}

/// What the import stream's reader hands to the writer: the header, then each batch's write.
enum ImportStep: Sendable {
  case begin(ImportHeader)
  case write(@Sendable () async throws -> [ImportRowResult])
}

/// The mapping for the import's record type.
enum AnyImportMapping {
  case lead(ImportMapping<LeadFields>)
  case contact(ImportMapping<ContactFields>)
  case account(ImportMapping<AccountFields>)
  /// Invoices or payments: a fact spans consecutive rows.
  case billing(BillingImportMapping)

  /// Refuses a mapping that fills a field the caller's role may not edit: the import's resolved columns
  /// (aliases included) are only known here, past the interceptor's check of the request message.
  /// Billing facts need a caller who may push them.
  func checkFieldSecurity(_ principal: Principal, type: RecordType) throws {
    if case .billing = self { try principal.requireBillingWriter() }
    let security = principal.fieldSecurity
    guard !security.isEmpty else { return }
    let columns: [(column: String, fields: [String])]
    switch self {
    case .lead(let mapping): columns = mapping.mappedColumns
    case .contact(let mapping): columns = mapping.mappedColumns
    case .account(let mapping): columns = mapping.mappedColumns
    case .billing(let mapping): columns = mapping.mappedFields.map { ($0.column, [mapping.apiField($0.field)]) }
    }
    for (column, fields) in columns {
      for field in fields where security.access(type, field) != .editable {
        throw CRMError.permissionDenied(
          "header.columns: column \"\(column.prefix(64))\" fills \(type.rawValue).\(field), which your role may not edit")
      }
    }
  }

  /// Maps `rows` to fields and prepares their records now; the returned closure writes them (one
  /// transaction).
  func prepare(_ rows: [Crm_V1_ImportRow], store: ImportStore, header: ImportHeader, context: ChangeLog.Context) throws
    -> @Sendable () async throws -> [ImportRowResult]
  {
    switch self {
    case .lead(let mapping): try Self.prepare(mapping, rows, store: store, header: header, context: context)
    case .contact(let mapping): try Self.prepare(mapping, rows, store: store, header: header, context: context)
    case .account(let mapping): try Self.prepare(mapping, rows, store: store, header: header, context: context)
    case .billing(let mapping): mapping.prepare(mapping.split(rows), store: store, header: header, context: context)
    }
  }

  static func prepare<Fields: ImportableFields>(
    _ mapping: ImportMapping<Fields>, _ rows: [Crm_V1_ImportRow], store: ImportStore, header: ImportHeader,
    context: ChangeLog.Context
  ) throws -> @Sendable () async throws -> [ImportRowResult] {
    try store.prepare(rows.map { (index: $0.index, fields: mapping.fields($0.values)) }, header: header, context: context)
  }
}

extension Crm_V1_ImportHeader {
  /// The header in domain terms, with the column mapping for its record type.
  func domain() throws(CRMError) -> (ImportHeader, AnyImportMapping) {
    var violations = Violations()
    let id = Self.importID(importID, field: "header.import_id", into: &violations)
    var mode = ImportMode.insert
    switch self.mode {
    case .unspecified, .insert: mode = .insert
    case .upsertByExternalID: mode = .upsertByExternalID
    case .upsertByEmail: mode = .upsertByEmail
    case .UNRECOGNIZED: violations.add("header.mode", "unknown import mode", reason: "INVALID")
    }
    var action: DuplicateAction?
    switch duplicateAction {
    case .unspecified: action = nil
    case .allow: action = .allow
    case .warn: action = .warn
    case .block: action = .block
    case .UNRECOGNIZED: violations.add("header.duplicate_action", "unknown duplicate action", reason: "INVALID")
    }
    let source = violations.text("header.source_name", sourceName, maxLength: 500) ?? ""
    if expectedRows < 0 { violations.add("header.expected_rows", "must not be negative", reason: "OUT_OF_RANGE") }
    var type = RecordType.lead
    switch recordType {
    case .lead: type = .lead
    case .contact: type = .contact
    case .account: type = .account
    case .invoice: type = .invoice
    case .payment: type = .payment
    default:
      violations.add(
        "header.record_type", "must be RECORD_TYPE_LEAD, _CONTACT, _ACCOUNT, _INVOICE or _PAYMENT", reason: "INVALID")
    }
    if type == .account, mode == .upsertByEmail {
      violations.add("header.mode", "accounts have no email: upsert them by external id", reason: "INVALID")
    }
    let billing = type == .invoice || type == .payment
    if billing, mode == .upsertByEmail {
      violations.add(
        "header.mode", "billing facts are always upserted by (source_system, external_id): leave mode unset",
        reason: "INVALID")
    }
    if billing, action != nil {
      violations.add(
        "header.duplicate_action", "billing facts have no duplicate rule: their source key decides", reason: "INVALID")
    }
    try violations.check()
    let mapping: AnyImportMapping
    switch type {
    case .contact: mapping = .contact(try ImportMapping(columns: columns, explicit: fieldMapping))
    case .account: mapping = .account(try ImportMapping(columns: columns, explicit: fieldMapping))
    case .invoice: mapping = .billing(try BillingImportMapping(kind: .invoice, columns: columns, explicit: fieldMapping))
    case .payment: mapping = .billing(try BillingImportMapping(kind: .payment, columns: columns, explicit: fieldMapping))
    default: mapping = .lead(try ImportMapping(columns: columns, explicit: fieldMapping))
    }
    return (
      ImportHeader(
        importID: id, recordType: type, mode: mode, duplicateAction: action, sourceName: source, expectedRows: expectedRows),
      mapping
    )
  }

  /// An import id: 1–128 printable ASCII characters.
  static func importID(_ text: String, field: String, into violations: inout Violations) -> String {
    if text.isEmpty {
      violations.add(field, "is required: choose one, and reuse it to resume", reason: "REQUIRED")
    } else if text.utf8.count > 128 || !text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
      violations.add(field, "must be 1–128 printable ASCII characters without spaces", reason: "INVALID_FORMAT")
    }
    return text
  }
}

extension Crm_V1_ImportJob {
  init(_ job: ImportJob) {
    self.init()
    importID = job.importID
    recordType = Crm_V1_RecordType(job.recordType)
    switch job.mode {
    case .insert: mode = .insert
    case .upsertByExternalID: mode = .upsertByExternalID
    case .upsertByEmail: mode = .upsertByEmail
    }
    switch job.state {
    case .running: state = .running
    case .interrupted: state = .interrupted
    case .completed: state = .completed
    }
    sourceName = job.sourceName
    expectedRows = job.expectedRows
    processedRows = job.processed
    created = job.created
    updated = job.updated
    duplicateSkipped = job.duplicateSkipped
    failed = job.failed
    nextIndex = job.nextIndex
    createUserID = job.createdBy.lowercasedString
    createTime = .init(job.createdAt)
    updateTime = .init(job.updatedAt)
  }
}

extension Crm_V1_ImportRowResult {
  init(_ result: ImportRowResult) {
    self.init()
    index = result.index
    switch result.outcome {
    case .created: outcome = .created
    case .updated: outcome = .updated
    case .duplicateSkipped: outcome = .duplicateSkipped
    case .failed: outcome = .failed
    }
    recordID = result.recordID?.lowercasedString ?? ""
    errors = result.errors.map { error in
      .with {
        $0.field = error.field
        $0.column = error.column
        $0.reason = error.reason
        $0.description_p = error.description
      }
    }
    matches = result.matches.map(Crm_V1_RecordRef.init)
    alreadyImported = result.alreadyImported
  }
}
