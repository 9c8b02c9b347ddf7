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

    func register(on chat: RouterGroup<ChatRequestContext>) {
        chat.get("/sessions/active", use: active)
        chat.get("/sessions/:id/observe", use: observe)
    }

    static let forbidden = ChatError(.forbidden, code: "FORBIDDEN", message: "Only supervisors and admins may observe sessions")

    /// An `observer` event, then the running job's events from its start (or only new ones when none runs),
    /// then every later job's, until the observer goes away.
    @Sendable func observe(_ request: Request, context: ChatRequestContext) async throws -> Response {
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
        let greeting = ObserverGreeting(sessionId: sessionID, ownerId: ownerID, observerId: user.id, observerRole: user.role, activeJobId: activeJob)
        let first = EventRelay.frame(id: nil, event: "observer", data: Self.json(greeting))
        let from = start
        let lease = try await limits.open(.observers, userID: user.id, id: UUID().uuidString)
        // The stream ends when the observer's token does: a revoked supervisor does not keep watching. (At most a
        // day ahead: a token valid for longer is still checked again when the observer reconnects.)
        let remaining = min(Double(user.expiresAt) - Date().timeIntervalSince1970, 86_400)
        let expiry = ContinuousClock.now + .seconds(max(0, remaining))
        return Response(
            status: .ok, headers: EventRelay.headers,
            body: ResponseBody { [relay] writer in
                try await lease.hold {
                    try await writer.write(first)
                    try await relay.relayAll(sessionID: sessionID, after: from, until: expiry, writer: &writer)
                }
                try await writer.finish(nil)
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
            var entry = SessionView(session)
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
