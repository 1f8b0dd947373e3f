public import CRMProto
import Foundation
public import GRPCCore
import SwiftProtobuf

/// `grpc.reflection.v1.ServerReflection`: lets grpcurl and similar tools discover the API from the
/// server. Answers `list_services`, `file_by_filename` and `file_containing_symbol` from the
/// descriptor set generated with the code; extension queries answer NOT_FOUND (the API has none).
public struct ReflectionService: Grpc_Reflection_V1_ServerReflection.SimpleServiceProtocol {
  let index: DescriptorIndex

  /// A reflection service describing the `exposed` services.
  public init(exposing exposed: Set<String>) throws {
    index = try DescriptorIndex(exposing: exposed)
  }

  /// Answers each question on the stream in turn.
  public func serverReflectionInfo(
    request: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest, any Error>,
    response: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
    context: ServerContext
  ) async throws {
    for try await question in request {
      try await response.write(answer(question))
    }
  }

  /// The answer to one question.
  func answer(_ question: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
    var answer = Grpc_Reflection_V1_ServerReflectionResponse()
    answer.validHost = question.host
    answer.originalRequest = question
    func notFound(_ message: String) {
      answer.errorResponse = .with {
        $0.errorCode = Int32(RPCError.Code.notFound.rawValue)
        $0.errorMessage = message
      }
    }
    switch question.messageRequest {
    case .listServices:
      answer.listServicesResponse = .with { $0.service = index.services.map { name in .with { $0.name = name } } }
    case .fileByFilename(let name):
      if let files = index.fileWithDependencies(name) {
        answer.fileDescriptorResponse = .with { $0.fileDescriptorProto = files }
      } else {
        notFound("file not found")
      }
    case .fileContainingSymbol(let symbol):
      if let file = index.symbols[symbol], let files = index.fileWithDependencies(file) {
        answer.fileDescriptorResponse = .with { $0.fileDescriptorProto = files }
      } else {
        notFound("symbol not found")
      }
    case .fileContainingExtension:
      notFound("extension not found")
    case .allExtensionNumbersOfType(let type):
      if index.symbols[type] != nil {
        answer.allExtensionNumbersResponse = .with { $0.baseTypeName = type }
      } else {
        notFound("type not found")
      }
    case nil:
      answer.errorResponse = .with {
        $0.errorCode = Int32(RPCError.Code.invalidArgument.rawValue)
        $0.errorMessage = "the request names no question"
      }
    }
    return answer
  }
}

/// `grpc.reflection.v1alpha.ServerReflection`, still what many clients (Python's grpcio-reflection,
/// older grpcurl) ask first. Its messages are wire-identical to v1's, so it re-encodes and delegates.
public struct ReflectionServiceV1Alpha: Grpc_Reflection_V1alpha_ServerReflection.SimpleServiceProtocol {
  let v1: ReflectionService

  /// Wraps the v1 service.
  public init(_ v1: ReflectionService) { self.v1 = v1 }

  /// Answers each question on the stream in turn.
  public func serverReflectionInfo(
    request: RPCAsyncSequence<Grpc_Reflection_V1alpha_ServerReflectionRequest, any Error>,
    response: RPCWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>,
    context: ServerContext
  ) async throws {
    for try await question in request {
      let converted = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: try question.serializedBytes() as [UInt8])
      let answer = v1.answer(converted)
      try await response.write(
        try Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: try answer.serializedBytes() as [UInt8]))
    }
  }
}
