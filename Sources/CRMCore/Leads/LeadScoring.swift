import Foundation

/// What a learned lead score reads of a lead (docs/scoring.md): the fields a tenant has on every
/// lead, and its engagement from interactions as of the moment it is scored (for training: as of its
/// conversion, or the end of the conversion window).
public struct LeadScoringInput: Sendable, Hashable {
  public var source: LeadSource
  public var campaign: String?
  public var regionCode: String?
  public var industry: String?
  public var companySize: Int?
  public var title: String?
  /// The domain of the lead's first email address.
  public var emailDomain: String?
  /// Interactions logged on the lead before the moment it is scored.
  public var interactions: Int
  /// Days from its last interaction to that moment (nil: none).
  public var daysSinceLastInteraction: Int?

  public init(
    source: LeadSource, campaign: String? = nil, regionCode: String? = nil, industry: String? = nil, companySize: Int? = nil,
    title: String? = nil, emailDomain: String? = nil, interactions: Int = 0, daysSinceLastInteraction: Int? = nil
  ) {
    self.source = source
    self.campaign = campaign
    self.regionCode = regionCode
    self.industry = industry
    self.companySize = companySize
    self.title = title
    self.emailDomain = emailDomain
    self.interactions = interactions
    self.daysSinceLastInteraction = daysSinceLastInteraction
  }

  /// The lead's value of each feature, as the model names it: `("source", "partner")`,
  /// `("title_seniority", "vp")`, `("email_domain", "free")`. Free-text fields (campaign, country,
  /// industry) are folded to lower case; a missing one is "none".
  public var values: [(feature: String, value: String)] {
    func text(_ value: String?) -> String {
      let folded = value?.trimmingWhitespace().lowercased() ?? ""
      return folded.isEmpty ? "none" : String(folded.prefix(100))
    }
    return [
      ("source", source.rawValue), ("campaign", text(campaign)), ("country", text(regionCode)),
      ("industry", text(industry)), ("company_size", Self.sizeBucket(companySize)),
      ("title_seniority", Self.seniority(title)), ("email_domain", Self.domainKind(emailDomain)),
      ("engagement", Self.engagementBucket(interactions)), ("recency", Self.recencyBucket(daysSinceLastInteraction)),
    ]
  }

  static func sizeBucket(_ size: Int?) -> String {
    guard let size else { return "none" }
    switch size {
    case ...10: return "1-10"
    case ...50: return "11-50"
    case ...200: return "51-200"
    case ...1_000: return "201-1000"
    case ...5_000: return "1001-5000"
    default: return "5001+"
    }
  }

  /// The seniority a job title names: c_level, vp, director, manager, individual or none (English and
  /// Chinese titles).
  public static func seniority(_ title: String?) -> String {
    let text = " " + (title ?? "").lowercased().replacingOccurrences(of: "-", with: " ") + " "
    guard text.contains(where: { !$0.isWhitespace }) else { return "none" }
    func has(_ words: [String]) -> Bool { words.contains { text.contains($0) } }
    if has([" vp ", " vp,", "vice president", " svp ", " evp ", "副总"]) { return "vp" }
    if has([
      "chief", " ceo", " cto", " cfo", " coo", " cmo", " cio", "founder", " owner", "president", "总裁", "总经理", "董事长",
      "创始人",
    ]) {
      return "c_level"
    }
    if has(["director", "head of", " head ", "总监"]) { return "director" }
    if has(["manager", " lead ", "supervisor", "经理", "主管"]) { return "manager" }
    return "individual"
  }

  /// Consumer mail providers: a lead writing from one is "free", any other domain "business".
  static let freeMailDomains: Set<String> = [
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "hotmail.com", "outlook.com", "live.com",
    "msn.com", "aol.com", "icloud.com", "me.com", "mail.ru", "yandex.ru", "gmx.de", "gmx.net", "web.de", "proton.me",
    "protonmail.com", "qq.com", "163.com", "126.com", "sina.com", "sohu.com", "foxmail.com", "yeah.net", "naver.com",
  ]

