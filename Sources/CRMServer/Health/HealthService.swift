public import CRMProto
public import CRMStore
public import GRPCCore
import SwiftProtobuf

/// `grpc.health.v1.Health`: SERVING while the database answers, NOT_SERVING otherwise.
///
/// The empty service name means the whole server; each CRM service's full name is accepted too. Other
/// names answer NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the protocol says. Open to all:
/// it needs no token.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
  let database: Database
  let services: Set<String>
  let watchInterval: Duration

  /// A health service reporting on `database` for the named services.
  public init(database: Database, services: Set<String>, watchInterval: Duration = .seconds(2)) {
    self.database = database
    self.services = services.union([""])
    self.watchInterval = watchInterval
  }

  /// The current status.
  public func check(
    request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
  ) async throws -> Grpc_Health_V1_HealthCheckResponse {
    guard services.contains(request.service) else {
      throw RPCError(code: .notFound, message: "unknown service")
    }
    let serving = await database.isReachable()
    return .with { $0.status = .init(serving: serving) }
  }

  /// The status now and on every change, until the client goes away.
  public func watch(
    request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    guard services.contains(request.service) else {
      try await response.write(.with { $0.status = .serviceUnknown })
      try await Task.sleep(for: .seconds(3600 * 24))
      return
    }
    var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
    while !Task.isCancelled {
      let status = Grpc_Health_V1_HealthCheckResponse.ServingStatus(serving: await database.isReachable())
      if status != last {
        try await response.write(.with { $0.status = status })
        last = status
      }
      try await Task.sleep(for: watchInterval)
    }
  }
}

extension Grpc_Health_V1_HealthCheckResponse.ServingStatus {
  init(serving: Bool) { self = serving ? .serving : .notServing }
}
