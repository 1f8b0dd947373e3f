public import Foundation

/// Which records a list returns with respect to archiving.
public enum ArchiveFilter: String, Sendable, Hashable {
  case active, archived, all
}

/// The sort orders lists offer; ties break on id.
public enum ListOrder: String, Sendable, Hashable {
  /// By name, A to Z.
  case name
  /// Most recently updated first.
  case updateTimeDescending = "update_time_desc"
  /// Leads: the highest learned score first, those without one last.
  case scoreDescending = "score_desc"
}

/// The filters of `ListAccounts`, already validated.
public struct AccountFilter: Sendable, Hashable {
  public var ownerID: UUID?
  public var parentID: UUID?
  public var namePrefix: String?
  public var domain: String?
  public var tag: String?
  public var updatedSince: Timestamp?
  public var archive: ArchiveFilter = .active
  public var order: ListOrder = .name

  /// No filters: active accounts by name.
  public init() {}

  /// A fingerprint binding page tokens to these filters.
  public var fingerprint: String {
    [
      ownerID?.lowercasedString, parentID?.lowercasedString, namePrefix, domain, tag,
      updatedSince.map { String($0.microsecondsSinceEpoch) }, archive.rawValue, order.rawValue,
    ]
    .map { $0 ?? "" }.joined(separator: "|")
  }
}

/// The filters of `ListContacts`, already validated.
public struct ContactFilter: Sendable, Hashable {
  public var ownerID: UUID?
  public var accountID: UUID?
  public var namePrefix: String?
  public var email: String?
  public var tag: String?
  public var updatedSince: Timestamp?
  public var archive: ArchiveFilter = .active
  public var order: ListOrder = .name

  /// No filters: active contacts by name.
  public init() {}

  /// A fingerprint binding page tokens to these filters.
  public var fingerprint: String {
    [
      ownerID?.lowercasedString, accountID?.lowercasedString, namePrefix, email, tag,
      updatedSince.map { String($0.microsecondsSinceEpoch) }, archive.rawValue, order.rawValue,
    ]
    .map { $0 ?? "" }.joined(separator: "|")
  }
}

/// One page of a list.
public struct Page<Item: Sendable>: Sendable {
  /// The items, in order.
  public var items: [Item]
  /// The token for the next page; `nil` on the last.
  public var nextPageToken: String?
  /// The total number of matches, when asked for.
  public var totalSize: Int64?

  /// Makes a page.
  public init(items: [Item], nextPageToken: String?, totalSize: Int64? = nil) {
    self.items = items
    self.nextPageToken = nextPageToken
    self.totalSize = totalSize
  }
}

extension Page {
  /// The same page with every item transformed.
  public func map<Other: Sendable>(_ transform: (Item) throws -> Other) rethrows -> Page<Other> {
    Page<Other>(items: try items.map(transform), nextPageToken: nextPageToken, totalSize: totalSize)
  }
}
