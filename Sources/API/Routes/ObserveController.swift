import ChatCore
import ChatState
import Foundation
import Hummingbird
import Queue

/// Supervision: observing any session's generations live, and listing the sessions generating now.
/// Supervisors and admins only (403 for endusers).
struct ObserveController: Sendable {
    let store: any SessionStore
    let state: GenerationState
    let relay: EventRelay
    /// The per-user cap on open observer streams.
    let limits: StreamLimits
    /// The model shown for a session that names none.
    var defaultModelID = ModelCatalog.builtIn.defaultModelID

    func register(on chat: RouterGroup<ChatRequestContext>) {
        chat.get("/sessions/active", use: active)
        chat.get("/sessions/:id/observe", use: observe)
    }

    static let forbidden = ChatError(.forbidden, code: "FORBIDDEN", message: "Only supervisors and admins may observe sessions")

    /// Where an observer's stream starts, found before it is opened (no side effects).
    struct Start: Sendable {
        let sessionID: String
        /// The observer's user id (its stream slot is counted for it).
        let observerID: String
        /// The `observer` event's data.
        let greeting: String
        /// The entry the stream starts after: the running job's start, or the stream's last entry.
        let after: String
        /// When the observer's token expires (at most a day ahead: a token valid for longer is checked again
        /// when the observer reconnects).
        let expiry: ContinuousClock.Instant
    }

    /// The checks of an observer stream (a supervisor or admin; the session exists) and where it starts: after
    /// `Last-Event-ID` (or `lastEventId`) when the observer resumes, else at the running job's start (or after the
    /// last event when none runs).
    func start(_ request: Request, context: ChatRequestContext) async throws -> Start {
        let user = try context.requireUser()
        guard user.role.canObserve else { throw Self.forbidden }
        let sessionID = try SessionController.sessionID(context)
        guard let ownerID = try await relay.cache.owner(sessionID: sessionID, store: store) else { throw SessionController.notFound }
        var start = try await relay.events.lastEventID(sessionID: sessionID)
        var activeJob: String?
        if let jobID = try await state.activeJob(sessionID: sessionID), let record = try await state.record(jobID: jobID) {
            start = record.startEventID
            activeJob = jobID
        }
        if let resumed = GenerationController.lastEventID(request) {
            guard GenerationController.isEntryID(resumed) else { throw GenerationController.invalidLastEventID }
            guard try await relay.events.event(sessionID: sessionID, id: resumed) != nil else { throw GenerationController.eventNotFound }
            start = resumed
        }
        let greeting = ObserverGreeting(sessionId: sessionID, ownerId: ownerID, observerId: user.id, observerRole: user.role, activeJobId: activeJob)
        let remaining = min(Double(user.expiresAt) - Date().timeIntervalSince1970, 86_400)
        return Start(
            sessionID: sessionID, observerID: user.id, greeting: Self.json(greeting), after: start,
            expiry: ContinuousClock.now + .seconds(max(0, remaining))
        )
    }

    /// Takes an observer slot for `start`'s observer (429 past the cap).
    func lease(_ start: Start) async throws -> StreamLease {
        try await limits.open(.observers, userID: start.observerID, id: RandomID.uuidString())
    }

    /// Writes `start`'s stream to `sink` while holding `lease`: the `observer` event, then every job's events,
    /// until the client goes away, the process stops, or the token expires (an `error` event `TOKEN_EXPIRED`:
    /// a revoked supervisor does not keep watching).
    func stream(_ start: Start, lease: StreamLease, to sink: inout some EventSink) async throws -> RelayEnd {
        try await lease.hold {
            try await sink.write(id: nil, event: "observer", data: start.greeting)
            return try await relay.relayAll(sessionID: start.sessionID, after: start.after, until: start.expiry, to: &sink)
        }
    }

    /// An `observer` event, then the running job's events from its start (or only new ones when none runs; or
    /// those after `Last-Event-ID`), then every later job's, until the observer goes away (Server-Sent Events).
    @Sendable func observe(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let start = try await start(request, context: context)
        let lease = try await lease(start)
        return Response(
            status: .ok, headers: EventRelay.headers,
            body: lease.responseBody { lease, writer in
                var sink = SSEEventSink(writer: writer)
                _ = try await stream(start, lease: lease, to: &sink)
                try await sink.writer.finish(nil)
            }
        )
    }

    @Sendable func active(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        guard user.role.canObserve else { throw Self.forbidden }
        var sessions: [SessionView] = []
        for sessionID in try await state.activeSessions() {
            guard let jobID = try await state.activeJob(sessionID: sessionID) else {
                try await state.forgetIfInactive(sessionID: sessionID)
                continue
            }
            guard let session = try await store.session(id: sessionID) else { continue }
            var entry = SessionView(session, defaultModelID: defaultModelID)
            entry.activeJobId = jobID
            sessions.append(entry)
        }
        return Response.json(status: .ok, ActiveSessionsBody(sessions: sessions, count: sessions.count))
    }

    static func json(_ body: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(body)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
