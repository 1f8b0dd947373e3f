import Foundation

/// A web-form submission: the form's own field names and values, and optionally how to map them.
public struct WebFormSubmission: Sendable, Hashable {
  /// Field name → submitted value, as the form posted them.
  public var fields: [String: String]
  /// Form field name → lead field (`email`, `first_name`, `utm_source`, …) for forms whose names the
  /// built-in aliases do not know.
  public var fieldMap: [String: String]
  public var formName: String
  public var pageURL: String
  public var referrer: String

  public init(
    fields: [String: String], fieldMap: [String: String] = [:], formName: String = "", pageURL: String = "",
    referrer: String = ""
  ) {
    self.fields = fields
    self.fieldMap = fieldMap
    self.formName = formName
    self.pageURL = pageURL
    self.referrer = referrer
  }
}

/// A phone call from (or to) a prospect, as a telephony integration reports it.
public struct PhoneCallSignal: Sendable, Hashable {
  public var callerNumber: String
  public var callerName: String
  public var calledNumber: String
  public var direction: InteractionDirection
  public var durationSeconds: Int32?
  public var summary: String
  public var startAt: Timestamp?

  public init(
    callerNumber: String, callerName: String = "", calledNumber: String = "", direction: InteractionDirection = .inbound,
    durationSeconds: Int32? = nil, summary: String = "", startAt: Timestamp? = nil
  ) {
    self.callerNumber = callerNumber
    self.callerName = callerName
    self.calledNumber = calledNumber
    self.direction = direction
    self.durationSeconds = durationSeconds
    self.summary = summary
    self.startAt = startAt
  }
}

/// A chat conversation with a site visitor.
public struct ChatSignal: Sendable, Hashable {
  public var visitorName: String
  public var visitorEmail: String
  public var visitorPhone: String
  public var platform: String
  public var transcript: String
  public var startAt: Timestamp?

  public init(
    visitorName: String = "", visitorEmail: String = "", visitorPhone: String = "", platform: String = "",
    transcript: String = "", startAt: Timestamp? = nil
  ) {
    self.visitorName = visitorName
    self.visitorEmail = visitorEmail
    self.visitorPhone = visitorPhone
    self.platform = platform
    self.transcript = transcript
    self.startAt = startAt
  }
}

/// A badge scanned at an event, with what the badge and the booth staff recorded.
public struct BadgeScanSignal: Sendable, Hashable {
  public var eventName: String
  public var person: LeadFields
  public var notes: String
  public var scannedAt: Timestamp?

  public init(eventName: String, person: LeadFields, notes: String = "", scannedAt: Timestamp? = nil) {
    self.eventName = eventName
    self.person = person
    self.notes = notes
    self.scannedAt = scannedAt
  }
}

/// A lead a partner refers.
public struct PartnerReferralSignal: Sendable, Hashable {
  public var partnerName: String
  public var partnerReference: String
  public var person: LeadFields
  public var notes: String

  public init(partnerName: String, partnerReference: String = "", person: LeadFields, notes: String = "") {
    self.partnerName = partnerName
    self.partnerReference = partnerReference
    self.person = person
    self.notes = notes
  }
}

/// One inbound signal `CaptureLead` turns into a lead or an interaction.
public enum CaptureSignal: Sendable, Hashable {
  case webForm(WebFormSubmission)
  /// A raw RFC 5322 message.
  case email(raw: [UInt8])
  case phoneCall(PhoneCallSignal)
  case chat(ChatSignal)
  case badgeScan(BadgeScanSignal)
  case partnerReferral(PartnerReferralSignal)

  /// The channel this signal comes through; a capture key is scoped to one.
  public var channel: LeadSource {
    switch self {
    case .webForm: .webForm
    case .email: .email
    case .phoneCall: .phone
    case .chat: .chat
    case .badgeScan: .event
    case .partnerReferral: .partner
    }
  }

  /// The API field the signal arrives in, for error messages.
  public var field: String {
    switch self {
    case .webForm: "web_form"
    case .email: "email"
    case .phoneCall: "phone_call"
    case .chat: "chat"
    case .badgeScan: "badge_scan"
    case .partnerReferral: "partner_referral"
    }
  }
}

