import CRMCore
import Foundation
import Testing

@Suite("Visibility rules")
struct PrincipalTests {
  let tenant = UUID()
  let me = UUID()
  let report = UUID()
  let stranger = UUID()

  @Test("public read lets everyone read but only the hierarchy write")
  func publicRead() {
    let rep = Principal(tenantID: tenant, userID: me, role: .salesRep, ownersInHierarchy: [])
    #expect(rep.canRead(.account, ownedBy: stranger))
    #expect(!rep.canWrite(ownedBy: stranger))
    #expect(rep.canWrite(ownedBy: me))
    #expect(rep.readableOwners(.account) == nil)
  }

  @Test("private sharing limits reads to owner, managers above, and admins")
  func privateSharing() {
    let manager = Principal(
      tenantID: tenant, userID: me, role: .manager, ownersInHierarchy: [report], sharing: [.account: .private])
    #expect(manager.canRead(.account, ownedBy: report))
    #expect(!manager.canRead(.account, ownedBy: stranger))
    #expect(manager.canRead(.contact, ownedBy: stranger))
    #expect(Set(manager.readableOwners(.account) ?? []) == [me, report])
    let admin = Principal(tenantID: tenant, userID: UUID(), role: .admin, ownersInHierarchy: [], sharing: [.account: .private])
    #expect(admin.canRead(.account, ownedBy: stranger))
    #expect(admin.canWrite(ownedBy: stranger))
    #expect(admin.readableOwners(.account) == nil)
  }
}

@Suite("Page sizes and violations")
struct PagingTests {
  @Test("page sizes default to 50 and cap at 1000", arguments: [(0, 50), (1, 1), (1000, 1000), (5000, 1000)] as [(Int32, Int)])
  func pageSize(requested: Int32, expected: Int) {
    var violations = Violations()
    #expect(PageSize.resolve(requested, into: &violations) == expected)
    #expect(violations.isEmpty)
  }

  @Test("a negative page size is a violation")
  func negativePageSize() {
    var violations = Violations()
    _ = PageSize.resolve(-1, into: &violations)
    #expect(violations.all.map(\.field) == ["page_size"])
  }
}

@Suite("Identifiers, time and change records")
struct ValuesTests {
  @Test("UUIDv7s carry version 7 and sort by time")
  func uuidV7() {
    let early = UUID.v7(at: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000))
    let late = UUID.v7(at: Timestamp(microsecondsSinceEpoch: 1_700_000_001_000_000))
    #expect(early.lowercasedString.dropFirst(14).first == "7")
    #expect(early.lowercasedString < late.lowercasedString)
  }

  @Test(
    "timestamps convert to and from protobuf seconds and nanos",
    arguments: [0, 1, -1, 1_795_508_055_109_745, -86_400_000_001] as [Int64])
  func timestamps(micros: Int64) {
    let timestamp = Timestamp(microsecondsSinceEpoch: micros)
    #expect(Timestamp(seconds: timestamp.seconds, nanos: timestamp.nanos) == timestamp)
    #expect((0..<1_000_000_000).contains(timestamp.nanos))
  }

  @Test("the change diff lists only changed fields, in order, and renders JSON")
  func diff() {
    let old: [String: JSONValue] = ["name": .string("A"), "tags": .array([]), "phone": .null]
    let new: [String: JSONValue] = ["name": .string("B \"quoted\"\n"), "tags": .array([]), "phone": .string("+1")]
    let changes = FieldChange.diff(fields: ["name", "tags", "phone"], old: old, new: new)
    #expect(changes.map(\.field) == ["name", "phone"])
    #expect(
      FieldChange.render(changes)
        == #"[{"field":"name","old":"A","new":"B \"quoted\"\n"},{"field":"phone","old":null,"new":"+1"}]"#)
  }

  @Test("JSON strings escape quotes, backslashes and control characters, and keep other text as it is")
  func jsonStrings() throws {
    let text = "Zoë \"Q\" \\ 北京\u{1}\u{1F}\t\r\n/"
    let rendered = JSONValue.array([.string(text), .string("plain")]).rendered
    #expect(rendered == #"["Zoë \"Q\" \\ 北京\u0001\u001f\t\r\n/","plain"]"#)
    let parsed = try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String]
    #expect(parsed == [text, "plain"])
  }

  @Test("etags parse back to versions; foreign text is invalid")
  func etags() throws {
    #expect(try Etag.parse(Etag.make(42), field: "etag") == 42)
    #expect(try Etag.parse("", field: "etag") == nil)
    #expect(throws: CRMError.self) { try Etag.parse("W/\"abc\"", field: "etag") }
  }
}

@Suite("UUID text forms")
struct UUIDTextTests {
  @Test("the hand-written formatter and parser agree with Foundation")
  func roundTrip() {
    for _ in 0..<1000 {
      let id = UUID()
      #expect(id.lowercasedString == id.uuidString.lowercased())
      #expect(UUID(canonical: id.lowercasedString) == id)
      #expect(UUID(canonical: id.uuidString) == id)
    }
  }

  @Test(
    "malformed ids are rejected",
    arguments: [
      "", "not-a-uuid", "0191f4c2-7a3e-7c1d-9b8a-2f6e4d3c2b1", "0191f4c2x7a3e-7c1d-9b8a-2f6e4d3c2b1a",
      "0191f4c2-7a3e-7c1d-9b8a-2f6e4d3c2b1g", "{0191f4c2-7a3e-7c1d-9b8a-2f6e4d3c2b1a}",
    ])
  func malformed(text: String) {
    #expect(UUID(canonical: text) == nil)
  }

  @Test("violations keep the first 20 and count the rest, so errors stay small")
  func boundedViolations() {
    var violations = Violations()
    for index in 0..<100_000 { violations.add("update_mask", "unknown field \"p\(index)\"", reason: "INVALID_FIELD") }
    #expect(violations.all.count == Violations.limit && violations.omitted == 100_000 - Violations.limit)
    do {
      try violations.check()
      Issue.record("100,000 violations passed the check")
    } catch {
      guard case .invalidArgument(let listed) = error else {
        Issue.record("not INVALID_ARGUMENT: \(error)")
        return
      }
      #expect(listed.count == Violations.limit + 1)
      #expect(listed.last?.reason == "TOO_MANY_VIOLATIONS" && listed.last?.description.hasPrefix("99980 more") == true)
    }
  }
}
