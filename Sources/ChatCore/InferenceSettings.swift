/// The sampling settings a message may carry (`temperature`, `topP`, `maxTokens`, `stopSequences`), passed to
/// the model through either API; absent ones take the model's defaults. Checked when the request arrives
/// (400 naming the field), and `maxTokens` against the model that will answer.
public struct InferenceSettings: Codable, Sendable, Equatable {
    public var temperature: Double?
    public var topP: Double?
    /// The most tokens the reply may have (at most the model's `maxOutputTokens`); the reservation is sized by it.
    public var maxTokens: Int?
    public var stopSequences: [String]?

    /// The most stop sequences, and the longest one, a message may carry.
    public static let maxStopSequences = 4
    public static let maxStopSequenceCharacters = 100

    /// Creates settings.
    public init(temperature: Double? = nil, topP: Double? = nil, maxTokens: Int? = nil, stopSequences: [String]? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.stopSequences = stopSequences
    }

    /// Whether no setting is given.
    public var isEmpty: Bool { temperature == nil && topP == nil && maxTokens == nil && (stopSequences ?? []).isEmpty }

    /// Throws 400 `VALIDATION_ERROR` naming the first setting out of range (checks that need no model).
    public func validate() throws {
        if let temperature, !(0...1).contains(temperature) {
            throw Self.invalid("temperature must be between 0 and 1")
        }
        if let topP, !(0...1).contains(topP) {
            throw Self.invalid("topP must be between 0 and 1")
        }
        if let maxTokens, maxTokens < 1 {
            throw Self.invalid("maxTokens must be at least 1")
        }
        if let stopSequences {
            guard stopSequences.count <= Self.maxStopSequences else {
                throw Self.invalid("stopSequences may have at most \(Self.maxStopSequences) entries")
            }
            // Counted in Unicode scalars (as the OpenAPI document's maxLength is), so combining marks count too.
            for sequence in stopSequences where sequence.isEmpty || sequence.unicodeScalars.count > Self.maxStopSequenceCharacters {
                throw Self.invalid("stopSequences entries must have 1 to \(Self.maxStopSequenceCharacters) characters each")
            }
        }
    }

    /// Throws 400 `VALIDATION_ERROR` when `maxTokens` exceeds what `model` can write, or the service's longest
    /// reply (`GENERATION_MAX_TOKENS`).
    public func validate(for model: ModelInfo, serviceLimit: Int) throws {
        let limit = min(model.maxOutputTokens, serviceLimit)
        if let maxTokens, maxTokens > limit {
            throw Self.invalid("maxTokens must be at most \(limit) for \(model.name)")
        }
        // Titan Text takes only runs of `|` or `User:` as stop sequences; Bedrock refuses anything else.
        if model.family == .amazonTitan, let stopSequences,
            !stopSequences.allSatisfy({ $0 == "User:" || (!$0.isEmpty && $0.allSatisfy { $0 == "|" }) })
        {
            throw Self.invalid("stopSequences for \(model.name) may only be \"User:\" or a run of \"|\"")
        }
    }

    private static func invalid(_ message: String) -> ChatError {
        ChatError(.badRequest, code: "VALIDATION_ERROR", message: message)
    }
}
