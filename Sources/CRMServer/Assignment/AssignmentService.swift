import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.AssignmentService`: assignment rules, dry runs and bulk reassignment.
public struct AssignmentService: Crm_V1_AssignmentService.SimpleServiceProtocol {
  let assignments: AssignmentStore

  /// A service over the store.
  public init(assignments: AssignmentStore) { self.assignments = assignments }

  public func createAssignmentRule(request: Crm_V1_CreateAssignmentRuleRequest, context: ServerContext) async throws
    -> Crm_V1_AssignmentRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if !request.hasRule { violations.add("rule", "is required", reason: "REQUIRED") }
    let definition = request.rule.definition(into: &violations)
    let requestID = RequestFields.requestID(request.requestID, into: &violations)
    try violations.check()
    return Crm_V1_AssignmentRule(
      try await assignments.create(definition!, context: .init(principal: call.principal, requestID: requestID)))
  }

  public func updateAssignmentRule(request: Crm_V1_UpdateAssignmentRuleRequest, context: ServerContext) async throws
    -> Crm_V1_AssignmentRule
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.rule.id, field: "rule.id", into: &violations)
    let expected = RequestFields.etag(request.rule.etag, field: "rule.etag", into: &violations)
    let definition = request.rule.definition(into: &violations)
    try violations.check()
    return Crm_V1_AssignmentRule(
      try await assignments.update(
        id!, definition!, expectedVersion: expected, context: .init(principal: call.principal, requestID: nil)))
  }

  public func deleteAssignmentRule(request: Crm_V1_DeleteAssignmentRuleRequest, context: ServerContext) async throws
    -> Crm_V1_DeleteAssignmentRuleResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    try await assignments.archive(id!, context: .init(principal: call.principal, requestID: nil))
    return .init()
  }

  public func listAssignmentRules(request: Crm_V1_ListAssignmentRulesRequest, context: ServerContext) async throws
    -> Crm_V1_ListAssignmentRulesResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let type: RecordType? =
      request.recordType == .unspecified ? nil : RecordType(routable: request.recordType, field: "record_type", into: &violations)
    try violations.check()
    let rules = try await assignments.list(recordType: type, principal: call.principal)
    return .with { $0.rules = rules.map(Crm_V1_AssignmentRule.init) }
  }

  public func testAssignment(request: Crm_V1_TestAssignmentRequest, context: ServerContext) async throws
    -> Crm_V1_TestAssignmentResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let type = RecordType(routable: request.record.recordType, field: "record.record_type", into: &violations)
    let id = RequestFields.id(request.record.recordID, field: "record.record_id", into: &violations)
    try violations.check()
    let decision = try await assignments.test(RecordLink(type: type!, id: id!), principal: call.principal)
    return .with {
      if let rule = decision.rule { $0.rule = Crm_V1_AssignmentRule(rule) }
      switch decision.outcome {
      case .user(let user): $0.userID = user.lowercasedString
      case .pool(let pool): $0.poolID = pool.lowercasedString
      case nil: break
      }
      $0.reasons = decision.reasons
      $0.skipped = decision.skipped.map { name, reason in
        .with {
          $0.name = name
          $0.reason = reason
        }
      }
    }
  }

  public func reassignRecords(request: Crm_V1_ReassignRecordsRequest, context: ServerContext) async throws
    -> Crm_V1_ReassignRecordsResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let type = RecordType(pooled: request.recordType, field: "record_type", into: &violations)
    let from = RequestFields.optionalID(request.fromOwnerID, field: "from_owner_id", into: &violations)
    var ids: [UUID] = []
    if from == nil {
      ids = RequestFields.ids(request.ids, field: "ids", into: &violations)
    } else if !request.ids.isEmpty {
      violations.add("ids", "name records or from_owner_id, not both", reason: "INVALID")
    }
    let destination: AssignmentStore.Destination?
    switch request.to {
    case .toUserID(let text):
      destination = RequestFields.id(text, field: "to_user_id", into: &violations).map { .user($0) }
    case .toPoolID(let text):
      destination = RequestFields.id(text, field: "to_pool_id", into: &violations).map { .pool($0) }
    case nil:
      violations.add("to", "name to_user_id or to_pool_id", reason: "REQUIRED")
      destination = nil
    }
    if case .user(let user) = destination, user == from {
      violations.add("to_user_id", "is the from_owner_id: nothing would move", reason: "INVALID")
    }
    let reason: String?
    if case .toPoolID = request.to {
      reason = request.reason.isEmpty ? nil : PoolService.reasonCode(request.reason, into: &violations)
    } else {
      reason = violations.text("reason", request.reason, maxLength: 500)
    }
    try violations.check()
    let result = try await assignments.reassign(
      type!, ids: ids, fromOwner: from, to: destination!, reason: reason,
      context: .init(principal: call.principal, requestID: call.requestID))
    return .with {
      $0.ids = result.ids.map(\.lowercasedString)
      $0.more = result.more
    }
  }
}

extension Crm_V1_AssignmentRule {
  init(_ rule: AssignmentRule) {
    self.init()
    id = rule.id.lowercasedString
    etag = rule.etag
    createTime = .init(rule.createdAt)
    updateTime = .init(rule.updatedAt)
    recordType = Crm_V1_RecordType(rule.recordType)
    name = rule.name
    position = Int32(rule.position)
    inactive = !rule.isActive
    let c = rule.criteria
    criteria = .with {
      $0.sources = c.sources.map(Crm_V1_LeadSource.init)
      $0.regionCodes = c.regionCodes
      $0.industries = c.industries
      if let low = c.companySizeMin { $0.companySizeMin = Int32(low) }
      if let high = c.companySizeMax { $0.companySizeMax = Int32(high) }
      if let low = c.scoreMin { $0.scoreMin = Int32(low) }
      if let high = c.scoreMax { $0.scoreMax = Int32(high) }
      $0.tags = c.tags
      $0.channels = c.channels.map { $0.proto() }
      $0.ticketTypes = c.ticketTypes.map { $0.proto() }
      $0.priorities = c.priorities.map { $0.proto() }
    }
    switch rule.action {
    case .user(let user): userID = user.lowercasedString
    case .pool(let pool): poolID = pool.lowercasedString
    case .team(let members, let cap):
      team = .with {
        $0.members = members.map { member in
          .with {
            $0.userID = member.userID.lowercasedString
            $0.weight = Int32(member.weight)
            $0.assigned = member.assigned
          }
        }
        if let cap { $0.openRecordCap = Int32(cap) }
      }
    }
  }

  /// The definition sent, validated; `nil` only with violations recorded.
  func definition(into violations: inout Violations) -> AssignmentStore.Definition? {
    let type = RecordType(routable: recordType, field: "rule.record_type", into: &violations)
    let ruleName = violations.text("rule.name", name, maxLength: 100, required: true)
    var c = AssignmentCriteria()
    c.sources = criteria.sources.enumerated().compactMap { index, source in
      LeadSource(source, field: "rule.criteria.sources[\(index)]", into: &violations)
    }
    if type == .account, !c.sources.isEmpty {
      violations.add("rule.criteria.sources", "accounts have no lead source", reason: "INVALID")
    }
    c.regionCodes = criteria.regionCodes
    c.industries = criteria.industries
    c.companySizeMin = criteria.hasCompanySizeMin ? Int(criteria.companySizeMin) : nil
    c.companySizeMax = criteria.hasCompanySizeMax ? Int(criteria.companySizeMax) : nil
    c.scoreMin = criteria.hasScoreMin ? Int(criteria.scoreMin) : nil
    c.scoreMax = criteria.hasScoreMax ? Int(criteria.scoreMax) : nil
    if type == .account, c.scoreMin != nil || c.scoreMax != nil {
      violations.add("rule.criteria.score_min", "accounts have no score", reason: "INVALID")
    }
    c.tags = criteria.tags
    c.channels = TicketChannel.list(criteria.channels, field: "rule.criteria.channels", into: &violations)
    c.ticketTypes = TicketType.list(criteria.ticketTypes, field: "rule.criteria.ticket_types", into: &violations)
    c.priorities = TicketPriority.list(criteria.priorities, field: "rule.criteria.priorities", into: &violations)
    if type != .ticket, !(c.channels.isEmpty && c.ticketTypes.isEmpty && c.priorities.isEmpty) {
      violations.add("rule.criteria", "channels, ticket_types and priorities route tickets only", reason: "INVALID")
    }
    if type == .ticket, !c.sources.isEmpty || !c.regionCodes.isEmpty || !c.industries.isEmpty || c.scoreMin != nil
      || c.scoreMax != nil || c.companySizeMin != nil || c.companySizeMax != nil
    {
      violations.add("rule.criteria", "ticket rules match on channels, ticket_types, priorities and tags", reason: "INVALID")
    }
    c = c.normalized(prefix: "rule.criteria", into: &violations)
    let action: AssignmentAction?
    switch self.action {
    case .userID(let text):
      action = RequestFields.id(text, field: "rule.user_id", into: &violations).map { .user($0) }
    case .poolID(let text):
      if type == .ticket { violations.add("rule.pool_id", "tickets do not go to shared pools", reason: "INVALID") }
      action = RequestFields.id(text, field: "rule.pool_id", into: &violations).map { .pool($0) }
    case .team(let team):
      if team.members.isEmpty || team.members.count > 200 {
        violations.add("rule.team.members", "a rotation has 1 to 200 members", reason: team.members.isEmpty ? "REQUIRED" : "TOO_MANY")
      }
      if team.hasOpenRecordCap, team.openRecordCap < 1 {
        violations.add("rule.team.open_record_cap", "must be at least 1", reason: "OUT_OF_RANGE")
      }
      var members: [RotationMember] = []
      for (index, member) in team.members.prefix(201).enumerated() {
        guard let user = RequestFields.id(member.userID, field: "rule.team.members[\(index)].user_id", into: &violations) else {
          continue
        }
        let weight = member.weight == 0 ? 1 : Int(member.weight)
        if !(1...100).contains(weight) {
          violations.add("rule.team.members[\(index)].weight", "must be 1 to 100", reason: "OUT_OF_RANGE")
        }
        if members.contains(where: { $0.userID == user }) {
          violations.add("rule.team.members[\(index)].user_id", "names a member twice", reason: "DUPLICATE")
        }
        members.append(RotationMember(userID: user, weight: weight))
      }
      action = .team(members: members, openRecordCap: team.hasOpenRecordCap ? Int(team.openRecordCap) : nil)
    case nil:
      violations.add("rule.action", "name user_id, team or pool_id", reason: "REQUIRED")
      action = nil
    }
    guard let type, let ruleName, let action else { return nil }
    return AssignmentStore.Definition(
      recordType: type, name: ruleName, position: Int(position), isActive: !inactive, criteria: c, action: action)
  }
}

extension RecordType {
  /// A type assignment rules route: a lead, an account or a ticket.
  init?(routable type: Crm_V1_RecordType, field: String, into violations: inout Violations) {
    switch type {
    case .lead: self = .lead
    case .account: self = .account
    case .ticket: self = .ticket
    default:
      violations.add(field, "must be RECORD_TYPE_LEAD, RECORD_TYPE_ACCOUNT or RECORD_TYPE_TICKET", reason: "INVALID")
      return nil
    }
  }
}
