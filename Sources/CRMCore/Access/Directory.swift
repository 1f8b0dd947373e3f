public import Foundation

/// A tenant: one company using the CRM, isolated from every other.
public struct Tenant: Sendable, Hashable {
  public var id: UUID
  public var name: String
  /// True for the tenant crmd bootstraps; its admins may create tenants.
  public var isSystem: Bool
  /// Sharing per record type; absent types are public read.
  public var sharing: [RecordType: SharingMode]
  public var createdAt: Timestamp

  /// Makes a tenant value.
  public init(id: UUID, name: String, isSystem: Bool, sharing: [RecordType: SharingMode], createdAt: Timestamp) {
    self.id = id
    self.name = name
    self.isSystem = isSystem
    self.sharing = sharing
    self.createdAt = createdAt
  }
}

/// A person or system that signs in to a tenant.
public struct User: Sendable, Hashable {
  public var id: UUID
  public var email: String
  public var displayName: String
  public var role: Role
  public var teamID: UUID?
  public var isActive: Bool
  public var createdAt: Timestamp
  /// Assignment rules skip the user until then.
  public var outOfOfficeUntil: Timestamp?

  /// Makes a user value.
  public init(
    id: UUID, email: String, displayName: String, role: Role, teamID: UUID?, isActive: Bool, createdAt: Timestamp,
    outOfOfficeUntil: Timestamp? = nil
  ) {
    self.outOfOfficeUntil = outOfOfficeUntil
    self.id = id
    self.email = email
    self.displayName = displayName
    self.role = role
    self.teamID = teamID
    self.isActive = isActive
    self.createdAt = createdAt
  }
}

/// A team; managers see the records of their team and of every team below it.
public struct Team: Sendable, Hashable {
  public var id: UUID
  public var name: String
  public var parentTeamID: UUID?
  public var managerID: UUID?
  public var createdAt: Timestamp

  /// Makes a team value.
  public init(id: UUID, name: String, parentTeamID: UUID?, managerID: UUID?, createdAt: Timestamp) {
    self.id = id
    self.name = name
    self.parentTeamID = parentTeamID
    self.managerID = managerID
    self.createdAt = createdAt
  }
}

/// An API token's metadata; the secret itself is never stored.
public struct APIToken: Sendable, Hashable {
  public var id: UUID
  public var userID: UUID
  public var name: String
  public var createdAt: Timestamp
  public var expiresAt: Timestamp?
  public var revokedAt: Timestamp?
  public var lastUsedAt: Timestamp?
  /// For a capture key: the channel it may capture from and its rate limit; `nil` for a full token.
  public var capture: CaptureKeyLimits?

  /// Makes a token value.
  public init(
    id: UUID, userID: UUID, name: String, createdAt: Timestamp, expiresAt: Timestamp?, revokedAt: Timestamp?,
    lastUsedAt: Timestamp?, capture: CaptureKeyLimits? = nil
  ) {
    self.capture = capture
    self.id = id
    self.userID = userID
    self.name = name
    self.createdAt = createdAt
    self.expiresAt = expiresAt
    self.revokedAt = revokedAt
    self.lastUsedAt = lastUsedAt
  }
}

/// What a capture key is limited to.
public struct CaptureKeyLimits: Sendable, Hashable {
  public var channel: LeadSource
  public var ratePerMinute: Int
  /// A support key: it captures support mail into tickets and nothing else (its channel is email).
  public var support: Bool

  /// Limits.
  public init(channel: LeadSource, ratePerMinute: Int, support: Bool = false) {
    self.channel = support ? .email : channel
    self.ratePerMinute = ratePerMinute
    self.support = support
  }

  /// How the key's channel is stored: the lead source, or `support`.
  public var storedChannel: String { support ? "support" : channel.rawValue }

  /// The largest rate a key may be given.
  public static let maxRatePerMinute = 100_000

  /// The channels a capture key may be issued for.
  public static let channels: [LeadSource] = [.webForm, .email, .phone, .chat, .event, .partner]
}
