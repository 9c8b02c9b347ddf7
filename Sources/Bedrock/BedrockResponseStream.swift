import AsyncHTTPClient
import EventStream
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat

/// The chunks of one InvokeModelWithResponseStream answer: each element is the model's JSON chunk (the
/// event's base64 `bytes`, decoded); of a ConverseStream answer (`typedEvents`), each event as
/// `{"<event type>": <payload>}`. Pulled from the socket only as the consumer asks (backpressure);
/// an exception event ends the sequence with a `BedrockError` named after it; no event within the chunk
/// timeout ends it with `ChunkTimeout`. Single-pass: iterate it once.
public final class BedrockResponseStream: AsyncSequence, Sendable {
    public typealias Element = Data
    /// `x-amzn-RequestId` of the call.
    public let requestID: String?
    /// How many tries opening the stream took (1 = no retry).
    public let attempts: Int
    private let state: NIOLockedValueBox<State>
    private let chunkTimeout: Duration

    private let body: BodyPump
    /// ConverseStream: every event is an element, named by its type.
    private let typedEvents: Bool

    struct State: Sendable {
        var decoder = EventStreamDecoder()
        /// Chunks read ahead by `prefetchFirstChunk`, handed out first.
        var prefetched: [Data] = []
        var finished = false
    }

    init(response: HTTPClientResponse, requestID: String?, chunkTimeout: Duration, attempts: Int, eventLoop: any EventLoop, typedEvents: Bool = false) {
        self.requestID = requestID
        self.typedEvents = typedEvents
        self.attempts = attempts
        self.chunkTimeout = chunkTimeout
        self.state = NIOLockedValueBox(State())
        self.body = BodyPump(
            body: response.body, eventLoop: eventLoop,
            timeoutError: { BedrockError(code: "ChunkTimeout", message: "no event from Bedrock within the chunk timeout", requestID: requestID) }
        )
    }

    deinit {
        // A consumer that stops early (a cancelled generation) closes the connection's request here.
        body.close(with: CancellationError())
    }

    /// Reads until the first chunk and keeps it for the consumer; an exception before it is thrown from here.
    func prefetchFirstChunk(timeout: Duration) async throws {
        var wait = timeout
        while true {
            guard let chunk = try await nextChunk(timeout: wait) else {
                state.withLockedValue { $0.finished = true }
                return
            }
            state.withLockedValue { $0.prefetched.append(chunk) }
            // ConverseStream opens with events that carry no text (`messageStart`, `contentBlockStart`): an
            // exception right after them is still before the first chunk, and may be retried.
            guard typedEvents, Self.opensMessage(chunk) else { return }
            wait = chunkTimeout
        }
    }

    /// Whether a Converse event is one of those that open a message before its text.
    static func opensMessage(_ event: Data) -> Bool {
        event.starts(with: Data(#"{"messageStart""#.utf8)) || event.starts(with: Data(#"{"contentBlockStart""#.utf8))
    }

    /// Iterates the chunks.
    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: self)
    }

    /// Hands out the prefetched chunk, then reads on.
    public struct Iterator: AsyncIteratorProtocol {
        let stream: BedrockResponseStream

        public mutating func next() async throws -> Data? {
            if let first = stream.state.withLockedValue({ state -> Data? in
                state.prefetched.isEmpty ? nil : state.prefetched.removeFirst()
            }) {
                return first
            }
            if stream.state.withLockedValue({ $0.finished }) { return nil }
            return try await stream.nextChunk(timeout: stream.chunkTimeout)
        }
    }

    /// The next chunk event's decoded bytes; nil at the end of the stream.
    private func nextChunk(timeout: Duration) async throws -> Data? {
        while true {
            if let message = try decodeNext() {
                switch message.stringHeader(":message-type") {
                case "event":
                    if typedEvents, let type = message.stringHeader(":event-type") {
                        var named = Data("{\"".utf8)
                        named.append(contentsOf: type.utf8)
                        named.append(contentsOf: "\":".utf8)
                        named.append(contentsOf: message.payload.readableBytesView)
                        named.append(UInt8(ascii: "}"))
                        return named
                    }
                    guard message.stringHeader(":event-type") == "chunk" else { continue }
                    return try Self.chunkBytes(message, requestID: requestID)
                case "exception":
                    finish()
                    throw Self.exception(message, requestID: requestID)
                case "error":
                    finish()
                    throw BedrockError(
                        code: message.stringHeader(":error-code") ?? "UnknownError",
                        message: message.stringHeader(":error-message") ?? "the stream reported an error", requestID: requestID
                    )
                default:
                    continue
                }
            }
            guard let bytes = try await readBody(timeout: timeout) else {
                finish()
                return nil
            }
            state.withLockedValue { $0.decoder.append(bytes) }
        }
    }

    private func decodeNext() throws -> EventStreamMessage? {
        do {
            return try state.withLockedValue { try $0.decoder.next() }
        } catch {
            finish()
            throw BedrockError(code: "InvalidResponse", message: "the event stream is corrupt (\(error))", requestID: requestID)
        }
    }

    private func readBody(timeout: Duration) async throws -> ByteBuffer? {
        do {
            return try await body.next(timeout: TimeAmount(duration: timeout))
        } catch let error as BedrockError {
            finish()
            throw error
        } catch is CancellationError {
            finish()
            throw CancellationError()
        } catch {
            finish()
            throw BedrockError(code: "ConnectionError", message: "the stream from Bedrock broke (\(error))", requestID: requestID)
        }
    }

    private func finish() {
        state.withLockedValue { $0.finished = true }
    }

    static func chunkBytes(_ message: EventStreamMessage, requestID: String?) throws -> Data {
        if let bytes = fastChunkBytes(message.payload) { return bytes }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: message.payload)) as? [String: Any],
            let encoded = object["bytes"] as? String, let bytes = Data(base64Encoded: encoded)
        else { throw BedrockError(code: "InvalidResponse", message: "a chunk event has no base64 bytes", requestID: requestID) }
        return bytes
    }

    /// The common case without a JSON parser: the payload is an object whose `"bytes"` value is plain base64
    /// (no escapes). Anything else (an escaped `\/`, odd spacing) returns nil and goes through the full parser.
    static func fastChunkBytes(_ payload: ByteBuffer) -> Data? {
        payload.withUnsafeReadableBytes { raw -> Data? in
            let key = Array(#""bytes":""#.utf8)
            guard raw.count > key.count, raw.first == UInt8(ascii: "{") else { return nil }
            var index = 1
            // The key is first in every payload Bedrock sends; anything else takes the slow path.
            for byte in key {
                guard index < raw.count, raw[index] == byte else { return nil }
                index += 1
            }
            let start = index
            while index < raw.count, raw[index] != UInt8(ascii: "\""), raw[index] != UInt8(ascii: "\\") { index += 1 }
            guard index < raw.count, raw[index] == UInt8(ascii: "\"") else { return nil }
            return Data(base64Encoded: Data(UnsafeRawBufferPointer(rebasing: raw[start..<index])))
        }
    }

    private static func exception(_ message: EventStreamMessage, requestID: String?) -> BedrockError {
        let name = BedrockError.exceptionName(message.stringHeader(":exception-type") ?? "unknownException")
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: message.payload))) as? [String: Any] ?? [:]
        let text = (object["message"] as? String) ?? (object["Message"] as? String) ?? name
        return BedrockError(code: name, message: text, requestID: requestID)
    }
}
