import ChatCore
import Foundation
import Testing

@testable import ChatState
@testable import Queue

@Suite("Session event streams against redis-server")
struct SessionEventsTests {
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
