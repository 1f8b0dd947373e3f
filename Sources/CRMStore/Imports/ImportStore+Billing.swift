public import CRMCore
import Foundation
import LibPQ

/// Imports of billing facts: invoices (a row per line) and payments (a row per allocation), through
/// the same stream, ledger and exactly-once batches as leads, contacts and accounts.
extension ImportStore {
  /// The write of one batch of invoices: each invoice created or updated whole (its rows' outcome),
  /// left alone when the stored one has this or a newer source version (its rows skipped, naming it),
  /// or failed with its errors on its rows.
  public func prepareInvoices(_ groups: [BillingImportGroup<InvoiceFields>], header: ImportHeader, context: ChangeLog.Context)
    -> @Sendable () async throws -> [ImportRowResult]
  {
    // Encoded here, on the stream's reader, while the previous batch is written.
    var slots: [Int?] = []
    var invoices: [InvoiceFields] = []
    for group in groups {
      slots.append(group.fields.map { _ in invoices.count })
      if let fields = group.fields { invoices.append(fields) }
    }
    let batch = BillingStore.InvoiceImport(invoices, context: context)
    return { [self, slots] in
      try await applyBilling(groups, header: header, context: context) { connection, valid in
        try BillingStore.importInvoices(connection, batch, positions: valid.map { slots[$0.position]! }, context: context)
      }
    }
  }

  /// The write of one batch of payments, as ``prepareInvoices(_:header:context:)`` for invoices.
  public func preparePayments(_ groups: [BillingImportGroup<PaymentFields>], header: ImportHeader, context: ChangeLog.Context)
    -> @Sendable () async throws -> [ImportRowResult]
  {
    { [self] in
      try await applyBilling(groups, header: header, context: context) { connection, valid in
        try BillingStore.importPayments(connection, valid.map(\.fields), context: context)
      }
    }
  }

  func applyBilling<Fields>(
    _ groups: [BillingImportGroup<Fields>], header: ImportHeader, context: ChangeLog.Context,
    write: @escaping @Sendable (PostgresConnection, [(position: Int, fields: Fields)]) throws -> [BillingStore.ImportedFact]
  ) async throws -> [ImportRowResult] {
    let tenant = context.principal.tenantID
    return try await database.withTenant(tenant) { connection in
      let indexes = groups.flatMap(\.indexes)
      var results = try Self.ledger(connection, indexes, header: header, tenant: tenant)
      var fresh: [ImportRowResult] = []
      var valid: [(group: BillingImportGroup<Fields>, position: Int, fields: Fields)] = []
      for (position, group) in groups.enumerated() {
        let done = group.indexes.filter { results[$0] != nil }
        if done.count == group.indexes.count { continue }
        if !done.isEmpty {
          // The earlier attempt wrote the fact with the rows it had then; these rows came apart from it.
          for index in group.indexes where results[index] == nil {
            fresh.append(
              Self.failure(
                index, "", "PART_IMPORTED",
                "rows \(done.prefix(3).map(String.init).joined(separator: ", ")) of this fact were imported by an earlier "
                  + "attempt; send all rows of one invoice or payment together, consecutively"))
          }
        } else if let fields = group.fields {
          valid.append((group, position, fields))
        } else {
          for index in group.indexes {
            fresh.append(ImportRowResult(index: index, outcome: .failed, errors: group.errors[index] ?? []))
          }
        }
      }
      let facts = valid.isEmpty ? [] : try write(connection, valid.map { ($0.position, $0.fields) })
      for ((group, _, _), fact) in zip(valid, facts) {
        switch fact {
        case .written(let id, let outcome):
          let link = RecordLink(type: group.kind.recordType, id: id)
          for index in group.indexes {
            switch outcome {
            case .created: fresh.append(ImportRowResult(index: index, outcome: .created, recordID: id))
            case .updated: fresh.append(ImportRowResult(index: index, outcome: .updated, recordID: id))
            case .unchanged, .stale:
              fresh.append(ImportRowResult(index: index, outcome: .duplicateSkipped, recordID: id, matches: [link]))
            }
          }
        case .failed(let error):
          let errors = group.rowErrors(error)
          for index in group.indexes {
            fresh.append(ImportRowResult(index: index, outcome: .failed, errors: errors[index] ?? []))
          }
        }
      }
      try Self.record(fresh, connection, header: header, tenant: tenant, leaseEnd: leaseEnd)
      for result in fresh { results[result.index] = result }
      return indexes.compactMap { results[$0] }
    }
  }
}