/// A capture request: the signal plus what the caller knows about where it came from.
public struct CaptureRequest: Sendable, Hashable {
  public var signal: CaptureSignal
  /// The channel's own id for the message (form submission id, Message-ID, call id); empty to use the
  /// email's Message-ID or a digest of the content.
  public var messageID: String
  public var campaign: String
  public var utm: UTMParameters?
  public var tags: [String]
  /// ISO 3166-1 alpha-2, used to read local phone numbers.
  public var regionCode: String

  public init(
    signal: CaptureSignal, messageID: String = "", campaign: String = "", utm: UTMParameters? = nil, tags: [String] = [],
    regionCode: String = ""
  ) {
    self.signal = signal
    self.messageID = messageID
    self.campaign = campaign
    self.utm = utm
    self.tags = tags
    self.regionCode = regionCode
  }
}

/// A capture, interpreted and validated: the lead it would create, the interaction it logs either way,
/// and the key that makes it idempotent.
public struct Capture: Sendable, Hashable {
  public var channel: LeadSource
  /// The channel's message id, or `digest:` + the text a digest is computed over (see
  /// ``needsDigest``); at most 998 characters either way.
  public var messageID: String
  /// True when the message had no id of its own and the store must digest ``messageID``.
  public var needsDigest: Bool
  public var lead: LeadFields
  /// The interaction to log; its links are filled in by the store.
  public var interaction: InteractionFields

  /// The longest message id kept (RFC 5322's line limit).
  public static let maxMessageIDLength = 998

