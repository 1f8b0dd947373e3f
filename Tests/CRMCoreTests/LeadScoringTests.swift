import CRMCore
import Foundation
import PropertyBased
import Testing

@Suite("Learned lead scoring")
struct LeadScoringTests {
  static let sources: [LeadSource] = [.webForm, .partner, .event, .email, .phone]
  static let titles = ["CEO", "VP Sales", "Head of IT", "Office Manager", "Engineer", ""]
  static let industries = ["Retail", "Finance", "Textiles", "Software"]

  /// `count` leads with random features. With `signal`, a partner source (+1.6), a C-level title
  /// (+1.0) and a business address (+0.8 against free mail) raise the odds of converting and an event
  /// source lowers them (−1.2); without, every lead converts with the same chance.
  static func history(count: Int, signal: Bool, seed: UInt64) -> [LeadScoringTrainer.Example] {
    var random = Xoshiro(seed: (seed, 0x9E37_79B9_7F4A_7C15, 1, 2))
    return (0..<count).map { index in
      let source = sources.randomElement(using: &random)!
      let title = titles.randomElement(using: &random)!
      let free = Bool.random(using: &random)
      let input = LeadScoringInput(
        source: source, campaign: ["spring", "autumn", nil].randomElement(using: &random)!, regionCode: "DE",
        industry: industries.randomElement(using: &random)!, companySize: Int.random(in: 1...20_000, using: &random),
        title: title, emailDomain: free ? "gmail.com" : "acme.example",
        interactions: Int.random(in: 0...5, using: &random))
      var logit = -2.2
      if signal {
        if source == .partner { logit += 1.6 }
        if source == .event { logit -= 1.2 }
        if title == "CEO" { logit += 1.0 }
        if !free { logit += 0.8 }
      }
      let converted = Double.random(in: 0..<1, using: &random) < 1 / (1 + exp(-logit))
      return .init(input: input, converted: converted, heldOut: index % 5 == 0)
    }
  }

  static func weight(_ model: LeadScoringModel, _ feature: String, _ value: String) -> Double {
    model.weights.first { $0.feature == feature && $0.value == value }!.weight
  }

  @Test("a history with planted features: the model ranks held-out leads well above chance and recovers each feature's sign")
  func plantedSignal() {
    let model = LeadScoringTrainer().train(Self.history(count: 5_000, signal: true, seed: 7))
    #expect(model.trainingSize == 4_000 && model.holdoutSize == 1_000)
    #expect(model.auc > 0.7, "held-out AUC \(model.auc)")
    #expect(model.hasSignal)
    #expect(Self.weight(model, "source", "partner") > Self.weight(model, "source", "web_form") + 0.8)
    #expect(Self.weight(model, "source", "event") < Self.weight(model, "source", "web_form") - 0.5)
    #expect(Self.weight(model, "title_seniority", "c_level") > Self.weight(model, "title_seniority", "individual") + 0.4)
    #expect(Self.weight(model, "email_domain", "business") > Self.weight(model, "email_domain", "free") + 0.4)
    // Noise features stay small beside the planted ones.
    let industries = ["retail", "finance", "textiles", "software"].map { Self.weight(model, "industry", $0) }
    #expect(industries.max()! - industries.min()! < 0.5)

    let scorer = LeadScorer(model)
    let hot = scorer.predict(.init(source: .partner, title: "Chief Executive Officer", emailDomain: "acme.example"))
    let cold = scorer.predict(.init(source: .event, title: "Engineer", emailDomain: "gmail.com"))
    #expect(hot.score > cold.score + 30 && (1...99).contains(hot.score) && (1...99).contains(cold.score))
    #expect(hot.tier == .veryHigh && cold.tier == .low)
    #expect(hot.reasons.first.map { "\($0.feature) = \($0.value)" } == "source = partner")
    #expect(hot.reasons.first!.points > 0 && hot.reasons.first!.text.hasPrefix("source = partner, +"))
    #expect(cold.reasons.contains { $0.feature == "source" && $0.value == "event" && $0.points < 0 })
    #expect(hot.reasons.filter { $0.points > 0 }.count <= 3 && hot.reasons.filter { $0.points < 0 }.count <= 3)
  }

  @Test("a history without signal: the model does not claim one")
  func noSignal() {
    for seed: UInt64 in [1, 2, 3] {
      let model = LeadScoringTrainer().train(Self.history(count: 5_000, signal: false, seed: seed))
      #expect(!model.hasSignal, "seed \(seed): AUC \(model.auc) ± \(model.aucStandardError)")
      #expect(abs(model.auc - 0.5) < 0.1)
    }
  }

  @Test("the AUC counts ties as half and has the Hanley–McNeil error; one class alone is chance")
  func auc() {
    let (area, error) = LeadScoringTrainer.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true])
    #expect(area == 0.75 && error > 0)
    #expect(LeadScoringTrainer.auc(scores: [1, 1, 1, 1], labels: [false, true, false, true]).0 == 0.5)
    #expect(LeadScoringTrainer.auc(scores: [1, 2], labels: [true, true]).0 == 0.5)
  }

  @Test("titles name a seniority in English and Chinese")
  func seniority() {
    let cases: [(String?, String)] = [
      ("CEO", "c_level"), ("Co-Founder & CTO", "c_level"), ("Vice President, Sales", "vp"), ("SVP Marketing", "vp"),
      ("Head of IT", "director"), ("Director of Procurement", "director"), ("Office Manager", "manager"),
      ("销售总监", "director"), ("总经理", "c_level"), ("采购经理", "manager"), ("Engineer", "individual"), (nil, "none"),
      ("  ", "none"),
    ]
    for (title, expected) in cases { #expect(LeadScoringInput.seniority(title) == expected, "\(title ?? "nil")") }
  }
}
