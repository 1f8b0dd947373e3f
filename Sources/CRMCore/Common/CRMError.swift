/// One field that failed validation.
public struct FieldViolation: Sendable, Hashable, CustomStringConvertible {
  /// The field path as the API names it, e.g. `account.billing_address.region_code`.
  public var field: String
  /// What is wrong, for a person.
  public var description: String
  /// A stable machine-readable reason, e.g. `REQUIRED`, `TOO_LONG`, `INVALID_FORMAT`.
  public var reason: String

  /// Makes a violation.
  public init(field: String, description: String, reason: String) {
    self.field = field
    self.description = description
    self.reason = reason
  }
}

/// Errors the domain and the store raise; `CRMServer` maps each case to one gRPC status.
///
/// Messages are for clients: they never contain SQL, bound values or internals.
public enum CRMError: Error, Sendable, Equatable {
  /// Input failed validation; every violation is listed.
  case invalidArgument([FieldViolation])
  /// The record does not exist, is in another tenant, or is out of the caller's sight.
  case notFound(String)
  /// A unique value is taken (e.g. an external id).
  case alreadyExists(field: String, message: String)
  /// The record looks like existing ones and the tenant's duplicate rule (or the request) blocks it.
  case duplicate(DuplicateFindings)
  /// The etag sent is not the current one.
  case staleEtag(current: String)
  /// The record's state does not allow this (e.g. a parent that would make a cycle).
  case failedPrecondition(String)
  /// The caller may see the record but not change it, or lacks the role.
  case permissionDenied(String)
  /// No valid credentials.
  case unauthenticated(String)
  /// A limit was reached.
  case resourceExhausted(String, retryAfter: Duration = .seconds(1))
  /// A conflict persisted after retries.
  case aborted(String)
  /// A position past what is kept (e.g. a change-feed cursor older than the retention).
  case outOfRange(String)

  /// One invalid field.
  public static func invalid(_ field: String, _ description: String, reason: String = "INVALID") -> CRMError {
    .invalidArgument([FieldViolation(field: field, description: description, reason: reason)])
  }
}
