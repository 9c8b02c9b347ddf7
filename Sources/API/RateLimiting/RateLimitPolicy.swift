import ChatCore

/// A limit: `limit` requests per `period`, with bursts of up to `burst` at once (GCRA's tolerance).
struct RateLimitPolicy: Sendable, Equatable {
    var limit: Int
    var period: Duration
    var burst: Int

    /// Parses `<limit>/<seconds>[:<burst>]`, e.g. `10/60:5` (10 a minute, 5 at once); burst defaults to limit.
    init(parsing text: String, setting: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1)
        let rate = parts[0].split(separator: "/")
        guard rate.count == 2, let limit = Int(rate[0]), let seconds = Int(rate[1]), limit > 0, seconds > 0,
            let burst = parts.count == 2 ? Int(parts[1]) : limit, burst > 0
        else {
            throw ConfigurationError("\(setting) must look like <limit>/<seconds>[:<burst>], e.g. 10/60:5 (got \(text))")
        }
        self.init(limit: limit, period: .seconds(seconds), burst: burst)
    }

    /// A policy with explicit values.
    init(limit: Int, period: Duration, burst: Int) {
        self.limit = limit
        self.period = period
        self.burst = burst
    }

    /// Milliseconds between two requests at the sustained rate.
    var emissionIntervalMilliseconds: Int64 { max(1, period.milliseconds / Int64(limit)) }
}

/// The kinds of request limited separately.
enum RateLimitClass: String, Sendable, CaseIterable {
    /// Per client IP, before authentication, on every request.
    case ip
    /// Creating sessions.
    case sessionCreate = "session-create"
    /// Starting generations (stream and messages).
    case generation
    /// Reading sessions, messages, jobs, models.
    case read
    /// Observing other users' sessions.
    case observe
    /// Changing things without starting a generation: cancel, update-stream, delete, the model recommendation.
    case write

    /// The environment variable that sets its policy.
    var setting: String { "RATE_LIMIT_" + rawValue.uppercased().replacingOccurrences(of: "-", with: "_") }

    /// Defaults: generous for normal use; the guide's TC-14 loop (20 creations 0.1 s apart) meets 429 at the 6th.
    var defaultPolicy: RateLimitPolicy {
        switch self {
        case .ip: RateLimitPolicy(limit: 600, period: .seconds(60), burst: 120)
        case .sessionCreate: RateLimitPolicy(limit: 10, period: .seconds(60), burst: 5)
        case .generation: RateLimitPolicy(limit: 30, period: .seconds(60), burst: 10)
        case .read: RateLimitPolicy(limit: 300, period: .seconds(60), burst: 60)
        case .observe: RateLimitPolicy(limit: 60, period: .seconds(60), burst: 20)
        case .write: RateLimitPolicy(limit: 120, period: .seconds(60), burst: 30)
        }
    }
}

/// The policy of each class, from the environment.
struct RateLimitSettings: Sendable, Equatable {
    var policies: [RateLimitClass: RateLimitPolicy]
    /// Whether limits apply at all (`RATE_LIMIT_ENABLED`, default true).
    var enabled: Bool

    /// Reads `RATE_LIMIT_<CLASS>` for each class and `RATE_LIMIT_ENABLED`.
    init(environment: Environment) throws {
        var policies: [RateLimitClass: RateLimitPolicy] = [:]
        for kind in RateLimitClass.allCases {
            policies[kind] = try environment[kind.setting].map { try RateLimitPolicy(parsing: $0, setting: kind.setting) } ?? kind.defaultPolicy
        }
        self.policies = policies
        self.enabled = try environment.bool("RATE_LIMIT_ENABLED", default: true)
    }
}
