import ChatCore

/// Token-to-credit prices from the model catalog, in whole credits rounded up.
///
/// Prices are credits per 1,000 tokens (fractions allowed); they are turned into integer millionths so the
/// arithmetic is exact: a cost that is a whole number of credits is never rounded up by a binary-fraction error.
enum Pricing {
    /// The most tokens one request may report or estimate.
    static let maxTokens = 100_000_000

    /// What `usage` of `model` costs: input and output tokens at their own prices, rounded up.
    static func cost(_ usage: TokenUsage, model: ModelInfo) -> Int {
        let scaled = usage.inputTokens * millionths(model.inputCreditsPer1K) + usage.outputTokens * millionths(model.outputCreditsPer1K)
        // `scaled` is millionths of a credit per 1,000 tokens times tokens: 10^9 of it make one credit.
        return (scaled + 999_999_999) / 1_000_000_000
    }

    /// What an estimate reserves: `tokens` as output tokens at the model's output price, at least 1 credit.
    static func estimate(tokens: Int, model: ModelInfo) -> Int {
        max(1, cost(TokenUsage(inputTokens: 0, outputTokens: tokens), model: model))
    }

    private static func millionths(_ price: Double) -> Int {
        Int((price * 1_000_000).rounded())
    }
}
