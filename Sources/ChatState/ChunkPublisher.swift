import ChatCore
import NIOCore
import Queue

/// Publishes one run's chunks pipelined: each chunk is one fenced script call (`GenerationScripts.publish`)
/// written at once, in order, its reply checked later (at the latest by `flush()`, which the run calls before
/// its last event), so a chunk never waits for the previous one's round trip. A refused chunk (the attempt
/// lost the job) makes the next check throw `JobFenced`; the chunks after it are refused too. Used by one task
/// at a time.
public struct ChunkPublisher: Sendable {
    let state: GenerationState
    let jobID: String
    let sessionID: String
    let attempt: Int
    private var outstanding: [EventLoopFuture<RedisValue>] = []

    init(state: GenerationState, jobID: String, sessionID: String, attempt: Int) {
        self.state = state
        self.jobID = jobID
        self.sessionID = sessionID
        self.attempt = attempt
    }

    /// Sends a chunk; with `wait`, returns once Redis stored it (after every chunk sent before it).
    public mutating func publish(_ chunk: ChunkEvent, wait: Bool = false) async throws {
        if wait {
            try await flush()
            try await state.publish(jobID: jobID, sessionID: sessionID, attempt: attempt, event: .chunk(chunk))
            return
        }
        // EVAL, not EVALSHA: a Redis that lost its scripts (a restart, a failover, SCRIPT FLUSH) between two
        // pipelined chunks would refuse some with NOSCRIPT while another client loads the script again, and the
        // chunks sent after them could land first. Redis finds the compiled script by the body's hash.
        let call = try state.publishCall(jobID: jobID, sessionID: sessionID, attempt: attempt, event: .chunk(chunk))
        let command = RedisCommand(arguments: ["EVAL", GenerationScripts.publish.source, String(call.keys.count)] + call.keys + call.arguments)
        outstanding.append(try await state.redis.sendWithoutWaiting(command))
        if outstanding.count >= 64 { try await flush() }
    }

    /// Waits for every chunk sent so far; throws `JobFenced` if one was refused, or the first failure.
    public mutating func flush() async throws {
        let pending = outstanding
        outstanding = []
        for reply in pending {
            guard try await reply.get().string != nil else { throw JobFenced(jobID: jobID, attempt: attempt) }
        }
    }
}
