/// Fields that merge field by field: leads', contacts' and accounts'.
public protocol MergeableFields: Hashable, Sendable {
  associatedtype Field: RawRepresentable<String>, Hashable, CaseIterable, Sendable
  /// Fields with nothing set: a field is empty in a value when applying this leaves the value as is.
  static var mergeBlank: Self { get }
  /// The value with the fields in `mask` taken from `patch`.
  func applying(_ patch: Self, mask: Set<Field>) -> Self
  /// Fields whose values merge by union (emails, phones, tags) rather than by choice.
  static var unionFields: Set<Field> { get }
  /// The value with `other`'s entries of `field` added after its own (no repeats, within limits).
  func adding(_ other: Self, field: Field) -> Self
}

/// Fields that reach a person: emails and phones, plus tags; leads and contacts share them.
public protocol ReachableFields {
  var emails: [ContactEmail] { get set }
  var phones: [ContactPhone] { get set }
  var tags: [String] { get set }
}

/// How a merge decides each of the survivor's fields.
public enum FieldMerge {
  /// The survivor's fields after the merge: for each field, the record `choices` names for it; else,
  /// for lists, the survivor's entries followed by the others' (nothing lost); else the survivor's
  /// value when it has one, else the value of the newest record in `others` that has one.
  ///
  /// - Parameter others: the merged records' fields, newest first.
  public static func merge<Fields: MergeableFields>(
    survivor: Fields, others: [Fields], choices: [Fields.Field: Fields]
  ) -> Fields {
    var out = survivor
    for field in Fields.Field.allCases {
      if let chosen = choices[field] {
        out = out.applying(chosen, mask: [field])
      } else if Fields.unionFields.contains(field) {
        for other in others { out = out.adding(other, field: field) }
      } else if isBlank(field, in: out), let donor = others.first(where: { !isBlank(field, in: $0) }) {
        out = out.applying(donor, mask: [field])
      }
    }
    return out
  }

  /// Whether `field` is unset in `fields`.
  public static func isBlank<Fields: MergeableFields>(_ field: Fields.Field, in fields: Fields) -> Bool {
    fields.applying(Fields.mergeBlank, mask: [field]) == fields
  }

  /// `fields` with `other`'s emails, phones or tags (by field name) added after its own.
  static func adding<Fields: ReachableFields>(_ other: Fields, to fields: Fields, field: String) -> Fields {
    var out = fields
    switch field {
    case "emails": out.emails = union(fields.emails, other.emails)
    case "phones": out.phones = union(fields.phones, other.phones)
    case "tags": out.tags = union(fields.tags, other.tags)
    default: break
    }
    return out
  }

  static func union(_ mine: [ContactEmail], _ theirs: [ContactEmail]) -> [ContactEmail] {
    var out = mine
    for email in theirs where !out.contains(where: { $0.address == email.address }) && out.count < ContactFields.maxChannels {
      out.append(ContactEmail(address: email.address, label: email.label, isPrimary: out.isEmpty))
    }
    return out
  }

  static func union(_ mine: [ContactPhone], _ theirs: [ContactPhone]) -> [ContactPhone] {
    var out = mine
    for phone in theirs where !out.contains(where: { $0.number == phone.number }) && out.count < ContactFields.maxChannels {
      out.append(ContactPhone(number: phone.number, label: phone.label, isPrimary: out.isEmpty))
    }
    return out
  }

  static func union(_ mine: [String], _ theirs: [String]) -> [String] {
    var out = mine
    for tag in theirs where !out.contains(tag) && out.count < Tags.maxCount { out.append(tag) }
    return out
  }
}

extension LeadFields: MergeableFields, ReachableFields {
  public static var mergeBlank: LeadFields { LeadFields() }
  public static var unionFields: Set<LeadField> { [.emails, .phones, .tags] }

  public func adding(_ other: LeadFields, field: LeadField) -> LeadFields {
    FieldMerge.adding(other, to: self, field: field.rawValue)
  }
}

extension ContactFields: MergeableFields, ReachableFields {
  public static var mergeBlank: ContactFields { ContactFields() }
  public static var unionFields: Set<ContactField> { [.emails, .phones, .tags] }

  public func adding(_ other: ContactFields, field: ContactField) -> ContactFields {
    FieldMerge.adding(other, to: self, field: field.rawValue)
  }
}

extension AccountFields: MergeableFields {
  public static var mergeBlank: AccountFields { AccountFields(name: "") }
  public static var unionFields: Set<AccountField> { [.tags] }

  public func adding(_ other: AccountFields, field: AccountField) -> AccountFields {
    var out = self
    if field == .tags { out.tags = FieldMerge.union(tags, other.tags) }
    return out
  }
}
