import Logging
import Queue

/// The outcome of one rate-limit check.
struct RateLimitDecision: Sendable, Equatable {
    var allowed: Bool
    /// The policy's sustained limit, for `RateLimit-Limit`.
    var limit: Int
    /// Requests left in the current burst, for `RateLimit-Remaining`.
    var remaining: Int
    /// Seconds until the allowance is whole again, for `RateLimit-Reset`.
    var resetSeconds: Int
    /// Seconds to wait before retrying, for `Retry-After` (0 when allowed).
    var retryAfterSeconds: Int
}

/// GCRA rate limiting in Redis, one atomic script per decision, so that every chat-api process sharing the
/// Redis shares the limits. The script reads Redis's own clock: processes' clocks never matter.
struct RateLimiter: Sendable {
    let redis: RedisClient
    let settings: RateLimitSettings
    let logger: Logger
    /// The keys' prefix; processes that must share limits share it.
    var keyPrefix = "chat:ratelimit"

    /// Checks and counts one request of `kind` for `subject` (a user id or an IP). Redis down: allowed, with a warning.
    func check(_ kind: RateLimitClass, subject: String) async -> RateLimitDecision? {
        guard settings.enabled, let policy = settings.policies[kind] else { return nil }
        let interval = policy.emissionIntervalMilliseconds
        do {
            let reply = try await redis.evaluate(
                Self.script, keys: ["\(keyPrefix):\(kind.rawValue):{\(subject)}"],
                arguments: [String(interval), String(interval * Int64(policy.burst))]
            )
            guard let values = reply.array?.compactMap(\.int), values.count == 4 else {
                logger.warning("rate limiter returned an unexpected reply; allowing", metadata: ["reply": "\(reply)"])
                return nil
            }
            return RateLimitDecision(
                allowed: values[0] == 1, limit: policy.limit, remaining: max(0, values[2]),
                resetSeconds: Self.seconds(values[3]), retryAfterSeconds: values[0] == 1 ? 0 : max(1, Self.seconds(values[1]))
            )
        } catch {
            logger.warning("rate limiter unavailable (Redis); allowing the request", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private static func seconds(_ milliseconds: Int) -> Int { (milliseconds + 999) / 1000 }

    /// GCRA: KEYS[1] holds the theoretical arrival time (ms); ARGV[1] the emission interval, ARGV[2] the burst
    /// tolerance (interval × burst). Returns {allowed, retry-after ms, remaining, reset ms}.
    static let script = RedisScript(
        """
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local next_tat = tat + interval
        local allow_at = next_tat - tolerance
        if now < allow_at then
          return {0, allow_at - now, 0, tat - now}
        end
        redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1000)
        return {1, 0, math.floor((tolerance - (next_tat - now)) / interval), next_tat - now}
        """
    )
}