  static func domainKind(_ domain: String?) -> String {
    guard let domain = domain?.lowercased(), !domain.isEmpty else { return "none" }
    return freeMailDomains.contains(domain) ? "free" : "business"
  }

  static func engagementBucket(_ count: Int) -> String {
    switch count {
    case ...0: "0"
    case 1: "1"
    case 2...3: "2-3"
    case 4...7: "4-7"
    default: "8+"
    }
  }

  static func recencyBucket(_ days: Int?) -> String {
    guard let days else { return "none" }
    switch days {
    case ...7: return "7d"
    case ...30: return "30d"
    case ...90: return "90d"
    default: return "older"
    }
  }
}

/// A lead's learned score: 1–99 (its chance to convert within the model's window, in percent), the
/// tier it falls in among the tenant's leads, and the features that moved it most.
public struct LeadPrediction: Sendable, Hashable, Codable {
  public var score: Int
  public var tier: ScoreTier
  /// Up to three that raised it, then up to three that lowered it; points are score points.
  public var reasons: [Reason]

  public init(score: Int, tier: ScoreTier, reasons: [Reason]) {
    self.score = score
    self.tier = tier
    self.reasons = reasons
  }

  public struct Reason: Sendable, Hashable, Codable {
    public var feature: String
    public var value: String
    public var points: Int

    public init(feature: String, value: String, points: Int) {
      self.feature = feature
      self.value = value
      self.points = points
    }

    /// "source = partner, +18".
    public var text: String { "\(feature) = \(value), \(points > 0 ? "+" : "")\(points)" }
  }
}

/// A lead's learned score as stored: the prediction, the model version that made it, and when.
public struct LeadScore: Sendable, Hashable {
  public var modelVersion: Int
  public var prediction: LeadPrediction
  public var scoredAt: Timestamp

  public init(modelVersion: Int, prediction: LeadPrediction, scoredAt: Timestamp) {
    self.modelVersion = modelVersion
    self.prediction = prediction
    self.scoredAt = scoredAt
  }
}

/// Quartiles of the scores the model gave its training leads: the top quarter is very high.
public enum ScoreTier: String, Sendable, Hashable, Codable, CaseIterable {
  case veryHigh = "very_high"
  case high
  case medium
  case low
}

/// A learned lead-scoring model: a regularized logistic regression over one-hot features
/// (docs/scoring.md).
public struct LeadScoringModel: Sendable, Hashable, Codable {
  /// One feature value's weight (log-odds).
  public struct Weight: Sendable, Hashable, Codable {
    public var feature: String
    public var value: String
    public var weight: Double
    /// Training leads with this value, and how many of them converted.
    public var support: Int
    public var conversions: Int

    public init(feature: String, value: String, weight: Double, support: Int, conversions: Int) {
      self.feature = feature
      self.value = value
      self.weight = weight
      self.support = support
      self.conversions = conversions
    }
  }

  public var intercept: Double
  public var weights: [Weight]
  /// Scores at the 25th, 50th and 75th percentile of the training leads (tiers).
  public var tierCutoffs: [Int]
  /// The conversion window the labels used, in days.
  public var windowDays: Int
  /// Leads trained on and held out, and the conversions among them.
  public var trainingSize: Int
  public var trainingConversions: Int
  public var holdoutSize: Int
  public var holdoutConversions: Int
  /// The area under the ROC curve on the held-out leads, and its standard error (Hanley–McNeil).
  public var auc: Double
  public var aucStandardError: Double
  /// The L2 penalty the weights were fitted with.
  public var regularization: Double

  public init(
    intercept: Double, weights: [Weight], tierCutoffs: [Int], windowDays: Int, trainingSize: Int, trainingConversions: Int,
    holdoutSize: Int, holdoutConversions: Int, auc: Double, aucStandardError: Double, regularization: Double
  ) {
    self.intercept = intercept
    self.weights = weights
    self.tierCutoffs = tierCutoffs
    self.windowDays = windowDays
    self.trainingSize = trainingSize
    self.trainingConversions = trainingConversions
    self.holdoutSize = holdoutSize
    self.holdoutConversions = holdoutConversions
    self.auc = auc
    self.aucStandardError = aucStandardError
    self.regularization = regularization
  }

