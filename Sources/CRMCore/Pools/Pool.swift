public import Foundation

/// A shared pool (公海) of leads or accounts nobody owns: members claim them, within hold limits and
/// a re-claim cooldown, and held records that go unworked return by the pool's recycling rules.
public struct Pool: Sendable, Hashable, Identifiable {
  public var id: UUID
  public var version: Int64
  public var settings: PoolSettings
  public var createdAt: Timestamp
  public var updatedAt: Timestamp
  public var archivedAt: Timestamp?

  /// A pool value.
  public init(id: UUID, version: Int64, settings: PoolSettings, createdAt: Timestamp, updatedAt: Timestamp, archivedAt: Timestamp?) {
    self.id = id
    self.version = version
    self.settings = settings
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.archivedAt = archivedAt
  }

  /// The etag.
  public var etag: String { Etag.make(version) }
}

/// What an admin sets on a pool.
public struct PoolSettings: Sendable, Hashable {
  public var name: String
  /// `.lead` or `.account`.
  public var recordType: RecordType
  public var description: String?
  /// Records one member may hold from this pool at once; `nil` for no pool limit.
  public var holdLimit: Int?
  /// Whether closed records (converted or disqualified leads, accounts with a won deal) count.
  public var countClosed: Bool
  public var reclaimCooldownDays: Int
  /// Days without a qualifying interaction (since the claim or the last one) before a held record returns.
  public var recycleAfterDays: Int?
  /// Accounts: days without a stage change on any of their open deals before they return.
  public var recycleNoProgressDays: Int?
  /// Days after a claim during which nothing returns.
  public var protectionDays: Int
  /// How many days ahead ListExpiringHoldings warns.
  public var warningDays: Int
  /// Interaction kinds that count as working a record.
  public var qualifyingKinds: [InteractionKind]

  /// Settings with defaults: no limits, no recycling, a 3-day warning, calls, meetings, visits,
  /// emails, chats and texts qualifying.
  public init(name: String, recordType: RecordType) {
    self.name = name
    self.recordType = recordType
    countClosed = false
    reclaimCooldownDays = 0
    protectionDays = 0
    warningDays = 3
    qualifyingKinds = [.call, .meeting, .visit, .email, .chat, .sms]
  }

  /// Validates every setting, recording violations under `prefix`.
  public func normalized(prefix: String, into violations: inout Violations) -> PoolSettings {
    var out = self
    out.name = violations.text("\(prefix).name", name, maxLength: 100, required: true) ?? ""
    if recordType != .lead && recordType != .account {
      violations.add("\(prefix).record_type", "pools hold leads or accounts", reason: "INVALID")
    }
    out.description = violations.multilineText("\(prefix).description", description ?? "", maxLength: 1000)
    func range(_ value: Int?, _ field: String, _ bounds: ClosedRange<Int>) {
      if let value, !bounds.contains(value) {
        violations.add("\(prefix).\(field)", "must be \(bounds.lowerBound) to \(bounds.upperBound)", reason: "OUT_OF_RANGE")
      }
    }
    range(holdLimit, "hold_limit", 0...100_000)
    range(reclaimCooldownDays, "reclaim_cooldown_days", 0...3650)
    range(recycleAfterDays, "recycle_after_days", 1...3650)
    range(recycleNoProgressDays, "recycle_no_progress_days", 1...3650)
    range(protectionDays, "protection_days", 0...3650)
    range(warningDays, "warning_days", 0...365)
    if recycleNoProgressDays != nil, recordType != .account {
      violations.add("\(prefix).recycle_no_progress_days", "applies to account pools (deals belong to accounts)", reason: "INVALID")
    }
    var kinds: [InteractionKind] = []
    for kind in qualifyingKinds where !kinds.contains(kind) { kinds.append(kind) }
    out.qualifyingKinds = kinds
    return out
  }
}

/// How a record went back to a pool.
public enum PoolReturnKind: String, Sendable, Hashable, CaseIterable {
  /// Its holder let it go.
  case release
  /// The pool's recycling rules took it back.
  case recycle
  /// A manager or pool admin put it there.
  case move
}

/// A record someone holds from a pool, and when the pool's rules will take it back.
public struct Holding: Sendable, Hashable {
  public var record: RecordLink
  public var displayName: String
  public var poolID: UUID
  public var holderID: UUID
  public var claimedAt: Timestamp
  /// The newest qualifying interaction since the claim.
  public var lastWorkedAt: Timestamp?
  /// Accounts: the newest stage change of their open deals since the claim.
  public var lastProgressAt: Timestamp?
  /// When it returns unless worked; `nil` when the pool does not recycle.
  public var returnsAt: Timestamp?
  /// The rule that will return it: `no_activity` or `no_progress`.
  public var reason: String?

  /// A holding.
  public init(
    record: RecordLink, displayName: String, poolID: UUID, holderID: UUID, claimedAt: Timestamp, lastWorkedAt: Timestamp?,
    lastProgressAt: Timestamp?, returnsAt: Timestamp?, reason: String?
  ) {
    self.record = record
    self.displayName = displayName
    self.poolID = poolID
    self.holderID = holderID
    self.claimedAt = claimedAt
    self.lastWorkedAt = lastWorkedAt
    self.lastProgressAt = lastProgressAt
    self.returnsAt = returnsAt
    self.reason = reason
  }

  /// When a holding returns under `settings`, and why: the earlier of the activity and progress
  /// rules, never before the protection period ends.
  public static func due(
    claimedAt: Timestamp, lastWorkedAt: Timestamp?, lastProgressAt: Timestamp?, settings: PoolSettings
  ) -> (at: Timestamp, reason: String)? {
    let day: Int64 = 86_400_000_000
    var candidates: [(Timestamp, String)] = []
    if let days = settings.recycleAfterDays {
      let since = max(claimedAt, lastWorkedAt ?? claimedAt)
      candidates.append((Timestamp(microsecondsSinceEpoch: since.microsecondsSinceEpoch + Int64(days) * day), "no_activity"))
    }
    if let days = settings.recycleNoProgressDays {
      let since = max(claimedAt, lastProgressAt ?? claimedAt)
      candidates.append((Timestamp(microsecondsSinceEpoch: since.microsecondsSinceEpoch + Int64(days) * day), "no_progress"))
    }
    guard let earliest = candidates.min(by: { $0.0 < $1.0 }) else { return nil }
    let protectedUntil = Timestamp(
      microsecondsSinceEpoch: claimedAt.microsecondsSinceEpoch + Int64(settings.protectionDays) * day)
    return (max(earliest.0, protectedUntil), earliest.1)
  }
}
