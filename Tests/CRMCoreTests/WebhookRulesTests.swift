import CRMCore
import Testing

@Suite("Webhooks: event types, the retry schedule and where requests may go")
struct WebhookRulesTests {
  @Test("event type patterns parse, match and name what is wrong")
  func patterns() {
    var violations = Violations()
    let parsed = WebhookEventPattern.parse(
      ["lead.created", "ticket.*", "*.archived", "*", "lead.created", "lead.exploded", "deal.created", "lead", ""],
      field: "event_types", into: &violations)
    #expect(parsed.map(\.description) == ["lead.created", "ticket.*", "*.archived", "*"], "repeats kept once")
    #expect(violations.all.map(\.field) == ["event_types[5]", "event_types[6]", "event_types[7]", "event_types[8]"])
    #expect(WebhookEventPattern("lead.created")!.matches(.lead, .create))
    #expect(!WebhookEventPattern("lead.created")!.matches(.lead, .update))
    #expect(WebhookEventPattern("ticket.*")!.matches(.ticket, .merge))
    #expect(!WebhookEventPattern("ticket.*")!.matches(.lead, .merge))
    #expect(WebhookEventPattern("*.archived")!.matches(.account, .archive))
    #expect(WebhookEventPattern("*")!.matches(.task, .restore))
    #expect(WebhookEventType.name(.opportunity, .restore) == "opportunity.restored")
    var none = Violations()
    _ = WebhookEventPattern.parse([], field: "event_types", into: &none)
    #expect(none.all.map(\.reason) == ["REQUIRED"])
  }

  @Test("the schedule: ten attempts over about three days, jitter stretches by up to a tenth, Retry-After never shortens")
  func schedule() {
    #expect(WebhookRetrySchedule.attempts == 10)
    let total = WebhookRetrySchedule.waits.reduce(Duration.zero, +)
    let hours: Int64 = 2 + 5 + 10 + 14 + 20 + 24
    let expected: Int64 = 5 + 5 * 60 + 30 * 60 + hours * 3600
    #expect(total == .seconds(expected))
    #expect(WebhookRetrySchedule.wait(afterAttempt: 1, jitter: 0) == .seconds(5))
    #expect(WebhookRetrySchedule.wait(afterAttempt: 2, jitter: 0.5) == .seconds(315))
    let stretched = WebhookRetrySchedule.wait(afterAttempt: 9, jitter: 0.9999)!
    #expect(stretched > .seconds(24 * 3600) && stretched < .seconds(24 * 3600 + 8640 + 1))
    #expect(WebhookRetrySchedule.wait(afterAttempt: 10, jitter: 0) == nil, "the tenth failure is the last")
    #expect(WebhookRetrySchedule.wait(afterAttempt: 0, jitter: 0) == nil)
    #expect(WebhookRetrySchedule.wait(afterAttempt: 1, jitter: 0, retryAfter: .seconds(120)) == .seconds(120))
    #expect(WebhookRetrySchedule.wait(afterAttempt: 3, jitter: 0, retryAfter: .seconds(120)) == .seconds(1800))
    #expect(WebhookRetrySchedule.wait(afterAttempt: 1, jitter: 0, retryAfter: .seconds(9 * 86_400)) == .seconds(86_400))
  }

  @Test("Retry-After as seconds or an HTTP date")
  func retryAfter() {
    let now = Timestamp(seconds: 784_111_777, nanos: 0)  // Sun, 06 Nov 1994 08:49:37 GMT
    #expect(WebhookRetrySchedule.retryAfter("120", now: now) == .seconds(120))
    #expect(WebhookRetrySchedule.retryAfter(" 0 ", now: now) == .seconds(0))
    #expect(WebhookRetrySchedule.retryAfter("Sun, 06 Nov 1994 08:51:37 GMT", now: now) == .seconds(120))
    #expect(WebhookRetrySchedule.retryAfter("Sun, 06 Nov 1994 08:49:00 GMT", now: now) == nil, "already past")
    #expect(WebhookRetrySchedule.retryAfter("-5", now: now) == nil)
    #expect(WebhookRetrySchedule.retryAfter("soon", now: now) == nil)
    #expect(WebhookRetrySchedule.retryAfter("Sun, 31 Feb 1994 08:49:37 GMT", now: now) == nil)
  }

  @Test("only public unicast addresses, also inside IPv4-mapped, NAT64 and 6to4 ones")
  func addresses() {
    let refused: [[UInt8]] = [
      [127, 0, 0, 1], [10, 1, 2, 3], [172, 16, 0, 1], [172, 31, 255, 255], [192, 168, 1, 1], [169, 254, 169, 254],
      [100, 64, 0, 1], [0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255], [198, 18, 0, 1], [192, 0, 2, 1],
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // ::1
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // ::
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],  // ::ffff:127.0.0.1
      [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1],  // 64:ff9b::10.0.0.1
      [0x20, 0x02, 192, 168, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // 2002:c0a8:1::1
      [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // unique local
      [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // link-local
      [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // multicast
      [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // documentation
      [1, 2, 3],
    ]
    for address in refused { #expect(!WebhookAddressPolicy.isPublic(address), "\(address)") }
    let allowed: [[UInt8]] = [
      [8, 8, 8, 8], [172, 32, 0, 1], [100, 128, 0, 1], [93, 184, 216, 34],
      [0x26, 0x06, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // 2606:4700::1
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 8, 8, 4, 4],  // ::ffff:8.8.4.4
    ]
    for address in allowed { #expect(WebhookAddressPolicy.isPublic(address), "\(address)") }
  }

  @Test("endpoint URLs: http or https with a host, no credentials or fragment")
  func urls() {
    var violations = Violations()
    let url = WebhookURL("https://hooks.example.com:8443/crm?x=1", field: "url", into: &violations)
    #expect(url?.host == "hooks.example.com" && url?.port == 8443 && url?.isHTTPS == true)
    #expect(WebhookURL("http://[::1]/h", field: "url", into: &violations)?.host == "::1")
    #expect(WebhookURL("http://example.com", field: "url", into: &violations)?.port == 80)
    #expect(violations.all.isEmpty)
    for bad in [
      "", "ftp://example.com", "https://", "https://u:p@example.com/", "https://example.com/#x", "not a url",
      "https://example.com:0/",
    ] {
      var problems = Violations()
      #expect(WebhookURL(bad, field: "url", into: &problems) == nil, "\(bad)")
      #expect(problems.all.map(\.field) == ["url"])
    }
  }
}
