import CRMCore
import CRMProto
import CRMTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LibPQ
import SwiftProtobuf
import Testing

@Suite("Server: custom field definitions")
struct CustomFieldRPCTests {
  typealias Client = Crm_V1_CustomFieldService.Client<HTTP2ClientTransport.Posix>

  static func field(
    _ type: Crm_V1_RecordType, _ name: String, _ kind: Crm_V1_CustomFieldType,
    _ configure: (inout Crm_V1_CustomField) -> Void = { _ in }
  ) -> Crm_V1_CreateCustomFieldRequest {
    var field = Crm_V1_CustomField()
    field.recordType = type
    field.apiName = name
    field.label = name.replacingOccurrences(of: "_", with: " ").capitalized
    field.type = kind
    configure(&field)
    return .with { $0.field = field }
  }

  static func grades(_ field: inout Crm_V1_CustomField) {
    field.options = [
      .with {
        $0.value = "a"
        $0.label = "Grade A"
      },
      .with {
        $0.value = "b"
        $0.label = "Grade B"
      },
    ]
  }

  @Test("every type defines with its defaults, reads back, and lists in the order defined")
  func define() async throws {
    let tenant = try await TestTenant.make()
    let other = try await TestTenant.make("other")
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let fields = Client(wrapping: client)
      let text = try await fields.createCustomField(Self.field(.lead, "fabric_notes", .text), metadata: admin)
      #expect(text.maxLength == 255 && text.etag == "1" && text.type == .text && !text.hasScale)
      let seats = try await fields.createCustomField(
        Self.field(.opportunity, "seats", .decimal) {
          $0.scale = 0
          $0.defaultValue = .with { $0.decimalValue = "010" }
        }, metadata: admin)
      #expect(seats.scale == 0 && seats.defaultValue.decimalValue == "10")
      let price = try await fields.createCustomField(
        Self.field(.account, "list_price", .decimal) { $0.defaultValue = .with { $0.decimalValue = "12.5" } },
        metadata: admin)
      #expect(price.scale == 2 && price.defaultValue.decimalValue == "12.50")
      let grade = try await fields.createCustomField(
        Self.field(.lead, "fabric_grade", .singleChoice) {
          Self.grades(&$0)
          $0.defaultValue = .with { $0.choiceValue = "b" }
          $0.filterable = true
          $0.helpText = "  From the mill's certificate  "
        }, metadata: admin)
      #expect(grade.options.map(\.label) == ["Grade A", "Grade B"] && grade.filterable)
      #expect(grade.helpText == "From the mill's certificate")
      let owner = try await fields.createCustomField(
        Self.field(.contact, "renewal_owner", .reference) { $0.referenceType = .contact }, metadata: admin)
      #expect(owner.referenceType == .contact)
      for (name, kind) in [
        ("notes_long", Crm_V1_CustomFieldType.longText), ("bolts", .integer), ("budget", .money), ("vip", .boolean),
        ("audit_day", .date), ("audited_at", .timestamp), ("backup_email", .email), ("backup_phone", .phone),
        ("portal", .url),
      ] {
        _ = try await fields.createCustomField(Self.field(.ticket, name, kind), metadata: admin)
      }
      _ = try await fields.createCustomField(
        Self.field(.invoice, "cost_centres", .multiChoice) { Self.grades(&$0) }, metadata: admin)

      #expect(try await fields.getCustomField(.with { $0.id = grade.id }, metadata: admin) == grade)
      let leads = try await fields.listCustomFields(.with { $0.recordType = .lead }, metadata: admin).fields
      #expect(leads.map(\.apiName) == ["fabric_notes", "fabric_grade"])
      #expect(try await fields.listCustomFields(.init(), metadata: admin).fields.count == 15)
      // Anyone in the tenant reads definitions (forms need them); nobody else does.
      let (_, repSecret) = try await tenant.makeUser(.salesRep)
      #expect(try await fields.listCustomFields(.init(), metadata: TestServer.auth(repSecret)).fields.count == 15)
      let stranger = TestServer.auth(other.adminSecret)
      #expect(try await fields.listCustomFields(.init(), metadata: stranger).fields.isEmpty)
      #expect(await code { try await fields.getCustomField(.with { $0.id = grade.id }, metadata: stranger) } == .notFound)
      // A rep may not define one.
      #expect(
        await code {
          try await fields.createCustomField(Self.field(.lead, "sneaky", .text), metadata: TestServer.auth(repSecret))
        } == .permissionDenied)
      _ = text
    }
  }

  @Test("bad definitions name the offending field; a name is taken once per record type, archived or not")
  func validation() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let fields = Client(wrapping: client)
      let cases: [(Crm_V1_CreateCustomFieldRequest, [String])] = [
        (Self.field(.lead, "Fabric", .text), ["field.api_name"]),
        (Self.field(.lead, "a", .text), ["field.api_name"]),
        (Self.field(.lead, "double__under", .text), ["field.api_name"]),
        (Self.field(.lead, "first_name", .text), ["field.api_name"]),
        (Self.field(.lead, "custom_fields", .text), ["field.api_name"]),
        (Self.field(.task, "effort", .text), ["field.record_type"]),
        (Self.field(.lead, "untyped", .unspecified), ["field.type"]),
        (Self.field(.lead, "unlabeled", .text) { $0.label = "  " }, ["field.label"]),
        (Self.field(.lead, "huge", .text) { $0.maxLength = 10_001 }, ["field.max_length"]),
        (Self.field(.lead, "fine", .decimal) { $0.scale = 11 }, ["field.scale"]),
        (Self.field(.lead, "misplaced", .integer) { $0.scale = 2 }, ["field.scale"]),
        (Self.field(.lead, "no_options", .singleChoice), ["field.options"]),
        (
          Self.field(.lead, "twice", .singleChoice) {
            Self.grades(&$0)
            $0.options[1].value = "a"
          }, ["field.options[1].value"]
        ),
        (Self.field(.lead, "text_options", .text) { Self.grades(&$0) }, ["field.options"]),
        (Self.field(.lead, "pointer", .reference), ["field.reference_type"]),
        (Self.field(.lead, "flag", .boolean) { $0.unique = true }, ["field.unique"]),
        (
          Self.field(.lead, "grade", .singleChoice) {
            Self.grades(&$0)
            $0.defaultValue = .with { $0.choiceValue = "z" }
          }, ["field.default_value"]
        ),
        (
          Self.field(.lead, "cents", .decimal) { $0.defaultValue = .with { $0.decimalValue = "1.005" } },
          ["field.default_value"]
        ),
        (
          Self.field(.lead, "wrong_kind", .integer) { $0.defaultValue = .with { $0.textValue = "7" } },
          ["field.default_value"]
        ),
        (
          Self.field(.lead, "mail", .email) { $0.defaultValue = .with { $0.textValue = "not an address" } },
          ["field.default_value"]
        ),
        (
          Self.field(.lead, "spend", .money) {
            $0.defaultValue = .with { $0.moneyValue = .with { $0.currencyCode = "dollars" } }
          }, ["field.default_value.money_value.currency_code"]
        ),
        (Self.field(.lead, "empty_default", .integer) { $0.defaultValue = .init() }, ["field.default_value"]),
      ]
      for (request, expected) in cases {
        #expect(
          await HardeningRPCTests.violations { try await fields.createCustomField(request, metadata: admin) } == expected,
          "\(request.field.apiName)")
      }

      let grade = try await fields.createCustomField(Self.field(.lead, "grade", .text), metadata: admin)
      // The same name on another record type is another field.
      _ = try await fields.createCustomField(Self.field(.contact, "grade", .text), metadata: admin)
      #expect(
        await code { try await fields.createCustomField(Self.field(.lead, "grade", .integer), metadata: admin) } == .alreadyExists
      )
      _ = try await fields.archiveCustomField(.with { $0.id = grade.id }, metadata: admin)
      #expect(
        await code { try await fields.createCustomField(Self.field(.lead, "grade", .integer), metadata: admin) } == .alreadyExists
      )
      // A repeated request id answers with the first result.
      var retried = Self.field(.lead, "retried", .text)
      retried.requestID = "define-retried-1"
      let first = try await fields.createCustomField(retried, metadata: admin)
      #expect(try await fields.createCustomField(retried, metadata: admin).id == first.id)
    }
  }

  @Test("updates merge options by value, retire what is left out, refuse a stale etag and keep api names")
  func update() async throws {
    let tenant = try await TestTenant.make()
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let fields = Client(wrapping: client)
      let grade = try await fields.createCustomField(
        Self.field(.lead, "fabric_grade", .singleChoice) { Self.grades(&$0) }, metadata: admin)
      var change = grade
      change.label = "Grade of fabric"
      change.apiName = "ignored_name"
      change.options = [
        .with {
          $0.value = "a"
          $0.label = "Premium"
        },
        .with {
          $0.value = "c"
          $0.label = "Grade C"
        },
      ]
      let updated = try await fields.updateCustomField(
        .with {
          $0.field = change
          $0.updateMask = .with { $0.paths = ["label", "options"] }
        }, metadata: admin)
      #expect(updated.label == "Grade of fabric" && updated.apiName == "fabric_grade" && updated.etag == "2")
      #expect(updated.options.map(\.value) == ["a", "b", "c"])
      #expect(updated.options.map(\.label) == ["Premium", "Grade B", "Grade C"])
      #expect(updated.options.map(\.retired) == [false, true, false])
      // The old etag is stale.
      #expect(
        await code {
          try await fields.updateCustomField(
            .with {
              $0.field = change
              $0.updateMask = .with { $0.paths = ["label"] }
            }, metadata: admin)
        } == .aborted)
      // Retiring every option is refused, naming the options.
      var retireAll = updated
      retireAll.options = updated.options.map { option in
        var retired = option
        retired.retired = true
        return retired
      }
      #expect(
        await HardeningRPCTests.violations {
          try await fields.updateCustomField(
            .with {
              $0.field = retireAll
              $0.updateMask = .with { $0.paths = ["options"] }
            }, metadata: admin)
        } == ["field.options"])
      #expect(
        await HardeningRPCTests.violations {
          try await fields.updateCustomField(
            .with {
              $0.field = updated
              $0.updateMask = .with { $0.paths = ["api_name"] }
            }, metadata: admin)
        } == ["update_mask"])
      // A type change leaves what belonged to the old type behind.
      let notes = try await fields.createCustomField(Self.field(.lead, "notes", .text), metadata: admin)
      var retyped = notes
      retyped.type = .integer
      let integer = try await fields.updateCustomField(
        .with {
          $0.field = retyped
          $0.updateMask = .with { $0.paths = ["type"] }
        }, metadata: admin)
      #expect(integer.type == .integer && !integer.hasMaxLength)

      // Archive and restore, each a new version.
      let archived = try await fields.archiveCustomField(.with { $0.id = integer.id }, metadata: admin)
      #expect(archived.hasArchiveTime && archived.etag == "3")
      #expect(try await fields.listCustomFields(.init(), metadata: admin).fields.map(\.apiName) == ["fabric_grade"])
      #expect(
        try await fields.listCustomFields(.with { $0.includeArchived = true }, metadata: admin).fields.count == 2)
      #expect(
        await code {
          try await fields.restoreCustomField(
            .with {
              $0.id = integer.id; $0.etag = "1"
            }, metadata: admin)
        }
          == .aborted)
      let restored = try await fields.restoreCustomField(.with { $0.id = integer.id }, metadata: admin)
      #expect(!restored.hasArchiveTime && restored.etag == "4")
    }
  }

  @Test("a record type holds at most 500 fields, archived ones included")
  func limit() async throws {
    let tenant = try await TestTenant.make()
    let connection = try TestDatabase.ownerConnection()
    try connection.query(
      """
      INSERT INTO custom_fields (tenant_id, id, record_type, api_name, label, type)
      SELECT \(tenant.tenantID), gen_random_uuid(), 'account', 'seeded_' || n, 'Seeded ' || n, 'text'
      FROM generate_series(1, 499) AS n
      """)
    try await TestServer.withClient { client in
      let admin = TestServer.auth(tenant.adminSecret)
      let fields = Client(wrapping: client)
      _ = try await fields.createCustomField(Self.field(.account, "the_last", .boolean), metadata: admin)
      #expect(
        await code { try await fields.createCustomField(Self.field(.account, "one_more", .boolean), metadata: admin) }
          == .failedPrecondition)
      // Other record types have their own allowance.
      _ = try await fields.createCustomField(Self.field(.lead, "one_more", .boolean), metadata: admin)
    }
  }
}
