import ChatCore
import Foundation
import Synchronization

/// Short-lived tokens for calls on a user's behalf (reservation renewals and settlements at the accounting
/// service), signed with the shared secret. A token is reused while it has most of its life ahead of it, so a
/// busy worker signs about one per user per minute instead of one per call, and the accounting service, which
/// remembers the tokens it verified, checks each in full once.
final class UserTokenSigner: Sendable {
    /// How long a token is valid.
    static let lifetime = 300
    /// How long a token is handed out again after it was signed: it then still has at least
    /// `lifetime - reuse` seconds to live, far more than a call takes.
    static let reuse = 60
    /// The most users whose tokens are kept (all are dropped when it is reached).
    static let capacity = 10_000

    private let verifier: AccessTokenVerifier
    private let tokens = Mutex([String: (token: String, signedAt: Int)]())

    /// A signer with `verifier`'s secret.
    init(_ verifier: AccessTokenVerifier) {
        self.verifier = verifier
    }

    /// An enduser token for `userID` valid for at least `lifetime - reuse` more seconds at `now` (seconds since 1970).
    func token(for userID: String, now: Int = Int(Date().timeIntervalSince1970)) -> String {
        if let kept = tokens.withLock({ $0[userID] }), now - kept.signedAt < Self.reuse, now >= kept.signedAt {
            return kept.token
        }
        let token = verifier.sign(userID: userID, role: .enduser, lifetime: Self.lifetime, now: now)
        tokens.withLock { tokens in
            if tokens.count >= Self.capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[userID] = (token, now)
        }
        return token
    }
}
