import ChatCore
import Foundation
import Testing

@testable import ChatState
@testable import Queue

@Suite("Session event streams against redis-server")
struct SessionEventsTests {
    @Test("reading from an entry id sees every later event exactly once, in order, while events keep coming")
    func readsEveryLaterEventOnce() async throws {
        let redis = try testRedisClient()
        let writer = try testRedisClient()
        defer {
            redis.shutdown()
            writer.shutdown()
        }
        let reader = SessionEvents(redis: redis, configuration: SessionEventsConfiguration(blockTime: .milliseconds(200), batchSize: 7))
        let events = SessionEvents(redis: writer)
        let session = UUID().uuidString
        var ids: [String] = []
        for index in 0..<5 {
            ids.append(try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "{\"index\":\(index)}"))
        }
        // Subscribe after the third event, then append 200 more while reading.
        let expected = 200 + 2
        let start = ids[2]
        let consumer = Task {
            var seen: [SessionEvent] = []
            for try await event in reader.subscribe(sessionID: session, after: start) {
                seen.append(event)
                if seen.count == expected { break }
            }
            return seen
        }
        for index in 5..<205 {
            try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "{\"index\":\(index)}")
            if index % 50 == 0 { try await Task.sleep(for: .milliseconds(30)) }
        }
        let seen = try await consumer.value
        #expect(seen.count == expected)
        #expect(seen.map(\.data) == (3..<205).map { "{\"index\":\($0)}" })
        #expect(Set(seen.map(\.id)).count == expected)
        #expect(seen.first?.id == ids[3])
        // The stream expires when idle.
        let ttl = try await redis.send("PTTL", SessionEvents.key(sessionID: session)).int ?? -1
        #expect(ttl > 0)
    }

    @Test("subscribing with no id sees only events appended afterwards")
    func subscribeFromNow() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let events = SessionEvents(redis: redis, configuration: SessionEventsConfiguration(blockTime: .milliseconds(200)))
        let session = UUID().uuidString
        try await events.append(sessionID: session, jobID: "old", type: "chunk", data: "{}")
        var iterator = events.subscribe(sessionID: session, after: nil).makeAsyncIterator()
        let next = Task { [iterator] in
            var iterator = iterator
            return try await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(300))
        try await events.append(sessionID: session, jobID: "new", type: "complete", data: "{}")
        let event = try await next.value
        #expect(event?.jobID == "new")
        #expect(event?.type == "complete")
        _ = iterator
        iterator = events.subscribe(sessionID: session, after: "0-0").makeAsyncIterator()
        #expect(try await iterator.next()?.jobID == "old")
    }

    @Test("cancelling a waiting reader ends it promptly")
    func cancellation() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let events = SessionEvents(redis: redis, configuration: SessionEventsConfiguration(blockTime: .seconds(30)))
        let reader = Task {
            for try await _ in events.subscribe(sessionID: UUID().uuidString, after: "0-0") {}
        }
        try await Task.sleep(for: .milliseconds(200))
        let clock = ContinuousClock()
        let start = clock.now
        reader.cancel()
        _ = await reader.result
        #expect(clock.now - start < .seconds(2))
        #expect(try await redis.ping() == "PONG")
    }

    @Test("chunks published without waiting arrive in order, each once, and flush reports them stored")
    func pipelinedChunksKeepTheirOrder() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let events = SessionEvents(redis: redis)
        let session = UUID().uuidString
        var publisher = events.chunkPublisher(sessionID: session, jobID: "j")
        for index in 0..<500 { try await publisher.publish(ChunkEvent(content: "c\(index)", index: index), wait: index == 0) }
        try await publisher.flush()
        let stored = try await events.read(sessionID: session, after: "0-0")
        #expect(stored.count == 500)
        #expect(stored.map(\.data) == (0..<500).map { #"{"content":"c\#($0)","index":\#($0)}"# })
        #expect(stored.allSatisfy { $0.type == "chunk" && $0.jobID == "j" })
    }
}