  /// Interprets and validates `request`; every problem is reported at once, named by the field it came
  /// from (`web_form.fields["email"]`, `email.raw`, `phone_call.caller_number`, …).
  public init(_ request: CaptureRequest, now: Timestamp = .now) throws(CRMError) {
    var violations = Violations()
    let signal = request.signal
    channel = signal.channel
    var lead = LeadFields()
    var interaction = InteractionFields(kind: .note, direction: .inbound, startAt: now, links: [])
    var extraLines: [String] = []
    var fieldNames: [String: String] = [:]  // lead field → where it came from
    var channelMessageID = ""

    switch signal {
    case .webForm(let form):
      let mapped = Self.mapForm(form, into: &lead, fieldNames: &fieldNames, violations: &violations)
      extraLines = mapped
      lead.sourceDetail = form.formName.isEmpty ? nil : form.formName
      interaction.kind = .note
      interaction.subject = form.formName.isEmpty ? "Web form submission" : "Web form: \(form.formName)"
      for (label, value) in [("Page", form.pageURL), ("Referrer", form.referrer)] where !value.isEmpty {
        extraLines.append("\(label): \(value)")
      }
      interaction.body =
        lead.description.map { ([$0] + extraLines).joined(separator: "\n") } ?? extraLines.joined(separator: "\n")
    case .email(let raw):
      let message = try InboundEmail(raw: raw, field: "email.raw")
      let (first, last) = Self.splitName(message.senderName)
      lead.firstName = first
      lead.lastName = last
      lead.emails = [ContactEmail(address: message.senderAddress, isPrimary: true)]
      fieldNames = ["emails": "email.raw (From)", "first_name": "email.raw (From)", "last_name": "email.raw (From)"]
      channelMessageID = message.messageID
      interaction.kind = .email
      interaction.subject = message.subject.isEmpty ? nil : String(message.subject.unicodeScalars.prefix(500))
      interaction.body = message.body
      interaction.startAt = min(message.date ?? now, now)
      interaction.participants = [Participant(name: message.senderName, email: message.senderAddress)]
    case .phoneCall(let call):
      let (first, last) = Self.splitName(call.callerName)
      lead.firstName = first
      lead.lastName = last
      if call.callerNumber.trimmingWhitespace().isEmpty {
        violations.add("phone_call.caller_number", "is required", reason: "REQUIRED")
      } else {
        lead.phones = [ContactPhone(number: call.callerNumber, isPrimary: true)]
      }
      fieldNames = [
        "phones": "phone_call.caller_number", "first_name": "phone_call.caller_name", "last_name": "phone_call.caller_name",
      ]
      interaction.kind = .call
      interaction.direction = call.direction == .unspecified ? .inbound : call.direction
      interaction.subject = "Call from \(call.callerName.isEmpty ? call.callerNumber : call.callerName)"
      interaction.body = call.summary
      interaction.durationSeconds = call.durationSeconds
      interaction.startAt = min(call.startAt ?? now, now)
      interaction.participants = [Participant(name: call.callerName, phone: call.callerNumber)]
      if !call.calledNumber.isEmpty { lead.sourceDetail = "Called \(call.calledNumber)" }
    case .chat(let chat):
      let (first, last) = Self.splitName(chat.visitorName)
      lead.firstName = first
      lead.lastName = last
      if !chat.visitorEmail.trimmingWhitespace().isEmpty {
        lead.emails = [ContactEmail(address: chat.visitorEmail, isPrimary: true)]
      }
      if !chat.visitorPhone.trimmingWhitespace().isEmpty {
        lead.phones = [ContactPhone(number: chat.visitorPhone, isPrimary: true)]
      }
      fieldNames = [
        "emails": "chat.visitor_email", "phones": "chat.visitor_phone", "first_name": "chat.visitor_name",
        "last_name": "chat.visitor_name",
      ]
      lead.sourceDetail = chat.platform.isEmpty ? nil : chat.platform
      interaction.kind = .chat
      interaction.subject = chat.platform.isEmpty ? "Chat" : "Chat on \(chat.platform)"
      interaction.body = chat.transcript
      interaction.startAt = min(chat.startAt ?? now, now)
      interaction.participants = [Participant(name: chat.visitorName, email: chat.visitorEmail, phone: chat.visitorPhone)]
    case .badgeScan(let scan):
      if scan.eventName.trimmingWhitespace().isEmpty {
        violations.add("badge_scan.event_name", "is required", reason: "REQUIRED")
      }
      lead = scan.person
      fieldNames = Self.personFieldNames(prefix: "badge_scan.person")
      lead.sourceDetail = scan.eventName
      interaction.kind = .meeting
      interaction.subject = "Badge scanned at \(scan.eventName)"
      interaction.body = scan.notes
      interaction.startAt = min(scan.scannedAt ?? now, now)
      interaction.participants = [Self.participant(scan.person)]
    case .partnerReferral(let referral):
      if referral.partnerName.trimmingWhitespace().isEmpty {
        violations.add("partner_referral.partner_name", "is required", reason: "REQUIRED")
      }
      lead = referral.person
      fieldNames = Self.personFieldNames(prefix: "partner_referral.person")
      lead.sourceDetail = referral.partnerName
      if lead.externalID == nil, !referral.partnerReference.isEmpty { lead.externalID = referral.partnerReference }
      interaction.kind = .note
      interaction.subject = "Referred by \(referral.partnerName)"
      var lines = [referral.notes]
      if !referral.partnerReference.isEmpty { lines.append("Partner reference: \(referral.partnerReference)") }
      interaction.body = lines.filter { !$0.isEmpty }.joined(separator: "\n")
      interaction.participants = [Self.participant(referral.person)]
    }

    lead.source = channel
    if !request.campaign.isEmpty { lead.campaign = request.campaign }
    if let given = request.utm, !given.isEmpty {
      let form = lead.utm ?? UTMParameters()
      lead.utm = UTMParameters(
        source: given.source.isEmpty ? form.source : given.source, medium: given.medium.isEmpty ? form.medium : given.medium,
        campaign: given.campaign.isEmpty ? form.campaign : given.campaign, term: given.term.isEmpty ? form.term : given.term,
        content: given.content.isEmpty ? form.content : given.content)
    }
    lead.tags += request.tags
    if lead.regionCode == nil, !request.regionCode.isEmpty { lead.regionCode = request.regionCode }

    // Validate the lead as a create would, then name each problem after the input it came from.
    var leadViolations = Violations()
    var normalized = lead.normalized(prefix: "lead", into: &leadViolations)
    for violation in leadViolations.all {
      violations.add(
        Self.sourceField(violation.field, fieldNames: fieldNames, signal: signal), violation.description, reason: violation.reason
      )
    }
    if let body = interaction.body {
      let trimmed = body.trimmingWhitespace()
      interaction.body = trimmed.isEmpty ? nil : String(trimmed.unicodeScalars.prefix(InteractionFields.maxBodyLength))
    }
    if let subject = interaction.subject { interaction.subject = String(subject.unicodeScalars.prefix(500)) }
    if normalized.description == nil, let body = interaction.body, case .webForm = signal {
      normalized.description = String(body.unicodeScalars.prefix(10_000))
    }
    // The message id: the caller's, else the channel's own, else a digest of what arrived.
    let given = request.messageID.trimmingWhitespace()
    if given.unicodeScalars.count > Self.maxMessageIDLength {
      violations.add("message_id", "must be at most \(Self.maxMessageIDLength) characters", reason: "TOO_LONG")
    }
    try violations.check()
    self.lead = normalized
    self.interaction = interaction
    if !given.isEmpty {
      messageID = given
      needsDigest = false
    } else if !channelMessageID.isEmpty {
      messageID = String(channelMessageID.unicodeScalars.prefix(Self.maxMessageIDLength))
      needsDigest = false
    } else {
      messageID = Self.digestSource(signal)
      needsDigest = true
    }
  }

