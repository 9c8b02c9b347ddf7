import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import API
@testable import ChatState
@testable import Queue

/// Collects what a relay writes.
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    // @unchecked: written by one relay at a time, read after it returned.
    var text = ""

    func write(_ buffer: ByteBuffer) async throws { text += String(buffer: buffer) }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

@Suite("The event relay against redis-server", .timeLimit(.minutes(1)))
struct EventRelayTests {
    @Test("a job that ends between the hub's empty read and the relay's record check still gets its complete, not STREAM_ENDED")
    func endBetweenReadAndCheck() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let events = SessionEvents(redis: redis)
        let session = GenerationStateTests.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await state.begin(
            jobID: UUID().uuidString, sessionID: session.id, userID: session.userId, requestedModel: nil, defaultModel: "m", message: "q",
            messageID: ObjectIDs.next()
        ) else { throw TestFailure("not started") }
        let job = record.jobID
        _ = try await state.startRun(jobID: job, sessionID: session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: job, modelId: "m", attempt: 1)))
        try await state.publish(jobID: job, sessionID: session.id, attempt: 1, event: .chunk(ChunkEvent(content: "hi", index: 0)))
        let complete = ChatEvent.complete(
            CompleteEvent(jobId: job, messageId: nil, content: "hi", modelId: "m", stopReason: "end_turn", inputTokens: 1, outputTokens: 1,
                creditsCharged: 1, settlementPending: false, latencyMs: 1, spans: nil)
        )
        try await state.end(jobID: job, sessionID: session.id, attempt: 1, JobEnding(status: .completed, event: complete))
        // The hub's read came back empty just before the job's last events were written: its subscriber sees
        // only a heartbeat, then the record says the job is over.
        let relay = EventRelay(hub: EventHub(redis: redis, events: events), events: events, state: state, cache: cache)
        var sink = SSEEventSink(writer: CollectingWriter())
        #expect(try await relay.relayJob(quiet(), sessionID: session.id, jobID: job, after: record.startEventID, to: &sink))
        let written = (sink.writer as! CollectingWriter).text
        #expect(written.contains("event: model") && written.contains("event: chunk") && written.contains("event: complete"))
        #expect(!written.contains("STREAM_ENDED"))

        // One whose record is final with no last event in the stream still ends with STREAM_ENDED.
        var other = SSEEventSink(writer: CollectingWriter())
        #expect(try await relay.relayJob(quiet(), sessionID: session.id, jobID: "no-such-job", after: record.startEventID, to: &other))
        #expect((other.writer as! CollectingWriter).text.contains("STREAM_ENDED"))
    }

    /// A subscription that yields one heartbeat and ends.
    private func quiet() -> AsyncStream<SessionEvent> {
        AsyncStream { continuation in
            continuation.yield(.heartbeat)
            continuation.finish()
        }
    }
}
