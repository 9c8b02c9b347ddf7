import ChatCore
import Logging
import ServiceLifecycle

/// Turns the database could not take when their job ended (MongoDB down, or the process that ended the job
/// died before it wrote): the job's record keeps the user's message (and the committed reply), the job is in
/// `GenerationState.pendingTurnsKey`, and this stores them, idempotently per job and role, every `interval`
/// until MongoDB takes them (a session deleted meanwhile takes nothing: the turn is dropped). Runs in every
/// chat-worker; the sweeper also stores the turn of a job it ended at once.
public struct PendingTurns: Service {
    let state: GenerationState
    let store: any SessionStore
    let interval: Duration
    let logger: Logger

    /// Pending turns of `state`, stored into `store`.
    public init(state: GenerationState, store: any SessionStore, interval: Duration = .seconds(10), logger: Logger) {
        self.state = state
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// Stores the job's pending turn; true when nothing waits for it any more.
    @discardableResult
    public func store(jobID: String) async -> Bool {
        do {
            guard let turn = try await state.pendingTurn(jobID: jobID), let sessionID = turn.first?.sessionId else {
                // The record is gone (expired) or nothing waits: only forget it.
                try await state.turnStored(jobID: jobID, sessionID: "", messages: 0, bytes: 0)
                return true
            }
            do {
                _ = try await store.appendMessages(turn)
                try await state.turnStored(jobID: jobID, sessionID: sessionID, messages: turn.count, bytes: turn.reduce(0) { $0 + $1.content.utf8.count })
            } catch let error as ChatError where error.kind == .notFound {
                // The session was deleted: nowhere to keep the turn.
                try await state.turnStored(jobID: jobID, sessionID: sessionID, messages: 0, bytes: 0)
            }
            return true
        } catch {
            logger.warning("a pending turn is still not stored", metadata: ["jobId": "\(jobID)", "error": "\(error)"])
            return false
        }
    }

    /// Tries every pending turn once (at most `limit`); returns how many were stored.
    @discardableResult
    public func retry(limit: Int = 100) async -> Int {
        guard let jobs = try? await state.pendingTurnJobs(limit: limit) else { return 0 }
        var stored = 0
        for jobID in jobs where await store(jobID: jobID) { stored += 1 }
        return stored
    }

    /// Retries every `interval` until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                await retry()
            }
        }
    }
}
