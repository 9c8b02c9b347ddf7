import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AuthStandin

/// auth-standin's router, in process, with few PBKDF2 rounds so that hashing stays fast.
enum AuthStandinFixture {
    static let accessSecret = "dev_access_secret_key_change_this_in_production"
    static let refreshSecret = "dev_refresh_secret_key_change_this_in_production"
    static let accessVerifier = try! AccessTokenVerifier(secret: accessSecret)
    static let refreshSigner = try! AccessTokenVerifier(secret: refreshSecret)

    /// The guide's users: username, password, role.
    static let users: [(username: String, password: String, role: UserRole)] = [
        ("admin", "admin@admin", .admin),
        ("supervisor1", "Supervisor1@", .supervisor),
        ("supervisor2", "Supervisor2@", .supervisor),
        ("user1", "User1@123", .enduser),
        ("user2", "User2@123", .enduser),
    ]

    /// The configuration from the guide's secrets, the minimum hash rounds and `overrides`.
    static func configuration(_ overrides: [String: String] = [:]) throws -> AuthConfiguration {
        let base = ["JWT_ACCESS_SECRET": accessSecret, "JWT_REFRESH_SECRET": refreshSecret, "PASSWORD_HASH_ROUNDS": "1000"]
        return try AuthConfiguration(environment: Environment(base.merging(overrides) { $1 }))
    }

    /// Runs `body` against a fresh app (fresh users, throttle and ledger).
    static func with(_ overrides: [String: String] = [:], _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: buildRouter(try await AuthDependencies(configuration: configuration(overrides))))
        try await app.test(.router) { client in try await body(client) }
    }

    /// Logs in and returns the raw answer: status, JSON object and body text.
    static func login(
        _ client: some TestClientProtocol, _ fields: [String: String]
    ) async throws -> (status: HTTPResponse.Status, object: [String: Any], text: String, retryAfter: String?) {
        try await client.execute(uri: "/api/auth/login", method: .post, headers: [.contentType: "application/json"], body: authBody(fields)) {
            ($0.status, authObject($0), String(buffer: $0.body), $0.headers[.retryAfter])
        }
    }

    /// Refreshes and returns the status and JSON object.
    static func refresh(_ client: some TestClientProtocol, _ token: String) async throws -> (status: HTTPResponse.Status, object: [String: Any]) {
        try await client.execute(uri: "/api/auth/refresh", method: .post, body: authBody(["refreshToken": token])) { ($0.status, authObject($0)) }
    }

    /// The claims of a token, unchecked.
    static func claims(_ token: String) -> [String: Any] {
        let parts = token.split(separator: ".")
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return [:] }
        return ((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]) ?? [:]
    }
}

/// The response body as a JSON object; empty when it is not one.
private func authObject(_ response: TestResponse) -> [String: Any] {
    ((try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]) ?? [:]
}

/// A JSON body from string fields.
private func authBody(_ fields: [String: String]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: fields))
}

@Suite("auth-standin: login, refresh, me, throttle, configuration")
struct AuthStandinTests {
    typealias Fixture = AuthStandinFixture

