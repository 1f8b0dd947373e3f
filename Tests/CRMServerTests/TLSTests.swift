import CRMProto
import CRMServer
import CRMTestSupport
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing

@Suite("Server: TLS")
struct TLSTests {
  /// A self-signed certificate for 127.0.0.1, made with the openssl command-line tool.
  static func makeCertificate(in directory: URL) throws -> ServerConfiguration.TLS {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let certificate = directory.appendingPathComponent("cert.pem").path
    let key = directory.appendingPathComponent("key.pem").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
      certificate, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    return ServerConfiguration.TLS(certificatePath: certificate, keyPath: key)
  }

  @Test("given a certificate and key, crmd serves over TLS and clients that trust it get answers")
  func servesTLS() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crm-tls-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: directory) }
    let tls = try Self.makeCertificate(in: directory)
    let tenant = try await TestTenant.make()
    try await TestServer.withClient(tls: tls) { (client) async throws -> Void in
      let accounts = Crm_V1_AccountService.Client(wrapping: client)
      let created = try await accounts.createAccount(
        .with { $0.account = .with { $0.name = "Over TLS" } }, metadata: TestServer.auth(tenant.adminSecret))
      #expect(created.name == "Over TLS")
    }
  }
}
