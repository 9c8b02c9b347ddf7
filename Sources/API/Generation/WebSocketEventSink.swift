import HummingbirdWebSocket

/// Events as WebSocket text messages, one JSON object each: `{"id": <the Redis entry id or null>, "event":
/// <type>, "data": <the event's JSON object, as stored>}`. Heartbeats are the WebSocket's own pings, so
/// `heartbeat()` writes nothing.
struct WebSocketEventSink: EventSink {
    let outbound: WebSocketOutboundWriter

    mutating func write(id: String?, event: String, data: String) async throws {
        try await outbound.write(.text(Self.message(id: id, event: event, data: data)))
    }

    mutating func heartbeat() async throws {}

    /// One message. `id` is a Redis entry id (digits and a dash) and `event` one of the event type names, so
    /// neither needs escaping; `data` is a JSON object already.
    static func message(id: String?, event: String, data: String) -> String {
        var text = #"{"id":"#
        text.reserveCapacity(data.utf8.count + 64)
        if let id {
            text += "\"" + id + "\""
        } else {
            text += "null"
        }
        text += #","event":""# + event + #"","data":"# + data + "}"
        return text
    }
}
