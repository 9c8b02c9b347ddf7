/// What one streamed request measured, each time counted from the moment the request was sent.
struct StreamSample: Sendable {
    /// Until the response head arrived.
    var headers: Duration?
    /// Until the first chunk with text.
    var firstChunk: Duration?
    /// Until the last chunk with text.
    var lastChunk: Duration?
    /// Until chat-api's `complete` event (full path only).
    var complete: Duration?
    /// Until the stream ended or failed.
    var total: Duration = .zero
    /// The time between each chunk with text and the next.
    var gaps: [Duration] = []
    /// Chunks with text received.
    var chunks = 0
    /// Why the request failed (`status-402`, `event-error:CODE`, `timeout`, ...); nil when it completed.
    var error: String?
    /// chat-api's `Server-Timing` entries, in milliseconds.
    var serverTiming: [String: Double] = [:]
    /// The `spans` of chat-api's `complete` event, in milliseconds.
    var spans: [String: Double] = [:]

    /// Records a chunk with text received `elapsed` after the request was sent.
    mutating func chunk(at elapsed: Duration) {
        if let last = lastChunk { gaps.append(elapsed - last) } else { firstChunk = elapsed }
        lastChunk = elapsed
        chunks += 1
    }

    /// A completed request has its last event and no error.
    var completed: Bool { error == nil }
}

extension Duration {
    /// The duration in milliseconds.
    var milliseconds: Double {
        Double(components.seconds) * 1_000 + Double(components.attoseconds) / 1e15
    }
}
