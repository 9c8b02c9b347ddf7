import Bedrock
import ChatCore

/// What a generation needs from a model provider: a streamed reply, or a whole one. `BedrockClient` is the
/// real one; tests can stand in their own.
protocol TextGenerator: Sendable {
    /// The reply's pieces as they come.
    func stream(model: ModelInfo, request: GenerationRequest) async throws -> any AsyncSequence<ChunkDelta, any Error>
    /// The whole reply at once.
    func whole(model: ModelInfo, request: GenerationRequest) async throws -> GenerationResult
}

extension BedrockClient: TextGenerator {
    func stream(model: ModelInfo, request: GenerationRequest) async throws -> any AsyncSequence<ChunkDelta, any Error> {
        try await streamGeneration(model: model, request: request)
    }

    func whole(model: ModelInfo, request: GenerationRequest) async throws -> GenerationResult {
        try await generate(model: model, request: request)
    }
}
