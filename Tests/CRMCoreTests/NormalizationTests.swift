import CRMCore
import Foundation
import Testing

@Suite("Normalization of emails, phones, websites and tags")
struct NormalizationTests {
  @Test(
    "valid emails are trimmed and lower-cased",
    arguments: [
      ("  Ada@Example.COM ", "ada@example.com"),
      ("first.last+crm@sub.example.co.uk", "first.last+crm@sub.example.co.uk"),
      ("李雷@例子.中国", "李雷@例子.中国"),
    ])
  func validEmail(input: String, expected: String) {
    #expect(EmailAddress(input)?.value == expected)
  }

  @Test(
    "invalid emails are rejected",
    arguments: [
      "", "plain", "@example.com", "a@", "a@b", "a@@b.com", "a b@example.com", "a@exa mple.com", ".a@example.com",
      "a..b@example.com", "a@-example.com", "a@example.c0m", "\"quoted\"@example.com",
    ])
  func invalidEmail(input: String) {
    #expect(EmailAddress(input) == nil)
  }

  @Test(
    "phones become E.164 when the country is known",
    arguments: [
      ("(415) 555-0100", "US", "+14155550100"),
      ("+44 20 7946 0958", nil, "+442079460958"),
      ("020 7946 0958", "GB", "+442079460958"),
      ("0049 30 1234567", nil, "+49301234567"),
      ("010-1234-5678", "cn", "+861012345678"),
      ("１３８００１３８０００", "CN", "+8613800138000"),
    ] as [(String, String?, String)])
  func e164(input: String, region: String?, expected: String) {
    let phone = PhoneNumber(input, regionCode: region)
    #expect(phone?.value == expected)
    #expect(phone?.isE164 == true)
  }

  @Test("phones without a country keep their digits")
  func digitsOnly() {
    let phone = PhoneNumber("555-0100")
    #expect(phone?.value == "5550100")
    #expect(phone?.isE164 == false)
  }

  @Test("non-phones are rejected", arguments: ["", "abc", "+1", "555-CALL-NOW", "+0123456789", "1234567890123456789"])
  func invalidPhone(input: String) {
    #expect(PhoneNumber(input, regionCode: "US") == nil)
  }

  @Test(
    "websites give a bare domain",
    arguments: [
      ("https://www.Example.com/about?x=1", "example.com", "https://www.Example.com/about?x=1"),
      ("example.org", "example.org", "https://example.org"),
      ("http://shop.example.co.jp:8080", "shop.example.co.jp", "http://shop.example.co.jp:8080"),
    ])
  func website(input: String, domain: String, url: String) {
    let website = Website(input)
    #expect(website?.domain == domain)
    #expect(website?.url == url)
  }

  @Test(
    "bad websites are rejected", arguments: ["ftp://example.com", "not a url", "https://", "localhost", "http://exa_mple.com"])
  func badWebsite(input: String) {
    #expect(Website(input) == nil)
  }

  @Test("tags are trimmed, lower-cased and de-duplicated")
  func tags() {
    var violations = Violations()
    #expect(Tags.normalize([" VIP", "vip", "Renewal "], field: "tags", into: &violations) == ["vip", "renewal"])
    #expect(violations.isEmpty)
  }

  @Test("too many or too long tags are violations")
  func badTags() {
    var violations = Violations()
    _ = Tags.normalize(Array(repeating: "x", count: 51), field: "account.tags", into: &violations)
    _ = Tags.normalize([String(repeating: "y", count: 65)], field: "contact.tags", into: &violations)
    #expect(violations.all.map(\.field) == ["account.tags", "contact.tags[0]"])
  }
}

