import Foundation

/// Everything a run needs to know, from flags first, then the environment, then defaults.
struct BenchSettings: Sendable {
    /// chat-api's base URL (`CHAT_URL`).
    var chatURL: String
    /// The accounting stand-in, where credits are allocated up front (`ACCOUNTING_URL`).
    var accountingURL: String
    /// The auth stand-in; when set, tokens come from its login instead of being signed here (`AUTH_URL`).
    var authURL: String?
    /// Signs tokens when there is no auth stand-in (`JWT_ACCESS_SECRET`).
    var jwtSecret: String?
    /// The Bedrock endpoint the floor streams from (`BEDROCK_ENDPOINT`).
    var bedrockEndpoint: String
    /// The emulator's credentials (`EMULATOR_ACCESS_KEY_ID`, `EMULATOR_SECRET_ACCESS_KEY`).
    var accessKeyID: String
    var secretAccessKey: String
    /// The LiteLLM proxy's base URL, model name and master key (`LITELLM_URL`, `LITELLM_MODEL`, `LITELLM_MASTER_KEY`).
    var liteLLMURL: String
    var liteLLMModel: String
    var liteLLMKey: String?
    /// The Bedrock model every target asks for.
    var modelID: String
    /// Words per reply, and milliseconds between chunks (the emulator's `[[tokens:N]]` and `[[tps:N]]`).
    var replyTokens: Int
    var paceMilliseconds: Int
    /// `max_tokens` sent by the floor and LiteLLM (chat-api has its own `GENERATION_MAX_TOKENS`).
    var maxTokens: Int
    /// How long one request may take in all.
    var requestTimeout: Duration

    /// The emulator's pace: chunks per second, 0 for as fast as it can.
    var tokensPerSecond: Int {
        paceMilliseconds <= 0 ? 0 : max(1, Int((1_000 / Double(paceMilliseconds)).rounded()))
    }

    /// The prompt of one request: unique per user and message (so no two replies share a seed) with the markers.
    func prompt(user: Int, message: Int, step: String) -> String {
        "bench \(step) user \(user) message \(message) [[tokens:\(replyTokens)]] [[tps:\(tokensPerSecond)]]"
    }

    /// Reads a value from the environment, treating an empty one as unset.
    static func environment(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}