  /// The canonical text of a signal without an id of its own: the same submission resent gives the
  /// same text, so the store's digest of it makes the capture idempotent.
  static func digestSource(_ signal: CaptureSignal) -> String {
    switch signal {
    case .webForm(let form):
      let pairs = form.fields.sorted { $0.key < $1.key }.map { "\($0.key.count):\($0.key)=\($0.value.count):\($0.value)" }
      return "web_form|\(form.formName)|\(form.pageURL)|" + pairs.joined(separator: "|")
    case .email(let raw):
      return "email|" + String(decoding: raw, as: UTF8.self)
    case .phoneCall(let call):
      return "phone|\(call.callerNumber)|\(call.calledNumber)|\(call.startAt?.microsecondsSinceEpoch ?? 0)|\(call.summary)"
    case .chat(let chat):
      return "chat|\(chat.visitorEmail)|\(chat.visitorPhone)|\(chat.startAt?.microsecondsSinceEpoch ?? 0)|\(chat.transcript)"
    case .badgeScan(let scan):
      return
        "event|\(scan.eventName)|\(scan.person.emails.map(\.address))|\(scan.person.phones.map(\.number))|\(scan.person.firstName ?? "")|\(scan.person.lastName ?? "")"
    case .partnerReferral(let referral):
      return
        "partner|\(referral.partnerName)|\(referral.partnerReference)|\(referral.person.emails.map(\.address))|\(referral.person.phones.map(\.number))"
    }
  }

  /// "Ada Lovelace" → ("Ada", "Lovelace"); one word (or a CJK name without spaces) is the last name.
  /// Each part is cut to a lead's 100 characters: a long display name must not lose the capture.
  public static func splitName(_ name: String) -> (String?, String?) {
    let words = name.trimmingWhitespace().split(whereSeparator: \.isWhitespace)
    switch words.count {
    case 0: return (nil, nil)
    case 1: return (nil, String(words[0].prefix(100)))
    default: return (String(words[0].prefix(100)), String(words.dropFirst().joined(separator: " ").prefix(100)))
    }
  }

  static func participant(_ person: LeadFields) -> Participant {
    Participant(
      name: [person.firstName, person.lastName].compactMap { $0 }.joined(separator: " "),
      email: person.emails.first?.address ?? "", phone: person.phones.first?.number ?? "")
  }

  static func personFieldNames(prefix: String) -> [String: String] {
    Dictionary(uniqueKeysWithValues: LeadField.allCases.map { ($0.rawValue, "\(prefix).\($0.rawValue)") })
  }

  /// The input field a lead violation (`lead.emails[0].address`) came from.
  static func sourceField(_ field: String, fieldNames: [String: String], signal: CaptureSignal) -> String {
    guard field.hasPrefix("lead.") else { return signal.field }
    let path = field.dropFirst("lead.".count)
    let head = path.prefix { $0 != "." && $0 != "[" }
    if let source = fieldNames[String(head)] {
      // Keep the index and sub-field for person records given field by field.
      return source.hasPrefix("badge_scan.") || source.hasPrefix("partner_referral.")
        ? source + path.dropFirst(head.count) : source
    }
    return signal.field
  }

  // MARK: - Web forms

