/// The Bedrock model families the service speaks; each has its own request and response bodies.
public enum ModelFamily: String, Codable, Sendable, CaseIterable {
    case anthropicClaude = "anthropic"
    case amazonNova = "amazon-nova"
    case amazonTitan = "amazon-titan"
    case metaLlama3 = "meta-llama3"
    case mistral = "mistral"

    /// The API a model of the family is called through unless its catalog entry says otherwise: Converse for the
    /// families whose every model takes a system prompt there; InvokeModel for Titan Text and Mistral's 7B and
    /// Mixtral, whose Converse refuses system prompts.
    public var defaultAPI: BedrockAPI {
        switch self {
        case .anthropicClaude, .amazonNova, .metaLlama3: .converse
        case .amazonTitan, .mistral: .invokeModel
        }
    }
}

/// The two ways to call a model on Bedrock Runtime.
public enum BedrockAPI: String, Codable, Sendable, Equatable, CaseIterable {
    /// `InvokeModel` / `InvokeModelWithResponseStream`, with the model family's own bodies.
    case invokeModel
    /// `Converse` / `ConverseStream`, one request shape for every model.
    case converse
}

/// What the recommendation weighs about a model: what it is good at and three ratings from 1 to 5.
public struct ModelTraits: Codable, Sendable, Equatable {
    /// Words of tasks the model is good at (`coding`, `reasoning`, `long documents`…), matched against a task.
    public var strengths: [String]
    /// 5 is the fastest to answer.
    public var speed: Int
    /// 5 is the most capable.
    public var quality: Int
    /// 5 is the most expensive.
    public var cost: Int

    /// Creates traits.
    public init(strengths: [String] = [], speed: Int = 3, quality: Int = 3, cost: Int = 3) {
        self.strengths = strengths
        self.speed = speed
        self.quality = quality
        self.cost = cost
    }
}

/// One model the service offers, with what billing, context trimming, the Bedrock call and the recommendation need.
public struct ModelInfo: Sendable, Equatable {
    /// The id users name, e.g. `anthropic.claude-3-sonnet-20240229-v1:0`: a Bedrock model id, or any unique name
    /// for an entry that reaches a model another way (`bedrockModelId`, `region`).
    public var id: String
    /// The name shown to users.
    public var name: String
    /// Whose request and response bodies the model speaks.
    public var family: ModelFamily
    /// Tokens of prompt plus reply the model accepts.
    public var contextWindow: Int
    /// The largest reply the model gives.
    public var maxOutputTokens: Int
    /// Credits per 1,000 input tokens.
    public var inputCreditsPer1K: Double
    /// Credits per 1,000 output tokens.
    public var outputCreditsPer1K: Double
    /// Roles allowed to use the model.
    public var roles: [UserRole]
    /// Which Bedrock Runtime API the worker calls the model through.
    public var api: BedrockAPI
    /// What is sent to Bedrock when it is not `id`: a model id, an inference profile id or an ARN.
    public var bedrockModelID: String?
    /// Cross-region inference profiles by geography (`us`, `eu`, `apac`, `global`…), e.g.
    /// `us` → `us.anthropic.claude-sonnet-4-20250514-v1:0`.
    public var inferenceProfiles: [String: String]
    /// Bedrock serves the model on demand only through an inference profile, never by its plain id.
    public var requiresInferenceProfile: Bool
    /// The region whose endpoint is called (nil: the worker's own, `AWS_REGION`).
    public var region: String?
    /// Catalog ids tried in order when this model is throttled or not ready before its first chunk.
    public var fallbacks: [String]
    /// Whether users see and may pick the model; an unlisted entry serves only as someone's fallback.
    public var listed: Bool
    /// What the recommendation weighs.
    public var traits: ModelTraits