@Suite("Validation collects every violation")
struct ValidationTests {
  @Test("an account with several problems reports them all with field paths")
  func accountViolations() {
    var fields = AccountFields(name: "   ")
    fields.website = "not a url"
    fields.phone = "call me"
    fields.employeeCount = -1
    fields.annualRevenue = Money(currencyCode: "dollars", units: 5, nanos: -1)
    fields.billingAddress = PostalAddress(regionCode: "USA")
    var violations = Violations()
    _ = fields.normalized(prefix: "account", into: &violations)
    #expect(
      Set(violations.all.map(\.field)) == [
        "account.name", "account.website", "account.phone", "account.employee_count",
        "account.annual_revenue.currency_code", "account.annual_revenue.nanos", "account.billing_address.region_code",
      ])
  }

  @Test("control characters are rejected but line breaks in descriptions are kept")
  func controlCharacters() {
    var fields = AccountFields(name: "Acme\u{0007}")
    fields.description = "line one\nline two"
    var violations = Violations()
    let normalized = fields.normalized(prefix: "account", into: &violations)
    #expect(violations.all.map(\.reason) == ["INVALID_CHARACTERS"])
    #expect(normalized.description == "line one\nline two")
  }

  @Test("a name longer than 255 characters is too long; 255 emoji are fine")
  func lengths() {
    var violations = Violations()
    _ = AccountFields(name: String(repeating: "😀", count: 255)).normalized(prefix: "account", into: &violations)
    #expect(violations.isEmpty)
    _ = AccountFields(name: String(repeating: "a", count: 256)).normalized(prefix: "account", into: &violations)
    #expect(violations.all.map(\.reason) == ["TOO_LONG"])
  }

  @Test("phones use the billing country")
  func phoneUsesBillingCountry() {
    var fields = AccountFields(name: "Acme")
    fields.phone = "030 1234567"
    fields.billingAddress = PostalAddress(regionCode: "de")
    var violations = Violations()
    let normalized = fields.normalized(prefix: "account", into: &violations)
    #expect(normalized.phone == "+49301234567")
    #expect(normalized.billingAddress?.regionCode == "DE")
  }

  @Test("a contact needs a name; emails get one primary; two primaries are rejected")
  func contactRules() {
    var violations = Violations()
    var nameless = ContactFields()
    nameless.emails = [
      ContactEmail(address: "A@Example.com"), ContactEmail(address: "a@example.com"), ContactEmail(address: "b@example.com"),
    ]
    let normalized = nameless.normalized(prefix: "contact", into: &violations)
    #expect(violations.all.map(\.field) == ["contact.last_name"])
    #expect(normalized.emails.map(\.address) == ["a@example.com", "b@example.com"])
    #expect(normalized.emails.map(\.isPrimary) == [true, false])

    var twoPrimaries = ContactFields()
    twoPrimaries.lastName = "Lovelace"
    twoPrimaries.phones = [
      ContactPhone(number: "+14155550100", isPrimary: true), ContactPhone(number: "+14155550101", isPrimary: true),
    ]
    var more = Violations()
    _ = twoPrimaries.normalized(prefix: "contact", into: &more)
    #expect(more.all.map(\.reason) == ["MULTIPLE_PRIMARY"])
  }

  @Test("only masked fields are validated on update")
  func maskedValidation() {
    var patch = AccountFields(name: "")
    patch.industry = "Software"
    var violations = Violations()
    let normalized = patch.normalized(prefix: "account", only: [.industry], into: &violations)
    #expect(violations.isEmpty)
    #expect(normalized.industry == "Software")
  }
}

@Suite("Money weighted by a percentage")
struct MoneyScalingTests {
  @Test(
    "amount × percent / 100 is exact to the nano, halves rounded away from zero",
    arguments: [
      ("90000", 10, "9000"), ("1234.56", 35, "432.096"), ("0.000000001", 50, "0.000000001"),
      ("0.000000001", 49, "0"), ("-0.000000003", 50, "-0.000000002"),
      ("999999999999999.999999999", 100, "999999999999999.999999999"),
      ("19.99", 0, "0"),
    ])
  func scaled(amount: String, percent: Int, expected: String) throws {
    let money = try #require(Money(currencyCode: "USD", numeral: amount))
    #expect(money.scaled(byPercent: percent) == Money(currencyCode: "USD", numeral: expected))
  }
}

@Suite("Trimming white space")
struct TrimmingTests {
  @Test(
    "visible ASCII ends come back as they are; any Unicode space is trimmed",
    arguments: [
      ("Acme", "Acme"), (" Acme\t", "Acme"), ("\u{3000}销售易\u{00A0}", "销售易"), ("销售易", "销售易"), ("", ""), ("   ", ""),
      ("a b", "a b"),
    ])
  func trimmed(input: String, expected: String) {
    #expect(input.trimmingWhitespace() == expected)
  }
}
