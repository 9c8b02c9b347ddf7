import ChatCore
import Foundation
import Testing

@testable import ChatState
@testable import Queue

@Suite("Session event streams against redis-server")
struct SessionEventsTests {
    @Test("chunks published without waiting arrive in order, each once, even across a script flush, and flush reports them stored")
    func pipelinedChunksKeepTheirOrder() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let events = SessionEvents(redis: redis)
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = GenerationStateTests.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await state.begin(
            jobID: UUID().uuidString, sessionID: session.id, userID: session.userId, requestedModel: nil, defaultModel: "m", message: "q", messageID: ObjectIDs.next()
        ) else { throw TestFailure("not started") }
        _ = try await state.startRun(
            jobID: record.jobID, sessionID: session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        )
        var publisher = state.chunkPublisher(jobID: record.jobID, sessionID: session.id, attempt: 1)
        for index in 0..<500 {
            // Redis loses its scripts half way (a restart, a failover): the chunks still arrive, in order.
            if index == 250 { try await redis.send("SCRIPT", "FLUSH") }
            try await publisher.publish(ChunkEvent(content: "c\(index)", index: index), wait: index == 0)
        }
        try await publisher.flush()
        let stored = try await events.read(sessionID: session.id, after: record.startEventID).filter { $0.type == "chunk" }
        #expect(stored.count == 500)
        #expect(stored.map(\.data) == (0..<500).map { #"{"content":"c\#($0)","index":\#($0)}"# })
        #expect(stored.allSatisfy { $0.jobID == record.jobID && $0.attempt == 1 })
    }

    @Test("a relay's filter drops an earlier attempt's events once a later attempt of the job was seen; events without an attempt pass")
    func staleAttemptFilter() {
        var filter = StaleAttemptFilter()
        let events = [
            SessionEvent(id: "1-0", jobID: "a", type: "chunk", data: "", attempt: 1),
            SessionEvent(id: "2-0", jobID: "a", type: "reset", data: "", attempt: 2),
            SessionEvent(id: "3-0", jobID: "a", type: "chunk", data: "", attempt: 1),
            SessionEvent(id: "4-0", jobID: "b", type: "chunk", data: "", attempt: 1),
            SessionEvent(id: "5-0", jobID: "a", type: "chunk", data: "", attempt: 0),
            SessionEvent(id: "6-0", jobID: "a", type: "complete", data: "", attempt: 3),
            SessionEvent(id: "7-0", jobID: "a", type: "chunk", data: "", attempt: 2),
        ]
        #expect(events.filter { filter.admit($0) }.map(\.id) == ["1-0", "2-0", "4-0", "5-0", "6-0"])
    }
}
