import Crypto

/// A Lua script run with EVALSHA; a NOSCRIPT reply (a restarted or flushed Redis) runs it once with EVAL,
/// which also caches it again, so a flush racing the retry cannot fail the call.
public struct RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of the source, hex, as Redis names it.
    public let sha1: String

    /// A script from its source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension RedisClient {
    /// Runs `script` with EVALSHA, or with EVAL (caching it again) if Redis does not know it.
    @discardableResult
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let tail = [String(keys.count)] + keys + arguments
        do {
            return try await send(RedisCommand(arguments: ["EVALSHA", script.sha1] + tail))
        } catch let error as RedisServerError where error.prefix == "NOSCRIPT" {
            return try await send(RedisCommand(arguments: ["EVAL", script.source] + tail))
        }
    }
}
