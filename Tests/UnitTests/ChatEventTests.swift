import ChatCore
import Foundation
import Testing

@Suite("Typed events: one Codable shape shared by worker and API")
struct ChatEventTests {
    @Test("a chunk written by hand is the JSON the encoder writes, for text that needs escaping", arguments: [
        "plain", "", "quote \" and backslash \\", "line\nbreak\r\ttab", "control \u{01}\u{1f} bell \u{07}", "ünïcödé 🚀 漢字", "slash / stays", "\u{0C}\u{08}",
    ])
    func chunkByHand(text: String) throws {
        let event = ChatEvent.chunk(ChunkEvent(content: text, index: 42))
        let byHand = try event.encoded()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(byHand == String(decoding: try encoder.encode(ChunkEvent(content: text, index: 42)), as: UTF8.self))
        #expect(try ChatEvent.decode(type: .chunk, data: byHand) == event)
    }

    @Test("every event decodes back to itself; complete writes a missing message id as null")
    func roundTrips() throws {
        let events: [ChatEvent] = [
            .model(ModelEvent(jobId: "j", modelId: "m", attempt: 2)),
            .chunk(ChunkEvent(content: "hi", index: 0)),
            .complete(
                CompleteEvent(
                    jobId: "j", messageId: nil, content: "hi", modelId: "m", stopReason: "end_turn", inputTokens: 3, outputTokens: 4, creditsCharged: 1.5,
                    settlementPending: false, latencyMs: 12, spans: GenerationSpans(pickup: 0.25, prepare: 0.5, firstByte: 3, publish: 0.1)
                )
            ),
            .error(ErrorEvent(jobId: "j", code: "GENERATION_FAILED", message: "no")),
            .reset(ResetEvent(jobId: "j", attempt: 2)),
        ]
        for event in events {
            let data = try event.encoded()
            #expect(try ChatEvent.decode(type: event.type, data: data) == event)
        }
        let complete = try events[2].encoded()
        #expect(complete.contains(#""messageId":null"#))
        #expect(complete.contains(#""totalTokens":7"#))
        #expect(complete.contains(#""streamingSessionId":"j""#))
        #expect(try ChatEvent.decode(type: .observer, data: "{}") == nil)
        #expect(ChatEventType.complete.isTerminal && ChatEventType.error.isTerminal && !ChatEventType.reset.isTerminal)
    }
}
