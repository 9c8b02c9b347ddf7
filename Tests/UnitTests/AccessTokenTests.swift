import ChatCore
import Crypto
import Foundation
import Testing

@Suite("HS256 access tokens")
struct AccessTokenTests {
    static let secret = "dev_access_secret_key_change_this_in_production"
    let verifier = try! AccessTokenVerifier(secret: secret)
    let now = 1_800_000_000
    var key: SymmetricKey { SymmetricKey(data: Array(Self.secret.utf8)) }

    func token(header: [String: Any] = ["alg": "HS256", "typ": "JWT"], claims: [String: Any], key: SymmetricKey? = nil) -> String {
        AccessTokenVerifier.sign(header: header, claims: claims, key: key ?? self.key)
    }

    @Test("a valid token yields its subject and role")
    func acceptsValidToken() {
        let user = verifier.verify(token(claims: ["sub": "user1", "role": "enduser", "exp": now + 60]), now: now)
        #expect(user == AuthenticatedUser(id: "user1", role: .enduser, expiresAt: now + 60))
    }

    @Test("the subject falls back to userId, then id")
    func subjectFallbacks() {
        #expect(verifier.verify(token(claims: ["userId": "u2", "role": "admin", "exp": now + 60]), now: now)?.id == "u2")
        #expect(verifier.verify(token(claims: ["id": "u3", "role": "supervisor", "exp": now + 60]), now: now)?.id == "u3")
    }

    @Test("a token signed by the verifier itself verifies")
    func roundTrip() {
        let signed = verifier.sign(userID: "worker-on-behalf", role: .enduser, lifetime: 60, now: now)
        #expect(verifier.verify(signed, now: now)?.id == "worker-on-behalf")
    }

    @Test("the hand-written claims are the bytes the generic signer writes, and any subject survives")
    func handWrittenClaims() throws {
        let signed = verifier.sign(userID: "user-7", role: .supervisor, lifetime: 60, now: now, extraClaims: ["jti": "abc", "role": "admin"])
        #expect(signed == token(claims: ["sub": "user-7", "role": "admin", "iat": now, "exp": now + 60, "jti": "abc"]))
        for awkward in ["quote \" back \\ slash / tab \t nul \u{0}", "é 中文 😀", "\u{7f}\u{1f}"] {
            let user = verifier.verify(verifier.sign(userID: awkward, role: .enduser, lifetime: 60, now: now), now: now)
            #expect(user == AuthenticatedUser(id: awkward, role: .enduser, expiresAt: now + 60))
        }
    }

    @Test("expiry allows 30 s of clock skew, not more")
    func expiryLeeway() {
        let expired = token(claims: ["sub": "u", "role": "enduser", "exp": now - 29])
        #expect(verifier.verify(expired, now: now) != nil)
        let longExpired = token(claims: ["sub": "u", "role": "enduser", "exp": now - 31])
        #expect(verifier.verify(longExpired, now: now) == nil)
    }

    @Test("enormous or absurd time claims are refused (a 401), never a crash", arguments: [
        ["exp": Int.max], ["exp": Int.min], ["exp": 1e300], ["exp": -1e300], ["exp": 1e19], ["exp": 1_000_000_000_001],
        ["exp": 1_800_000_060, "nbf": Int.max], ["exp": 1_800_000_060, "nbf": 1e300],
    ] as [[String: any Sendable]])
    func absurdTimes(_ times: [String: any Sendable]) {
        var claims: [String: Any] = ["sub": "u", "role": "enduser"]
        for (name, value) in times { claims[name] = value }
        #expect(verifier.verify(token(claims: claims), now: now) == nil, "\(times)")
        // An enormous iat is not read: the token stands or falls by exp and nbf.
        claims["exp"] = now + 60
        claims["nbf"] = nil
        claims["iat"] = Int.max
        #expect(verifier.verify(token(claims: claims), now: now)?.id == "u")
    }

    @Test("every bad token is refused")
    func rejectsBadTokens() {
        let valid: [String: Any] = ["sub": "user1", "role": "enduser", "exp": now + 600]
        var noExp = valid
        noExp["exp"] = nil
        let wrongKey = SymmetricKey(data: Array("another_secret_that_is_long_enough_for_hs256".utf8))
        let good = token(claims: valid)
        let parts = good.split(separator: ".").map(String.init)
        let cases: [(String, String)] = [
            ("alg none", token(header: ["alg": "none"], claims: valid)),
            ("alg none, no signature", parts[0].replacingOccurrences(of: parts[0], with: Base64URL.encode(Data(#"{"alg":"none"}"#.utf8))) + "." + parts[1] + "."),
            ("HS384", token(header: ["alg": "HS384"], claims: valid)),
            ("HS512", token(header: ["alg": "HS512"], claims: valid)),
            ("RS256", token(header: ["alg": "RS256"], claims: valid)),
            ("wrong secret", token(claims: valid, key: wrongKey)),
            ("no exp", token(claims: noExp)),
            ("nbf in the future", token(claims: valid.merging(["nbf": now + 120]) { $1 })),
            ("unknown role", token(claims: valid.merging(["role": "root"]) { $1 })),
            ("no subject", token(claims: ["role": "enduser", "exp": now + 60])),
            ("two segments", parts[0] + "." + parts[1]),
            ("four segments", good + ".x"),
            ("bad base64", parts[0] + ".***." + parts[2]),
            ("tampered payload", parts[0] + "." + Base64URL.encode(Data(#"{"sub":"admin","role":"admin","exp":9999999999}"#.utf8)) + "." + parts[2]),
            ("header not JSON", Base64URL.encode(Data("nope".utf8)) + "." + parts[1] + "." + parts[2]),
            ("empty", ""),
        ]
        #expect(verifier.verify(good, now: now) != nil)
        for (name, bad) in cases {
            #expect(verifier.verify(bad, now: now) == nil, "\(name) was accepted")
        }
    }

    @Test("a secret shorter than 32 bytes is refused at start")
    func rejectsShortSecret() {
        #expect(throws: ConfigurationError.self) { try AccessTokenVerifier(secret: "too-short") }
    }
}
