import CRMCore
import Testing

@Suite("Search corrections")
struct SearchCorrectionTests {
  @Test(
    "edits count insertions, deletions, replacements and neighbour swaps as one each",
    arguments: [
      ("jonh", "john", 1), ("rexee", "renee", 1), ("kitten", "sitting", 3), ("ab", "ba", 1), ("", "abc", 3),
      ("abc", "", 3), ("smith", "smith", 0), ("ca", "abc", 3), ("søren", "soren", 1), ("销售易", "销售", 1),
    ])
  func distance(a: String, b: String, expected: Int) {
    #expect(SearchCorrection.distance(a, b) == expected)
    #expect(SearchCorrection.distance(b, a) == expected)
  }

  @Test("the nearest candidates are those with the fewest edits, in the given order, at most three")
  func nearest() {
    #expect(SearchCorrection.nearest(to: "jonh", among: ["jones", "john", "jose"]) == ["john"])
    #expect(SearchCorrection.nearest(to: "maxy", among: ["mary", "mark", "max", "may"]) == ["mary", "max", "may"])
    #expect(SearchCorrection.nearest(to: "abcd", among: ["abce", "abcf", "abcg", "abch"]) == ["abce", "abcf", "abcg"])
    #expect(SearchCorrection.nearest(to: "zzqx", among: []).isEmpty)
  }
}
