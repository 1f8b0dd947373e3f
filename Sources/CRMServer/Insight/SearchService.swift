import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.SearchService`: one box across the CRM (docs/search.md).
public struct SearchService: Crm_V1_SearchService.SimpleServiceProtocol {
  let search: SearchStore
  /// The clock an invoice's overdue days are judged by.
  let now: @Sendable () -> Timestamp

  /// A service over the search store.
  public init(search: SearchStore, now: @escaping @Sendable () -> Timestamp = { .now }) {
    self.search = search
    self.now = now
  }

  public func search(request: Crm_V1_SearchRequest, context: ServerContext) async throws -> Crm_V1_SearchResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    let text = request.query.trimmingWhitespace()
    if text.count < SearchQuery.minLength || text.count > SearchQuery.maxLength {
      violations.add(
        "query", "must be \(SearchQuery.minLength) to \(SearchQuery.maxLength) characters",
        reason: text.isEmpty ? "REQUIRED" : "OUT_OF_RANGE")
    }
    var types: [RecordType] = []
    for (index, type) in request.recordTypes.enumerated() {
      guard let domain = RecordType(type), SearchQuery.searchable.contains(domain) else {
        violations.add(
          "record_types[\(index)]",
          "must be one of " + SearchQuery.searchable.map { $0.rawValue.uppercased() }.joined(separator: ", "),
          reason: "INVALID")
        continue
      }
      types.append(domain)
    }
    let pageSize = request.pageSize == 0 ? 20 : Int(request.pageSize)
    if !(1...100).contains(pageSize) { violations.add("page_size", "must be 1 to 100", reason: "OUT_OF_RANGE") }
    try violations.check()
    let page = try await search.search(
      SearchQuery(text: text, types: types), pageSize: pageSize, pageToken: request.pageToken, principal: call.principal)
    let today = now().utcDate
    return .with {
      $0.results = page.hits.map { hit in
        .with {
          switch hit.record {
          case .lead(let lead): $0.lead = .init(lead)
          case .contact(let contact): $0.contact = .init(contact)
          case .account(let account): $0.account = .init(account)
          case .opportunity(let deal): $0.opportunity = .init(deal)
          case .ticket(let ticket): $0.ticket = .init(ticket)
          case .invoice(let invoice): $0.invoice = Crm_V1_Invoice(invoice, today: today)
          }
          $0.score = hit.score
        }
      }
      $0.nextPageToken = page.nextPageToken ?? ""
      $0.sampled = page.sampled
    }
  }
}
