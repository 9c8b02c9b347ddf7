import ChatCore
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

@Suite("Verified tokens kept for the next request", .timeLimit(.minutes(1)))
struct VerifiedTokenCacheTests {
    @Test("a token is verified in full once, then only against its expiry; other bytes are verified anew; the cache stays bounded")
    func cache() throws {
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let cache = VerifiedTokenCache(capacity: 3, leeway: verifier.leeway)
        let now = 1_800_000_000
        let token = verifier.sign(userID: "alice", role: .enduser, lifetime: 60, now: now)
        let calls = NIOLockedValueBox(0)
        let counted: (String) -> AuthenticatedUser? = { token in
            calls.withLockedValue { $0 += 1 }
            return verifier.verify(token, now: now)
        }
        #expect(cache.user(for: token, now: now, verify: counted)?.id == "alice")
        #expect(cache.user(for: token, now: now + 10, verify: counted)?.id == "alice")
        #expect(calls.withLockedValue { $0 } == 1)
        // Past the expiry and the leeway the cached answer is gone, and the token is refused.
        #expect(cache.user(for: token, now: now + 60 + verifier.leeway + 1, verify: { verifier.verify($0, now: now + 60 + verifier.leeway + 1) }) == nil)
        // A token with one byte changed is not the cached one: it is verified, and refused.
        var bytes = Array(token.utf8)
        bytes[bytes.count - 10] = bytes[bytes.count - 10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let tampered = String(decoding: bytes, as: UTF8.self)
        #expect(cache.user(for: tampered, now: now, verify: counted) == nil)
        #expect(calls.withLockedValue { $0 } == 2)
        for user in ["b", "c", "d", "e"] {
            _ = cache.user(for: verifier.sign(userID: user, role: .enduser, lifetime: 60, now: now), now: now, verify: { verifier.verify($0, now: now) })
        }
        #expect(cache.user(for: token, now: now, verify: counted)?.id == "alice")
        #expect(calls.withLockedValue { $0 } == 3)  // emptied when full: verified again
    }
}
