import ChatCore

/// The message-based families: Anthropic Claude (Messages API) and Amazon Nova (messages-v1).
extension ModelPrompt {
    /// Claude's top-level members on Bedrock; anything else (`model`, `stream`, ...) is refused as AWS does.
    private static let claudeMembers: Set<String> = [
        "anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
        "stop_sequences", "tools", "tool_choice", "thinking", "metadata",
    ]

    /// Anthropic Claude: `{anthropic_version, max_tokens, messages, system?, temperature?, top_p?, top_k?, stop_sequences?}`.
    static func claude(_ root: SchemaNode, model: ModelInfo) throws(ServiceError) -> ModelPrompt {
        try root.permitOnly(claudeMembers)
        let version = try root.required("anthropic_version")
        guard try version.string() == "bedrock-2023-05-31" else {
            throw .malformedInput("\(version.path): \(try version.string()) is not a valid enum value")
        }
        let maxTokensNode = try root.required("max_tokens")
        let limit = try maxTokensNode.integer(in: 1...Int.max)
        guard limit <= model.maxOutputTokens else {
            throw .validation(
                "max_tokens: \(limit) > \(model.maxOutputTokens), which is the maximum allowed number of output tokens for "
                    + ReplyBodies.anthropicModelName(model.id)
            )
        }
        try root.optional("temperature")?.number()
        try root.optional("top_p")?.number()
        try root.optional("top_k")?.integer()
        try root.optional("stop_sequences")?.strings()

        var texts: [String] = []
        if let system = try root.optional("system") {
            texts.append(try claudeText(system))
        }
        let messages = try root.required("messages").array(minimumCount: 1)
        var lastUserText: String?
        for (index, message) in messages.enumerated() {
            let role = try message.required("role")
            let roleName = try role.string()
            guard roleName == "user" || roleName == "assistant" else {
                throw .malformedInput("\(role.path): \(roleName) is not a valid enum value")
            }
            guard index > 0 || roleName == "user" else {
                throw .validation("messages: first message must use the \"user\" role")
            }
            let text = try claudeText(message.required("content"))
            texts.append(text)
            if roleName == "user" { lastUserText = text }
        }
        return ModelPrompt(
            seedText: lastUserText ?? "", inputTokens: texts.reduce(0) { $0 + wordCount($1) }, maxTokens: limit
        )
    }

    /// The text of a Claude `content` or `system`: a string, or the `text` of its text blocks joined by `\n`.
    private static func claudeText(_ node: SchemaNode) throws(ServiceError) -> String {
        if node.isString { return try node.string() }
        var texts: [String] = []
        for block in try node.array() {
            if try block.required("type").string() == "text" {
                texts.append(try block.required("text").string())
            }
        }
        return texts.joined(separator: "\n")
    }

    /// Amazon Nova: `{schemaVersion?, system?:[{text}], messages:[{role, content:[{text}]}], inferenceConfig?:{maxTokens, ...}}`.
    static func nova(_ root: SchemaNode, model: ModelInfo) throws(ServiceError) -> ModelPrompt {
        try root.permitOnly(["schemaVersion", "system", "messages", "inferenceConfig", "toolConfig"])
        if let version = try root.optional("schemaVersion"), try version.string() != "messages-v1" {
            throw .malformedInput("\(version.path): \(try version.string()) is not a valid enum value")
        }
        var maxTokensNode: SchemaNode?
        if let config = try root.optional("inferenceConfig") {
            try config.permitOnly(["maxTokens", "max_new_tokens", "temperature", "topP", "topK", "stopSequences"])
            maxTokensNode = try config.optional("maxTokens")
            if maxTokensNode == nil { maxTokensNode = try config.optional("max_new_tokens") }
            try config.optional("temperature")?.number()
            try config.optional("topP")?.number()
            try config.optional("topK")?.integer()
            try config.optional("stopSequences")?.strings()
        }
        let limit = try maxTokens(maxTokensNode, default: model.maxOutputTokens, model: model)

        var texts: [String] = []
        if let system = try root.optional("system") {
            for block in try system.array() {
                texts.append(try block.required("text").string())
            }
        }
        var lastUserText: String?
        for message in try root.required("messages").array(minimumCount: 1) {
            let role = try message.required("role")
            let roleName = try role.string()
            guard roleName == "user" || roleName == "assistant" else {
                throw .malformedInput("\(role.path): \(roleName) is not a valid enum value")
            }
            var blockTexts: [String] = []
            for block in try message.required("content").array(minimumCount: 1) {
                if let text = try block.optional("text") {
                    blockTexts.append(try text.string())
                }
            }
            let text = blockTexts.joined(separator: "\n")
            texts.append(text)
            if roleName == "user" { lastUserText = text }
        }
        return ModelPrompt(
            seedText: lastUserText ?? "", inputTokens: texts.reduce(0) { $0 + wordCount($1) }, maxTokens: limit
        )
    }
}
