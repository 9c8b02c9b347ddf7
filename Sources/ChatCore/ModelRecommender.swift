/// What a caller cares about most when choosing a model.
public enum ModelPriority: String, Sendable, CaseIterable {
    case quality, speed, cost, balanced

    /// How much each rating counts: quality and speed for, cost against.
    var weights: (quality: Double, speed: Double, cost: Double) {
        switch self {
        case .quality: (3, 0.5, 0.5)
        case .speed: (1, 3, 0.5)
        case .cost: (1, 0.5, 3)
        case .balanced: (1.5, 1.5, 1.5)
        }
    }
}

/// A recommendation: the model, why, and the next best choices.
public struct ModelRecommendation: Sendable, Equatable {
    public var model: ModelInfo
    public var reason: String
    public var alternatives: [ModelInfo]
}

/// Recommends one of the models a role may use for a task and a priority, by a simple, explainable score over
/// each catalog entry's traits: its quality, speed and cost ratings (1 to 5) weighted by the priority, two points
/// for each of its strengths the task names, and three for a large context window (100,000 tokens or more) when
/// the task speaks of long inputs. Ties go to the lower price, then to catalog order.
public enum ModelRecommender {
    /// Words of a task that ask for a large context window.
    static let longInputWords = ["long", "document", "book", "summar", "transcript", "report", "contract"]

    /// The lower-case words of `text` (letters and digits).
    static func words(_ text: String) -> [Substring] {
        text.lowercased().split { !$0.isLetter && !$0.isNumber }
    }

    /// Whether the task's words name `strength`: each of its words appears among them, a long word (seven letters
    /// or more) also by its stem, all but its last three letters (`summaries` ~ "summarize", `contracts` ~ "contract").
    static func task(_ taskWords: [Substring], names strength: String) -> Bool {
        let wanted = words(strength)
        return !wanted.isEmpty && wanted.allSatisfy { word in
            taskWords.contains { $0 == word || (word.count >= 7 && $0.hasPrefix(word.prefix(word.count - 3))) }
        }
    }

    /// The recommendation for `task` and `priority` among the models of `catalog` that `role` may use.
    public static func recommend(task: String, priority: ModelPriority, role: UserRole, catalog: ModelCatalog) -> ModelRecommendation? {
        let models = catalog.models(for: role)
        guard !models.isEmpty else { return nil }
        let lowered = task.lowercased()
        let longInput = longInputWords.contains { lowered.contains($0) }
        let weights = priority.weights
        let taskWords = Self.words(lowered)
        func matched(_ model: ModelInfo) -> [String] {
            model.traits.strengths.filter { Self.task(taskWords, names: $0) }
        }
        func score(_ model: ModelInfo) -> Double {
            let traits = model.traits
            var score = weights.quality * Double(traits.quality) + weights.speed * Double(traits.speed) - weights.cost * Double(traits.cost)
            score += 2 * Double(matched(model).count)
            if longInput, model.contextWindow >= 100_000 { score += 3 }
            return score
        }
        func price(_ model: ModelInfo) -> Double { model.inputCreditsPer1K + model.outputCreditsPer1K }
        let ranked = models.enumerated().sorted { left, right in
            let (a, b) = (score(left.element), score(right.element))
            if a != b { return a > b }
            if price(left.element) != price(right.element) { return price(left.element) < price(right.element) }
            return left.offset < right.offset
        }.map(\.element)
        let best = ranked[0]
        var reason: String
        switch priority {
        case .quality: reason = "The most capable model available to you for \"\(task)\""
        case .cost: reason = "The least expensive model that does \"\(task)\" well"
        case .speed: reason = "A fast model: the first words arrive soonest for \"\(task)\""
        case .balanced: reason = "A balance of quality, speed and price for \"\(task)\""
        }
        reason += " (quality \(best.traits.quality)/5, speed \(best.traits.speed)/5, cost \(best.traits.cost)/5)."
        let strengths = matched(best)
        if !strengths.isEmpty { reason += " It is strong at \(strengths.joined(separator: ", "))." }
        if longInput, best.contextWindow >= 100_000 { reason += " It also has a large context window for long inputs." }
        return ModelRecommendation(model: best, reason: reason, alternatives: Array(ranked.dropFirst().prefix(2)))
    }
}