  /// Whether the model ranks held-out leads better than chance with 95 % confidence
  /// (AUC − 1.96 × SE > 0.5). A model that does not is kept for inspection, never used to score.
  public var hasSignal: Bool { auc - 1.96 * aucStandardError > 0.5 }

  /// The tier of `score` against the training quartiles.
  public func tier(_ score: Int) -> ScoreTier {
    guard tierCutoffs.count == 3 else { return .medium }
    if score > tierCutoffs[2] { return .veryHigh }
    if score > tierCutoffs[1] { return .high }
    if score > tierCutoffs[0] { return .medium }
    return .low
  }

  /// The value that stands for the values too rare to learn from.
  public static let other = "other"

  /// The position of each feature value's weight.
  var weightIndex: [String: [String: Int]] {
    var index: [String: [String: Int]] = [:]
    for (position, weight) in weights.enumerated() where index[weight.feature]?[weight.value] == nil {
      index[weight.feature, default: [:]][weight.value] = position
    }
    return index
  }

  /// The weights `input` turns on: its value's, or the feature's "other" for a value too rare.
  static func active(_ input: LeadScoringInput, _ index: [String: [String: Int]]) -> [Int] {
    input.values.compactMap { feature, value in
      guard let values = index[feature] else { return nil }
      return values[value] ?? values[LeadScoringModel.other]
    }
  }

  static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

  /// A probability as a score of 1 to 99.
  static func score(_ probability: Double) -> Int { min(99, max(1, Int((probability * 100).rounded()))) }
}

/// A model ready to score many leads (its weights indexed once).
public struct LeadScorer: Sendable {
  public let model: LeadScoringModel
  let index: [String: [String: Int]]

  public init(_ model: LeadScoringModel) {
    self.model = model
    index = model.weightIndex
  }

  /// The model's score for `input`, its tier, and the features that moved it most.
  public func predict(_ input: LeadScoringInput) -> LeadPrediction {
    let active = LeadScoringModel.active(input, index)
    let logit = active.reduce(model.intercept) { $0 + model.weights[$1].weight }
    let probability = LeadScoringModel.sigmoid(logit)
    let score = LeadScoringModel.score(probability)
    // A reason's points: how far the score moves when the feature's weight is taken away.
    let reasons = active.map { position in
      let weight = model.weights[position]
      return LeadPrediction.Reason(
        feature: weight.feature, value: weight.value,
        points: Int(((probability - LeadScoringModel.sigmoid(logit - weight.weight)) * 100).rounded()))
    }.filter { $0.points != 0 }
    let positive = reasons.filter { $0.points > 0 }.sorted { ($0.points, $1.feature) > ($1.points, $0.feature) }.prefix(3)
    let negative = reasons.filter { $0.points < 0 }.sorted { ($0.points, $0.feature) < ($1.points, $1.feature) }.prefix(3)
    return LeadPrediction(score: score, tier: model.tier(score), reasons: Array(positive) + Array(negative))
  }
}

/// Fits ``LeadScoringModel``s: features from the training leads, Newton's method on the L2-penalized
/// log-likelihood, the area under the ROC curve on leads held out of the fit.
public struct LeadScoringTrainer: Sendable {
  /// A training lead: its features, whether it converted within the window, and whether it is held out.
  public struct Example: Sendable {
    public var input: LeadScoringInput
    public var converted: Bool
    public var heldOut: Bool

    public init(input: LeadScoringInput, converted: Bool, heldOut: Bool) {
      self.input = input
      self.converted = converted
      self.heldOut = heldOut
    }
  }

  /// A value seen on fewer training leads than this is folded into "other".
  public var minimumSupport: Int
  /// The most values of one feature that get weights of their own (the most frequent ones).
  public var maximumValues: Int
  /// The L2 penalty (on the log-likelihood's scale; the intercept is not penalized).
  public var regularization: Double
  public var windowDays: Int

