import Crypto
import CryptoExtras

/// A password stored as a salted PBKDF2-HMAC-SHA256 digest. Hashing and checking are slow on purpose
/// (milliseconds): call them on a detached task, never on an event loop.
struct PasswordHash: Sendable {
    /// Random bytes mixed into this hash, different for every stored password.
    let salt: [UInt8]
    /// PBKDF2's output for the password and salt.
    let digest: [UInt8]
    /// PBKDF2 iterations used for this hash.
    let rounds: Int

    /// Salt length in bytes.
    static let saltByteCount = 16
    /// Digest length in bytes (one SHA-256 block of output).
    static let digestByteCount = 32

    /// Hashes `password` with a fresh random salt.
    static func make(password: String, rounds: Int) throws -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<saltByteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return PasswordHash(salt: salt, digest: try derive(password, salt: salt, rounds: rounds), rounds: rounds)
    }

    /// A hash no password matches (random salt and digest), checked against for unknown users so that a
    /// wrong username costs as much time as a wrong password.
    static func decoy(rounds: Int) -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) } }
        return PasswordHash(salt: randomBytes(saltByteCount), digest: randomBytes(digestByteCount), rounds: rounds)
    }

    /// Whether `password` hashes to this digest; the digests are compared in constant time.
    func matches(_ password: String) -> Bool {
        guard let candidate = try? Self.derive(password, salt: salt, rounds: rounds) else { return false }
        return Self.constantTimeEqual(candidate, digest)
    }

    /// Whether two byte strings are equal, taking the same time wherever they differ.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    private static func derive(_ password: String, salt: [UInt8], rounds: Int) throws -> [UInt8] {
        // The checked `rounds:` variant refuses fewer than 210,000; the configuration enforces its own floor
        // (1,000) so that tests can hash quickly, hence the unchecked variant.
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: digestByteCount, unsafeUncheckedRounds: rounds
        )
        return key.withUnsafeBytes { Array($0) }
    }
}
