/// A postal address; every part optional.
public struct PostalAddress: Sendable, Hashable, Codable {
  /// Street lines.
  public var addressLines: [String]
  /// City or town.
  public var locality: String
  /// State, province or prefecture.
  public var administrativeArea: String
  /// Postal or ZIP code.
  public var postalCode: String
  /// ISO 3166-1 alpha-2, upper case; empty when unknown.
  public var regionCode: String

  /// An address from its parts.
  public init(
    addressLines: [String] = [], locality: String = "", administrativeArea: String = "", postalCode: String = "",
    regionCode: String = ""
  ) {
    self.addressLines = addressLines
    self.locality = locality
    self.administrativeArea = administrativeArea
    self.postalCode = postalCode
    self.regionCode = regionCode
  }

  private enum CodingKeys: String, CodingKey {
    case addressLines, locality, administrativeArea, postalCode, regionCode
  }

  /// Decodes leniently: a stored address written by another tool may leave out any part.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    addressLines = try container.decodeIfPresent([String].self, forKey: .addressLines) ?? []
    locality = try container.decodeIfPresent(String.self, forKey: .locality) ?? ""
    administrativeArea = try container.decodeIfPresent(String.self, forKey: .administrativeArea) ?? ""
    postalCode = try container.decodeIfPresent(String.self, forKey: .postalCode) ?? ""
    regionCode = try container.decodeIfPresent(String.self, forKey: .regionCode) ?? ""
  }

  /// True when no part is set.
  public var isEmpty: Bool {
    addressLines.isEmpty && locality.isEmpty && administrativeArea.isEmpty && postalCode.isEmpty && regionCode.isEmpty
  }

  /// Trims and bounds every part and checks the region code, recording violations under `field`.
  /// Returns `nil` for an empty address.
  public static func validated(_ address: PostalAddress, field: String, into violations: inout Violations) -> PostalAddress? {
    if address.addressLines.count > 5 {
      violations.add("\(field).address_lines", "at most 5 lines", reason: "TOO_MANY")
    }
    var result = PostalAddress()
    for (index, line) in address.addressLines.prefix(5).enumerated() {
      if let clean = violations.text("\(field).address_lines[\(index)]", line, maxLength: 200) {
        result.addressLines.append(clean)
      }
    }
    result.locality = violations.text("\(field).locality", address.locality, maxLength: 100) ?? ""
    result.administrativeArea = violations.text("\(field).administrative_area", address.administrativeArea, maxLength: 100) ?? ""
    result.postalCode = violations.text("\(field).postal_code", address.postalCode, maxLength: 20) ?? ""
    let region = address.regionCode.trimmingWhitespace().uppercased()
    if !region.isEmpty {
      if region.count == 2, region.allSatisfy({ $0.isASCII && $0.isLetter }) {
        result.regionCode = region
      } else {
        violations.add("\(field).region_code", "must be an ISO 3166-1 alpha-2 code such as US or CN", reason: "INVALID_FORMAT")
      }
    }
    return result.isEmpty ? nil : result
  }
}
