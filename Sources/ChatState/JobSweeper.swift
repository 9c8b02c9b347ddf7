import ChatCore
import Foundation
import Logging
import Queue
import ServiceLifecycle

/// How the sweep of one job came out.
public enum SweepResult: Sendable, Equatable {
    /// Its deadline has not passed (or it is not open).
    case notDue
    /// It has no record any more: only forgotten.
    case gone
    /// It had ended: only forgotten.
    case final
    /// It was ended now, for `cause`: `NOT_ENQUEUED`, `NO_WORKER` or `JOB_LOST`.
    case ended(cause: String)
}

/// Ends the jobs that nothing else will end, so that no client waits for ever, no session stays locked and no
/// reservation stays held: every job not ended yet is in `chat:jobs:open` with a deadline (the enqueue grace
/// after it was begun, the queue timeout after it was enqueued, the lease after its worker last renewed it).
/// Past it, a job that is not final is ended here, in one script: an `error` event, the record final, the
/// session freed, the settlement parked for the workers' retry (a refund, or what a committed outcome
/// showed), the user's message kept as a pending turn; then it is stored (`PendingTurns`). Runs in chat-api and chat-worker alike, every `interval`; two
/// sweepers racing on one job end it once (the script checks and ends atomically).
public final class JobSweeper: Service, Sendable {
    let state: GenerationState
    let store: (any SessionStore)?
    let stream: String
    let group: String
    let interval: Duration
    let logger: Logger

    /// A sweeper of `state`'s open jobs, for jobs queued on `stream` (read by `group`); with `store`, the user's
    /// message of a job it ends is stored.
    public init(state: GenerationState, store: (any SessionStore)?, stream: String, group: String, interval: Duration = .seconds(5), logger: Logger) {
        self.state = state
        self.store = store
        self.stream = stream
        self.group = group
        self.interval = interval
        self.logger = logger
    }

    /// Sweeps every open job whose deadline passed (at most `limit`); returns what became of each.
    @discardableResult
    public func sweepDue(limit: Int = 100) async throws -> [String: SweepResult] {
        let now = String(Int64(Date().timeIntervalSince1970 * 1000))
        let due = try await state.redis.send("ZRANGEBYSCORE", state.openJobsKey, "-inf", now, "LIMIT", "0", String(limit))
        var results: [String: SweepResult] = [:]
        for jobID in (due.array ?? []).compactMap(\.string) {
            // One job that cannot be swept (a broken record) must not keep the others from it.
            do {
                results[jobID] = try await sweep(jobID: jobID)
            } catch {
                logger.error("could not sweep a job", metadata: ["jobId": "\(jobID)", "error": "\(error)"])
            }
        }
        return results
    }

    /// Sweeps one job: ends it if its deadline passed and it is not final.
    public func sweep(jobID: String) async throws -> SweepResult {
        let sessionID = try await state.redis.send("HGET", GenerationState.jobKey(jobID), "sessionId").string ?? ""
        func error(_ code: String, _ message: String) throws -> String {
            try ChatEvent.error(ErrorEvent(jobId: jobID, code: code, message: message)).encoded()
        }
        let reply = try await state.redis.evaluate(
            GenerationScripts.sweep,
            keys: [
                state.openJobsKey, GenerationState.jobKey(jobID), GenerationState.lockKey(sessionID), GenerationState.activeSessionsKey,
                GenerationState.cancelKey(jobID), SessionEvents.key(sessionID: sessionID), stream, SessionCache.metaKey(sessionID),
                SessionCache.historyKey(sessionID), state.settlementsKey, state.pendingTurnsKey, SessionEvents.readersKey(sessionID: sessionID),
            ],
            arguments: [
                jobID, sessionID, group, String(state.recordTTL.milliseconds), String(state.events.maxLength), String(state.events.idleExpiry.milliseconds),
                try error("NOT_ENQUEUED", "The reply could not be started. Nothing was charged."),
                try error("NO_WORKER", "No worker could take the reply in time. You are charged only for what was delivered."),
                try error("JOB_LOST", "The reply could not be finished. You are charged only for what was delivered."),
            ]
        )
        let values = reply.array ?? []
        switch values.first?.string {
        case "gone": return .gone
        case "final": return .final
        case "ended":
            guard values.count == 2, let cause = values[1].string else { throw RedisClientError(.unexpectedReply, "sweep returned \(reply)") }
            logger.warning("an abandoned job was ended by the sweeper", metadata: ["jobId": "\(jobID)", "cause": "\(cause)"])
            // The user's message waits in the record; store it now (the workers' retry takes it if this fails).
            if let store { await PendingTurns(state: state, store: store, logger: logger).store(jobID: jobID) }
            return .ended(cause: cause)
        default:
            return .notDue
        }
    }

    /// Sweeps every `interval` until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                if Task.isCancelled { return }
                do {
                    try await self.sweepDue()
                } catch {
                    self.logger.warning("sweeping open jobs failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
