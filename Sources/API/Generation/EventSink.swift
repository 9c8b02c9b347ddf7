import Hummingbird
import NIOCore

/// Where a relay writes a session's events: an SSE response body (`SSEEventSink`) or a WebSocket
/// (`WebSocketEventSink`). Each write is awaited, so a slow client slows only its own relay.
protocol EventSink {
    /// Writes one event: `id` is the Redis entry id (nil for events made by chat-api rather than read from the
    /// session's stream), `data` the event's JSON object as stored, written without being parsed.
    mutating func write(id: String?, event: String, data: String) async throws
    /// Tells the client the stream is alive while nothing happens.
    mutating func heartbeat() async throws
}

/// How a relay ended.
enum RelayEnd: Sendable, Equatable {
    /// The stream reached its end: the job's last event, or a note that it ended.
    case finished
    /// The client fell a whole buffer behind; an `error` event `CLIENT_TOO_SLOW` said so.
    case clientTooSlow
    /// The reader's token expired; an `error` event `TOKEN_EXPIRED` said so.
    case tokenExpired
    /// The process began its graceful shutdown; the client resumes on another replica.
    case shutdown
}

/// Events as Server-Sent Events: `id:` (the Redis entry id), `event:` and one `data:` line each; a comment
/// for a heartbeat.
struct SSEEventSink: EventSink {
    var writer: any ResponseBodyWriter

    mutating func write(id: String?, event: String, data: String) async throws {
        try await writer.write(Self.frame(id: id, event: event, data: data))
    }

    mutating func heartbeat() async throws {
        try await writer.write(Self.heartbeatFrame)
    }

    /// One SSE frame.
    static func frame(id: String?, event: String, data: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.utf8.count + 64)
        if let id {
            buffer.writeStaticString("id: ")
            buffer.writeString(id)
            buffer.writeStaticString("\n")
        }
        buffer.writeStaticString("event: ")
        buffer.writeString(event)
        buffer.writeStaticString("\n")
        if data.utf8.contains(UInt8(ascii: "\n")) {
            for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
                buffer.writeStaticString("data: ")
                buffer.writeSubstring(line)
                buffer.writeStaticString("\n")
            }
        } else {
            buffer.writeStaticString("data: ")
            buffer.writeString(data)
            buffer.writeStaticString("\n")
        }
        buffer.writeStaticString("\n")
        return buffer
    }

    static let heartbeatFrame = ByteBuffer(string: ": heartbeat\n\n")
}
