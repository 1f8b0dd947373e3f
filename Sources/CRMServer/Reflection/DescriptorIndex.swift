import CRMProto
import Foundation
import SwiftProtobuf

/// The API's file descriptors, indexed by file name and by every symbol they declare, for reflection.
struct DescriptorIndex: Sendable {
  /// Each file's serialized `FileDescriptorProto`.
  let files: [String: Data]
  /// Each file's direct dependencies.
  let dependencies: [String: [String]]
  /// Fully-qualified symbol → the file declaring it.
  let symbols: [String: String]
  /// Fully-qualified names of the services the server exposes.
  let services: [String]

  /// Builds the index from the descriptor set generated with the code, keeping `exposed` services.
  init(exposing exposed: Set<String>) throws {
    guard let bytes = Data(base64Encoded: CRMDescriptorSet.base64) else {
      throw DescriptorSetError()
    }
    let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
    var files: [String: Data] = [:]
    var dependencies: [String: [String]] = [:]
    var symbols: [String: String] = [:]
    var services: [String] = []
    for file in set.file {
      files[file.name] = try file.serializedData()
      dependencies[file.name] = file.dependency
      let prefix = file.package.isEmpty ? "" : file.package + "."
      func addMessage(_ message: Google_Protobuf_DescriptorProto, scope: String) {
        let name = scope + message.name
        symbols[name] = file.name
        for nested in message.nestedType { addMessage(nested, scope: name + ".") }
        for nested in message.enumType { symbols[name + "." + nested.name] = file.name }
      }
      for message in file.messageType { addMessage(message, scope: prefix) }
      for enumeration in file.enumType { symbols[prefix + enumeration.name] = file.name }
      for service in file.service {
        let name = prefix + service.name
        symbols[name] = file.name
        for method in service.method { symbols[name + "." + method.name] = file.name }
        if exposed.contains(name) { services.append(name) }
      }
    }
    self.files = files
    self.dependencies = dependencies
    self.symbols = symbols
    self.services = services.sorted()
  }

  /// The file and everything it imports, transitively, the file itself first.
  func fileWithDependencies(_ name: String) -> [Data]? {
    guard files[name] != nil else { return nil }
    var ordered: [String] = []
    var seen = Set<String>()
    var stack = [name]
    while let next = stack.popLast() {
      guard seen.insert(next).inserted else { continue }
      ordered.append(next)
      stack.append(contentsOf: dependencies[next] ?? [])
    }
    return ordered.compactMap { files[$0] }
  }
}

struct DescriptorSetError: Error {}
