extension ModelCatalog {
    /// The catalog compiled in: current text models of each family Bedrock serves, with their context windows and
    /// output limits on Bedrock, and the cross-region inference profiles of the models Bedrock serves on demand only
    /// through one (docs/models.md names the sources). Prices are credits per 1,000 tokens, one credit being one
    /// US dollar per million tokens of AWS's on-demand price in us-east-1. `MODEL_CATALOG_PATH` replaces or extends it.
    public static let builtIn: ModelCatalog = {
        do {
            return try ModelCatalog(models: BuiltInModels.all, defaultModelID: "anthropic.claude-3-haiku-20240307-v1:0")
        } catch {
            fatalError("the built-in model catalog is inconsistent: \(error)")
        }
    }()
}

/// The entries of `ModelCatalog.builtIn`.
enum BuiltInModels {
    static let everyone = UserRole.allCases
    static let staff: [UserRole] = [.admin, .supervisor]

    /// The three geographies' profiles of a model id (`us.`, `eu.`, `apac.`), or those named.
    static func profiles(_ id: String, _ geographies: [String] = ["us", "eu", "apac"]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: geographies.map { ($0, "\($0).\(id)") })
    }

    static func traits(_ strengths: [String], speed: Int, quality: Int, cost: Int) -> ModelTraits {
        ModelTraits(strengths: strengths, speed: speed, quality: quality, cost: cost)
    }

    static let all: [ModelInfo] = anthropic + nova + titan + llama + mistral

    static let anthropic: [ModelInfo] = [
        ModelInfo(
            id: "anthropic.claude-3-haiku-20240307-v1:0", name: "Claude 3 Haiku", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 4_096, inputCreditsPer1K: 0.25, outputCreditsPer1K: 1.25, inferenceProfiles: profiles("anthropic.claude-3-haiku-20240307-v1:0"),
            fallbacks: ["amazon.nova-lite-v1:0"], traits: traits(["chat", "classification", "extraction"], speed: 5, quality: 2, cost: 1)
        ),
        ModelInfo(
            id: "anthropic.claude-3-sonnet-20240229-v1:0", name: "Claude 3 Sonnet", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 4_096, inputCreditsPer1K: 3, outputCreditsPer1K: 15, inferenceProfiles: profiles("anthropic.claude-3-sonnet-20240229-v1:0", ["us", "eu"]),
            fallbacks: ["anthropic.claude-3-5-sonnet-20240620-v1:0"], traits: traits(["writing", "analysis"], speed: 3, quality: 3, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-3-5-haiku-20241022-v1:0", name: "Claude 3.5 Haiku", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 8_192, inputCreditsPer1K: 0.8, outputCreditsPer1K: 4, inferenceProfiles: profiles("anthropic.claude-3-5-haiku-20241022-v1:0", ["us"]),
            requiresInferenceProfile: true, fallbacks: ["anthropic.claude-3-haiku-20240307-v1:0"],
            traits: traits(["chat", "coding", "extraction"], speed: 5, quality: 3, cost: 2)
        ),
        ModelInfo(
            id: "anthropic.claude-3-5-sonnet-20240620-v1:0", name: "Claude 3.5 Sonnet", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 8_192, inputCreditsPer1K: 3, outputCreditsPer1K: 15, inferenceProfiles: profiles("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            requiresInferenceProfile: true, traits: traits(["coding", "writing", "analysis"], speed: 3, quality: 4, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-3-5-sonnet-20241022-v2:0", name: "Claude 3.5 Sonnet v2", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 8_192, inputCreditsPer1K: 3, outputCreditsPer1K: 15, inferenceProfiles: profiles("anthropic.claude-3-5-sonnet-20241022-v2:0"),
            requiresInferenceProfile: true, fallbacks: ["anthropic.claude-3-5-sonnet-20240620-v1:0"],
            traits: traits(["coding", "writing", "analysis"], speed: 3, quality: 4, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-3-7-sonnet-20250219-v1:0", name: "Claude 3.7 Sonnet", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 64_000, inputCreditsPer1K: 3, outputCreditsPer1K: 15, inferenceProfiles: profiles("anthropic.claude-3-7-sonnet-20250219-v1:0"),
            requiresInferenceProfile: true, fallbacks: ["anthropic.claude-3-5-sonnet-20241022-v2:0"],
            traits: traits(["coding", "reasoning", "analysis"], speed: 3, quality: 4, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-sonnet-4-20250514-v1:0", name: "Claude Sonnet 4", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 64_000, inputCreditsPer1K: 3, outputCreditsPer1K: 15, inferenceProfiles: profiles("anthropic.claude-sonnet-4-20250514-v1:0", ["us", "eu", "apac", "global"]),
            requiresInferenceProfile: true, fallbacks: ["anthropic.claude-3-7-sonnet-20250219-v1:0"],
            traits: traits(["coding", "reasoning", "agents", "analysis"], speed: 3, quality: 5, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-sonnet-4-5-20250929-v1:0", name: "Claude Sonnet 4.5", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 64_000, inputCreditsPer1K: 3.3, outputCreditsPer1K: 16.5,
            inferenceProfiles: profiles("anthropic.claude-sonnet-4-5-20250929-v1:0", ["us", "eu", "jp", "global"]), requiresInferenceProfile: true,
            fallbacks: ["anthropic.claude-sonnet-4-20250514-v1:0"], traits: traits(["coding", "reasoning", "agents", "analysis"], speed: 3, quality: 5, cost: 4)
        ),
        ModelInfo(
            id: "anthropic.claude-haiku-4-5-20251001-v1:0", name: "Claude Haiku 4.5", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 64_000, inputCreditsPer1K: 1.1, outputCreditsPer1K: 5.5,
            inferenceProfiles: profiles("anthropic.claude-haiku-4-5-20251001-v1:0", ["us", "eu", "global"]), requiresInferenceProfile: true,
            fallbacks: ["anthropic.claude-3-5-haiku-20241022-v1:0"], traits: traits(["chat", "coding", "agents"], speed: 5, quality: 4, cost: 2)
        ),
        ModelInfo(
            id: "anthropic.claude-3-opus-20240229-v1:0", name: "Claude 3 Opus", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 4_096, inputCreditsPer1K: 15, outputCreditsPer1K: 75, roles: staff,
            inferenceProfiles: profiles("anthropic.claude-3-opus-20240229-v1:0", ["us"]), traits: traits(["reasoning", "writing", "research"], speed: 1, quality: 4, cost: 5)
        ),
        ModelInfo(
            id: "anthropic.claude-opus-4-20250514-v1:0", name: "Claude Opus 4", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 32_000, inputCreditsPer1K: 15, outputCreditsPer1K: 75, roles: staff,
            inferenceProfiles: profiles("anthropic.claude-opus-4-20250514-v1:0", ["us"]), requiresInferenceProfile: true,
            traits: traits(["reasoning", "coding", "research", "agents"], speed: 1, quality: 5, cost: 5)
        ),
        ModelInfo(
            id: "anthropic.claude-opus-4-1-20250805-v1:0", name: "Claude Opus 4.1", family: .anthropicClaude, contextWindow: 200_000,
            maxOutputTokens: 32_000, inputCreditsPer1K: 15, outputCreditsPer1K: 75, roles: staff,
            inferenceProfiles: profiles("anthropic.claude-opus-4-1-20250805-v1:0", ["us"]), requiresInferenceProfile: true,
            fallbacks: ["anthropic.claude-opus-4-20250514-v1:0"], traits: traits(["reasoning", "coding", "research", "agents"], speed: 1, quality: 5, cost: 5)
        ),
    ]

    static let nova: [ModelInfo] = [
        ModelInfo(
            id: "amazon.nova-micro-v1:0", name: "Amazon Nova Micro", family: .amazonNova, contextWindow: 128_000, maxOutputTokens: 10_000,
            inputCreditsPer1K: 0.035, outputCreditsPer1K: 0.14, inferenceProfiles: profiles("amazon.nova-micro-v1:0"),
            fallbacks: ["amazon.nova-lite-v1:0"], traits: traits(["chat", "summaries", "classification"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "amazon.nova-lite-v1:0", name: "Amazon Nova Lite", family: .amazonNova, contextWindow: 300_000, maxOutputTokens: 10_000,
            inputCreditsPer1K: 0.06, outputCreditsPer1K: 0.24, inferenceProfiles: profiles("amazon.nova-lite-v1:0"),
            fallbacks: ["amazon.nova-micro-v1:0"], traits: traits(["chat", "summaries", "long documents"], speed: 5, quality: 2, cost: 1)
        ),
        ModelInfo(
            id: "amazon.nova-pro-v1:0", name: "Amazon Nova Pro", family: .amazonNova, contextWindow: 300_000, maxOutputTokens: 10_000,
            inputCreditsPer1K: 0.8, outputCreditsPer1K: 3.2, inferenceProfiles: profiles("amazon.nova-pro-v1:0"),
            fallbacks: ["amazon.nova-lite-v1:0"], traits: traits(["analysis", "long documents", "writing"], speed: 4, quality: 3, cost: 2)
        ),
        ModelInfo(
            id: "amazon.nova-premier-v1:0", name: "Amazon Nova Premier", family: .amazonNova, contextWindow: 1_000_000, maxOutputTokens: 25_000,
            inputCreditsPer1K: 2.5, outputCreditsPer1K: 12.5, inferenceProfiles: profiles("amazon.nova-premier-v1:0", ["us"]), requiresInferenceProfile: true,
            fallbacks: ["amazon.nova-pro-v1:0"], traits: traits(["reasoning", "long documents", "research"], speed: 2, quality: 4, cost: 4)
        ),
    ]

    static let titan: [ModelInfo] = [
        ModelInfo(
            id: "amazon.titan-text-express-v1", name: "Amazon Titan Text Express", family: .amazonTitan, contextWindow: 8_192, maxOutputTokens: 4_096,
            inputCreditsPer1K: 0.2, outputCreditsPer1K: 0.6, traits: traits(["summaries", "extraction"], speed: 4, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "amazon.titan-text-lite-v1", name: "Amazon Titan Text Lite", family: .amazonTitan, contextWindow: 4_096, maxOutputTokens: 4_096,
            inputCreditsPer1K: 0.15, outputCreditsPer1K: 0.2, traits: traits(["summaries"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "amazon.titan-text-premier-v1:0", name: "Amazon Titan Text Premier", family: .amazonTitan, contextWindow: 32_000, maxOutputTokens: 3_072,
            inputCreditsPer1K: 0.5, outputCreditsPer1K: 1.5, traits: traits(["summaries", "extraction", "chat"], speed: 4, quality: 2, cost: 2)
        ),
    ]

    static let llama: [ModelInfo] = [
        ModelInfo(
            id: "meta.llama3-8b-instruct-v1:0", name: "Llama 3 8B Instruct", family: .metaLlama3, contextWindow: 8_192, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.3, outputCreditsPer1K: 0.6, traits: traits(["chat"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "meta.llama3-70b-instruct-v1:0", name: "Llama 3 70B Instruct", family: .metaLlama3, contextWindow: 8_192, maxOutputTokens: 2_048,
            inputCreditsPer1K: 2.65, outputCreditsPer1K: 3.5, traits: traits(["chat", "writing"], speed: 3, quality: 3, cost: 3)
        ),
        ModelInfo(
            id: "meta.llama3-1-8b-instruct-v1:0", name: "Llama 3.1 8B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.22, outputCreditsPer1K: 0.22, inferenceProfiles: profiles("meta.llama3-1-8b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, traits: traits(["chat", "summaries"], speed: 5, quality: 2, cost: 1)
        ),
        ModelInfo(
            id: "meta.llama3-1-70b-instruct-v1:0", name: "Llama 3.1 70B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.72, outputCreditsPer1K: 0.72, inferenceProfiles: profiles("meta.llama3-1-70b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, traits: traits(["chat", "writing", "coding"], speed: 3, quality: 3, cost: 2)
        ),
        ModelInfo(
            id: "meta.llama3-1-405b-instruct-v1:0", name: "Llama 3.1 405B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 4_096,
            inputCreditsPer1K: 2.4, outputCreditsPer1K: 2.4, roles: staff, inferenceProfiles: profiles("meta.llama3-1-405b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, traits: traits(["reasoning", "writing", "coding"], speed: 2, quality: 4, cost: 3)
        ),
        ModelInfo(
            id: "meta.llama3-2-1b-instruct-v1:0", name: "Llama 3.2 1B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.1, outputCreditsPer1K: 0.1, inferenceProfiles: profiles("meta.llama3-2-1b-instruct-v1:0", ["us", "eu"]),
            requiresInferenceProfile: true, traits: traits(["chat", "classification"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "meta.llama3-2-3b-instruct-v1:0", name: "Llama 3.2 3B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.15, outputCreditsPer1K: 0.15, inferenceProfiles: profiles("meta.llama3-2-3b-instruct-v1:0", ["us", "eu"]),
            requiresInferenceProfile: true, traits: traits(["chat", "summaries"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "meta.llama3-3-70b-instruct-v1:0", name: "Llama 3.3 70B Instruct", family: .metaLlama3, contextWindow: 128_000, maxOutputTokens: 2_048,
            inputCreditsPer1K: 0.72, outputCreditsPer1K: 0.72, inferenceProfiles: profiles("meta.llama3-3-70b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, fallbacks: ["meta.llama3-1-70b-instruct-v1:0"],
            traits: traits(["chat", "writing", "coding"], speed: 3, quality: 3, cost: 2)
        ),
        ModelInfo(
            id: "meta.llama4-scout-17b-instruct-v1:0", name: "Llama 4 Scout 17B Instruct", family: .metaLlama3, contextWindow: 3_500_000,
            maxOutputTokens: 8_192, inputCreditsPer1K: 0.17, outputCreditsPer1K: 0.66, inferenceProfiles: profiles("meta.llama4-scout-17b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, traits: traits(["long documents", "summaries", "chat"], speed: 4, quality: 3, cost: 1)
        ),
        ModelInfo(
            id: "meta.llama4-maverick-17b-instruct-v1:0", name: "Llama 4 Maverick 17B Instruct", family: .metaLlama3, contextWindow: 1_000_000,
            maxOutputTokens: 8_192, inputCreditsPer1K: 0.24, outputCreditsPer1K: 0.97, inferenceProfiles: profiles("meta.llama4-maverick-17b-instruct-v1:0", ["us"]),
            requiresInferenceProfile: true, fallbacks: ["meta.llama4-scout-17b-instruct-v1:0"],
            traits: traits(["coding", "long documents", "writing"], speed: 4, quality: 3, cost: 2)
        ),
    ]

    static let mistral: [ModelInfo] = [
        ModelInfo(
            id: "mistral.mistral-7b-instruct-v0:2", name: "Mistral 7B Instruct", family: .mistral, contextWindow: 32_000, maxOutputTokens: 8_192,
            inputCreditsPer1K: 0.15, outputCreditsPer1K: 0.2, traits: traits(["chat", "summaries"], speed: 5, quality: 1, cost: 1)
        ),
        ModelInfo(
            id: "mistral.mixtral-8x7b-instruct-v0:1", name: "Mixtral 8x7B Instruct", family: .mistral, contextWindow: 32_000, maxOutputTokens: 4_096,
            inputCreditsPer1K: 0.45, outputCreditsPer1K: 0.7, traits: traits(["chat", "coding"], speed: 4, quality: 2, cost: 1)
        ),
        ModelInfo(
            id: "mistral.mistral-small-2402-v1:0", name: "Mistral Small (24.02)", family: .mistral, contextWindow: 32_000, maxOutputTokens: 4_096,
            inputCreditsPer1K: 1, outputCreditsPer1K: 3, api: .converse, traits: traits(["chat", "classification"], speed: 4, quality: 2, cost: 2)
        ),
        ModelInfo(
            id: "mistral.mistral-large-2402-v1:0", name: "Mistral Large (24.02)", family: .mistral, contextWindow: 32_000, maxOutputTokens: 4_096,
            inputCreditsPer1K: 4, outputCreditsPer1K: 12, roles: staff, traits: traits(["reasoning", "coding"], speed: 2, quality: 3, cost: 4)
        ),
        ModelInfo(
            id: "mistral.mistral-large-2407-v1:0", name: "Mistral Large 2 (24.07)", family: .mistral, contextWindow: 128_000, maxOutputTokens: 8_191,
            inputCreditsPer1K: 2, outputCreditsPer1K: 6, api: .converse,
            traits: traits(["coding", "reasoning", "multilingual"], speed: 3, quality: 4, cost: 3)
        ),
        ModelInfo(
            id: "mistral.pixtral-large-2502-v1:0", name: "Pixtral Large (25.02)", family: .mistral, contextWindow: 128_000, maxOutputTokens: 16_384,
            inputCreditsPer1K: 2, outputCreditsPer1K: 6, api: .converse, inferenceProfiles: profiles("mistral.pixtral-large-2502-v1:0", ["us", "eu"]),
            requiresInferenceProfile: true, traits: traits(["reasoning", "analysis", "multilingual"], speed: 3, quality: 4, cost: 3)
        ),
    ]
}
