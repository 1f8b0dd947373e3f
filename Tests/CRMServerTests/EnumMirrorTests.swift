import CRMCore
import CRMProto
import Foundation
import SwiftProtobuf
import Testing

@testable import CRMServer

/// The service enums convert to their proto twins by position (``ProtoMirrored``): this holds only
/// while both list the same cases in the same order, which these tests check by name.
@Suite("Server: domain enums mirror their proto enums")
struct EnumMirrorTests {
  /// The proto name a message's JSON form gives the value.
  static func protoName(_ message: some SwiftProtobuf.Message, field: String) throws -> String {
    let json = try message.jsonString()
    guard let range = json.range(of: "\"\(field)\":\"") else { return "" }
    return String(json[range.upperBound...].prefix { $0 != "\"" })
  }

  static func check<Domain: ProtoMirrored & RawRepresentable>(
    _ type: Domain.Type, prefix: String, field: String, message: (Domain) -> some SwiftProtobuf.Message
  ) throws where Domain.RawValue == String {
    for value in Domain.allCases {
      #expect(try protoName(message(value), field: field) == prefix + value.rawValue.uppercased(), "\(value)")
    }
  }

  @Test("custom field types")
  func customFieldTypes() throws {
    try Self.check(CustomFieldType.self, prefix: "CUSTOM_FIELD_TYPE_", field: "type") { v in
      Crm_V1_CustomField.with { $0.type = v.proto() }
    }
  }

  @Test("ticket status, priority, type, channel and SLA state; SLA metric and instance state")
  func mirrors() throws {
    try Self.check(TicketStatus.self, prefix: "TICKET_STATUS_", field: "status") { v in
      Crm_V1_Ticket.with { $0.status = v.proto() }
    }
    try Self.check(TicketPriority.self, prefix: "TICKET_PRIORITY_", field: "priority") { v in
      Crm_V1_Ticket.with { $0.priority = v.proto() }
    }
    try Self.check(TicketType.self, prefix: "TICKET_TYPE_", field: "type") { v in Crm_V1_Ticket.with { $0.type = v.proto() } }
    try Self.check(TicketChannel.self, prefix: "TICKET_CHANNEL_", field: "channel") { v in
      Crm_V1_Ticket.with { $0.channel = v.proto() }
    }
    try Self.check(TicketSLAState.self, prefix: "TICKET_SLA_STATE_", field: "slaState") { v in
      Crm_V1_Ticket.with { $0.slaState = v.proto() }
    }
    try Self.check(SLAMetric.self, prefix: "SLA_METRIC_", field: "metric") { v in
      Crm_V1_SLAInstance.with { $0.metric = v.proto() }
    }
    try Self.check(SLAStatus.State.self, prefix: "SLA_INSTANCE_STATE_", field: "state") { v in
      Crm_V1_SLAInstance.with { $0.state = v.proto() }
    }
  }
}