    @Test("TC-01: all five users log in by username and by email; the access token verifies with the right role and claims")
    func loginAllUsers() async throws {
        try await Fixture.with { client in
            for user in Fixture.users {
                for fields in [["username": user.username], ["email": "\(user.username)@example.com"]] {
                    let answer = try await Fixture.login(client, fields.merging(["password": user.password]) { $1 })
                    #expect(answer.status == .ok, "\(fields)")
                    #expect(
                        answer.object["user"] as? [String: String]
                            == ["id": user.username, "username": user.username, "email": "\(user.username)@example.com", "role": user.role.rawValue]
                    )
                    // The guide's script: grep -o '"accessToken":"[^"]*' | cut -d'"' -f4
                    #expect(answer.text.contains("\"accessToken\":\"ey"))
                    let access = try #require(answer.object["accessToken"] as? String)
                    let refresh = try #require(answer.object["refreshToken"] as? String)
                    #expect(Fixture.accessVerifier.verify(access) == AuthenticatedUser(id: user.username, role: user.role, expiresAt: Fixture.claims(access)["exp"] as? Int ?? 0))
                    let claims = Fixture.claims(access)
                    #expect(claims["sub"] as? String == user.username)
                    #expect(claims["userId"] as? String == user.username)
                    #expect(claims["username"] as? String == user.username)
                    #expect(claims["email"] as? String == "\(user.username)@example.com")
                    #expect(claims["role"] as? String == user.role.rawValue)
                    #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 900)
                    let refreshClaims = Fixture.claims(refresh)
                    #expect(refreshClaims["type"] as? String == "refresh")
                    #expect((refreshClaims["jti"] as? String)?.isEmpty == false)
                    #expect((refreshClaims["exp"] as? Int ?? 0) - (refreshClaims["iat"] as? Int ?? 0) == 604_800)
                    #expect(Fixture.accessVerifier.verify(refresh) == nil, "a refresh token is not signed with the access secret")
                }
            }
        }
    }

    @Test("a wrong password, an unknown user and an unknown email get the same 401")
    func invalidCredentials() async throws {
        try await Fixture.with { client in
            let wrongPassword = try await Fixture.login(client, ["username": "user1", "password": "User1@124"])
            let unknownUser = try await Fixture.login(client, ["username": "nobody", "password": "User1@123"])
            let unknownEmail = try await Fixture.login(client, ["email": "nobody@example.com", "password": "User1@123"])
            let otherUsersPassword = try await Fixture.login(client, ["username": "user1", "password": "User2@123"])
            for answer in [wrongPassword, unknownUser, unknownEmail, otherUsersPassword] {
                #expect(answer.status == .unauthorized)
                #expect(answer.object["message"] as? String == "Invalid credentials")
                #expect(answer.text == wrongPassword.text)
            }
        }
    }

    @Test("bad login bodies are 400 with a clear message")
    func badLoginBodies() async throws {
        try await Fixture.with { client in
            let cases: [(ByteBuffer?, String)] = [
                (nil, "The request body must be a JSON object"),
                (ByteBuffer(string: "{\"username\": "), "The request body must be a JSON object with string fields"),
                (ByteBuffer(string: "{\"username\": \"user1\", \"password\": 123}"), "The request body must be a JSON object with string fields"),
                (authBody(["username": "user1"]), "password is required"),
                (authBody(["password": "User1@123"]), "username or email is required"),
                (authBody(["username": "  ", "password": "User1@123"]), "username or email is required"),
            ]
            for (requestBody, message) in cases {
                try await client.execute(uri: "/api/auth/login", method: .post, body: requestBody) { response in
                    #expect(response.status == .badRequest, "\(message)")
                    #expect(authObject(response)["message"] as? String == message)
                    #expect(authObject(response)["code"] as? String != nil)
                }
            }
        }
    }

    @Test("TC-02: refresh gives a new pair that works; a used refresh token, an access token or a forged one is 401")
    func refreshRotation() async throws {
        try await Fixture.with { client in
            let login = try await Fixture.login(client, ["username": "supervisor1", "password": "Supervisor1@"])
            let firstRefresh = try #require(login.object["refreshToken"] as? String)
            let firstAccess = try #require(login.object["accessToken"] as? String)

            let refreshed = try await Fixture.refresh(client, firstRefresh)
            #expect(refreshed.status == .ok)
            #expect(Set(refreshed.object.keys) == ["accessToken", "refreshToken"])
            let newAccess = try #require(refreshed.object["accessToken"] as? String)
            let newRefresh = try #require(refreshed.object["refreshToken"] as? String)
            #expect(Fixture.accessVerifier.verify(newAccess)?.id == "supervisor1")
            #expect(Fixture.accessVerifier.verify(newAccess)?.role == .supervisor)
            #expect(Fixture.claims(newAccess)["email"] as? String == "supervisor1@example.com")
            #expect(newRefresh != firstRefresh)

            let expired = Fixture.refreshSigner.sign(userID: "user1", role: .enduser, lifetime: -300, extraClaims: ["type": "refresh", "jti": "expired-1"])
            let untyped = Fixture.refreshSigner.sign(userID: "user1", role: .enduser, lifetime: 300, extraClaims: ["jti": "untyped-1"])
            let ghost = Fixture.refreshSigner.sign(userID: "ghost", role: .admin, lifetime: 300, extraClaims: ["type": "refresh", "jti": "ghost-1"])
            for token in [firstRefresh, firstAccess, newAccess, expired, untyped, ghost, "not.a.token", "garbage"] {
                let answer = try await Fixture.refresh(client, token)
                #expect(answer.status == .unauthorized)
                #expect(answer.object["message"] as? String == "Invalid refresh token")
            }
            // The rotated token still works, once.
            let rotatedOnce = try await Fixture.refresh(client, newRefresh).status
            let rotatedTwice = try await Fixture.refresh(client, newRefresh).status
            #expect(rotatedOnce == .ok)
            #expect(rotatedTwice == .unauthorized)
            try await client.execute(uri: "/api/auth/refresh", method: .post, body: authBody([:])) { response in
                #expect(response.status == .badRequest)
                #expect(authObject(response)["message"] as? String == "refreshToken is required")
            }
        }
    }

    @Test("/api/auth/me answers the caller's profile; a bad, refresh or unknown user's token is 401")
    func me() async throws {
        try await Fixture.with { client in
            let login = try await Fixture.login(client, ["email": "user2@example.com", "password": "User2@123"])
            let access = try #require(login.object["accessToken"] as? String)
            let refresh = try #require(login.object["refreshToken"] as? String)
            try await client.execute(uri: "/api/auth/me", method: .get, headers: [.authorization: "Bearer \(access)"]) { response in
                #expect(response.status == .ok)
                #expect(authObject(response)["user"] as? [String: String] == ["id": "user2", "username": "user2", "email": "user2@example.com", "role": "enduser"])
            }
            let ghost = Fixture.accessVerifier.sign(userID: "ghost", role: .admin, lifetime: 300)
            let expired = Fixture.accessVerifier.sign(userID: "user2", role: .enduser, lifetime: -300)
            let bad: [HTTPFields] = [
                [:], [.authorization: "Bearer"], [.authorization: "Basic dTpw"], [.authorization: access],
                [.authorization: "Bearer \(refresh)"], [.authorization: "Bearer \(ghost)"], [.authorization: "Bearer \(expired)"],
            ]
            for headers in bad {
                try await client.execute(uri: "/api/auth/me", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    #expect(authObject(response)["message"] as? String == "Invalid authentication token")
                }
            }
        }
    }

    @Test("health on /health and /api/health")
    func health() async throws {
        try await Fixture.with { client in
            for path in ["/health", "/api/health"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(authObject(response) as? [String: String] == ["status": "ok", "service": "auth-service"])
                }
            }
        }
    }

    @Test("six failures for one user: 429 with Retry-After even with the right password; another user is unaffected")
    func throttlePerUser() async throws {
        try await Fixture.with { client in
            for _ in 1...5 {
                let status = try await Fixture.login(client, ["username": "user1", "password": "wrong"]).status
                #expect(status == .unauthorized)
            }
            for fields in [["username": "user1", "password": "wrong"], ["username": "user1", "password": "User1@123"], ["email": "USER1@example.com", "password": "User1@123"]] {
                let refused = try await Fixture.login(client, fields)
                #expect(refused.status == .tooManyRequests)
                #expect(refused.object["message"] as? String == "Too many login attempts")
                #expect(refused.object["code"] as? String == "TOO_MANY_ATTEMPTS")
                let retryAfter = Int(refused.retryAfter ?? "") ?? 0
                #expect((1...900).contains(retryAfter))
            }
            let otherUser = try await Fixture.login(client, ["username": "user2", "password": "User2@123"]).status
            #expect(otherUser == .ok)
        }
    }

    @Test("a success resets the user's failures")
    func successResets() async throws {
        try await Fixture.with { client in
            for round in 1...2 {
                for _ in 1...4 {
                    let status = try await Fixture.login(client, ["username": "admin", "password": "wrong"]).status
                    #expect(status == .unauthorized, "round \(round)")
                }
                let status = try await Fixture.login(client, ["username": "admin", "password": "admin@admin"]).status
                #expect(status == .ok, "round \(round)")
            }
        }
    }

    @Test("one client address failing across many names is refused after four times the per-user limit")
    func throttlePerClient() async throws {
        try await Fixture.with(["LOGIN_MAX_FAILURES": "2"]) { client in
            for index in 0..<8 {
                let status = try await Fixture.login(client, ["username": "guess\(index)", "password": "x"]).status
                #expect(status == .unauthorized)
            }
            let refused = try await Fixture.login(client, ["username": "user1", "password": "User1@123"])
            #expect(refused.status == .tooManyRequests)
            #expect(refused.retryAfter != nil)
        }
    }

    @Test("the throttle's window slides: failures expire, and Retry-After says when")
    func throttleWindow() async {
        let throttle = LoginThrottle(maxPerUser: 2, maxPerClient: 100, window: 10)
        #expect(await throttle.begin(user: "u", client: "c", now: 0) == .allowed(.init(user: "u", client: "c", startedAt: 0)))
        _ = await throttle.begin(user: "u", client: "c", now: 1)
        #expect(await throttle.begin(user: "u", client: "c", now: 2) == .refused(retryAfter: 8))
        #expect(await throttle.begin(user: "v", client: "c", now: 2) == .allowed(.init(user: "v", client: "c", startedAt: 2)))
        #expect(await throttle.begin(user: "u", client: "c", now: 10.5) == .allowed(.init(user: "u", client: "c", startedAt: 10.5)))
    }

    @Test("password hashes: salted per password, matched only by the password")
    func passwordHash() throws {
        let first = try PasswordHash.make(password: "User1@123", rounds: 1_000)
        let second = try PasswordHash.make(password: "User1@123", rounds: 1_000)
        #expect(first.salt.count == 16 && first.digest.count == 32)
        #expect(first.salt != second.salt && first.digest != second.digest)
        #expect(first.matches("User1@123"))
        #expect(!first.matches("User1@124"))
        #expect(!PasswordHash.decoy(rounds: 1_000).matches("User1@123"))
    }

    @Test("configuration: defaults, and a short, missing or reused secret or too few rounds refused with one line")
    func configuration() throws {
        let defaults = try AuthConfiguration(
            environment: Environment(["JWT_ACCESS_SECRET": Fixture.accessSecret, "JWT_REFRESH_SECRET": Fixture.refreshSecret])
        )
        #expect(defaults.host == "0.0.0.0" && defaults.port == 3000)
        #expect(defaults.accessTokenLifetime == 900 && defaults.refreshTokenLifetime == 604_800)
        #expect(defaults.loginMaxFailures == 5 && defaults.loginFailureWindow == 900 && defaults.clientMaxFailures == 20)
        #expect(defaults.passwordHashRounds == 210_000)

        #expect(throws: ConfigurationError("JWT_ACCESS_SECRET must be at least 32 bytes long (it has 5)")) {
            try Fixture.configuration(["JWT_ACCESS_SECRET": "short"])
        }
        #expect(throws: ConfigurationError("JWT_REFRESH_SECRET must be at least 32 bytes long (it has 9)")) {
            try Fixture.configuration(["JWT_REFRESH_SECRET": "too_short"])
        }
        #expect(throws: ConfigurationError("JWT_REFRESH_SECRET is required but not set")) {
            try AuthConfiguration(environment: Environment(["JWT_ACCESS_SECRET": Fixture.accessSecret]))
        }
        #expect(throws: ConfigurationError("JWT_REFRESH_SECRET must differ from JWT_ACCESS_SECRET")) {
            try Fixture.configuration(["JWT_REFRESH_SECRET": Fixture.accessSecret])
        }
        #expect(throws: ConfigurationError("PASSWORD_HASH_ROUNDS must be an integer in 1000...10000000 (got 999)")) {
            try Fixture.configuration(["PASSWORD_HASH_ROUNDS": "999"])
        }
        #expect(throws: ConfigurationError("PORT must be an integer in 1...65535 (got 0)")) {
            try Fixture.configuration(["PORT": "0"])
        }
    }
}
