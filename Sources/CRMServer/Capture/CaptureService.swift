import CRMCore
public import CRMProto
public import CRMStore
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `crm.v1.CaptureService`: leads from every channel, and the capture keys admins issue for them.
///
/// A capture key reaches only ``captureLead(request:context:)`` (``RequestInterceptor`` refuses the
/// rest and applies the key's rate), and only for its own channel.
public struct CaptureService: Crm_V1_CaptureService.SimpleServiceProtocol {
  let captures: CaptureStore
  let tickets: TicketStore
  let access: AccessStore
  let authenticator: Authenticator

  /// The one method a lead capture key may call.
  public static let captureMethod = "crm.v1.CaptureService/CaptureLead"
  /// The one method a support capture key may call.
  public static let supportMethod = "crm.v1.CaptureService/CaptureSupportEmail"

  /// The method a capture key with `limits` may call.
  public static func method(for limits: CaptureKeyLimits) -> String { limits.support ? supportMethod : captureMethod }

  /// A service over the stores.
  public init(captures: CaptureStore, tickets: TicketStore, access: AccessStore, authenticator: Authenticator) {
    self.captures = captures
    self.tickets = tickets
    self.access = access
    self.authenticator = authenticator
  }

  /// Turns a support email into a ticket or a comment on the ticket it threads onto.
  public func captureSupportEmail(request: Crm_V1_CaptureSupportEmailRequest, context: ServerContext) async throws
    -> Crm_V1_CaptureSupportEmailResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    if request.email.raw.isEmpty { violations.add("email.raw", "is required: the raw RFC 5322 message", reason: "REQUIRED") }
    try violations.check()
    let result = try await tickets.captureEmail(
      raw: Array(request.email.raw), context: .init(principal: call.principal, requestID: nil))
    return .with {
      switch result.outcome {
      case .created: $0.outcome = .created
      case .commented: $0.outcome = .commented
      case .followUp: $0.outcome = .followUp
      case .duplicate: $0.outcome = .duplicate
      }
      $0.ticket = Crm_V1_Ticket(result.ticket)
      $0.comment = Crm_V1_TicketComment(result.comment)
      if let requester = result.requester { $0.requester = Crm_V1_RecordRef(requester.link) }
      $0.requesterCreated = result.requesterCreated
    }
  }

  /// Creates a lead from the signal, or logs it on the lead or contact it comes from.
  public func captureLead(request: Crm_V1_CaptureLeadRequest, context: ServerContext) async throws
    -> Crm_V1_CaptureLeadResponse
  {
    let call = try RequestContext.require()
    let principal = call.principal
    let captureRequest = try request.domain()
    if let scope = principal.captureScope, scope.channel != captureRequest.signal.channel {
      throw CRMError.permissionDenied(
        "this capture key is for the \(scope.channel.rawValue) channel, not \(captureRequest.signal.channel.rawValue)")
    }
    let capture = try Capture(captureRequest)
    let result = try await captures.capture(capture, context: .init(principal: principal, requestID: nil))
    return .with {
      $0.interactionID = result.interactionID.lowercasedString
      $0.messageID = result.messageID
      $0.replayed = result.replayed
      $0.outcome = .accepted
      guard principal.captureScope == nil, result.recordVisible else { return }
      $0.record = Crm_V1_RecordRef(result.record)
      switch result.outcome {
      case .createdLead: $0.outcome = .createdLead
      case .loggedOnLead: $0.outcome = .loggedOnLead
      case .loggedOnContact: $0.outcome = .loggedOnContact
      }
    }
  }

  /// Issues a capture key; the secret is in this response only.
  public func createCaptureKey(request: Crm_V1_CreateCaptureKeyRequest, context: ServerContext) async throws
    -> Crm_V1_CreateCaptureKeyResponse
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let channel = LeadSource(request.channel, field: "channel", into: &violations)
    if !CaptureKeyLimits.channels.contains(channel) {
      violations.add(
        "channel", "must be one of LEAD_SOURCE_WEB_FORM, _EMAIL, _PHONE, _CHAT, _EVENT or _PARTNER", reason: "INVALID")
    }
    let name = violations.text("name", request.name, maxLength: 200) ?? ""
    let owner = RequestFields.optionalID(request.ownerID, field: "owner_id", into: &violations)
    if request.support, channel != .email {
      violations.add("channel", "a support key captures email: LEAD_SOURCE_EMAIL", reason: "INVALID")
    }
    let rate = request.rateLimitPerMinute == 0 ? 60 : Int(request.rateLimitPerMinute)
    if !(1...CaptureKeyLimits.maxRatePerMinute).contains(rate) {
      violations.add("rate_limit_per_minute", "must be 1–\(CaptureKeyLimits.maxRatePerMinute)", reason: "OUT_OF_RANGE")
    }
    var expiry: Timestamp?
    if request.hasExpireTime {
      expiry = request.expireTime.domain
      if expiry! <= .now { violations.add("expire_time", "must be in the future", reason: "OUT_OF_RANGE") }
    }
    try violations.check()
    let (key, secret) = try await access.createToken(
      userID: owner ?? call.principal.userID, name: name, expiresAt: expiry,
      capture: CaptureKeyLimits(channel: channel, ratePerMinute: rate, support: request.support), principal: call.principal)
    return .with {
      $0.key = Crm_V1_CaptureKey(key)
      $0.secret = secret
    }
  }

  /// The tenant's capture keys (metadata only).
  public func listCaptureKeys(request: Crm_V1_ListCaptureKeysRequest, context: ServerContext) async throws
    -> Crm_V1_ListCaptureKeysResponse
  {
    let call = try RequestContext.require()
    let keys = try await access.listTokens(userID: nil, captureKeys: true, principal: call.principal)
    return .with { $0.keys = keys.map(Crm_V1_CaptureKey.init) }
  }

  /// Revokes a capture key; it stops working at once on this node.
  public func revokeCaptureKey(request: Crm_V1_RevokeCaptureKeyRequest, context: ServerContext) async throws
    -> Crm_V1_CaptureKey
  {
    let call = try RequestContext.require()
    var violations = Violations()
    let id = RequestFields.id(request.id, field: "id", into: &violations)
    try violations.check()
    let key = try await access.revokeToken(id!, captureKey: true, principal: call.principal)
    authenticator.invalidateAll()
    return Crm_V1_CaptureKey(key)
  }
}

