import ChatCore

/// The Converse API's request, the same for every model: `{messages:[{role, content:[{text}]}], system?:[{text}],
/// inferenceConfig?:{maxTokens, temperature, topP, stopSequences}, additionalModelRequestFields?, ...}` (botocore's
/// `ConverseRequest`; the model id is in the path). The seed text is the last user message's, as for Claude and
/// Nova, so a Converse call and an InvokeModel call with the same conversation get the same reply.
extension ModelPrompt {
    /// The request members Converse takes besides the path's model id.
    private static let converseMembers: Set<String> = [
        "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
        "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
    ]

    /// A Converse or ConverseStream body for `model`, or the ValidationException Bedrock would answer with.
    init(converseBody body: [UInt8], model: ModelInfo) throws(ServiceError) {
        guard let document = JSONValue.parse(body) else {
            throw .validation("Malformed input request, please reformat your input and try again.")
        }
        let root = SchemaNode(document: document)
        try root.members()
        try root.permitOnly(Self.converseMembers)

        var maxTokensNode: SchemaNode?
        var settings: [String] = []
        if let config = try root.optional("inferenceConfig") {
            try config.permitOnly(["maxTokens", "temperature", "topP", "stopSequences"])
            maxTokensNode = try config.optional("maxTokens")
            if let node = try config.optional("temperature") {
                let temperature = try node.number()
                guard (0...1).contains(temperature) else { throw .validation("The value at inferenceConfig.temperature must be between 0 and 1.") }
                settings.append("temperature=\(temperature)")
            }
            if let node = try config.optional("topP") {
                let topP = try node.number()
                guard (0...1).contains(topP) else { throw .validation("The value at inferenceConfig.topP must be between 0 and 1.") }
                settings.append("topP=\(topP)")
            }
            let stops = try config.optional("stopSequences")?.strings() ?? []
            guard stops.allSatisfy({ !$0.isEmpty }) else { throw .validation("The value at inferenceConfig.stopSequences must not be empty strings.") }
            settings += stops.map { "stop=\($0)" }
        }
        if let node = maxTokensNode, try node.integer(in: 1...Int.max) > model.maxOutputTokens {
            throw .validation(
                "The maximum tokens you requested exceeds the model limit of \(model.maxOutputTokens). Try again with a maximum "
                    + "tokens value that is lower than \(model.maxOutputTokens)."
            )
        }
        let limit = try Self.maxTokens(maxTokensNode, default: model.maxOutputTokens, model: model)

        var texts: [String] = []
        if let system = try root.optional("system") {
            // Converse takes no system prompt for Titan Text, Mistral 7B Instruct or Mixtral (AWS's table of
            // Converse features by model).
            let instructOnly = model.family == .mistral && ["mistral-7b", "mixtral"].contains { (model.bedrockModelID ?? model.id).contains($0) }
            guard model.family != .amazonTitan, !instructOnly else {
                throw .validation("This model doesn't support system messages.")
            }
            for block in try system.array() {
                let text = try block.required("text").string()
                guard !text.isEmpty else { throw .validation("The text field in the system content block is empty.") }
                texts.append(text)
                // For [[echo-settings]]: the system prompt's words joined by `_`, one word of the reply.
                settings.append("system=" + text.split(whereSeparator: \.isWhitespace).joined(separator: "_"))
            }
        }
        var lastUserText: String?
        var previousRole: String?
        for (index, message) in try root.required("messages").array(minimumCount: 1).enumerated() {
            try message.permitOnly(["role", "content"])
            let role = try message.required("role")
            let roleName = try role.string()
            guard roleName == "user" || roleName == "assistant" else {
                throw .malformedInput("\(role.path): \(roleName) is not a valid enum value")
            }
            guard index > 0 || roleName == "user" else { throw .validation("A conversation must start with a user message. Try again with a conversation that starts with a user message.") }
            guard roleName != previousRole else {
                throw .validation("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
            }
            previousRole = roleName
            var blockTexts: [String] = []
            for (blockIndex, block) in try message.required("content").array(minimumCount: 1).enumerated() {
                if let node = try block.optional("text") {
                    let text = try node.string()
                    guard !text.allSatisfy(\.isWhitespace) else {
                        throw .validation(
                            "The text field in the ContentBlock object at messages.\(index).content.\(blockIndex) is blank. Add text to the text field, and try again."
                        )
                    }
                    blockTexts.append(text)
                }
            }
            let text = blockTexts.joined(separator: "\n")
            texts.append(text)
            if roleName == "user" { lastUserText = text }
        }
        self.init(seedText: lastUserText ?? "", inputTokens: texts.reduce(0) { $0 + Self.wordCount($1) }, maxTokens: limit)
        self.settings = settings
    }
}
