import CRMStore
import Foundation
import Testing

@Suite("Store: webhook signatures")
struct WebhookSignatureTests {
  @Test("the Standard Webhooks test vector signs to the spec's signature")
  func standardVector() {
    // From the Standard Webhooks reference libraries' tests.
    let signature = WebhookSignature.sign(
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
      body: Array(#"{"test": 2432232314}"#.utf8))
    #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
  }

  @Test("secrets are whsec_ and 32 random bytes; anything else does not sign")
  func secrets() {
    let secret = WebhookSignature.generateSecret()
    #expect(secret.hasPrefix("whsec_") && Data(base64Encoded: String(secret.dropFirst(6)))?.count == 32)
    #expect(secret != WebhookSignature.generateSecret())
    #expect(WebhookSignature.sign(secret: "not-a-secret", id: "a", timestamp: 1, body: []) == nil)
    #expect(WebhookSignature.sign(secret: "whsec_%%%", id: "a", timestamp: 1, body: []) == nil)
  }
}
