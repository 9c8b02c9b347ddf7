/// What a caller cares about most when choosing a model.
public enum ModelPriority: String, Sendable, CaseIterable {
    case quality, speed, cost, balanced
}

/// A recommendation: the model, why, and the next best choices.
public struct ModelRecommendation: Sendable, Equatable {
    public var model: ModelInfo
    public var reason: String
    public var alternatives: [ModelInfo]
}

/// Recommends one of the models a role may use for a task and a priority, by a simple, explainable rule:
/// quality ranks by price (the most capable models cost the most), cost by price the other way, speed by
/// the small models' price with the fastest families first, balanced by closeness to a mid price. Tasks that
/// name long documents prefer the largest context windows.
public enum ModelRecommender {
    /// The recommendation for `task` and `priority` among the models `role` may use.
    public static func recommend(task: String, priority: ModelPriority, role: UserRole) -> ModelRecommendation? {
        let models = ModelCatalog.models(for: role)
        guard !models.isEmpty else { return nil }
        let lowered = task.lowercased()
        let longContext = ["long", "document", "book", "summar", "transcript"].contains { lowered.contains($0) }
        func price(_ model: ModelInfo) -> Double { model.inputCreditsPer1K + model.outputCreditsPer1K }
        var ranked: [ModelInfo]
        let reason: String
        switch priority {
        case .quality:
            ranked = models.sorted { price($0) > price($1) }
            reason = "The most capable model available to you for \"\(task)\"."
        case .cost:
            ranked = models.sorted { price($0) < price($1) }
            reason = "The least expensive model available to you; good enough for \"\(task)\"."
        case .speed:
            let fast: [ModelFamily] = [.anthropicClaude, .amazonNova, .mistral, .metaLlama3, .amazonTitan]
            ranked = models.filter { price($0) < 2 }.sorted {
                (fast.firstIndex(of: $0.family) ?? 9, price($0)) < (fast.firstIndex(of: $1.family) ?? 9, price($1))
            }
            if ranked.isEmpty { ranked = models.sorted { price($0) < price($1) } }
            reason = "A small, fast model: the first words arrive soonest for \"\(task)\"."
        case .balanced:
            ranked = models.sorted { abs(price($0) - 1.5) < abs(price($1) - 1.5) }
            reason = "A balance of quality, speed and price for \"\(task)\"."
        }
        if longContext {
            ranked = ranked.filter { $0.contextWindow >= 100_000 } + ranked.filter { $0.contextWindow < 100_000 }
        }
        return ModelRecommendation(
            model: ranked[0], reason: reason + (longContext ? " It also has a large context window for long inputs." : ""),
            alternatives: Array(ranked.dropFirst().prefix(2))
        )
    }
}
