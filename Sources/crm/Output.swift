import ArgumentParser
import CRMProto
import Foundation
import SwiftProtobuf

/// Prints records as a table or as JSON.
enum Output {
  static let jsonOptions: JSONEncodingOptions = {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return options
  }()

  /// One message as JSON on one line.
  static func json(_ message: some SwiftProtobuf.Message) throws -> String {
    try message.jsonString(options: jsonOptions)
  }

  /// Prints messages as JSON lines.
  static func printJSON(_ messages: [some SwiftProtobuf.Message]) throws {
    for message in messages { print(try json(message)) }
  }

  /// Says where a list continues, on standard error — `more: --page-token TOKEN` — with or without
  /// `--json`, so a script reading the JSON lines on standard output can still page. Nothing when the
  /// list is complete.
  static func more(_ nextPageToken: String) {
    guard !nextPageToken.isEmpty else { return }
    note("more: --page-token \(nextPageToken)")
  }

  /// A line for the person at the terminal, on standard error (never mixed into `--json` output).
  static func note(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
  }

  /// Prints rows under a header, each column as wide as its widest cell (at most 40 characters; the
  /// last column is printed whole).
  static func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
      for (index, cell) in row.enumerated() { widths[index] = min(40, max(widths[index], cell.count)) }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { index, cell in
        // The last column is never clipped: nothing after it needs aligning.
        if index == cells.count - 1 { return cell }
        let clipped = cell.count > widths[index] ? String(cell.prefix(widths[index] - 1)) + "…" : cell
        return clipped.padding(toLength: widths[index], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
  }

  /// Prints one record as "field: value" lines.
  static func printRecord(_ pairs: [(String, String)]) {
    let width = pairs.map(\.0.count).max() ?? 0
    for (key, value) in pairs where !value.isEmpty {
      print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
    }
  }

  /// An enum case as the API's documentation spells it: `salesRep` → `sales_rep`.
  static func name(_ value: Any) -> String {
    var out = ""
    for character in String(describing: value) {
      if character.isUppercase {
        out += "_" + character.lowercased()
      } else {
        out.append(character)
      }
    }
    return out
  }

  /// An amount exactly, with its currency and at least two decimals: "USD 1250.50", "EUR -0.125".
  static func money(_ money: Crm_V1_Money) -> String {
    guard !money.currencyCode.isEmpty else { return "" }
    let negative = money.units < 0 || money.nanos < 0
    let digits = String(money.nanos.magnitude)
    var fraction = String(repeating: "0", count: 9 - digits.count) + digits
    while fraction.count > 2, fraction.hasSuffix("0") { fraction.removeLast() }
    return "\(money.currencyCode) \(negative ? "-" : "")\(money.units.magnitude).\(fraction)"
  }

  /// A day as YYYY-MM-DD (empty when unset).
  static func date(_ date: Crm_V1_Date) -> String {
    date.year == 0 ? "" : String(format: "%04d-%02d-%02d", date.year, date.month, date.day)
  }

  /// A protobuf timestamp as ISO 8601 UTC.
  static func time(_ timestamp: Google_Protobuf_Timestamp) -> String {
    guard timestamp.seconds != 0 || timestamp.nanos != 0 else { return "" }
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(timestamp.seconds)))
  }

  /// A value of the change log as compact text.
  static func value(_ value: Google_Protobuf_Value) -> String {
    switch value.kind {
    case .nullValue, nil: return "∅"
    case .stringValue(let text): return text
    case .numberValue(let number) where number.rounded() == number && abs(number) < 1e15: return String(Int64(number))
    default: return (try? value.jsonString()) ?? ""
    }
  }
}

/// `NAME=VALUE` options (`--field`, `--map`, `--take`) as a dictionary; the last of a repeated name wins.
/// Throws a ValidationError naming the option and the expected form.
func keyValuePairs(_ items: [String], option: String, form: String) throws -> [String: String] {
  var pairs: [String: String] = [:]
  for item in items {
    guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
      throw ValidationError("\(option) expects \(form), got \(item)")
    }
    pairs[String(item[..<equals])] = String(item[item.index(after: equals)...])
  }
  return pairs
}

extension Duration {
  /// The duration in seconds, as a floating-point number.
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// `--page-token`: where a list continues, as the previous page's `more:` line said. (`--page` is
/// accepted too: the billing commands' first spelling.)
struct PageOption: ParsableArguments {
  @Option(
    name: [.customLong("page-token"), .customLong("page")],
    help: "The token the previous page printed (\"more: --page-token …\").")
  var pageToken: String = ""
}
