import CRMCore
import Foundation
import Testing

@Suite("Leads: the status lifecycle")
struct LeadStatusTests {
  @Test(
    "allowed moves succeed",
    arguments: [
      (LeadStatus.new, LeadStatus.working), (.new, .qualified), (.working, .nurturing), (.nurturing, .working),
      (.qualified, .working), (.disqualified, .working),
    ])
  func allowed(from: LeadStatus, to: LeadStatus) throws {
    #expect(try from.transition(to: to, reason: nil) == to)
  }

  @Test(
    "illegal moves are FAILED_PRECONDITION",
    arguments: [
      (LeadStatus.converted, LeadStatus.working), (.converted, .disqualified), (.disqualified, .qualified), (.new, .new),
      (.new, .converted), (.qualified, .converted),
    ])
  func illegal(from: LeadStatus, to: LeadStatus) {
    #expect {
      try from.transition(to: to, reason: "because")
    } throws: { error in
      if case .failedPrecondition = error as? CRMError { return true }
      return false
    }
  }

  @Test("disqualifying needs a reason")
  func disqualifyNeedsReason() throws {
    #expect(throws: CRMError.invalid("disqualified_reason", "is required to disqualify a lead", reason: "REQUIRED")) {
      try LeadStatus.working.transition(to: .disqualified, reason: "  ")
    }
    #expect(try LeadStatus.working.transition(to: .disqualified, reason: "no budget") == .disqualified)
  }

  @Test("every status can reach every other only through allowed edges, and converted is final")
  func graph() {
    #expect(LeadStatus.converted.allowedNext.isEmpty)
    for status in LeadStatus.allCases { #expect(!status.allowedNext.contains(.converted)) }
    for status in LeadStatus.allCases { #expect(!status.allowedNext.contains(status)) }
  }
}

@Suite("Leads: fields and match keys")
struct LeadFieldTests {
  @Test("a lead is normalized like a contact, with its region for phones")
  func normalization() {
    var lead = LeadFields()
    lead.firstName = " Ada "
    lead.company = "Analytical Engines Ltd."
    lead.emails = [ContactEmail(address: "Ada+CRM@Example.com")]
    lead.phones = [ContactPhone(number: "020 7946 0958")]
    lead.regionCode = "gb"
    lead.website = "www.analytical.example"
    lead.utm = UTMParameters(source: "newsletter", medium: "email")
    lead.tags = ["Event", "event"]
    var violations = Violations()
    let normalized = lead.normalized(prefix: "lead", into: &violations)
    #expect(violations.isEmpty)
    #expect(normalized.firstName == "Ada")
    #expect(normalized.emails.map(\.address) == ["ada+crm@example.com"])
    #expect(normalized.emails.first?.isPrimary == true)
    #expect(normalized.phones.map(\.number) == ["+442079460958"])
    #expect(normalized.regionCode == "GB")
    #expect(normalized.domain == "analytical.example")
    #expect(normalized.tags == ["event"])
    let subject = normalized.matchSubject
    #expect(subject.emails == ["ada+crm@example.com"])
    #expect(MatchKeys.storedEmailKeys(subject.emails) == ["ada+crm@example.com", "ada@example.com"])
    #expect(subject.companyKey == "analytical engines")
    #expect(subject.personKey == "ada")
  }

  @Test("an empty lead, and bad fields, are reported together")
  func violations() {
    var violations = Violations()
    _ = LeadFields().normalized(prefix: "lead", into: &violations)
    #expect(violations.all.map(\.field) == ["lead"])
    var bad = LeadFields()
    bad.lastName = "Hopper"
    bad.emails = [ContactEmail(address: "not-an-email")]
    bad.regionCode = "Britain"
    bad.companySize = -5
    var more = Violations()
    _ = bad.normalized(prefix: "lead", into: &more)
    #expect(Set(more.all.map(\.field)) == ["lead.emails[0].address", "lead.region_code", "lead.company_size"])
  }

  @Test(
    "company names compare without legal forms, punctuation or case",
    arguments: [
      ("Acme, Inc.", "acme"), ("ACME Corporation", "acme"), ("Acme & Sons Ltd", "acme and sons"),
      ("Müller GmbH & Co. KG", "müller"), ("北京字节跳动科技有限公司", "北京字节跳动科技"), ("The Co", "the"),
    ])
  func companyKeys(name: String, key: String) {
    #expect(MatchKeys.companyName(name) == key)
  }

  @Test("plus tags are dropped only when the tenant says so")
  func plusTags() throws {
    let email = try #require(EmailAddress("jo+news@example.com"))
    #expect(MatchKeys.email(email, ignoringPlusTags: false) == "jo+news@example.com")
    #expect(MatchKeys.email(email, ignoringPlusTags: true) == "jo@example.com")
    let leadingPlus = try #require(EmailAddress("+jo@example.com"))
    #expect(MatchKeys.email(leadingPlus, ignoringPlusTags: true) == "+jo@example.com")
  }

  @Test("registration ids keep letters and digits, upper-cased")
  func registrationIDs() {
    #expect(MatchKeys.registrationID("91350100-m000100y43") == "91350100M000100Y43")
    #expect(MatchKeys.registrationID("DE 123 456 789") == "DE123456789")
    #expect(MatchKeys.registrationID(" - ") == nil)
  }
}

@Suite("Timestamps")
struct TimestampTests {
  @Test("RFC 3339 text matches Foundation's calendar, before and after the epoch")
  func rfc3339() {
    #expect(Timestamp(microsecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
    #expect(Timestamp(microsecondsSinceEpoch: 1_795_516_200_123_456).rfc3339 == "2026-11-24T10:30:00.123456Z")
    #expect(Timestamp(microsecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
    #expect(Timestamp(microsecondsSinceEpoch: 951_782_400_000_000).rfc3339 == "2000-02-29T00:00:00.000000Z")
  }
}
