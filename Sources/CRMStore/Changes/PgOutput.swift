import CRMCore
import Foundation

/// Reads the messages of PostgreSQL's `pgoutput` logical decoding plugin (protocol version 1, as a
/// replication stream carries them, one message per XLogData) into committed transactions
/// of inserted rows. Only what the change feed needs: Begin, Relation, Insert and Commit; the other
/// messages (Origin, Type, Truncate, logical messages) are skipped.
///
/// The format is PostgreSQL's "Logical Replication Message Formats": big-endian integers,
/// NUL-terminated strings, and tuple columns as text.
struct PgOutputReader {
  /// One committed transaction's inserted rows, in the order they were written.
  struct Transaction: Equatable {
    var xid: UInt32
    /// The end of the transaction's commit record: everything at or before it is consumed once the
    /// transaction is.
    var endLSN: UInt64
    /// The commit time, microseconds since the Unix epoch.
    var commitMicroseconds: Int64
    /// Each inserted row: column name → text value (nil for NULL).
    var rows: [[String: String?]]
  }

  enum Failure: Error, Equatable {
    case truncated(message: UInt8)
    case unknownRelation(UInt32)
    case outsideTransaction(message: UInt8)
  }

  /// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01T00:00:00Z.
  static let postgresEpochOffset: Int64 = 946_684_800_000_000

  private var relations: [UInt32: [String]] = [:]
  private var open: Transaction?
  /// The transactions completed so far, in commit order.
  private(set) var committed: [Transaction] = []

  /// True between a transaction's Begin and its Commit.
  var isInTransaction: Bool { open != nil }

  /// The transactions completed since the last call, in commit order.
  mutating func takeCommitted() -> [Transaction] {
    defer { committed = [] }
    return committed
  }

  /// Reads one message.
  mutating func read(_ message: [UInt8]) throws {
    var cursor = Cursor(bytes: message)
    let kind = try cursor.byte()
    switch kind {
    case UInt8(ascii: "B"):
      _ = try cursor.uint64()  // final LSN
      let timestamp = try cursor.int64()
      let xid = try cursor.uint32()
      open = Transaction(xid: xid, endLSN: 0, commitMicroseconds: timestamp + Self.postgresEpochOffset, rows: [])
    case UInt8(ascii: "R"):
      let id = try cursor.uint32()
      _ = try cursor.string()  // namespace
      _ = try cursor.string()  // relation name
      _ = try cursor.byte()  // replica identity
      let count = Int(try cursor.uint16())
      var names: [String] = []
      for _ in 0..<count {
        _ = try cursor.byte()  // flags
        names.append(try cursor.string())
        _ = try cursor.uint32()  // type oid
        _ = try cursor.uint32()  // type modifier
      }
      relations[id] = names
    case UInt8(ascii: "I"):
      guard open != nil else { throw Failure.outsideTransaction(message: kind) }
      let id = try cursor.uint32()
      guard let names = relations[id] else { throw Failure.unknownRelation(id) }
      _ = try cursor.byte()  // 'N': a new tuple follows
      let count = Int(try cursor.uint16())
      var row: [String: String?] = [:]
      for index in 0..<count {
        let name = index < names.count ? names[index] : "\(index)"
        switch try cursor.byte() {
        case UInt8(ascii: "t"), UInt8(ascii: "b"):
          let length = Int(try cursor.uint32())
          row[name] = String(decoding: try cursor.bytes(length), as: UTF8.self)
        default:  // 'n' NULL, 'u' unchanged TOAST (not in an insert)
          row[name] = String?.none
        }
      }
      open?.rows.append(row)
    case UInt8(ascii: "C"):
      guard var transaction = open else { throw Failure.outsideTransaction(message: kind) }
      _ = try cursor.byte()  // flags
      _ = try cursor.uint64()  // commit LSN
      transaction.endLSN = try cursor.uint64()
      transaction.commitMicroseconds = try cursor.int64() + Self.postgresEpochOffset
      committed.append(transaction)
      open = nil
    default:
      break
    }
  }

  /// An LSN in PostgreSQL's text form (`16/B374D848`).
  static func text(lsn: UInt64) -> String {
    String(lsn >> 32, radix: 16, uppercase: true) + "/" + String(lsn & 0xFFFF_FFFF, radix: 16, uppercase: true)
  }

  /// An LSN from its text form; nil if malformed.
  static func lsn(_ text: String) -> UInt64? {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
      high <= 0xFFFF_FFFF, low <= 0xFFFF_FFFF
    else { return nil }
    return high << 32 | low
  }

  private struct Cursor {
    let bytes: [UInt8]
    var offset = 0

    mutating func byte() throws -> UInt8 {
      guard offset < bytes.count else { throw Failure.truncated(message: bytes.first ?? 0) }
      defer { offset += 1 }
      return bytes[offset]
    }

    mutating func bytes(_ count: Int) throws -> ArraySlice<UInt8> {
      guard count >= 0, offset + count <= bytes.count else { throw Failure.truncated(message: bytes.first ?? 0) }
      defer { offset += count }
      return bytes[offset..<offset + count]
    }

    mutating func uint16() throws -> UInt16 { UInt16(try unsigned(2)) }
    mutating func uint32() throws -> UInt32 { UInt32(try unsigned(4)) }
    mutating func uint64() throws -> UInt64 { try unsigned(8) }
    mutating func int64() throws -> Int64 { Int64(bitPattern: try unsigned(8)) }

    private mutating func unsigned(_ width: Int) throws -> UInt64 {
      try bytes(width).reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string() throws -> String {
      guard let end = bytes[offset...].firstIndex(of: 0) else { throw Failure.truncated(message: bytes.first ?? 0) }
      defer { offset = end + 1 }
      return String(decoding: bytes[offset..<end], as: UTF8.self)
    }
  }
}
