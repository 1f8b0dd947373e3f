/// What a user may do in a tenant.
public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
  /// Sees and changes everything in the tenant; manages users, teams, tokens and settings.
  case admin
  /// Sees and changes the records of the teams they manage and every team below.
  case manager
  /// Works their own records.
  case salesRep = "sales_rep"
  /// Works tickets and reads customer records.
  case serviceAgent = "service_agent"
  /// A system account for integrations; sees what its sharing allows, owns what it creates.
  case integration
  /// Works collections: reads customer records as sharing allows, and the billing data of the
  /// accounts they are assigned to collect.
  case collector
}

/// The kinds of record that carry owners and history.
public enum RecordType: String, Sendable, Hashable, CaseIterable, Codable {
  case account
  case contact
  case lead
  case interaction
  case opportunity
  case task
  case ticket
  case invoice
  case payment
  case creditNote = "credit_note"
  case dispute
  /// An account's collection (collector, escalation, promise to pay); its id is the account's.
  case collection

  /// The types duplicate detection compares and merges.
  /// Facts from a billing system and the work on them: read by admins, integrations, the account's
  /// owner and their managers, and its collector (``Principal/canReadBilling(accountOwner:collector:)``),
  /// whatever the sharing rules.
  public var isBilling: Bool {
    self == .invoice || self == .payment || self == .creditNote || self == .dispute || self == .collection
  }

  /// The types duplicate detection compares and merges.
  public static let matchable: [RecordType] = [.account, .contact, .lead]
}

/// How records of one type are shared inside a tenant.
public enum SharingMode: String, Sendable, Hashable, Codable {
  /// Everyone in the tenant may read; writes need ownership, hierarchy or admin.
  case publicRead = "public_read"
  /// Only the owner, managers above the owner's team, and admins may read.
  case `private`
}

extension SharingMode {
  /// A type's mode when the tenant set none: public read, except tasks, which are the assignee's own
  /// (and their managers').
  public static func standard(for type: RecordType) -> SharingMode { type == .task ? .private : .publicRead }
}
