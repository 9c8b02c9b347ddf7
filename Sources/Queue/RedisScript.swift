import Crypto

/// A Lua script run with EVALSHA, loaded on demand: a NOSCRIPT reply (a restarted or flushed Redis)
/// loads it with SCRIPT LOAD and runs it again.
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
    /// Runs `script` with EVALSHA, loading it first if Redis does not know it.
    @discardableResult
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let tail = [String(keys.count)] + keys + arguments
        do {
            return try await send(RedisCommand(arguments: ["EVALSHA", script.sha1] + tail))
        } catch let error as RedisServerError where error.prefix == "NOSCRIPT" {
            try await send("SCRIPT", "LOAD", script.source)
            return try await send(RedisCommand(arguments: ["EVALSHA", script.sha1] + tail))
        }
    }
}
