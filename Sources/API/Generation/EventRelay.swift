import ChatCore
import ChatState
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Relays a session's events to one client, through an `EventSink` (Server-Sent Events or a WebSocket), from the
/// bytes the worker stored (never parsed here), with a heartbeat every interval while nothing happens. Events come from the process's one `EventHub`. Each write is
/// awaited, so a slow client slows only its own relay, and one that falls a whole buffer behind is dropped
/// (it resumes with `Last-Event-ID`); a client gone ends the relay, not the generation. When the process begins
/// to stop, every relay ends at once (its client resumes on another replica with `Last-Event-ID`), so the server
/// drains within its grace period.
struct EventRelay: Sendable {
    let hub: EventHub
    let events: SessionEvents
    let state: GenerationState
    let cache: SessionCache

    /// The SSE response headers.
    static let headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no",
    ]

    /// Writes the events of job `jobID` after `entryID` until its `complete` or `error` (a `reset` does not end it).
    /// A job that ended (or vanished) without its last event in the stream ends the relay with an `error` at the
    /// next quiet spell, so no client waits for ever.
    @discardableResult
    func relayJob(sessionID: String, jobID: String, after entryID: String, to sink: inout some EventSink) async throws -> RelayEnd {
        let subscription = try await hub.subscribe(sessionID: sessionID, after: entryID)
        ChatMetrics.sseStream(kind: "reply", delta: 1)
        defer { ChatMetrics.sseStream(kind: "reply", delta: -1) }
        let (completed, end) = try await Self.relaying(subscription, until: nil) {
            try await relayJob(subscription, sessionID: sessionID, jobID: jobID, after: entryID, to: &sink)
        }
        guard completed else { return try await endEarly(subscription, end, to: &sink) }
        return .finished
    }

    /// Why a relay was ended from outside its stream.
    enum OutsideEnd: Sendable {
        /// The process began its graceful shutdown.
        case shutdown
        /// The reader's token expired.
        case expired
    }

    /// Runs `body`, which reads `subscription`, ending the subscription when the process begins its graceful
    /// shutdown or at `deadline`; returns what `body` returned and why the subscription was ended, if it was.
    static func relaying<T>(
        _ subscription: EventSubscription, until deadline: ContinuousClock.Instant?, _ body: () async throws -> T
    ) async throws -> (T, OutsideEnd?) {
        let ended = NIOLockedValueBox<OutsideEnd?>(nil)
        // A timer on an event loop rather than a task sleeping beside the stream (a few hundred bytes per idle
        // observer, not a task's stack).
        let expiry = deadline.map { deadline in
            NIOSingletons.posixEventLoopGroup.any().scheduleTask(in: .nanoseconds((deadline - .now).nanoseconds)) {
                ended.withLockedValue { $0 = $0 ?? .expired }
                subscription.finish()
            }
        }
        defer { expiry?.cancel() }
        let result = try await withGracefulShutdownHandler {
            try await body()
        } onGracefulShutdown: {
            ended.withLockedValue { $0 = $0 ?? .shutdown }
            subscription.finish()
        }
        return (result, ended.withLockedValue { $0 })
    }

    /// Writes job `jobID`'s events from `subscription` (which starts after `entryID`) until its last one;
    /// returns false when the subscription ended first.
    func relayJob(
        _ subscription: some AsyncSequence<SessionEvent, Never>, sessionID: String, jobID: String, after entryID: String,
        to sink: inout some EventSink
    ) async throws -> Bool {
        var filter = StaleAttemptFilter()
        var last = entryID
        for await event in subscription {
            if event.isHeartbeat {
                if try await state.status(jobID: jobID)?.isFinal != false {
                    // The job may have ended between the hub's last read and this check: its last event is then
                    // in the stream already. Read it before saying the stream ended.
                    for stored in try await events.read(sessionID: sessionID, after: last) where stored.jobID == jobID && filter.admit(stored) {
                        try await sink.write(id: stored.id, event: stored.type, data: stored.data)
                        if ChatEventType(rawValue: stored.type)?.isTerminal == true { return true }
                    }
                    let body = #"{"code":"STREAM_ENDED","jobId":"\#(jobID)","message":"The reply has ended; its result is at /api/jobs/\#(jobID)"}"#
                    try await sink.write(id: nil, event: "error", data: body)
                    return true
                }
                try await sink.heartbeat()
                continue
            }
            last = event.id
            guard event.jobID == jobID, filter.admit(event) else { continue }
            try await sink.write(id: event.id, event: event.type, data: event.data)
            if ChatEventType(rawValue: event.type)?.isTerminal == true { return true }
        }
        return false
    }

    /// Writes every event after `entryID` (all jobs) until the client goes away, the process shuts down (an
    /// observer's stream has no end of its own; the observer reconnects to another replica), or `expiry`, when
    /// the observer's token expires: an `error` event `TOKEN_EXPIRED` then ends the stream.
    @discardableResult
    func relayAll(sessionID: String, after entryID: String, until expiry: ContinuousClock.Instant?, to sink: inout some EventSink) async throws -> RelayEnd {
        let subscription = try await hub.subscribe(sessionID: sessionID, after: entryID)
        ChatMetrics.sseStream(kind: "observer", delta: 1)
        defer { ChatMetrics.sseStream(kind: "observer", delta: -1) }
        var filter = StaleAttemptFilter()
        let (_, end) = try await Self.relaying(subscription, until: expiry) {
            for await event in subscription {
                if event.isHeartbeat {
                    try await sink.heartbeat()
                } else if filter.admit(event) {
                    try await sink.write(id: event.id, event: event.type, data: event.data)
                }
            }
        }
        return try await endEarly(subscription, end, to: &sink)
    }

    /// The job's `complete` or `error` event, waiting up to `timeout` for it; nil when it did not come in time
    /// (or the job ended without one).
    func waitForEnd(of record: JobRecord, timeout: Duration) async throws -> SessionEvent? {
        let subscription = try await hub.subscribe(sessionID: record.sessionID, after: record.startEventID)
        let deadline = ContinuousClock.now + timeout
        return try await Self.relaying(subscription, until: nil) { try await waitForEnd(of: record, subscription, until: deadline) }.0
    }

    private func waitForEnd(of record: JobRecord, _ subscription: EventSubscription, until deadline: ContinuousClock.Instant) async throws -> SessionEvent? {
        try await withThrowingTaskGroup(of: SessionEvent?.self) { group in
            group.addTask { [state, events] in
                var last = record.startEventID
                for await event in subscription {
                    if event.isHeartbeat {
                        if try await state.status(jobID: record.jobID)?.isFinal != false {
                            // Ended between the hub's last read and this check: its last event is in the stream.
                            return try await events.read(sessionID: record.sessionID, after: last).first {
                                $0.jobID == record.jobID && ChatEventType(rawValue: $0.type)?.isTerminal == true
                            }
                        }
                        continue
                    }
                    last = event.id
                    if event.jobID == record.jobID, ChatEventType(rawValue: event.type)?.isTerminal == true { return event }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// A subscription that ended before its stream did: the client fell too far behind (an `error` event says
    /// so), the process is stopping (the stream just ends), or the reader's token expired (an `error` event says
    /// so). The client resumes from its last event id, with a fresh token for the last.
    private func endEarly(_ subscription: EventSubscription, _ end: OutsideEnd?, to sink: inout some EventSink) async throws -> RelayEnd {
        if subscription.overflowed {
            let body = #"{"code":"CLIENT_TOO_SLOW","message":"The stream fell too far behind; reconnect with Last-Event-ID to resume"}"#
            try await sink.write(id: nil, event: "error", data: body)
            return .clientTooSlow
        } else if end == .expired {
            let body = #"{"code":"TOKEN_EXPIRED","message":"Your token expired; reconnect with a fresh token and Last-Event-ID to resume"}"#
            try await sink.write(id: nil, event: "error", data: body)
            return .tokenExpired
        }
        return end == .shutdown ? .shutdown : .finished
    }
}
