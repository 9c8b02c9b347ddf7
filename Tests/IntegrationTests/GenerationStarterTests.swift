import NIOConcurrencyHelpers
import Testing

@testable import API
@testable import Queue

@Suite("Starting a generation", .timeLimit(.minutes(1)))
struct GenerationStarterTests {
    @Test("a step whose Redis answer was lost is run once more; a refusal by Redis is not")
    func onceMore() async throws {
        let calls = NIOLockedValueBox(0)
        let value = try await GenerationStarter.onceMore {
            let call = calls.withLockedValue { count in
                count += 1
                return count
            }
            if call == 1 { throw RedisClientError(.timeout, "no answer") }
            return "second"
        }
        #expect(value == "second" && calls.withLockedValue { $0 } == 2)
        calls.withLockedValue { $0 = 0 }
        await #expect(throws: RedisServerError.self) {
            try await GenerationStarter.onceMore { () async throws -> String in
                calls.withLockedValue { $0 += 1 }
                throw RedisServerError(message: "ERR refused")
            }
        }
        #expect(calls.withLockedValue { $0 } == 1)
    }
}
