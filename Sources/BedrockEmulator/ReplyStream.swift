import EventStream
import Foundation
import Hummingbird

/// The timing of one reply: the pace of its words and the faults that delay or break it.
struct ReplyTiming: Sendable {
    /// The wait before each word; zero for as fast as possible.
    var wordInterval: Duration
    /// Silence after the first chunk with text (`[[stall:S]]`).
    var stall: Duration?
    /// When the request arrived; latencies are measured from here.
    var start: ContinuousClock.Instant

    /// The pace of `tokensPerSecond` words a second (0: no waiting).
    init(tokensPerSecond: Int, stall: Duration?, start: ContinuousClock.Instant) {
        wordInterval = tokensPerSecond == 0 ? .zero : .seconds(1) / tokensPerSecond
        self.stall = stall
        self.start = start
    }

    /// How long a reply of `words` words takes to generate, stall included.
    func generationTime(words: Int) -> Duration {
        wordInterval * words + (stall ?? .zero)
    }

    /// Whole milliseconds since the request arrived.
    func elapsedMilliseconds() -> Int {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Writes a reply as an `application/vnd.amazon.eventstream` body, one awaited write per frame (the writes are
/// the backpressure: a slow reader slows the emulator down, nothing piles up in memory).
struct ReplyStream: Sendable {
    /// The model chunks (or the Converse events), in order.
    var chunks: [ReplyChunk]
    /// For ConverseStream: the reply, whose `metadata` event gets the latency when it is sent.
    var converse: Reply? = nil
    /// The counts reported in the last chunk's invocation metrics.
    var inputTokens: Int
    var outputTokens: Int
    /// Pace, stall and start time.
    var timing: ReplyTiming
    /// `[[exception:K:type]]`: an exception frame ends the stream once K chunks with text are out, in place of the
    /// next chunk with text (K = 0: before any text, after the framing events that open a message, such as
    /// Claude's `message_start` or Converse's `messageStart`; a K past the reply: after the last chunk). Counting
    /// text chunks makes K mean the same in every family.
    var exception: (afterTextChunks: Int, type: StreamException)?

    /// Sends every frame, then finishes the body.
    ///
    /// A `[[stall:S]]` silence follows the first chunk with text (the first chunk, if none has text), so that
    /// the client has seen some of the reply before the stall, in every family.
    func write(to writer: inout any ResponseBodyWriter) async throws {
        let stallAfter = chunks.firstIndex(where: \.carriesWord) ?? 0
        var deadline = ContinuousClock.now
        var firstByteLatency: Int?
        var wordsSent = 0
        for (index, chunk) in chunks.enumerated() {
            if chunk.carriesWord, let exception, wordsSent >= exception.afterTextChunks {
                return try await finish(writer: &writer, exception: exception.type)
            }
            if chunk.carriesWord {
                deadline = max(deadline + timing.wordInterval, .now)
                try await Task.sleep(until: deadline, clock: .continuous)
                wordsSent += 1
            }
            if let event = chunk.event {
                var body = chunk.body
                if event == "metadata", let converse { body = ConverseBodies.metadata(converse, latencyMs: timing.elapsedMilliseconds()) }
                try await writer.write(EventFrames.event(event, body))
            } else {
                try await writer.write(EventFrames.chunk(invokeChunk(chunk, isLast: index == chunks.count - 1, firstByteLatency: firstByteLatency)))
            }
            if firstByteLatency == nil {
                firstByteLatency = timing.elapsedMilliseconds()
            }
            if index == stallAfter, let stall = timing.stall {
                try await Task.sleep(for: stall)
                deadline = .now
            }
        }
        try await finish(writer: &writer, exception: exception?.type)
    }

    /// An InvokeModel stream's chunk; the last one gets Bedrock's invocation metrics.
    private func invokeChunk(_ chunk: ReplyChunk, isLast: Bool, firstByteLatency: Int?) -> JSONValue {
        var body = chunk.body
        if isLast, case .object(let members) = body {
                let metrics = JSONValue.object([
                    ("inputTokenCount", .integer(inputTokens)), ("outputTokenCount", .integer(outputTokens)),
                    ("invocationLatency", .integer(timing.elapsedMilliseconds())),
                    ("firstByteLatency", .integer(firstByteLatency ?? timing.elapsedMilliseconds())),
                ])
            body = .object(members + [("amazon-bedrock-invocationMetrics", metrics)])
        }
        return body
    }

    private func finish(writer: inout any ResponseBodyWriter, exception: StreamException?) async throws {
        if let exception {
            try await writer.write(EventFrames.exception(exception))
        }
        try await writer.finish(nil)
    }
}

/// The event-stream frames of Bedrock Runtime's response stream.
enum EventFrames {
    /// A `chunk` event: `{"bytes": <base64 of the model chunk>, "p": <padding>}`, as Bedrock wraps each chunk.
    static func chunk(_ body: JSONValue) -> ByteBuffer {
        let payload = JSONValue.object([
            ("bytes", .string(Data(body.serialized.utf8).base64EncodedString())),
            ("p", .string(padding())),
        ])
        return frame(
            [":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"], payload: payload
        )
    }

    /// A ConverseStream event: its JSON, with padding `p` as Bedrock adds it, as the payload of a frame of its
    /// own type.
    static func event(_ type: String, _ body: JSONValue) -> ByteBuffer {
        var payload = body
        if case .object(let members) = body { payload = .object(members + [("p", .string(padding()))]) }
        return frame([":event-type": type, ":content-type": "application/json", ":message-type": "event"], payload: payload)
    }

    /// An exception event that ends a stream, with the exception's JSON payload.
    static func exception(_ type: StreamException) -> ByteBuffer {
        frame(
            [":exception-type": type.rawValue, ":content-type": "application/json", ":message-type": "exception"],
            payload: type.framePayload
        )
    }

    /// Padding as Bedrock sends it: a prefix of random length of the letters and digits, so that frame sizes
    /// do not give the text's length away.
    static func padding() -> String {
        String(ReplyBodies.alphanumerics.prefix(Int.random(in: 1...ReplyBodies.alphanumerics.count)))
    }

    private static func frame(_ headers: KeyValuePairs<String, String>, payload: JSONValue) -> ByteBuffer {
        let message = EventStreamMessage(
            headers: headers.map { EventStreamHeader(name: $0.key, value: .string($0.value)) },
            payload: ByteBuffer(string: payload.serialized)
        )
        return EventStreamEncoder.encode(message)
    }
}
