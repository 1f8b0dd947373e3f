import ArgumentParser
import CRMProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

/// Where the server is, who the caller is, and how to print: shared by every command.
struct ClientOptions: ParsableArguments {
  @Option(help: "Server address host:port (env: CRM_ADDRESS; default: 127.0.0.1:50051).")
  var address: String?

  @Option(help: "Bearer token (env: CRM_TOKEN).")
  var token: String?

  @Flag(help: "Use TLS, verifying the server against the system's trust roots (env: CRM_TLS=1).")
  var tls = false

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  /// Runs `body` with a connected client; turns RPC errors into one line on stderr and an exit code.
  func withClient<T: Sendable>(_ body: (GRPCClient<HTTP2ClientTransport.Posix>, Metadata) async throws -> T) async throws -> T {
    let address = address ?? ProcessInfo.processInfo.environment["CRM_ADDRESS"] ?? "127.0.0.1:50051"
    guard let secret = token ?? ProcessInfo.processInfo.environment["CRM_TOKEN"], !secret.isEmpty else {
      throw CLIError(
        message: "no token: set CRM_TOKEN or pass --token (crmd wrote the first one to crm-data/admin-token)", code: 5)
    }
    let useTLS = tls || ProcessInfo.processInfo.environment["CRM_TLS"] == "1"
    let transport = try HTTP2ClientTransport.Posix(
      target: try Self.target(address), transportSecurity: useTLS ? .tls : .plaintext)
    let metadata: Metadata = ["authorization": "Bearer \(secret)"]
    do {
      return try await withGRPCClient(transport: transport) { client in
        try await body(client, metadata)
      }
    } catch let error as RPCError {
      throw CLIError(rpc: error, address: address)
    }
  }

  static func target(_ address: String) throws -> any ResolvableTarget {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
      throw CLIError(message: "--address must be host:port, e.g. 127.0.0.1:50051", code: 2)
    }
    var host = String(address[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") {
      host = String(host.dropFirst().dropLast())
      return .ipv6(address: host, port: port)
    }
    if host.split(separator: ".").count == 4, host.allSatisfy({ $0.isNumber || $0 == "." }) {
      return .ipv4(address: host, port: port)
    }
    return .dns(host: host, port: port)
  }
}

/// A failure to report in one line, with the exit code it maps to.
struct CLIError: Error, CustomStringConvertible {
  var message: String
  var code: Int32

  var description: String { message }

  init(message: String, code: Int32) {
    self.message = message
    self.code = code
  }

  /// The one-line form of an RPC error, with field violations spelled out.
  init(rpc error: RPCError, address: String) {
    var text = "\(Self.name(error.code)): \(error.message)"
    if let status = try? error.unpackGoogleRPCStatus() {
      for detail in status.details {
        if let bad = detail.badRequest, !bad.violations.isEmpty {
          text =
            "\(Self.name(error.code)): "
            + bad.violations.map { "\($0.field): \($0.violationDescription)" }.joined(separator: "; ")
        }
        if let any = detail.any, let findings = try? Crm_V1_DuplicateFindings(unpackingAny: any) {
          text = (["\(Self.name(error.code)): \(error.message)"] + Duplicates.describe(findings.matches)).joined(separator: "\n")
        }
      }
    }
    switch error.code {
    case .notFound: code = 3
    case .invalidArgument, .outOfRange: code = 4
    case .unauthenticated, .permissionDenied: code = 5
    case .aborted, .alreadyExists, .failedPrecondition: code = 6
    case .unavailable, .deadlineExceeded, .resourceExhausted:
      code = 7
      if error.code == .unavailable, error.message.contains("connect") || error.message.isEmpty {
        text += " (is crmd running at \(address)?)"
      }
    default: code = 1
    }
    message = text
  }

  static func name(_ code: RPCError.Code) -> String {
    switch code {
    case .invalidArgument: return "invalid argument"
    case .notFound: return "not found"
    case .alreadyExists: return "already exists"
    case .permissionDenied: return "permission denied"
    case .unauthenticated: return "unauthenticated"
    case .aborted: return "conflict"
    case .failedPrecondition: return "failed precondition"
    case .unavailable: return "unavailable"
    case .deadlineExceeded: return "deadline exceeded"
    case .resourceExhausted: return "resource exhausted"
    default: return "error (\(code))"
    }
  }
}

/// Runs a command body, printing a ``CLIError`` on stderr and exiting with its code.
func runReportingErrors(_ body: () async throws -> Void) async throws {
  do {
    try await body()
  } catch let error as CLIError {
    FileHandle.standardError.write(Data("crm: \(error.message)\n".utf8))
    throw ExitCode(error.code)
  }
}
