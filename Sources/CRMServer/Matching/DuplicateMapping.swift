import CRMCore
public import CRMProto
import Foundation

/// Messages whose answer to a create can carry what the duplicate rule found.
protocol CarriesDuplicateFindings {
  var duplicateFindings: Crm_V1_DuplicateFindings { get set }
}

extension Crm_V1_Lead: CarriesDuplicateFindings {}
extension Crm_V1_Contact: CarriesDuplicateFindings {}
extension Crm_V1_Account: CarriesDuplicateFindings {}

extension CarriesDuplicateFindings {
  /// This message with `findings` attached when anything was found.
  func with(_ findings: DuplicateFindings) -> Self {
    var message = self
    if !findings.isEmpty { message.duplicateFindings = Crm_V1_DuplicateFindings(findings) }
    return message
  }
}

extension Crm_V1_DuplicateFindings {
  init(_ findings: DuplicateFindings) {
    self.init()
    action = Crm_V1_DuplicateAction(findings.action)
    matches = findings.matches.map(Crm_V1_DuplicateMatch.init)
    hiddenMatchCount = Int32(clamping: findings.hiddenMatchCount)
  }
}

extension Crm_V1_DuplicateAction {
  init(_ action: DuplicateAction) {
    switch action {
    case .allow: self = .allow
    case .warn: self = .warn
    case .block: self = .block
    }
  }
}

extension DuplicateAction {
  /// The action a request names; `nil` for UNSPECIFIED (follow the rule) or an unknown value (reported).
  init?(_ action: Crm_V1_DuplicateAction, field: String, into violations: inout Violations) {
    switch action {
    case .unspecified: return nil
    case .allow: self = .allow
    case .warn: self = .warn
    case .block: self = .block
    case .UNRECOGNIZED:
      violations.add(field, "unknown duplicate action", reason: "INVALID")
      return nil
    }
  }
}

extension Crm_V1_DuplicateRule {
  init(_ rule: DuplicateRule) {
    self.init()
    recordType = Crm_V1_RecordType(rule.recordType)
    action = Crm_V1_DuplicateAction(rule.action)
    matchKeys = rule.keys.sorted().map(\.rawValue)
    matchRecordTypes = rule.matchRecordTypes.map(Crm_V1_RecordType.init)
    minScore = rule.minScore
    ignorePlusTags = rule.ignorePlusTags
  }

  /// The rule, validated; every problem is recorded under `prefix`.
  func rule(prefix: String, into violations: inout Violations) -> DuplicateRule? {
    let type = RecordType(matchable: recordType, field: "\(prefix).record_type", into: &violations)
    let action = DuplicateAction(self.action, field: "\(prefix).action", into: &violations)
    if self.action == .unspecified { violations.add("\(prefix).action", "is required", reason: "REQUIRED") }
    var keys = Set<MatchKey>()
    for (index, name) in matchKeys.enumerated() {
      if let key = MatchKey(rawValue: name) {
        keys.insert(key)
      } else {
        let known = MatchKey.allCases.map(\.rawValue).joined(separator: ", ")
        violations.add("\(prefix).match_keys[\(index)]", "must be one of \(known)", reason: "INVALID")
      }
    }
    var types: [RecordType] = []
    for (index, value) in matchRecordTypes.enumerated() {
      if let type = RecordType(matchable: value, field: "\(prefix).match_record_types[\(index)]", into: &violations),
        !types.contains(type)
      {
        types.append(type)
      }
    }
    if !(0...1).contains(minScore) || minScore.isNaN {
      violations.add("\(prefix).min_score", "must be between 0 and 1", reason: "OUT_OF_RANGE")
    }
    guard let type, let action else { return nil }
    return DuplicateRule(
      recordType: type, action: action, keys: keys.isEmpty ? Set(MatchKey.allCases) : keys,
      matchRecordTypes: types.isEmpty ? [.lead, .contact, .account] : types, minScore: minScore == 0 ? 0.8 : minScore,
      ignorePlusTags: ignorePlusTags)
  }
}