  public init(minimumSupport: Int = 20, maximumValues: Int = 50, regularization: Double = 1, windowDays: Int = 90) {
    self.minimumSupport = minimumSupport
    self.maximumValues = maximumValues
    self.regularization = regularization
    self.windowDays = windowDays
  }

  /// The model fitted on the examples not held out, measured on those held out.
  public func train(_ examples: [Example]) -> LeadScoringModel {
    // The vocabulary: every (feature, value) seen often enough on the fitted leads, plus "other".
    var counts: [String: [String: (support: Int, conversions: Int)]] = [:]
    for example in examples where !example.heldOut {
      for (feature, value) in example.input.values {
        counts[feature, default: [:]][value, default: (0, 0)].support += 1
        if example.converted { counts[feature]![value]!.conversions += 1 }
      }
    }
    var weights: [LeadScoringModel.Weight] = []
    for feature in counts.keys.sorted() {
      var other = (support: 0, conversions: 0)
      // The most frequent values first; at most `maximumValues` of a feature get weights of their own.
      let ranked = counts[feature]!.sorted { ($0.value.support, $1.key) > ($1.value.support, $0.key) }
      for (rank, (value, count)) in ranked.enumerated() {
        if count.support >= minimumSupport, rank < maximumValues, value != LeadScoringModel.other {
          weights.append(.init(feature: feature, value: value, weight: 0, support: count.support, conversions: count.conversions))
        } else {
          other.support += count.support
          other.conversions += count.conversions
        }
      }
      if other.support > 0 {
        weights.append(
          .init(
            feature: feature, value: LeadScoringModel.other, weight: 0, support: other.support, conversions: other.conversions))
      }
    }
    var model = LeadScoringModel(
      intercept: 0, weights: weights, tierCutoffs: [], windowDays: windowDays, trainingSize: 0, trainingConversions: 0,
      holdoutSize: 0, holdoutConversions: 0, auc: 0.5, aucStandardError: 0.5, regularization: regularization)
    let index = model.weightIndex
    func active(_ input: LeadScoringInput) -> [Int] { LeadScoringModel.active(input, index) }
    let fitted = examples.filter { !$0.heldOut }
    let rows = fitted.map { active($0.input) }
    let labels = fitted.map { $0.converted ? 1.0 : 0.0 }
    let (intercept, fittedWeights) = Self.fit(rows: rows, labels: labels, dimension: weights.count, lambda: regularization)
    model.intercept = intercept
    for position in model.weights.indices { model.weights[position].weight = fittedWeights[position] }

    let fittedScores = rows.map { row in
      LeadScoringModel.score(LeadScoringModel.sigmoid(row.reduce(intercept) { $0 + fittedWeights[$1] }))
    }.sorted()
    model.tierCutoffs =
      fittedScores.isEmpty
      ? [] : [0.25, 0.5, 0.75].map { fittedScores[min(fittedScores.count - 1, Int(Double(fittedScores.count) * $0))] }
    model.trainingSize = fitted.count
    model.trainingConversions = fitted.filter(\.converted).count
    let held = examples.filter(\.heldOut)
    model.holdoutSize = held.count
    model.holdoutConversions = held.filter(\.converted).count
    let logits = held.map { example in active(example.input).reduce(intercept) { $0 + fittedWeights[$1] } }
    (model.auc, model.aucStandardError) = Self.auc(scores: logits, labels: held.map(\.converted))
    return model
  }