  /// Lead fields a form may fill, by the names forms use for them (lower case, `-` and spaces as `_`).
  static let formAliases: [String: String] = {
    var aliases: [String: String] = [:]
    let table: [String: [String]] = [
      "email": ["email", "e_mail", "email_address", "mail", "your_email", "work_email", "邮箱", "电子邮件"],
      "phone": ["phone", "phone_number", "tel", "telephone", "mobile", "mobile_phone", "cell", "手机", "电话"],
      "first_name": ["first_name", "firstname", "given_name", "fname", "名"],
      "last_name": ["last_name", "lastname", "surname", "family_name", "lname", "姓"],
      "name": ["name", "full_name", "fullname", "your_name", "contact_name", "姓名"],
      "company": ["company", "company_name", "organization", "organisation", "org", "business", "公司", "公司名称"],
      "title": ["title", "job_title", "position", "role", "职位"],
      "website": ["website", "url", "web", "site", "company_website", "网站"],
      "region_code": ["region_code", "country", "country_code", "国家"],
      "industry": ["industry", "行业"],
      "company_size": ["company_size", "employees", "employee_count", "headcount"],
      "description": ["message", "comments", "comment", "description", "notes", "inquiry", "enquiry", "留言"],
      "campaign": ["campaign"],
      "utm_source": ["utm_source"], "utm_medium": ["utm_medium"], "utm_campaign": ["utm_campaign"],
      "utm_term": ["utm_term"], "utm_content": ["utm_content"],
      "external_id": ["external_id"],
    ]
    for (field, names) in table { for name in names { aliases[name] = field } }
    return aliases
  }()

  /// The lead fields a form may be mapped onto explicitly.
  static let formTargets = Set(formAliases.values)

  static func formKey(_ name: String) -> String {
    name.trimmingWhitespace().lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: " ", with: "_")
  }

  /// Copies the form's values into `lead`; returns `name: value` lines for the fields no lead field
  /// takes, so nothing submitted is lost (they go into the interaction's body).
  static func mapForm(
    _ form: WebFormSubmission, into lead: inout LeadFields, fieldNames: inout [String: String], violations: inout Violations
  ) -> [String] {
    if form.fields.isEmpty { violations.add("web_form.fields", "the submission has no fields", reason: "REQUIRED") }
    if form.fields.count > 200 { violations.add("web_form.fields", "at most 200 fields", reason: "TOO_MANY") }
    var explicit: [String: String] = [:]
    for (formField, target) in form.fieldMap {
      let key = formKey(target)
      guard formTargets.contains(key) else {
        violations.add(
          "web_form.field_map[\"\(formField)\"]",
          "names no lead field: use one of \(formTargets.sorted().joined(separator: ", "))",
          reason: "UNKNOWN_FIELD")
        continue
      }
      explicit[formField] = key
    }
    var extra: [String] = []
    var utm = UTMParameters()
    var fullName: String?
    for (name, rawValue) in form.fields.sorted(by: { $0.key < $1.key }) {
      let value = rawValue.trimmingWhitespace()
      if value.isEmpty { continue }
      let source = "web_form.fields[\"\(name)\"]"
      guard let target = explicit[name] ?? formAliases[formKey(name)] else {
        extra.append("\(name): \(value)")
        continue
      }
      switch target {
      case "email":
        lead.emails.append(ContactEmail(address: value, isPrimary: lead.emails.isEmpty))
        fieldNames["emails"] = source
      case "phone":
        lead.phones.append(ContactPhone(number: value, isPrimary: lead.phones.isEmpty))
        fieldNames["phones"] = source
      case "first_name": lead.firstName = value; fieldNames["first_name"] = source
      case "last_name": lead.lastName = value; fieldNames["last_name"] = source
      case "name": fullName = value; fieldNames["first_name"] = source; fieldNames["last_name"] = source
      case "company": lead.company = value; fieldNames["company"] = source
      case "title": lead.title = value; fieldNames["title"] = source
      case "website": lead.website = value; fieldNames["website"] = source
      case "region_code": lead.regionCode = value; fieldNames["region_code"] = source
      case "industry": lead.industry = value; fieldNames["industry"] = source
      case "company_size":
        if let size = Int32(value.filter(\.isNumber).prefix(9)) {
          lead.companySize = size
        } else {
          extra.append("\(name): \(value)")
        }
      case "description": lead.description = value; fieldNames["description"] = source
      case "campaign": lead.campaign = value; fieldNames["campaign"] = source
      case "utm_source": utm.source = value; fieldNames["utm"] = source
      case "utm_medium": utm.medium = value; fieldNames["utm"] = source
      case "utm_campaign": utm.campaign = value; fieldNames["utm"] = source
      case "utm_term": utm.term = value; fieldNames["utm"] = source
      case "utm_content": utm.content = value; fieldNames["utm"] = source
      case "external_id": lead.externalID = value; fieldNames["external_id"] = source
      default: extra.append("\(name): \(value)")
      }
    }
    if let fullName, lead.firstName == nil, lead.lastName == nil {
      (lead.firstName, lead.lastName) = splitName(fullName)
    }
    if !utm.isEmpty { lead.utm = utm }
    return extra
  }
}
