import ChatCore

/// Token-to-credit prices from the model catalog, in whole credits rounded up (`ModelInfo.creditCost`).
enum Pricing {
    /// The most tokens one request may report or estimate.
    static let maxTokens = 100_000_000

    /// What `usage` of `model` costs: input and output tokens at their own prices, rounded up.
    static func cost(_ usage: TokenUsage, model: ModelInfo) -> Int {
        model.creditCost(inputTokens: usage.inputTokens, outputTokens: usage.outputTokens)
    }

    /// What an estimate reserves: `tokens` as output tokens at the model's output price, at least 1 credit.
    static func estimate(tokens: Int, model: ModelInfo) -> Int {
        max(1, cost(TokenUsage(inputTokens: 0, outputTokens: tokens), model: model))
    }
}
