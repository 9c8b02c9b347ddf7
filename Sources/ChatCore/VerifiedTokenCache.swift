import Synchronization

/// Tokens verified recently: a client that sends the same token with every request has it checked in full
/// once (HMAC and two JSON parses), then only against its expiry. Keyed by the whole token, signature
/// included, so a cached answer is only ever given for the very same bytes. Bounded: emptied when full.
public final class VerifiedTokenCache: Sendable {
    private let entries = Mutex([String: AuthenticatedUser]())
    /// The most tokens kept.
    public let capacity: Int
    /// Clock skew allowed on the expiry, as the verifier allows it.
    public let leeway: Int

    /// A cache of at most `capacity` tokens.
    public init(capacity: Int = 10_000, leeway: Int) {
        self.capacity = capacity
        self.leeway = leeway
    }

    /// The user `token` proves at `now` (seconds since 1970): from the cache while it has not expired, else from
    /// `verify`, whose answer is kept.
    public func user(for token: String, now: Int, verify: (String) -> AuthenticatedUser?) -> AuthenticatedUser? {
        if let cached = entries.withLock({ $0[token] }) {
            if now <= cached.expiresAt + leeway { return cached }
            entries.withLock { _ = $0.removeValue(forKey: token) }
            return nil
        }
        guard let user = verify(token) else { return nil }
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = user
        }
        return user
    }
}
