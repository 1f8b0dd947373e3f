import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf

/// `crm 360 ACCOUNT_ID`: the customer on one screen.
struct Customer360Command: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "360",
    abstract: "A customer on one screen: hierarchy, contacts, deals, tickets, money, tasks, origin and latest activity.",
    discussion: """
      Every section is what you may see; one you may not see says so. --json prints the whole view.

      Examples:
        crm 360 ACCOUNT_ID
        crm 360 --contact CONTACT_ID --size 10
      """)

  @OptionGroup var client: ClientOptions
  @Argument(help: "The account.") var account: String?
  @Option(help: "A contact instead of an account (its account's sections follow).") var contact: String?
  @Option(help: "Entries per list (1-50).") var size: Int32 = 5

  func validate() throws {
    if (account == nil) == (contact == nil) { throw ValidationError("name an account, or --contact CONTACT_ID") }
  }

  func run() async throws {
    try await runReportingErrors {
      let view = try await client.withClient { grpc, metadata in
        try await Crm_V1_InsightService.Client(wrapping: grpc).getCustomer360(
          .with {
            $0.accountID = account ?? ""
            $0.contactID = contact ?? ""
            $0.sectionSize = size
          }, metadata: metadata)
      }
      if client.json { return try Output.printJSON([view]) }
      Self.print360(view)
    }
  }

  /// A section's heading, or why it is missing.
  static func heading(_ title: String, _ section: Crm_V1_Customer360Section) -> Bool {
    print("")
    guard section.available else {
      print("\(title): not shown — \(section.unavailableReason)")
      return false
    }
    print("\(title)\(section.truncated ? " (the first of more)" : "")")
    return true
  }

  static func print360(_ view: Crm_V1_Customer360) {
    if view.hasContact {
      let c = view.contact
      print("\([c.firstName, c.lastName].joined(separator: " "))\(c.title.isEmpty ? "" : ", \(c.title)")  (contact \(c.id))")
    }
    if view.hasAccount {
      let a = view.account
      print("\(a.name)  (account \(a.id))\(a.industry.isEmpty ? "" : "  \(a.industry)")")
    }
    let h = view.hierarchy
    if heading("Hierarchy", h.section) {
      let path = h.ancestors.map(\.name) + [view.account.name]
      print("  \(path.joined(separator: " › "))")
      if h.childCount > 0 {
        print(
          "  \(h.childCount) below: \(h.children.map(\.name).joined(separator: ", "))\(h.childCount > h.children.count ? ", …" : "")"
        )
      }
    }
    let contacts = view.contacts
    if heading("Contacts (\(contacts.total))", contacts.section) {
      for c in contacts.contacts {
        let email = c.emails.first?.address ?? ""
        print("  \([c.firstName, c.lastName].joined(separator: " "))\(c.title.isEmpty ? "" : ", \(c.title)")  \(email)")
      }
    }
    let p = view.pipeline
    if heading("Open deals (\(p.openCount))", p.section) {
      if !p.openAmount.isEmpty {
        print(
          "  open \(p.openAmount.map(Output.money).joined(separator: ", ")); "
            + "weighted \(p.weightedAmount.map(Output.money).joined(separator: ", "))")
      }
      for d in p.openOpportunities {
        print(
          "  \(d.name)  \(d.stageName) (\(d.probability)%)  \(d.hasAmount ? Output.money(d.amount) : "")"
            + "  since \(Output.time(d.stageEnterTime))")
      }
      for d in p.recentlyClosed { print("  \(Output.name(d.state)): \(d.name)  \(d.hasAmount ? Output.money(d.amount) : "")") }
    }
    let s = view.service
    if heading("Open tickets (\(s.openCount), \(s.breachedCount) breached)", s.section) {
      for t in s.openTickets { print("  #\(t.number)  \(Output.name(t.status))  \(Tickets.slaLabel(t))  \(t.subject)") }
      if s.satisfactionResponses > 0 {
        print(
          String(format: "  satisfaction: %.1f of 5 from %d ratings in 90 days", s.satisfactionAverage, s.satisfactionResponses))
      }
    }
    if heading("Money", view.financials.section) { Billing.printPanel(view.financials.panel) }
    if heading("Upcoming tasks", view.tasks.section) {
      for t in view.tasks.upcoming {
        print("  \(t.hasDueTime ? Output.time(t.dueTime) : "no due time")  \(t.subject)")
      }
    }
    let o = view.origin
    if heading("Origin", o.section) {
      if o.hasFirstTouch {
        let l = o.firstTouch
        print(
          "  first touch \(Output.time(l.createTime)): \(Output.name(l.source))\(l.campaign.isEmpty ? "" : ", campaign \(l.campaign)")"
        )
      }
      for source in o.sources {
        print("  \(Output.name(source.source))\(source.campaign.isEmpty ? "" : " / \(source.campaign)"): \(source.leads) lead(s)")
      }
    }
    if heading("Latest", view.timeline.section) {
      for entry in view.timeline.entries {
        switch entry.entry {
        case .interaction(let interaction):
          let what = [interaction.subject, interaction.outcome].filter { !$0.isEmpty }.joined(separator: " — ")
          print("  \(Output.time(entry.time))  \(Output.name(interaction.kind))  \(what)")
        case .change(let change):
          let fields = change.changes.prefix(6).map(\.field).joined(separator: ", ") + (change.changes.count > 6 ? ", …" : "")
          print("  \(Output.time(entry.time))  \(Output.name(entry.record.recordType)) \(Output.name(entry.type))  \(fields)")
        case nil:
          break
        }
      }
    }
  }
}