extension Crm_V1_CaptureKey {
  init(_ token: APIToken) {
    self.init()
    id = token.id.lowercasedString
    name = token.name
    channel = Crm_V1_LeadSource(token.capture?.channel ?? .unspecified)
    rateLimitPerMinute = Int32(token.capture?.ratePerMinute ?? 0)
    support = token.capture?.support ?? false
    ownerID = token.userID.lowercasedString
    createTime = .init(token.createdAt)
    if let expiresAt = token.expiresAt { expireTime = .init(expiresAt) }
    if let revokedAt = token.revokedAt { revokeTime = .init(revokedAt) }
    if let lastUsedAt = token.lastUsedAt { lastUseTime = .init(lastUsedAt) }
  }
}

extension Crm_V1_CaptureLeadRequest {
  /// The request in domain terms; field-level problems (no signal, bad times, a person's invalid
  /// fields) are reported here, the rest by ``Capture/init(_:now:)``.
  func domain() throws(CRMError) -> CaptureRequest {
    guard let given = self.signal else {
      throw .invalid("signal", "set one of web_form, email, phone_call, chat, badge_scan or partner_referral", reason: "REQUIRED")
    }
    var violations = Violations()
    let now = Timestamp.now
    func time(_ has: Bool, _ value: Google_Protobuf_Timestamp, field: String) -> Timestamp? {
      guard has else { return nil }
      let time = value.domain
      if time.microsecondsSinceEpoch > now.microsecondsSinceEpoch + 300_000_000 {
        violations.add(field, "must not be in the future", reason: "OUT_OF_RANGE")
      }
      return time
    }
    let signal: CaptureSignal
    switch given {
    case .webForm(let form):
      signal = .webForm(
        WebFormSubmission(
          fields: form.fields, fieldMap: form.fieldMap, formName: String(form.formName.prefix(255)),
          pageURL: String(form.pageURL.prefix(2048)), referrer: String(form.referrer.prefix(2048))))
    case .email(let email):
      if email.raw.isEmpty { violations.add("email.raw", "is required", reason: "REQUIRED") }
      signal = .email(raw: [UInt8](email.raw))
    case .phoneCall(let call):
      let direction = InteractionDirection(call.direction, field: "phone_call.direction", into: &violations)
      if call.hasDurationSeconds, call.durationSeconds < 0 {
        violations.add("phone_call.duration_seconds", "must not be negative", reason: "OUT_OF_RANGE")
      }
      signal = .phoneCall(
        PhoneCallSignal(
          callerNumber: call.callerNumber, callerName: call.callerName, calledNumber: String(call.calledNumber.prefix(64)),
          direction: direction, durationSeconds: call.hasDurationSeconds ? call.durationSeconds : nil,
          summary: call.summary, startAt: time(call.hasStartTime, call.startTime, field: "phone_call.start_time")))
    case .chat(let chat):
      signal = .chat(
        ChatSignal(
          visitorName: chat.visitorName, visitorEmail: chat.visitorEmail, visitorPhone: chat.visitorPhone,
          platform: String(chat.platform.prefix(255)), transcript: chat.transcript,
          startAt: time(chat.hasStartTime, chat.startTime, field: "chat.start_time")))
    case .badgeScan(let scan):
      let person = scan.person.fields(prefix: "badge_scan.person", requiringIdentity: true, into: &violations)
      signal = .badgeScan(
        BadgeScanSignal(
          eventName: String(scan.eventName.prefix(255)), person: person, notes: scan.notes,
          scannedAt: time(scan.hasScanTime, scan.scanTime, field: "badge_scan.scan_time")))
    case .partnerReferral(let referral):
      let person = referral.person.fields(prefix: "partner_referral.person", requiringIdentity: true, into: &violations)
      signal = .partnerReferral(
        PartnerReferralSignal(
          partnerName: String(referral.partnerName.prefix(255)), partnerReference: String(referral.partnerReference.prefix(255)),
          person: person, notes: referral.notes))
    }
    try violations.check()
    return CaptureRequest(
      signal: signal, messageID: messageID, campaign: campaign,
      utm: hasUtm
        ? UTMParameters(source: utm.source, medium: utm.medium, campaign: utm.campaign, term: utm.term, content: utm.content)
        : nil,
      tags: tags, regionCode: regionCode)
  }
}
