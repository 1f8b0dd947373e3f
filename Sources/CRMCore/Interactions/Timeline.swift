/// One entry of a record's timeline: an interaction, or a change-log entry of the record itself.
public enum TimelineEntry: Sendable, Hashable {
  case interaction(Interaction)
  case change(ChangeEntry)

  /// When it happened: the interaction's start, the change's commit time.
  public var occurredAt: Timestamp {
    switch self {
    case .interaction(let interaction): interaction.fields.startAt
    case .change(let entry): entry.changedAt
    }
  }

  /// Breaks ties between entries at the same instant, and is the keyset's second half: interactions
  /// `i:<uuid>`, changes `c:<sequence, zero-padded>`. Newest first means descending on both.
  public var sortKey: String {
    switch self {
    case .interaction(let interaction): return "i:" + interaction.id.lowercasedString
    case .change(let entry):
      let digits = String(entry.sequence)
      return "c:" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
  }

  /// Newest first.
  public static func newestFirst(_ lhs: TimelineEntry, _ rhs: TimelineEntry) -> Bool {
    if lhs.occurredAt != rhs.occurredAt { return lhs.occurredAt > rhs.occurredAt }
    return lhs.sortKey > rhs.sortKey
  }
}

/// Which interactions a list returns.
public struct InteractionFilter: Sendable, Hashable {
  /// The record they are linked to.
  public var record: RecordLink
  /// Only these kinds; empty for all.
  public var kinds: [InteractionKind]

  /// A filter.
  public init(record: RecordLink, kinds: [InteractionKind] = []) {
    self.record = record
    self.kinds = kinds
  }

  /// Binds page tokens to the query that made them.
  public var fingerprint: String { "interactions|\(record.key)|\(kinds.map(\.rawValue).sorted().joined(separator: ","))" }
}
