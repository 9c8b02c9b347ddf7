import ChatCore
import Testing

@Suite("a message's sampling settings")
struct InferenceSettingsTests {
    static let haiku = ModelCatalog.builtIn.model(id: "anthropic.claude-3-haiku-20240307-v1:0")!

    @Test("out-of-range settings are 400 VALIDATION_ERROR naming the field; in-range ones pass", arguments: [
        (InferenceSettings(temperature: 1.5), "temperature"), (InferenceSettings(temperature: -0.1), "temperature"),
        (InferenceSettings(topP: 2), "topP"), (InferenceSettings(maxTokens: 0), "maxTokens"),
        (InferenceSettings(stopSequences: ["a", "b", "c", "d", "e"]), "stopSequences"), (InferenceSettings(stopSequences: [""]), "stopSequences"),
        (InferenceSettings(stopSequences: [String(repeating: "x", count: 101)]), "stopSequences"),
    ])
    func outOfRange(settings: InferenceSettings, field: String) throws {
        let error = try #require(throws: ChatError.self) { try settings.validate() }
        #expect(error.kind == .badRequest && error.code == "VALIDATION_ERROR")
        #expect(error.message.hasPrefix(field))
    }

    @Test("maxTokens is held against the smaller of the model's limit and the service's")
    func maxTokensAgainstTheModel() throws {
        let settings = InferenceSettings(temperature: 0, topP: 1, maxTokens: 2_000, stopSequences: ["END"])
        try settings.validate()
        try settings.validate(for: Self.haiku, serviceLimit: 4_096)
        let error = try #require(throws: ChatError.self) { try settings.validate(for: Self.haiku, serviceLimit: 1_024) }
        #expect(error.message == "maxTokens must be at most 1024 for Claude 3 Haiku")
        #expect(throws: ChatError.self) { try InferenceSettings(maxTokens: 4_097).validate(for: Self.haiku, serviceLimit: 100_000) }
        #expect(InferenceSettings().isEmpty && InferenceSettings(stopSequences: []).isEmpty && !settings.isEmpty)
    }

    @Test("Titan Text takes only `User:` or runs of `|` as stop sequences")
    func titanStopSequences() throws {
        let titan = try #require(ModelCatalog.builtIn.models.first { $0.family == .amazonTitan })
        try InferenceSettings(stopSequences: ["User:", "||"]).validate(for: titan, serviceLimit: 1_024)
        #expect(throws: ChatError.self) { try InferenceSettings(stopSequences: ["END"]).validate(for: titan, serviceLimit: 1_024) }
        try InferenceSettings(stopSequences: ["END"]).validate(for: Self.haiku, serviceLimit: 1_024)
    }
}