  /// Newton's method on −log-likelihood + λ/2 ‖w‖² for one-hot rows (the active indices of each row).
  /// Returns the intercept and the weights.
  static func fit(rows: [[Int]], labels: [Double], dimension: Int, lambda: Double) -> (Double, [Double]) {
    let size = dimension + 1  // the intercept is the last coordinate
    var beta = [Double](repeating: 0, count: size)
    let positives = labels.reduce(0, +)
    if positives > 0, positives < Double(labels.count) {
      beta[dimension] = log(positives / (Double(labels.count) - positives))
    }
    var previousLoss = Double.infinity
    for _ in 0..<50 {
      var gradient = [Double](repeating: 0, count: size)
      var hessian = [Double](repeating: 0, count: size * size)
      var loss = 0.0
      for (row, label) in zip(rows, labels) {
        var logit = beta[dimension]
        for position in row { logit += beta[position] }
        let p = LeadScoringModel.sigmoid(logit)
        loss -= label * log(max(p, 1e-300)) + (1 - label) * log(max(1 - p, 1e-300))
        let residual = p - label
        let curvature = max(p * (1 - p), 1e-12)
        for a in row {
          gradient[a] += residual
          hessian[a * size + dimension] += curvature
          hessian[dimension * size + a] += curvature
          for b in row { hessian[a * size + b] += curvature }
        }
        gradient[dimension] += residual
        hessian[dimension * size + dimension] += curvature
      }
      for position in 0..<dimension {
        loss += lambda / 2 * beta[position] * beta[position]
        gradient[position] += lambda * beta[position]
        hessian[position * size + position] += lambda
      }
      hessian[dimension * size + dimension] += 1e-9
      guard let step = Self.solve(hessian, gradient, size: size) else { break }
      for position in 0..<size { beta[position] -= step[position] }
      if abs(previousLoss - loss) <= 1e-9 * max(1, abs(loss)) { break }
      previousLoss = loss
    }
    return (beta[dimension], Array(beta[0..<dimension]))
  }

  /// Solves the symmetric positive definite system `matrix × x = vector` by Cholesky; nil when it is not.
  static func solve(_ matrix: [Double], _ vector: [Double], size: Int) -> [Double]? {
    var lower = [Double](repeating: 0, count: size * size)
    for i in 0..<size {
      for j in 0...i {
        var sum = matrix[i * size + j]
        for k in 0..<j { sum -= lower[i * size + k] * lower[j * size + k] }
        if i == j {
          guard sum > 0 else { return nil }
          lower[i * size + i] = sum.squareRoot()
        } else {
          lower[i * size + j] = sum / lower[j * size + j]
        }
      }
    }
    var y = [Double](repeating: 0, count: size)
    for i in 0..<size {
      var sum = vector[i]
      for k in 0..<i { sum -= lower[i * size + k] * y[k] }
      y[i] = sum / lower[i * size + i]
    }
    var x = [Double](repeating: 0, count: size)
    for i in stride(from: size - 1, through: 0, by: -1) {
      var sum = y[i]
      for k in (i + 1)..<size { sum -= lower[k * size + i] * x[k] }
      x[i] = sum / lower[i * size + i]
    }
    return x
  }

  /// The area under the ROC curve of `scores` against `labels` (ties count half), and its standard
  /// error (Hanley & McNeil, 1982). 0.5 ± 0.5 when one class is missing.
  public static func auc(scores: [Double], labels: [Bool]) -> (Double, Double) {
    let positives = labels.filter { $0 }.count
    let negatives = labels.count - positives
    guard positives > 0, negatives > 0 else { return (0.5, 0.5) }
    // Mann–Whitney: the rank sum of the positives, with average ranks for ties.
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var rankSum = 0.0
    var start = 0
    while start < order.count {
      var end = start
      while end + 1 < order.count, scores[order[end + 1]] == scores[order[start]] { end += 1 }
      let rank = Double(start + end) / 2 + 1
      for position in start...end where labels[order[position]] { rankSum += rank }
      start = end + 1
    }
    let n1 = Double(positives)
    let n0 = Double(negatives)
    let area = (rankSum - n1 * (n1 + 1) / 2) / (n1 * n0)
    let q1 = area / (2 - area)
    let q2 = 2 * area * area / (1 + area)
    let variance = (area * (1 - area) + (n1 - 1) * (q1 - area * area) + (n0 - 1) * (q2 - area * area)) / (n1 * n0)
    return (area, max(0, variance).squareRoot())
  }
}
