import ChatCore
import Foundation

/// The Converse API, the same for every model (botocore's `ConverseRequest` and `ConverseResponse`): `messages`
/// of `{role, content:[{text}]}`, `system`, `inferenceConfig`; the answer's `output.message`, `stopReason` and
/// `usage`. ConverseStream's events come as `{"<event type>": <payload>}` (see `BedrockResponseStream`), the
/// shape of Nova's stream chunks. These are Nova's messages-v1 bodies without the schema version, so this adapter
/// speaks through `NovaAdapter`, reporting errors under the model's own family.
public struct ConverseAdapter: ModelAdapter {
    private let shape: NovaAdapter

    /// The adapter for a model of `family` called through Converse.
    public init(family: ModelFamily) {
        shape = NovaAdapter(family: family, schemaVersion: nil)
    }

    public var family: ModelFamily { shape.family }

    public func requestBody(for request: GenerationRequest) throws -> Data { try shape.requestBody(for: request) }

    public func parseResponse(_ body: Data) throws -> Completion { try shape.parseResponse(body) }

    public func parseChunk(_ chunk: Data) throws -> ChunkDelta { try shape.parseChunk(chunk) }
}
