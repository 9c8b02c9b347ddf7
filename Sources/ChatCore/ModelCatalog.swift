/// The Bedrock model families the service speaks; each has its own request and response bodies.
public enum ModelFamily: String, Codable, Sendable {
    case anthropicClaude = "anthropic"
    case amazonNova = "amazon-nova"
    case amazonTitan = "amazon-titan"
    case metaLlama3 = "meta-llama3"
    case mistral = "mistral"
}

/// One model the service offers, with what billing and context trimming need.
public struct ModelInfo: Codable, Sendable, Equatable {
    /// The Bedrock model id, e.g. `anthropic.claude-3-sonnet-20240229-v1:0`.
    public var id: String
    public var name: String
    public var family: ModelFamily
    /// Tokens of prompt plus reply the model accepts.
    public var contextWindow: Int
    /// The largest reply the service asks for.
    public var maxOutputTokens: Int
    /// Credits per 1,000 input tokens.
    public var inputCreditsPer1K: Double
    /// Credits per 1,000 output tokens.
    public var outputCreditsPer1K: Double
    /// Roles allowed to use the model.
    public var roles: [UserRole]

    /// Which Bedrock Runtime API the worker calls the model through: Converse (one request shape, system prompts
    /// and usage in its `metadata`) for the families whose every model takes a system prompt there; InvokeModel
    /// for Titan Text and Mistral's 7B and Mixtral, whose Converse refuses system prompts.
    public var api: BedrockAPI {
        switch family {
        case .anthropicClaude, .amazonNova, .metaLlama3: .converse
        case .amazonTitan, .mistral: .invokeModel
        }
    }

    /// What `inputTokens` and `outputTokens` cost in whole credits, each at its own price, rounded up. Prices are
    /// turned into integer millionths first, so a cost that is a whole number of credits is never rounded up by a
    /// binary-fraction error.
    public func creditCost(inputTokens: Int, outputTokens: Int) -> Int {
        func millionths(_ price: Double) -> Int { Int((price * 1_000_000).rounded()) }
        let scaled = inputTokens * millionths(inputCreditsPer1K) + outputTokens * millionths(outputCreditsPer1K)
        // `scaled` is millionths of a credit per 1,000 tokens times tokens: 10^9 of it make one credit.
        return (scaled + 999_999_999) / 1_000_000_000
    }
}

/// The two ways to call a model on Bedrock Runtime.
public enum BedrockAPI: String, Sendable, Equatable {
    /// `InvokeModel` / `InvokeModelWithResponseStream`, with the model family's own bodies.
    case invokeModel
    /// `Converse` / `ConverseStream`, one request shape for every model.
    case converse
}

/// The models the service offers; an id not listed here is rejected with 400 `Invalid model ID`.
public enum ModelCatalog {
    /// The model used when a request names none.
    public static let defaultModelID = "anthropic.claude-3-haiku-20240307-v1:0"

    /// Every model, in the order shown to users.
    public static let models: [ModelInfo] = [
        model("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", .anthropicClaude, 200_000, 4_096, 0.25, 1.25, UserRole.allCases),
        model("anthropic.claude-3-sonnet-20240229-v1:0", "Claude 3 Sonnet", .anthropicClaude, 200_000, 4_096, 3, 15, UserRole.allCases),
        model("anthropic.claude-3-5-sonnet-20240620-v1:0", "Claude 3.5 Sonnet", .anthropicClaude, 200_000, 8_192, 3, 15, UserRole.allCases),
        model("anthropic.claude-3-opus-20240229-v1:0", "Claude 3 Opus", .anthropicClaude, 200_000, 4_096, 15, 75, [.admin, .supervisor]),
        model("amazon.nova-micro-v1:0", "Amazon Nova Micro", .amazonNova, 128_000, 5_000, 0.035, 0.14, UserRole.allCases),
        model("amazon.nova-lite-v1:0", "Amazon Nova Lite", .amazonNova, 300_000, 5_000, 0.06, 0.24, UserRole.allCases),
        model("amazon.nova-pro-v1:0", "Amazon Nova Pro", .amazonNova, 300_000, 5_000, 0.8, 3.2, UserRole.allCases),
        model("amazon.titan-text-express-v1", "Amazon Titan Text Express", .amazonTitan, 8_192, 4_096, 0.2, 0.6, UserRole.allCases),
        model("amazon.titan-text-lite-v1", "Amazon Titan Text Lite", .amazonTitan, 4_096, 4_096, 0.15, 0.2, UserRole.allCases),
        model("meta.llama3-8b-instruct-v1:0", "Llama 3 8B Instruct", .metaLlama3, 8_192, 2_048, 0.3, 0.6, UserRole.allCases),
        model("meta.llama3-70b-instruct-v1:0", "Llama 3 70B Instruct", .metaLlama3, 8_192, 2_048, 2.65, 3.5, UserRole.allCases),
        model("mistral.mistral-7b-instruct-v0:2", "Mistral 7B Instruct", .mistral, 32_000, 8_192, 0.15, 0.2, UserRole.allCases),
        model("mistral.mixtral-8x7b-instruct-v0:1", "Mixtral 8x7B Instruct", .mistral, 32_000, 4_096, 0.45, 0.7, UserRole.allCases),
        model("mistral.mistral-large-2402-v1:0", "Mistral Large (24.02)", .mistral, 32_000, 8_192, 4, 12, [.admin, .supervisor]),
    ]

    /// The model with `id`, or nil if the service does not offer it.
    public static func model(id: String) -> ModelInfo? {
        models.first { $0.id == id }
    }

    /// The models `role` may use.
    public static func models(for role: UserRole) -> [ModelInfo] {
        models.filter { $0.roles.contains(role) }
    }

    private static func model(
        _ id: String, _ name: String, _ family: ModelFamily, _ context: Int, _ maxOutput: Int, _ input: Double, _ output: Double, _ roles: [UserRole]
    ) -> ModelInfo {
        ModelInfo(
            id: id, name: name, family: family, contextWindow: context, maxOutputTokens: maxOutput,
            inputCreditsPer1K: input, outputCreditsPer1K: output, roles: roles
        )
    }
}
