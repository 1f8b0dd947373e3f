import CRMCore
import Foundation
import Testing

@Suite("Capture: reading inbound email and web forms")
struct CaptureTests {
  static func raw(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

  @Test("a multipart message: encoded-word sender and subject, quoted-printable text part, folded header, date")
  func multipart() throws {
    let message = try InboundEmail(
      raw: Self.raw(
        """
        Received: from mx.example.net
        From: =?UTF-8?B?5p2O5Lqa?= =?UTF-8?Q?_Smith?= <Li.Smith+news@Example.COM>
        To: sales@ours.example
        Subject: =?ISO-8859-1?Q?Caf=E9_order?=
         for 20 seats
        Date: Tue, 1 Jul 2025 10:52:37 +0200
        Message-ID: <abc.123@mail.example.com>
        MIME-Version: 1.0
        Content-Type: multipart/alternative; boundary="b1"

        preamble
        --b1
        Content-Type: text/html; charset=utf-8

        <p>HTML version</p>
        --b1
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        We would like 20 seats =E2=80=94 can you quote?=
         Thanks.
        --b1--
        """), field: "email.raw")
    #expect(message.senderName == "李亚 Smith")
    #expect(message.senderAddress == "Li.Smith+news@Example.COM")
    #expect(message.subject == "Café order for 20 seats")
    #expect(message.messageID == "abc.123@mail.example.com")
    #expect(message.body == "We would like 20 seats — can you quote? Thanks.")
    #expect(message.date == Timestamp(microsecondsSinceEpoch: 1_751_359_957_000_000))
  }

  @Test("base64 bodies, HTML-only mail and bare addresses")
  func htmlAndBase64() throws {
    let html = Data("<html><style>p{}</style><body><p>Hello &amp; welcome</p><br>Bye</body></html>".utf8)
      .base64EncodedString()
    let message = try InboundEmail(
      raw: Self.raw(
        """
        From: buyer@example.org (Pat Buyer)
        Subject: Hi
        Content-Type: text/html; charset=utf-8
        Content-Transfer-Encoding: base64

        \(html)
        """), field: "email.raw")
    #expect(message.senderName == "Pat Buyer" && message.senderAddress == "buyer@example.org")
    #expect(message.body == "Hello & welcome\n\nBye" || message.body == "Hello & welcome\nBye")
    #expect(message.messageID.isEmpty && message.date == nil)
  }

  @Test("a message without a sender or without headers is INVALID_ARGUMENT on the field")
  func invalid() {
    for text in ["just some text without headers", "Subject: no sender\n\nbody", "From: nobody\n\nbody"] {
      #expect {
        try InboundEmail(raw: Self.raw(text), field: "email.raw")
      } throws: { error in
        guard case .invalidArgument(let violations) = error as? CRMError else { return false }
        return violations.first?.field == "email.raw"
      }
    }
  }

  @Test("web forms: aliases, explicit field map, UTM merge, unknown fields kept, errors named by form field")
  func webForm() throws {
    let form = WebFormSubmission(
      fields: [
        "Full Name": "Ada Lovelace", "E-mail": "ADA@Example.com", "Organisation": "Analytical Engines Ltd",
        "utm_source": "google", "utm_medium": "cpc", "How did you hear": "a friend", "seats": "12",
        "Message": "Please call me",
      ], fieldMap: ["seats": "company_size"], formName: "Contact us", pageURL: "https://example.com/contact")
    let capture = try Capture(
      CaptureRequest(
        signal: .webForm(form), campaign: "spring",
        utm: UTMParameters(source: "", medium: "", campaign: "q2", term: "", content: "")))
    #expect(capture.channel == .webForm && capture.needsDigest)
    #expect(capture.lead.firstName == "Ada" && capture.lead.lastName == "Lovelace")
    #expect(capture.lead.emails.map(\.address) == ["ada@example.com"])
    #expect(capture.lead.company == "Analytical Engines Ltd" && capture.lead.companySize == 12)
    #expect(capture.lead.utm?.source == "google" && capture.lead.utm?.campaign == "q2" && capture.lead.campaign == "spring")
    #expect(capture.lead.source == .webForm && capture.lead.sourceDetail == "Contact us")
    #expect(capture.interaction.body?.contains("How did you hear: a friend") == true)
    #expect(capture.interaction.body?.contains("Please call me") == true)
    #expect(capture.interaction.body?.contains("Page: https://example.com/contact") == true)

    // The same submission gives the same digest source; a different one does not.
    let again = try Capture(CaptureRequest(signal: .webForm(form)))
    #expect(again.messageID == capture.messageID)
    var other = form
    other.fields["Message"] = "Different"
    #expect(try Capture(CaptureRequest(signal: .webForm(other))).messageID != capture.messageID)

    #expect {
      try Capture(
        CaptureRequest(signal: .webForm(WebFormSubmission(fields: ["email": "not an email"], fieldMap: ["x": "shoe_size"]))))
    } throws: { error in
      guard case .invalidArgument(let violations) = error as? CRMError else { return false }
      let fields = Set(violations.map(\.field))
      return fields.contains("web_form.fields[\"email\"]") && fields.contains("web_form.field_map[\"x\"]")
    }
  }
}
