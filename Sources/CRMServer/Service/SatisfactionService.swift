import CRMCore
public import CRMProto
public import CRMStore
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.SatisfactionService`: customers answer CSAT surveys without signing in; the survey token is
/// the credential (the interceptor lets this service through unauthenticated).
public struct SatisfactionService: Crm_V1_SatisfactionService.SimpleServiceProtocol {
  let tickets: TicketStore

  /// A service over the ticket store.
  public init(tickets: TicketStore) { self.tickets = tickets }

  public func submitSatisfaction(request: Crm_V1_SubmitSatisfactionRequest, context: ServerContext) async throws
    -> Crm_V1_SubmitSatisfactionResponse
  {
    var violations = Violations()
    let token = violations.text("token", request.token, maxLength: 128, required: true)
    if !(1...5).contains(request.rating) { violations.add("rating", "must be 1 to 5", reason: "OUT_OF_RANGE") }
    let comment = violations.multilineText("comment", request.comment, maxLength: 10_000)
    try violations.check()
    try await tickets.submitSatisfaction(token: token!, rating: Int(request.rating), comment: comment)
    return .with { $0.rating = request.rating }
  }
}
