import EventStream
import Foundation
import NIOCore
import Testing

@testable import Bedrock

@Suite("Bedrock chunk payloads")
struct ChunkPayloadTests {
    let inner = Data(#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi / there"}}"#.utf8)

    func message(_ payload: String) -> EventStreamMessage {
        EventStreamMessage(headers: [":message-type": .string("event"), ":event-type": .string("chunk")], payload: ByteBuffer(string: payload))
    }

    @Test("the usual payload is read without a JSON parser")
    func fastPath() throws {
        let payload = #"{"bytes":"\#(inner.base64EncodedString())","p":"abcdef"}"#
        #expect(BedrockResponseStream.fastChunkBytes(ByteBuffer(string: payload)) == inner)
        #expect(try BedrockResponseStream.chunkBytes(message(payload), requestID: nil) == inner)
    }

    @Test("escaped slashes, another key order or spacing take the full parser and give the same bytes")
    func slowPath() throws {
        let raw = Data([0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf])  // base64 "+/+/+/+/": has slashes to escape
        let base64 = raw.base64EncodedString()
        #expect(base64.contains("/"))
        let escaped = base64.replacingOccurrences(of: "/", with: "\\/")
        for payload in [#"{"p":"xyz","bytes":"\#(base64)"}"#, #"{ "bytes" : "\#(base64)" }"#, #"{"bytes":"\#(escaped)","p":"q"}"#] {
            #expect(try BedrockResponseStream.chunkBytes(message(payload), requestID: nil) == raw, "\(payload)")
        }
        #expect(BedrockResponseStream.fastChunkBytes(ByteBuffer(string: #"{"bytes":"\#(escaped)"}"#)) == nil)
        #expect(BedrockResponseStream.fastChunkBytes(ByteBuffer(string: #"{"p":"x","bytes":"\#(base64)"}"#)) == nil)
    }

    @Test("a payload with no bytes is an InvalidResponse")
    func invalid() {
        #expect(throws: BedrockError.self) { try BedrockResponseStream.chunkBytes(message(#"{"p":"x"}"#), requestID: "r1") }
        #expect(throws: BedrockError.self) { try BedrockResponseStream.chunkBytes(message("not json"), requestID: nil) }
    }
}
