import ArgumentParser
import CRMProto
import SwiftProtobuf

/// What `crm leads|contacts|accounts merge` share: the survivor, the records merged into it, and
/// which record each field comes from.
struct MergeOptions: ParsableArguments {
  @Argument(help: "The survivor's id, then the ids of the records to merge into it.") var ids: [String]
  @Option(help: "Take a field from a given record, as field=RECORD_ID (e.g. title=…); repeat.") var take: [String] = []
  @Option(help: "The survivor's etag you read (refused if it changed since).") var etag: String?
  @Option(help: "Idempotency key: repeating it returns the first result.") var requestID: String?

  func validate() throws {
    guard ids.count >= 2 else { throw ValidationError("name the survivor and at least one record to merge into it") }
    _ = try keyValuePairs(take, option: "--take", form: "FIELD=RECORD_ID")
  }

  func request() throws -> Crm_V1_MergeRecordsRequest {
    let sources = try keyValuePairs(take, option: "--take", form: "FIELD=RECORD_ID")
    return .with {
      $0.survivorID = ids[0]
      $0.survivorEtag = etag ?? ""
      $0.merged = ids.dropFirst().map { id in .with { $0.id = id } }
      $0.fieldSources = sources
      $0.requestID = requestID ?? ""
    }
  }

  static let discussion = """
    Fields keep the survivor's value, or take the newest merged record's when the survivor has none;
    emails, phones and tags are combined. Interactions (and an account's contacts and child accounts)
    move to the survivor; the merged records are archived pointing at it.
    """
}