    /// Creates a model entry; the Bedrock API defaults to the family's.
    public init(
        id: String, name: String, family: ModelFamily, contextWindow: Int, maxOutputTokens: Int, inputCreditsPer1K: Double,
        outputCreditsPer1K: Double, roles: [UserRole] = UserRole.allCases, api: BedrockAPI? = nil, bedrockModelID: String? = nil,
        inferenceProfiles: [String: String] = [:], requiresInferenceProfile: Bool = false, region: String? = nil, fallbacks: [String] = [],
        listed: Bool = true, traits: ModelTraits = ModelTraits()
    ) {
        self.id = id
        self.name = name
        self.family = family
        self.contextWindow = contextWindow
        self.maxOutputTokens = maxOutputTokens
        self.inputCreditsPer1K = inputCreditsPer1K
        self.outputCreditsPer1K = outputCreditsPer1K
        self.roles = roles
        self.api = api ?? family.defaultAPI
        self.bedrockModelID = bedrockModelID
        self.inferenceProfiles = inferenceProfiles
        self.requiresInferenceProfile = requiresInferenceProfile
        self.region = region
        self.fallbacks = fallbacks
        self.listed = listed
        self.traits = traits
    }

    /// The id a call to Bedrock in `region` names: `bedrockModelID` when set; else, for a model served only through
    /// an inference profile, the profile of the region's geography (`us-east-1` → `us`, `eu-west-1` → `eu`,
    /// `ap-…` → `apac`), else the `global` one; else `id`.
    public func invocationID(inRegion callerRegion: String) -> String {
        if let bedrockModelID { return bedrockModelID }
        guard requiresInferenceProfile else { return id }
        let region = self.region ?? callerRegion
        let geography = region.hasPrefix("us-gov-") ? "us-gov" : region.hasPrefix("ap-") ? "apac" : String(region.prefix { $0 != "-" })
        return inferenceProfiles[geography] ?? inferenceProfiles["global"] ?? id
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

/// The models a process offers: the built-in list (`ModelCatalog.builtIn`), or one read from `MODEL_CATALOG_PATH`
/// at start. Checked when made: a catalog that exists is consistent (ids unique, fallbacks known, the default
/// listed). An id not in it is refused with 400 `Invalid model ID`.
public struct ModelCatalog: Sendable, Equatable {
    /// Every entry, in the order shown to users (unlisted ones included).
    public let models: [ModelInfo]
    /// The model used when a request names none.
    public let defaultModelID: String
    private let index: [String: Int]

    /// A catalog of `models`; throws a `CatalogError` naming the first entry that is wrong.
    public init(models: [ModelInfo], defaultModelID: String) throws(CatalogError) {
        var index: [String: Int] = [:]
        for (position, model) in models.enumerated() {
            let name = "model \(position + 1) (\(model.id.isEmpty ? "no id" : "\"\(model.id)\""))"
            func fail(_ problem: String) -> CatalogError { CatalogError("\(name): \(problem)") }
            guard !model.id.isEmpty, model.id.count <= 200, !model.id.contains(where: \.isWhitespace) else {
                throw fail("id must be 1 to 200 characters without spaces")
            }
            guard index[model.id] == nil else { throw fail("the id appears twice") }
            guard !model.name.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("name must not be empty") }
            guard (1...Self.largestWindow).contains(model.contextWindow) else { throw fail("contextWindow must be a whole number from 1 to \(Self.largestWindow)") }
            guard model.maxOutputTokens > 0, model.maxOutputTokens <= model.contextWindow else {
                throw fail("maxOutputTokens must be positive and at most contextWindow (\(model.contextWindow))")
            }
            for (field, price) in [("inputCreditsPer1K", model.inputCreditsPer1K), ("outputCreditsPer1K", model.outputCreditsPer1K)] {
                guard price.isFinite, price >= 0, price <= 1_000_000 else { throw fail("\(field) must be a number from 0 to 1000000") }
            }
            guard !model.roles.isEmpty else { throw fail("roles must name at least one role") }
            for (field, rating) in [("speed", model.traits.speed), ("quality", model.traits.quality), ("cost", model.traits.cost)] {
                guard (1...5).contains(rating) else { throw fail("recommendation.\(field) must be a whole number from 1 to 5") }
            }
            if let region = model.region, !Self.isRegion(region) { throw fail("region must look like us-west-2 (got \(region))") }
            if model.requiresInferenceProfile, model.bedrockModelID == nil, model.inferenceProfiles.isEmpty {
                throw fail("requiresInferenceProfile needs inferenceProfiles or bedrockModelId")
            }
            if let bedrock = model.bedrockModelID, !Self.isIdentifier(bedrock) {
                throw fail("bedrockModelId must be 1 to 2048 characters without spaces")
            }
            if let (geography, profile) = model.inferenceProfiles.first(where: { !Self.isIdentifier($0.key) || !Self.isIdentifier($0.value) }) {
                throw fail("inferenceProfiles.\(geography) must be a profile id without spaces (got \"\(profile)\")")
            }
            guard model.fallbacks.count <= Self.longestChain, Set(model.fallbacks).count == model.fallbacks.count else {
                throw fail("fallbacks must name at most \(Self.longestChain) models, each once")
            }
            index[model.id] = position
        }
        for model in models {
            for fallback in model.fallbacks {
                guard fallback != model.id else { throw CatalogError("model \"\(model.id)\": a model cannot be its own fallback") }
                guard let position = index[fallback] else { throw CatalogError("model \"\(model.id)\": fallback \"\(fallback)\" is not in the catalog") }
                // A fallback answers whoever may use the model: it must be open to every one of them.
                let closed = model.roles.filter { !models[position].roles.contains($0) }
                guard closed.isEmpty else {
                    throw CatalogError(
                        "model \"\(model.id)\": fallback \"\(fallback)\" is not open to \(closed.map(\.rawValue).joined(separator: ", ")), who may use the model"
                    )
                }
            }
        }
        guard let position = index[defaultModelID] else { throw CatalogError("the default model \"\(defaultModelID)\" is not in the catalog") }
        guard models[position].listed, models[position].roles.count == UserRole.allCases.count else {
            throw CatalogError("the default model \"\(defaultModelID)\" must be listed and open to every role")
        }
        self.models = models
        self.defaultModelID = defaultModelID
        self.index = index
    }

    /// The entry with `id` (listed or not), or nil if the catalog has none.
    public func model(id: String) -> ModelInfo? {
        index[id].map { models[$0] }
    }

    /// The listed models `role` may use, in catalog order.
    public func models(for role: UserRole) -> [ModelInfo] {
        models.filter { $0.listed && $0.roles.contains(role) }
    }

    /// The model users may pick by `id`: listed and open to `role`; nil otherwise.
    public func selectable(id: String, role: UserRole) -> ModelInfo? {
        model(id: id).flatMap { $0.listed && $0.roles.contains(role) ? $0 : nil }
    }

    /// The models tried for a reply asked of `model`, in order: itself, then its fallbacks (theirs are not followed).
    public func chain(for model: ModelInfo) -> [ModelInfo] {
        [model] + model.fallbacks.compactMap { self.model(id: $0) }
    }

    /// The largest context window an entry may have, in tokens.
    public static let largestWindow = 10_000_000
    /// The most fallbacks a model may have.
    public static let longestChain = 4

    /// The model of `model`'s chain with the highest output price (then input price): a reservation, which the
    /// accounting service prices at the output rate, made at its price covers whichever of the chain answers.
    public func dearest(inChainOf model: ModelInfo) -> ModelInfo {
        chain(for: model).max { ($0.outputCreditsPer1K, $0.inputCreditsPer1K) < ($1.outputCreditsPer1K, $1.inputCreditsPer1K) } ?? model
    }

    /// Whether `text` can be an id sent to Bedrock: 1 to 2,048 characters, no whitespace.
    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 2_048 && !text.contains(where: \.isWhitespace)
    }

    /// The largest context window of the catalog.
    public var largestContextWindow: Int {
        models.map(\.contextWindow).max() ?? 200_000
    }

    /// Whether `text` looks like an AWS region (`us-east-1`).
    static func isRegion(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        return parts.count >= 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) } }
    }
}

/// A model catalog that cannot be used, with one line saying which entry and why.
public struct CatalogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line: which entry, and what is wrong with it.
    public var description: String

    /// An error with `description`.
    public init(_ description: String) {
        self.description = description
    }
}
