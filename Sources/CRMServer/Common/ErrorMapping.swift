import CRMCore
import CRMProto
public import GRPCCore
import GRPCProtobuf
import LibPQ
import SwiftProtobuf

/// The one place errors become gRPC statuses.
///
/// Domain errors map case by case (no `default:`); PostgreSQL errors by SQLSTATE; anything else is a
/// bug and answers `INTERNAL` with a generic message, never internals.
public enum ErrorMapping {
  /// The status for an error thrown by a handler.
  public static func rpcError(for error: any Error) -> RPCError {
    switch error {
    case let error as RPCError:
      return error
    case let error as CRMError:
      return rpcError(for: error)
    case let error as PostgresError:
      return rpcError(for: error)
    case is CancellationError:
      return RPCError(code: .cancelled, message: "the call was cancelled")
    default:
      return RPCError(code: .internalError, message: "internal error")
    }
  }

  /// The status for a domain error.
  static func rpcError(for error: CRMError) -> RPCError {
    switch error {
    case .invalidArgument(let all):
      // Bounded here too, whoever built the list: an error must stay small enough for any client. A list
      // from `Violations.check()` is already bounded (its last entry counts the rest): keep it whole.
      let violations = all.count <= Violations.limit + 1 ? all : Violations.bounded(all)
      let message = violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
      let status = GoogleRPCStatus(
        code: .invalidArgument, message: message,
        details: [
          .badRequest(
            violations: violations.map {
              ErrorDetails.BadRequest.FieldViolation(
                field: $0.field, description: $0.description, reason: $0.reason, localizedMessage: nil)
            })
        ])
      return RPCError(status)
    case .notFound(let message):
      return RPCError(code: .notFound, message: message)
    case .alreadyExists(let field, let message):
      let status = GoogleRPCStatus(
        code: .alreadyExists, message: message,
        details: [
          .badRequest(violations: [.init(field: field, description: message, reason: "ALREADY_EXISTS", localizedMessage: nil)])
        ])
      return RPCError(status)
    case .duplicate(let findings):
      var message = "this record looks like \(findings.matches.count + findings.hiddenMatchCount) existing record(s)"
      if let best = findings.matches.first {
        let keys = best.reasons.map(\.key).joined(separator: ", ")
        message += "; best: \(best.recordType.rawValue) \(best.recordID.lowercasedString) (\(keys))"
      }
      message += "; the duplicate rule blocks it: set duplicate_action to DUPLICATE_ACTION_ALLOW to write it anyway"
      var details: [ErrorDetails] = [
        .errorInfo(
          reason: "DUPLICATE", domain: "crm.v1",
          metadata: ["match_count": String(findings.matches.count + findings.hiddenMatchCount)])
      ]
      if let any = try? Google_Protobuf_Any(message: Crm_V1_DuplicateFindings(findings)) { details.append(.any(any)) }
      return RPCError(GoogleRPCStatus(code: .alreadyExists, message: message, details: details))
    case .staleEtag(let current):
      let status = GoogleRPCStatus(
        code: .aborted, message: "the etag is stale: the record changed since you read it (current etag \(current))",
        details: [.errorInfo(reason: "STALE_ETAG", domain: "crm.v1", metadata: ["current_etag": current])])
      var rpc = RPCError(status)
      rpc.metadata.addString(current, forKey: "crm-current-etag")
      return rpc
    case .failedPrecondition(let message):
      return RPCError(code: .failedPrecondition, message: message)
    case .outOfRange(let message):
      return RPCError(code: .outOfRange, message: message)
    case .permissionDenied(let message):
      return RPCError(code: .permissionDenied, message: message)
    case .unauthenticated(let message):
      return RPCError(code: .unauthenticated, message: message)
    case .resourceExhausted(let message, let retryAfter):
      // A zero delay means retrying cannot help (a limit on the request itself): no RetryInfo then.
      let status = GoogleRPCStatus(
        code: .resourceExhausted, message: message, details: retryAfter > .zero ? [.retryInfo(delay: retryAfter)] : [])
      return RPCError(status)
    case .aborted(let message):
      return RPCError(code: .aborted, message: message)
    }
  }

  /// The status for a storage error: by SQLSTATE class, never with the server's text.
  static func rpcError(for error: PostgresError) -> RPCError {
    if error.isConnectionFailure {
      return RPCError(code: .unavailable, message: "the database is unavailable; retry later")
    }
    switch error.kind {
    case .poolExhausted:
      let status = GoogleRPCStatus(
        code: .unavailable, message: "the server is busy; retry later", details: [.retryInfo(delay: .milliseconds(200))])
      return RPCError(status)
    case .poolClosed:
      return RPCError(code: .unavailable, message: "the server is shutting down")
    case .invalidInput:
      return RPCError(code: .invalidArgument, message: "text must not contain NUL characters")
    case .connection, .decoding, .server:
      break
    }
    switch error.sqlState {
    case SQLState.uniqueViolation:
      return RPCError(code: .alreadyExists, message: "a record with these unique values exists")
    case SQLState.foreignKeyViolation, SQLState.checkViolation, SQLState.notNullViolation, SQLState.exclusionViolation:
      return RPCError(code: .failedPrecondition, message: "the change violates a data rule")
    case SQLState.serializationFailure, SQLState.deadlockDetected:
      return RPCError(code: .aborted, message: "the change conflicted with another; retry it")
    case SQLState.queryCanceled:
      return RPCError(code: .deadlineExceeded, message: "the database took too long")
    case let state where state.hasPrefix("22"):
      // Class 22, data exception: a value the database cannot take (a malformed or out-of-range
      // date, number or text). It came from the request; the request is what is wrong.
      return RPCError(code: .invalidArgument, message: "a value is out of range or malformed")
    case SQLState.insufficientPrivilege:
      return RPCError(code: .permissionDenied, message: "not allowed")
    default:
      return RPCError(code: .internalError, message: "internal error")
    }
  }
}
