public import Foundation

/// The authenticated caller of one request: who, in which tenant, and what they can see.
///
/// Visibility is decided here once and applied by the store in SQL: a record is visible when the
/// caller is an admin, when its owner is in ``ownersInHierarchy`` (the caller and every user in the
/// teams the caller manages, transitively), or when the tenant shares that record type publicly.
public struct Principal: Sendable, Hashable {
  /// The caller's tenant; every query is scoped to it.
  public var tenantID: UUID
  /// The caller.
  public var userID: UUID
  /// The caller's role.
  public var role: Role
  /// The caller plus every user in the teams the caller manages and the teams below them.
  public var ownersInHierarchy: Set<UUID>
  /// The tenant's sharing mode per record type; absent types follow ``SharingMode/standard(for:)``.
  public var sharing: [RecordType: SharingMode]
  /// True for the tenant crmd bootstrapped, whose admins may create tenants.
  public var isSystemTenant: Bool
  /// Set when the caller holds a capture key rather than a full token: it may call `CaptureLead` for
  /// one channel and nothing else.
  public var captureScope: CaptureScope?
  /// The shared pools the caller is a member of, and whether as the pool's admin.
  public var pools: [UUID: Bool]
  /// The fields the caller's role may not see or edit (``FieldSecurity/unrestricted`` for admins).
  public var fieldSecurity: FieldSecurity

  /// Makes a principal.
  public init(
    tenantID: UUID, userID: UUID, role: Role, ownersInHierarchy: Set<UUID>,
    sharing: [RecordType: SharingMode] = [:], isSystemTenant: Bool = false, captureScope: CaptureScope? = nil,
    pools: [UUID: Bool] = [:], fieldSecurity: FieldSecurity = .unrestricted
  ) {
    self.fieldSecurity = role == .admin ? .unrestricted : fieldSecurity
    self.captureScope = captureScope
    self.pools = pools
    self.tenantID = tenantID
    self.userID = userID
    self.role = role
    self.ownersInHierarchy = ownersInHierarchy.union([userID])
    self.sharing = sharing
    self.isSystemTenant = isSystemTenant
  }

  /// True for admins.
  public var isAdmin: Bool { role == .admin }

  /// Admins and integrations (the billing system's own token) read every account's billing data.
  public var readsAllBilling: Bool { role == .admin || role == .integration }

  /// Whether the caller may read the billing data (invoices, payments, credit notes, disputes, the
  /// collection) of an account owned by `accountOwner` and collected by `collector`: admins,
  /// integrations, the owner and the managers above them, and the collector and theirs — whatever the
  /// sharing rules say about the account itself.
  public func canReadBilling(accountOwner: UUID?, collector: UUID? = nil) -> Bool {
    readsAllBilling || accountOwner.map(ownersInHierarchy.contains) == true
      || collector.map(ownersInHierarchy.contains) == true
  }

  /// Throws PERMISSION_DENIED unless the caller may push billing facts (admins and integrations).
  public func requireBillingWriter() throws(CRMError) {
    guard readsAllBilling else {
      throw CRMError.permissionDenied("pushing billing facts needs an admin or integration token")
    }
  }

  /// Whether the caller's role may see `field` of `type` (field-level security).
  public func canRead(_ type: RecordType, _ field: String) -> Bool { fieldSecurity.access(type, field) != .hidden }

  /// Throws PERMISSION_DENIED unless the caller may see deal amounts: forecasts and the money of
  /// pipeline reports add them up, and a sum over one deal is its amount (field-level security hides
  /// `opportunity.amount` from the role otherwise, docs/field-security.md).
  public func requireDealAmounts(for purpose: String) throws(CRMError) {
    guard canRead(.opportunity, "amount") else {
      throw CRMError.permissionDenied(
        "\(purpose) add up deal amounts, which your role may not see (opportunity.amount is hidden)")
    }
  }

  /// Throws PERMISSION_DENIED unless the caller is an admin.
  public func requireAdmin() throws(CRMError) {
    guard isAdmin else { throw CRMError.permissionDenied("this needs the admin role") }
  }

  /// The sharing mode for a record type: as the tenant set it, else ``SharingMode/standard(for:)``.
  public func sharingMode(for type: RecordType) -> SharingMode { sharing[type] ?? .standard(for: type) }

  /// Whether the caller may read a record of `type` owned by `ownerID`, or, with no owner, sitting in
  /// shared pool `pool` (its members see it).
  public func canRead(_ type: RecordType, ownedBy ownerID: UUID?, pool: UUID? = nil) -> Bool {
    if type.isBilling { return canReadBilling(accountOwner: ownerID) }
    if isAdmin || sharingMode(for: type) == .publicRead { return true }
    guard let ownerID else { return pool.map { pools[$0] != nil } ?? false }
    return ownersInHierarchy.contains(ownerID)
  }

  /// Whether the caller may change a record owned by `ownerID` (ownership, hierarchy or admin), or,
  /// with no owner, sitting in shared pool `pool` (its admins may).
  public func canWrite(ownedBy ownerID: UUID?, pool: UUID? = nil) -> Bool {
    if isAdmin { return true }
    guard let ownerID else { return pool.map { pools[$0] == true } ?? false }
    return ownersInHierarchy.contains(ownerID)
  }

  /// True for members (`asAdmin`: admins) of the pool, and for tenant admins.
  public func isInPool(_ pool: UUID, asAdmin: Bool = false) -> Bool {
    if isAdmin { return true }
    guard let admin = pools[pool] else { return false }
    return admin || !asAdmin
  }

  /// The owners whose records a list must be limited to, or `nil` when the caller sees every record
  /// of `type`.
  public func readableOwners(_ type: RecordType) -> [UUID]? {
    if type.isBilling { return readsAllBilling ? nil : ownersInHierarchy.sorted { $0.lowercasedString < $1.lowercasedString } }
    if isAdmin || sharingMode(for: type) == .publicRead { return nil }
    return ownersInHierarchy.sorted { $0.lowercasedString < $1.lowercasedString }
  }
}

/// What a capture key allows: `CaptureLead` on one channel, within its rate (``CaptureKeyLimits``).
public struct CaptureScope: Sendable, Hashable {
  /// The key (an API token) the call came with.
  public var keyID: UUID
  public var limits: CaptureKeyLimits

  /// A scope.
  public init(keyID: UUID, limits: CaptureKeyLimits) {
    self.keyID = keyID
    self.limits = limits
  }

  /// The key's channel.
  public var channel: LeadSource { limits.channel }
  /// Calls a minute.
  public var ratePerMinute: Int { limits.ratePerMinute }
}
