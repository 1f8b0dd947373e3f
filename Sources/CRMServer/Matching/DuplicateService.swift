import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.DuplicateService`: likely duplicates across leads, contacts and accounts, with reasons.
public struct DuplicateService: Crm_V1_DuplicateService.SimpleServiceProtocol {
  let duplicates: DuplicateStore
  let rules: DuplicateRuleStore

  /// A service over `duplicates` and the tenant's `rules`.
  public init(duplicates: DuplicateStore, rules: DuplicateRuleStore) {
    self.duplicates = duplicates
    self.rules = rules
  }

  /// The rule for each record type.
  public func listDuplicateRules(
    request: Crm_V1_ListDuplicateRulesRequest, context: ServerContext
  ) async throws -> Crm_V1_ListDuplicateRulesResponse {
    let call = try RequestContext.require()
    let found = try await rules.rules(principal: call.principal)
    return .with { $0.rules = found.map(Crm_V1_DuplicateRule.init) }
  }

  /// Replaces one record type's rule (admins only).
  public func setDuplicateRule(
    request: Crm_V1_SetDuplicateRuleRequest, context: ServerContext
  ) async throws -> Crm_V1_DuplicateRule {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRule { violations.add("rule", "is required", reason: "REQUIRED") }
    let rule = request.rule.rule(prefix: "rule", into: &violations)
    try violations.check()
    return Crm_V1_DuplicateRule(try await rules.set(rule!, principal: call.principal))
  }

  /// Matches for a candidate or an existing record, best first.
  public func findDuplicates(
    request: Crm_V1_FindDuplicatesRequest, context: ServerContext
  ) async throws -> Crm_V1_FindDuplicatesResponse {
    let call = try RequestContext.require()
    var violations = Violations()
    var types = request.recordTypes.enumerated().compactMap { index, type in
      RecordType(matchable: type, field: "record_types[\(index)]", into: &violations)
    }
    if types.isEmpty { types = [.lead, .contact, .account] }
    let limit = request.maxMatches == 0 ? 20 : Int(request.maxMatches)
    if request.maxMatches < 0 || request.maxMatches > 100 {
      violations.add("max_matches", "must be 1 to 100 (0 means 20)", reason: "OUT_OF_RANGE")
    }
    let minScore = request.minScore == 0 ? 0.5 : request.minScore
    if !(0...1).contains(request.minScore) { violations.add("min_score", "must be between 0 and 1", reason: "OUT_OF_RANGE") }
    var subject = MatchSubject()
    var excluded: (RecordType, UUID)?
    switch request.subject {
    case .candidate(let candidate):
      subject = Self.subject(candidate, into: &violations)
      if subject.isEmpty, violations.isEmpty {
        violations.add("candidate", "give at least a name, a company, an email, a phone or a website", reason: "REQUIRED")
      }
    case .record(let reference):
      let type = RecordType(matchable: reference.recordType, field: "record.record_type", into: &violations)
      let id = RequestFields.id(reference.recordID, field: "record.record_id", into: &violations)
      try violations.check()
      subject = try await duplicates.subject(of: type!, id: id!, principal: call.principal)
      excluded = (type!, id!)
    case nil:
      violations.add("subject", "set candidate or record", reason: "REQUIRED")
    }
    try violations.check()
    let matches = try await duplicates.find(
      subject, in: types, ignoringPlusTags: request.ignorePlusTags, excluding: excluded, minScore: minScore, limit: limit,
      principal: call.principal)
    return .with { $0.matches = matches.map(Crm_V1_DuplicateMatch.init) }
  }

  /// The keys of a candidate, normalized as stored records' keys are.
  static func subject(_ candidate: Crm_V1_DuplicateCandidate, into violations: inout Violations) -> MatchSubject {
    var subject = MatchSubject()
    for (index, text) in candidate.emails.enumerated() {
      if let email = EmailAddress(text), text.count <= 254 {
        subject.emails.append(email.value)
      } else {
        violations.add("candidate.emails[\(index)]", "must be an email address", reason: "INVALID_FORMAT")
      }
    }
    let region = candidate.regionCode.isEmpty ? nil : candidate.regionCode
    for (index, text) in candidate.phones.enumerated() {
      if let phone = PhoneNumber(text, regionCode: region), text.count <= 64 {
        subject.phones.append(phone.value)
      } else {
        violations.add("candidate.phones[\(index)]", "must be a phone number", reason: "INVALID_FORMAT")
      }
    }
    if !candidate.website.isEmpty {
      if let website = Website(candidate.website), candidate.website.count <= 2048 {
        subject.domain = website.domain
      } else {
        violations.add("candidate.website", "must be a URL or host name", reason: "INVALID_FORMAT")
      }
    }
    if let company = violations.text("candidate.company", candidate.company, maxLength: 255) {
      subject.companyKey = MatchKeys.companyName(company)
    }
    let first = violations.text("candidate.first_name", candidate.firstName, maxLength: 100)
    let last = violations.text("candidate.last_name", candidate.lastName, maxLength: 100)
    subject.personKey = MatchKeys.personName(first: first, last: last)
    subject.registrationID = RegistrationID.normalized(
      candidate.registrationID, field: "candidate.registration_id", into: &violations)
    return subject
  }
}

extension Crm_V1_DuplicateMatch {
  init(_ match: DuplicateMatch) {
    self.init()
    recordType = Crm_V1_RecordType(match.recordType)
    recordID = match.recordID.lowercasedString
    displayName = match.displayName
    score = (match.score * 1000).rounded() / 1000
    reasons = match.reasons.map { reason in
      .with {
        $0.key = reason.key
        switch reason.kind {
        case .exact: $0.kind = .exact
        case .normalized: $0.kind = .normalized
        case .similar: $0.kind = .similar
        }
        $0.similarity = (reason.similarity * 1000).rounded() / 1000
        $0.value = reason.value
      }
    }
  }
}
