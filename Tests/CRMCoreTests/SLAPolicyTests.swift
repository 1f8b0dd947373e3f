import CRMCore
import Foundation
import Testing

@Suite("Ticket statuses and SLA policies")
struct SLAPolicyTests {
  @Test("nothing returns to new; closed is final; a customer comment reopens pending, on-hold and solved")
  func statusRules() {
    for from in TicketStatus.allCases {
      #expect(from.canMove(to: .new) == (from == .new), "\(from) → new")
      #expect(TicketStatus.closed.canMove(to: from) == (from == .closed), "closed → \(from)")
    }
    #expect(TicketStatus.new.canMove(to: .solved) && TicketStatus.solved.canMove(to: .open))
    #expect(TicketStatus.pending.afterCustomerComment == .open && TicketStatus.onHold.afterCustomerComment == .open)
    #expect(TicketStatus.solved.afterCustomerComment == .open && TicketStatus.new.afterCustomerComment == .new)
    #expect(TicketStatus.closed.afterCustomerComment == nil)
    #expect(TicketPriority.urgent > .high && TicketPriority.low < .normal)
  }

  @Test("the first policy whose conditions all hold applies; values inside a condition are alternatives")
  func matching() {
    let gold = SLAPolicy(
      id: UUID(), name: "Gold accounts",
      conditions: .init(accountTiers: ["gold"]),
      targets: [.urgent: [.firstReply: .init(minutes: 15, businessHours: false)]])
    let phoneIncidents = SLAPolicy(
      id: UUID(), name: "Phone incidents", conditions: .init(types: [.incident, .problem], channels: [.phone]),
      targets: [.normal: [.firstReply: .init(minutes: 60, businessHours: true)]])
    let everyone = SLAPolicy(id: UUID(), name: "Everyone", conditions: .init(), targets: [:])
    let policies = [gold, phoneIncidents, everyone]
    let goldUrgent = SLASubject(priority: .urgent, type: .incident, channel: .phone, accountTier: "gold")
    #expect(SLAPolicy.first(in: policies, matching: goldUrgent)?.name == "Gold accounts")
    #expect(SLAPolicy.first(in: policies, matching: goldUrgent)?.targets(for: goldUrgent)[.firstReply]?.minutes == 15)
    let phone = SLASubject(priority: .normal, type: .problem, channel: .phone)
    #expect(SLAPolicy.first(in: policies, matching: phone)?.name == "Phone incidents")
    // A condition on a value the ticket does not have (no type) does not match.
    #expect(SLAPolicy.first(in: policies, matching: SLASubject(priority: .normal, channel: .phone))?.name == "Everyone")
    #expect(SLAPolicy.first(in: [gold, phoneIncidents], matching: SLASubject(priority: .low, channel: .email)) == nil)
    // A priority the policy sets no target for tracks nothing.
    #expect(gold.targets(for: SLASubject(priority: .low, channel: .email, accountTier: "gold")).isEmpty)
    let tagged = SLAPolicy(id: UUID(), name: "VIP", conditions: .init(tags: ["vip", "exec"]), targets: [:])
    #expect(tagged.conditions.match(SLASubject(priority: .low, channel: .chat, tags: ["exec", "billing"])))
    #expect(!tagged.conditions.match(SLASubject(priority: .low, channel: .chat, tags: ["billing"])))
  }

  @Test("by default pending pauses next reply and resolution; on-hold pauses nothing; first reply never pauses")
  func pauseRules() {
    let rules = SLAPauseRules.standard
    #expect(rules.pauses(.resolution, in: .pending) && rules.pauses(.nextReply, in: .pending))
    #expect(!rules.pauses(.firstReply, in: .pending))
    #expect(SLAMetric.allCases.allSatisfy { !rules.pauses($0, in: .onHold) && !rules.pauses($0, in: .open) })
  }
}

@Suite("Ticket threading")
struct TicketThreadingTests {
  static func email(_ headers: String) throws -> InboundEmail {
    try InboundEmail(raw: Array((headers + "\r\n\r\nbody\r\n").utf8), field: "raw")
  }

  @Test("tokens in the subject and plus-addresses; In-Reply-To before References, newest first")
  func tokens() throws {
    #expect(TicketThreading.number(inSubject: "Re: [#1042] Order damaged") == 1042)
    #expect(TicketThreading.number(inSubject: "Re: [#12] and [#1042]") == 1042)
    #expect(TicketThreading.number(inSubject: "[#] [#12x] #1042 [1042]") == nil)
    #expect(TicketThreading.number(inRecipients: ["help@acme.example", "support+t1042@acme.example"]) == 1042)
    #expect(TicketThreading.number(inRecipients: ["support+1042@acme.example"]) == 1042)
    #expect(TicketThreading.number(inRecipients: ["support+sales@acme.example"]) == nil)
    let mail = try Self.email(
      """
      From: Ada <ada@example.org>
      To: "Support, Acme" <support+1042@acme.example>, ops@acme.example
      Cc: Bob <bob@example.org>
      Subject: AW: Re: [#1042] Order damaged
      Message-ID: <m3@example.org>
      In-Reply-To: <m2@acme.example>
      References: <m1@example.org>
       <m2@acme.example>
      """.replacingOccurrences(of: "\n", with: "\r\n"))
    #expect(mail.inReplyTo == "m2@acme.example" && mail.references == ["m1@example.org", "m2@acme.example"])
    #expect(mail.recipients == ["support+1042@acme.example", "ops@acme.example", "bob@example.org"])
    #expect(TicketThreading.candidates(mail) == ["m2@acme.example", "m1@example.org"])
    #expect(TicketThreading.cleanSubject(mail.subject) == "[#1042] Order damaged")
    #expect(TicketThreading.cleanSubject("回复： 发票问题") == "发票问题" && TicketThreading.cleanSubject("Re: ") == "(no subject)")
  }
}
