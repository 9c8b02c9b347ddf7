import Crypto
import Foundation

/// A user's role, as the auth service puts it in the token.
public enum UserRole: String, Codable, Sendable, CaseIterable {
    case admin
    case supervisor
    case enduser

    /// Whether the role may observe other users' sessions.
    public var canObserve: Bool { self == .admin || self == .supervisor }
}

/// The caller, as proven by a valid access token.
public struct AuthenticatedUser: Sendable, Equatable {
    /// The token's subject: `sub`, else `userId`, else `id`.
    public var id: String
    public var role: UserRole
    /// Seconds since 1970 at which the token expires.
    public var expiresAt: Int

    /// Creates a user value.
    public init(id: String, role: UserRole, expiresAt: Int) {
        self.id = id
        self.role = role
        self.expiresAt = expiresAt
    }
}

/// Verifies and signs HS256 JSON Web Tokens with one shared secret. Only HS256 is accepted: `alg: none` and
/// every other algorithm fail, as do a bad signature, a missing or passed `exp`, a future `nbf`, malformed
/// segments and an unknown role. Failures carry no detail on purpose: all of them are one 401 to the client.
public struct AccessTokenVerifier: Sendable {
    /// Secrets shorter than this are refused at start.
    public static let minimumSecretLength = 32
    private let key: SymmetricKey
    /// Clock skew allowed on `exp` and `nbf`.
    public let leeway: Int

    /// The shared secret from `setting` (default `JWT_ACCESS_SECRET`): required, at least 32 bytes, or a
    /// `ConfigurationError` naming the setting.
    public static func secret(from environment: Environment, setting: String = "JWT_ACCESS_SECRET") throws -> String {
        let secret = try environment.required(setting)
        guard secret.utf8.count >= minimumSecretLength else {
            throw ConfigurationError("\(setting) must be at least \(minimumSecretLength) bytes long (it has \(secret.utf8.count))")
        }
        return secret
    }

    /// A verifier for `secret`; throws a `ConfigurationError` if it is shorter than 32 bytes.
    public init(secret: String, leeway: Int = 30) throws {
        guard secret.utf8.count >= Self.minimumSecretLength else {
            throw ConfigurationError("JWT_ACCESS_SECRET must be at least \(Self.minimumSecretLength) bytes long (it has \(secret.utf8.count))")
        }
        self.key = SymmetricKey(data: Array(secret.utf8))
        self.leeway = leeway
    }

    /// The user a token proves, or nil when the token is not valid at `now` (seconds since 1970).
    public func verify(_ token: some StringProtocol, now: Int = Int(Date().timeIntervalSince1970)) -> AuthenticatedUser? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty,
            let headerBytes = Base64URL.decode(parts[0]),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            header["alg"] as? String == "HS256",
            let signature = Base64URL.decode(parts[2])
        else { return nil }
        let signed = Array("\(parts[0]).\(parts[1])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else { return nil }
        guard let payloadBytes = Base64URL.decode(parts[1]),
            let claims = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
            let exp = Self.seconds(claims["exp"]), now <= exp + leeway
        else { return nil }
        if let nbfValue = claims["nbf"] {
            guard let nbf = Self.seconds(nbfValue), nbf <= now + leeway else { return nil }
        }
        guard let subject = Self.subject(claims) else { return nil }
        let role: UserRole
        switch claims["role"] {
        case nil: role = .enduser
        case let text as String:
            guard let known = UserRole(rawValue: text) else { return nil }
            role = known
        default: return nil
        }
        return AuthenticatedUser(id: subject, role: role, expiresAt: exp)
    }

    /// Signs an HS256 token for `user`, valid for `lifetime` seconds from `now`; used by the worker for
    /// short-lived calls on a user's behalf, and by tests.
    /// The claims' JSON is written by hand (keys sorted, as `sign(header:claims:key:)` writes them): the worker
    /// signs one token per settlement, and JSONSerialization cost more than the HMAC.
    public func sign(userID: String, role: UserRole, lifetime: Int, now: Int = Int(Date().timeIntervalSince1970), extraClaims: [String: String] = [:]) -> String {
        var claims: [String: String] = ["exp": String(now + lifetime), "iat": String(now)]
        for (name, value) in ["role": role.rawValue, "sub": userID].merging(extraClaims, uniquingKeysWith: { $1 }) {
            var quoted = "\""
            JSONText.appendEscaped(value, to: &quoted)
            claims[name] = quoted + "\""
        }
        var json = "{"
        for (index, name) in claims.keys.sorted().enumerated() {
            if index > 0 { json += "," }
            json += "\""
            JSONText.appendEscaped(name, to: &json)
            json += "\":" + claims[name]!
        }
        json += "}"
        let signed = Self.hs256Header + "." + Base64URL.encode(Data(json.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: key)
        return signed + "." + Base64URL.encode(Data(mac))
    }

    /// `{"alg":"HS256","typ":"JWT"}` in base64url.
    private static let hs256Header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    /// Signs any header and claims with `key` (tests use this to build malformed tokens).
    public static func sign(header: [String: Any], claims: [String: Any], key: SymmetricKey) -> String {
        let headerPart = Base64URL.encode(try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        let claimsPart = Base64URL.encode(try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(headerPart).\(claimsPart)".utf8), using: key)
        return "\(headerPart).\(claimsPart).\(Base64URL.encode(Data(mac)))"
    }

    private static func subject(_ claims: [String: Any]) -> String? {
        for name in ["sub", "userId", "id"] {
            if let text = claims[name] as? String, !text.isEmpty { return text }
            if let number = claims[name] as? Int { return String(number) }
        }
        return nil
    }

    /// Time claims beyond this many seconds from 1970 either way (about 31,700 years) are refused: no real token
    /// carries one, and the checks add a leeway to them, which must not overflow.
    static let timeClaimLimit = 1_000_000_000_000

    /// A time claim (`exp`, `nbf`) in whole seconds; nil for anything but a number within `timeClaimLimit`.
    private static func seconds(_ value: Any?) -> Int? {
        let limit = Double(timeClaimLimit)
        switch value {
        case let number as Int where (-timeClaimLimit...timeClaimLimit).contains(number): return number
        case let number as Double where number.isFinite && (-limit...limit).contains(number): return Int(number)
        default: return nil
        }
    }
}

/// Base64url without padding, as JWTs use it.
public enum Base64URL {
    /// The bytes of `text`, or nil if it is not base64url.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var base64 = String(text).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }

    /// `data` as base64url without padding.
    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
