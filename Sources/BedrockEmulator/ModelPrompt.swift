import ChatCore

/// What the emulator takes from an InvokeModel body: the text that seeds the reply and holds the fault markers,
/// the input token count, and the largest reply the caller allows.
struct ModelPrompt: Sendable, Equatable {
    /// For Claude and Nova the text of the last `user` message (its text blocks joined by `\n`);
    /// for Titan, Llama and Mistral the whole prompt string.
    var seedText: String
    /// The number of whitespace-separated words of the whole prompt: for Claude and Nova the system prompt plus
    /// the text of every message, for the others the prompt string.
    var inputTokens: Int
    /// The request's max tokens, or the family's default when the family allows leaving it out.
    var maxTokens: Int
    /// The sampling settings the request carried, as `name=value` words (Converse: `temperature`, `topP`,
    /// `stop`), for `[[echo-settings]]`.
    var settings: [String] = []

    /// The prompt of a body sent to `model`, or the 400 ValidationException Bedrock would answer with.
    init(body: [UInt8], model: ModelInfo) throws(ServiceError) {
        guard let document = JSONValue.parse(body) else {
            throw .validation("Malformed input request, please reformat your input and try again.")
        }
        let root = SchemaNode(document: document)
        try root.members()
        switch model.family {
        case .anthropicClaude: self = try Self.claude(root, model: model)
        case .amazonNova: self = try Self.nova(root, model: model)
        case .amazonTitan: self = try Self.titan(root, model: model)
        case .metaLlama3: self = try Self.llama3(root, model: model)
        case .mistral: self = try Self.mistral(root, model: model)
        }
    }

    /// A prompt from its parts.
    init(seedText: String, inputTokens: Int, maxTokens: Int) {
        self.seedText = seedText
        self.inputTokens = inputTokens
        self.maxTokens = maxTokens
    }

    /// The number of whitespace-separated words in `text`.
    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: \.isWhitespace).count
    }

    /// The max-tokens field at `node` (or `defaultValue`, capped by the model, when absent), checked against
    /// 1...the model's `maxOutputTokens`.
    static func maxTokens(_ node: SchemaNode?, default defaultValue: Int, model: ModelInfo) throws(ServiceError) -> Int {
        guard let node else { return min(defaultValue, model.maxOutputTokens) }
        return try node.integer(in: 1...model.maxOutputTokens)
    }
}

// MARK: - Prompt-string families

extension ModelPrompt {
    /// Amazon Titan Text: `{inputText, textGenerationConfig:{maxTokenCount, temperature, topP, stopSequences}}`.
    static func titan(_ root: SchemaNode, model: ModelInfo) throws(ServiceError) -> ModelPrompt {
        try root.permitOnly(["inputText", "textGenerationConfig"])
        let text = try root.required("inputText").string()
        var maxTokenCount: SchemaNode?
        if let config = try root.optional("textGenerationConfig") {
            try config.permitOnly(["maxTokenCount", "temperature", "topP", "stopSequences"])
            maxTokenCount = try config.optional("maxTokenCount")
            try config.optional("temperature")?.number()
            try config.optional("topP")?.number()
            // Titan takes only `|` runs and `User:` as stop sequences.
            for stop in try config.optional("stopSequences")?.strings() ?? [] where stop != "User:" && (stop.isEmpty || !stop.allSatisfy({ $0 == "|" })) {
                throw .malformedInput("#/textGenerationConfig/stopSequences: string [\(stop)] does not match pattern ^(\\|+|User:)$")
            }
        }
        let limit = try maxTokens(maxTokenCount, default: 512, model: model)
        return ModelPrompt(seedText: text, inputTokens: wordCount(text), maxTokens: limit)
    }

    /// Meta Llama 3: `{prompt, max_gen_len, temperature, top_p}`, the prompt in Llama 3's chat template.
    static func llama3(_ root: SchemaNode, model: ModelInfo) throws(ServiceError) -> ModelPrompt {
        try root.permitOnly(["prompt", "max_gen_len", "temperature", "top_p"])
        let text = try root.required("prompt").string()
        try root.optional("temperature")?.number()
        try root.optional("top_p")?.number()
        let limit = try maxTokens(root.optional("max_gen_len"), default: 512, model: model)
        return ModelPrompt(seedText: text, inputTokens: wordCount(text), maxTokens: limit)
    }

    /// Mistral: `{prompt:"<s>[INST] ... [/INST]", max_tokens, stop, temperature, top_p, top_k}`.
    static func mistral(_ root: SchemaNode, model: ModelInfo) throws(ServiceError) -> ModelPrompt {
        try root.permitOnly(["prompt", "max_tokens", "stop", "temperature", "top_p", "top_k"])
        let text = try root.required("prompt").string()
        try root.optional("stop")?.strings()
        try root.optional("temperature")?.number()
        try root.optional("top_p")?.number()
        try root.optional("top_k")?.integer()
        let limit = try maxTokens(root.optional("max_tokens"), default: 512, model: model)
        return ModelPrompt(seedText: text, inputTokens: wordCount(text), maxTokens: limit)
    }
}
