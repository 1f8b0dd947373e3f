import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.InsightService`: what the other stages record, read for a decision.
///
/// The 360 is the stores' own reads, run side by side (each on its own pooled connection): every
/// section is exactly what the section's RPC would show this caller — the same visibility, the
/// same field security (applied to the response by ``FieldGuard``) — and one the caller may not see
/// is marked unavailable with the reason instead of failing the call.
public struct InsightService: Crm_V1_InsightService.SimpleServiceProtocol {
  let accounts: AccountStore
  let contacts: ContactStore
  let leads: LeadStore
  let opportunities: OpportunityStore
  let tickets: TicketStore
  let tasks: TaskStore
  let interactions: InteractionStore
  let billing: BillingStore
  let now: @Sendable () -> Timestamp

  /// A service over the stores the view reads; `now` decides "the last 90 days".
  public init(
    accounts: AccountStore, contacts: ContactStore, leads: LeadStore, opportunities: OpportunityStore, tickets: TicketStore,
    tasks: TaskStore, interactions: InteractionStore, billing: BillingStore, now: @escaping @Sendable () -> Timestamp = { .now }
  ) {
    self.accounts = accounts
    self.contacts = contacts
    self.leads = leads
    self.opportunities = opportunities
    self.tickets = tickets
    self.tasks = tasks
    self.interactions = interactions
    self.billing = billing
    self.now = now
  }

  /// How far back "recent" reaches: closed deals, satisfaction ratings.
  static let recentDays = 90
  /// The most open deals the pipeline section sums over.
  static let maxOpenDeals = 500

  public func getCustomer360(request: Crm_V1_GetCustomer360Request, context: ServerContext) async throws
    -> Crm_V1_Customer360
  {
    let call = try RequestContext.require()
    let principal = call.principal
    var violations = Violations()
    let accountID = RequestFields.optionalID(request.accountID, field: "account_id", into: &violations)
    let contactID = RequestFields.optionalID(request.contactID, field: "contact_id", into: &violations)
    if accountID != nil, contactID != nil {
      violations.add("contact_id", "name an account or a contact, not both", reason: "INVALID")
    } else if accountID == nil, contactID == nil, request.accountID.isEmpty, request.contactID.isEmpty {
      violations.add("account_id", "name the account (or set contact_id)", reason: "REQUIRED")
    }
    let size = request.sectionSize == 0 ? 5 : Int(request.sectionSize)
    if !(1...50).contains(size) { violations.add("section_size", "must be 1 to 50", reason: "OUT_OF_RANGE") }
    try violations.check()

    var view = Crm_V1_Customer360()
    view.readTime = .init(now())
    // The subject: NOT_FOUND for the whole call when the caller may not see it.
    let contact: Contact?
    let account: Account?
    if let contactID {
      let found = try await contacts.get(contactID, principal: principal)
      contact = found
      view.contact = Crm_V1_Contact(found)
      if let id = found.fields.accountID {
        account = try await visibleAccount(id, principal: principal)
      } else {
        account = nil
      }
    } else {
      contact = nil
      account = try await accounts.get(accountID!, principal: principal)
    }
    if let account { view.account = Crm_V1_Account(account) }
    let since = Timestamp(microsecondsSinceEpoch: now().microsecondsSinceEpoch - Int64(Self.recentDays) * 86_400_000_000)
    let about = contact.map { RecordLink(type: .contact, id: $0.id) } ?? account.map { RecordLink(type: .account, id: $0.id) }!

    async let hierarchy: Crm_V1_Customer360Hierarchy = section {
      try await self.hierarchy(of: account, size: size, principal: principal)
    }
    async let keyContacts: Crm_V1_Customer360Contacts = section {
      try await self.keyContacts(of: account, size: size, principal: principal)
    }
    async let pipeline: Crm_V1_Customer360Pipeline = section {
      try await self.pipeline(of: account, size: size, since: since, principal: principal)
    }
    async let service: Crm_V1_Customer360Service = section {
      try await self.service(of: account, contact: contact, size: size, since: since, principal: principal)
    }
    async let financials: Crm_V1_Customer360Financials = section { try await self.financials(of: account, principal: principal) }
    async let upcoming: Crm_V1_Customer360Tasks = section {
      try await self.upcomingTasks(about: about, size: size, principal: principal)
    }
    async let origin: Crm_V1_Customer360Origin = section {
      try await self.origin(of: account, contact: contact, principal: principal)
    }
    async let timeline: Crm_V1_Customer360Timeline = section {
      try await self.timeline(of: about, size: size, principal: principal)
    }

    view.hierarchy = try await hierarchy
    view.contacts = try await keyContacts
    view.pipeline = try await pipeline
    view.service = try await service
    view.financials = try await financials
    view.tasks = try await upcoming
    view.origin = try await origin
    view.timeline = try await timeline
    return view
  }

  // MARK: - Sections

  /// A section message that says whether the caller sees it.
  protocol Section360: SwiftProtobuf.Message {
    var section: Crm_V1_Customer360Section { get set }
  }

  /// Reads one section; the caller's lack of rights to it (or a subject without an account) makes it
  /// unavailable with the reason, and anything else fails the call.
  func section<S: Section360>(_ read: () async throws -> S?) async throws -> S {
    do {
      guard var value = try await read() else {
        var absent = S()
        absent.section.unavailableReason = "the contact belongs to no account the caller may see"
        return absent
      }
      value.section.available = true
      return value
    } catch let error as CRMError {
      var absent = S()
      switch error {
      case .permissionDenied(let reason): absent.section.unavailableReason = reason
      case .notFound(let reason): absent.section.unavailableReason = reason
      default: throw error
      }
      return absent
    }
  }

  func hierarchy(of account: Account?, size: Int, principal: Principal) async throws -> Crm_V1_Customer360Hierarchy? {
    guard let account else { return nil }
    var out = Crm_V1_Customer360Hierarchy()
    // Up the parents while the caller sees them (a cycle cannot exist; the depth is bounded anyway).
    var parent = account.fields.parentID
    var ancestors: [Account] = []
    while let id = parent, ancestors.count < 20, let above = try await visibleAccount(id, principal: principal) {
      ancestors.insert(above, at: 0)
      parent = above.fields.parentID
    }
    out.ancestors = ancestors.map(Crm_V1_Customer360AccountRef.init)
    var filter = AccountFilter()
    filter.parentID = account.id
    let children = try await accounts.list(filter, pageSize: size, pageToken: "", includeTotal: true, principal: principal)
    out.children = children.items.map(Crm_V1_Customer360AccountRef.init)
    out.childCount = children.totalSize ?? Int64(children.items.count)
    out.section.truncated = children.nextPageToken != nil
    return out
  }

  /// The account, or `nil` when the caller may not see it.
  func visibleAccount(_ id: UUID, principal: Principal) async throws -> Account? {
    do {
      return try await accounts.get(id, principal: principal)
    } catch CRMError.notFound(_) {
      return nil
    }
  }

  func keyContacts(of account: Account?, size: Int, principal: Principal) async throws -> Crm_V1_Customer360Contacts? {
    guard let account else { return nil }
    var filter = ContactFilter()
    filter.accountID = account.id
    let page = try await contacts.list(filter, pageSize: size, pageToken: "", includeTotal: true, principal: principal)
    var out = Crm_V1_Customer360Contacts()
    out.contacts = page.items.map(Crm_V1_Contact.init)
    out.total = page.totalSize ?? Int64(page.items.count)
    out.section.truncated = page.nextPageToken != nil
    return out
  }

  func pipeline(of account: Account?, size: Int, since: Timestamp, principal: Principal) async throws
    -> Crm_V1_Customer360Pipeline?
  {
    guard let account else { return nil }
    var open = OpportunityFilter()
    open.accountID = account.id
    open.state = .open
    let deals = try await opportunities.list(
      open, pageSize: Self.maxOpenDeals, pageToken: "", includeTotal: true, principal: principal)
    var closed = OpportunityFilter()
    closed.accountID = account.id
    closed.updatedSince = since
    closed.order = .updateTimeDescending
    let recent = try await opportunities.list(closed, pageSize: 100, pageToken: "", includeTotal: false, principal: principal)
    var out = Crm_V1_Customer360Pipeline()
    let byMove = deals.items.sorted { $0.stageEnteredAt > $1.stageEnteredAt }
    out.openOpportunities = byMove.prefix(size).map(Crm_V1_Opportunity.init)
    out.openCount = deals.totalSize ?? Int64(deals.items.count)
    var amounts: [String: Money] = [:]
    var weighted: [String: Money] = [:]
    for deal in deals.items {
      guard let amount = deal.fields.amount else { continue }
      amounts[amount.currencyCode] = (amounts[amount.currencyCode] ?? .zero(amount.currencyCode)).adding(amount)
      weighted[amount.currencyCode] = (weighted[amount.currencyCode] ?? .zero(amount.currencyCode))
        .adding(amount.scaled(byPercent: deal.probability))
    }
    // Sums of deal amounts: not for a role that may not see them (a sum over one deal is its amount).
    if principal.canRead(.opportunity, "amount") {
      out.openAmount = amounts.keys.sorted().map { Crm_V1_Money(amounts[$0]!) }
      out.weightedAmount = weighted.keys.sorted().map { Crm_V1_Money(weighted[$0]!) }
    }
    out.recentlyClosed = recent.items.filter { $0.state.isClosed && ($0.closedAt ?? $0.updatedAt) >= since }
      .sorted { ($0.closedAt ?? $0.updatedAt) > ($1.closedAt ?? $1.updatedAt) }.prefix(size).map(Crm_V1_Opportunity.init)
    out.section.truncated = deals.items.count > size || deals.nextPageToken != nil
    return out
  }

  func service(of account: Account?, contact: Contact?, size: Int, since: Timestamp, principal: Principal) async throws
    -> Crm_V1_Customer360Service?
  {
    var filter = TicketFilter()
    if let contact {
      filter.requester = .contact(contact.id)
    } else if let account {
      filter.accountID = account.id
    } else {
      return nil
    }
    var open = filter
    open.statuses = [.new, .open, .pending, .onHold]
    open.order = .nextBreach
    var breached = open
    breached.slaStates = [.breached]
    var rated = filter
    rated.statuses = [.solved, .closed]
    rated.updatedFrom = since
    rated.order = .updated
    async let openPage = tickets.list(open, pageSize: size, pageToken: "", includeTotal: true, principal: principal)
    async let breachedPage = tickets.list(breached, pageSize: 1, pageToken: "", includeTotal: true, principal: principal)
    async let ratedPage = tickets.list(rated, pageSize: 500, pageToken: "", includeTotal: false, principal: principal)
    let (current, late, recent) = try await (openPage, breachedPage, ratedPage)
    var out = Crm_V1_Customer360Service()
    out.openTickets = current.items.map(Crm_V1_Ticket.init)
    out.openCount = current.totalSize ?? Int64(current.items.count)
    out.breachedCount = late.totalSize ?? Int64(late.items.count)
    let ratings = recent.items.compactMap(\.satisfactionRating)
    out.satisfactionResponses = Int64(ratings.count)
    out.satisfactionAverage = ratings.isEmpty ? 0 : Double(ratings.reduce(0, +)) / Double(ratings.count)
    out.section.truncated = current.nextPageToken != nil
    return out
  }

  func financials(of account: Account?, principal: Principal) async throws -> Crm_V1_Customer360Financials? {
    guard let account else { return nil }
    let panel: AccountFinancials
    do {
      panel = try await billing.financials(
        accountID: account.id, asOf: nil, includeChildren: true, windowDays: 90, principal: principal)
    } catch CRMError.notFound(_) {
      // The account is visible (it is the subject); its money is not, to this caller.
      throw CRMError.permissionDenied(
        "billing data is shown to admins, integrations, the account's collector, and its owner and their managers")
    }
    var out = Crm_V1_Customer360Financials()
    out.panel = Crm_V1_AccountFinancials(panel)
    return out
  }

  func upcomingTasks(about record: RecordLink, size: Int, principal: Principal) async throws -> Crm_V1_Customer360Tasks? {
    let (found, more) = try await tasks.upcoming(about: record, limit: size, principal: principal)
    var out = Crm_V1_Customer360Tasks()
    out.upcoming = found.map(Crm_V1_Task.init)
    out.section.truncated = more
    return out
  }

  func origin(of account: Account?, contact: Contact?, principal: Principal) async throws -> Crm_V1_Customer360Origin? {
    guard let account else { return nil }
    var filter = LeadFilter()
    filter.convertedAccountID = account.id
    filter.statuses = [.converted]
    let page = try await leads.list(filter, pageSize: 500, pageToken: "", includeTotal: false, principal: principal)
    // A contact's own lead first, when it has one; else the account's earliest.
    let own = contact.flatMap { contact in
      page.items.filter { $0.conversion?.contactID == contact.id }.min { $0.createdAt < $1.createdAt }
    }
    var out = Crm_V1_Customer360Origin()
    if let first = own ?? page.items.min(by: { $0.createdAt < $1.createdAt }) { out.firstTouch = Crm_V1_Lead(first) }
    var counts: [String: (source: LeadSource, campaign: String, leads: Int64)] = [:]
    for lead in page.items {
      let key = lead.fields.source.rawValue + "\u{0}" + (lead.fields.campaign ?? "")
      counts[key, default: (lead.fields.source, lead.fields.campaign ?? "", 0)].leads += 1
    }
    out.sources = counts.values.sorted {
      ($0.leads, $1.source.rawValue, $1.campaign) > ($1.leads, $0.source.rawValue, $0.campaign)
    }
    .map { entry in
      .with {
        $0.source = Crm_V1_LeadSource(entry.source)
        $0.campaign = entry.campaign
        $0.leads = entry.leads
      }
    }
    out.section.truncated = page.nextPageToken != nil
    return out
  }

  func timeline(of record: RecordLink, size: Int, principal: Principal) async throws -> Crm_V1_Customer360Timeline? {
    let page = try await interactions.timeline(of: record, pageSize: size, pageToken: "", principal: principal)
    var out = Crm_V1_Customer360Timeline()
    out.entries = page.items.map { Crm_V1_TimelineEntry($0, on: record) }
    out.section.truncated = page.nextPageToken != nil
    return out
  }
}

extension Crm_V1_Customer360Hierarchy: InsightService.Section360 {}
extension Crm_V1_Customer360Contacts: InsightService.Section360 {}
extension Crm_V1_Customer360Pipeline: InsightService.Section360 {}
extension Crm_V1_Customer360Service: InsightService.Section360 {}
extension Crm_V1_Customer360Financials: InsightService.Section360 {}
extension Crm_V1_Customer360Tasks: InsightService.Section360 {}
extension Crm_V1_Customer360Origin: InsightService.Section360 {}
extension Crm_V1_Customer360Timeline: InsightService.Section360 {}

extension Crm_V1_Customer360AccountRef {
  init(_ account: Account) {
    self.init()
    id = account.id.lowercasedString
    name = account.fields.name
  }
}
