import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Queue
import ServiceLifecycle

/// Relays a session's events to one client as Server-Sent Events: `id:` (the Redis entry id), `event:` and
/// one `data:` line each; a comment every heartbeat interval while nothing happens. Each write is awaited,
/// so a slow client slows only its own relay; a client gone ends the relay, not the generation.
struct EventRelay: Sendable {
    let events: SessionEvents
    let state: GenerationState

    /// The SSE response headers.
    static let headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no",
    ]

    /// One SSE frame.
    static func frame(id: String?, event: String, data: String) -> ByteBuffer {
        var text = ""
        if let id { text += "id: \(id)\n" }
        text += "event: \(event)\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        text += "\n"
        return ByteBuffer(string: text)
    }

    /// Writes the events of job `jobID` after `entryID` until its `complete` or `error` (a `reset` does not end it).
    /// A job that ended (or vanished) without its last event in the stream ends the relay with an `error` at the
    /// next quiet spell, so no client waits for ever.
    func relayJob(sessionID: String, jobID: String, after entryID: String, writer: inout any ResponseBodyWriter) async throws {
        for try await event in events.subscribe(sessionID: sessionID, after: entryID, heartbeats: true) {
            if event.isHeartbeat {
                if try await state.record(jobID: jobID)?.status.isFinal != false {
                    let body = #"{"code":"STREAM_ENDED","jobId":"\#(jobID)","message":"The reply has ended; its result is at /api/jobs/\#(jobID)"}"#
                    try await writer.write(Self.frame(id: nil, event: "error", data: body))
                    return
                }
                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                continue
            }
            guard event.jobID == jobID else { continue }
            try await writer.write(Self.frame(id: event.id, event: event.type, data: event.data))
            if event.type == "complete" || event.type == "error" { return }
        }
    }

    /// Writes every event after `entryID` (all jobs) until the client goes away, or until the process shuts
    /// down (an observer's stream has no end of its own; the observer reconnects to another replica).
    func relayAll(sessionID: String, after entryID: String, writer: inout any ResponseBodyWriter) async throws {
        for try await event in events.subscribe(sessionID: sessionID, after: entryID, heartbeats: true) {
            if event.isHeartbeat {
                if Task.isShuttingDownGracefully { return }
                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
            } else {
                try await writer.write(Self.frame(id: event.id, event: event.type, data: event.data))
            }
        }
    }
}
