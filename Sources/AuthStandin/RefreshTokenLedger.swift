/// Remembers the refresh tokens already exchanged (by `jti`) until they expire, so that each refresh token
/// is good for exactly one refresh (rotation). In memory: a restart forgets them, as befits a stand-in.
actor RefreshTokenLedger {
    /// Used token ids and the time (seconds since 1970) after which they can be forgotten.
    private var used: [String: Int] = [:]
    private var consumedSinceSweep = 0
    /// Seconds kept past expiry, more than the verifier's clock-skew leeway.
    private let margin = 120

    /// Marks the token `tokenID`, valid until `expiresAt`, as used; false if it was used before.
    func consume(tokenID: String, expiresAt: Int, now: Int) -> Bool {
        sweepOccasionally(now: now)
        guard used[tokenID] == nil else { return false }
        used[tokenID] = expiresAt + margin
        return true
    }

    /// How many used token ids are remembered.
    var count: Int { used.count }

    private func sweepOccasionally(now: Int) {
        consumedSinceSweep += 1
        guard consumedSinceSweep >= 256 else { return }
        consumedSinceSweep = 0
        used = used.filter { $0.value >= now }
    }
}
