import ChatCore
import Foundation

/// One virtual user of a step: who it is, its access token and (on the full path) its chat session.
struct VirtualUser: Sendable {
    /// Its position in the step, also written into its prompts.
    var index: Int
    var userID: String
    var token: String
    var sessionID: String?
}

/// Where virtual users' tokens come from: signed here with `JWT_ACCESS_SECRET` (a distinct user each), or,
/// when `AUTH_URL` is set, the auth stand-in's login for the testing guide's users (which has no
/// registration, so the virtual users share its end users round-robin).
struct TokenSource: Sendable {
    private enum Kind: Sendable {
        case signing(AccessTokenVerifier)
        case authService(admin: String, supervisor: String, users: [(id: String, token: String)])
    }

    private let kind: Kind

    /// The guide's end users and their passwords, as published in the guide.
    private static let guideUsers = [("user1", "User1@123"), ("user2", "User2@123")]

    /// Logs in at the auth stand-in when `settings.authURL` is set, else signs with `settings.jwtSecret`.
    init(settings: BenchSettings, http: BenchHTTP) async throws {
        if let authURL = settings.authURL {
            func login(_ username: String, _ password: String) async throws -> String {
                let answer = try await http.call(.POST, authURL + "/api/auth/login", json: ["username": username, "password": password])
                guard let token = answer["accessToken"] as? String ?? (answer["data"] as? [String: Any])?["accessToken"] as? String else {
                    throw BenchHTTP.CallError(url: authURL, status: 200, body: "no accessToken in the login answer")
                }
                return token
            }
            var users: [(id: String, token: String)] = []
            for (name, password) in Self.guideUsers { users.append((name, try await login(name, password))) }
            kind = .authService(
                admin: try await login("admin", "admin@admin"), supervisor: try await login("supervisor1", "Supervisor1@"), users: users
            )
        } else {
            guard let secret = settings.jwtSecret else {
                throw BenchHTTP.CallError(url: "-", status: 0, body: "set JWT_ACCESS_SECRET (to sign tokens) or AUTH_URL (to log in)")
            }
            kind = .signing(try AccessTokenVerifier(secret: secret))
        }
    }

    /// An end user's id and token for virtual user `index` of a step named `step`.
    func user(_ index: Int, step: String) -> (id: String, token: String) {
        switch kind {
        case .signing(let signer):
            let id = "bench-\(step)-\(index)"
            return (id, signer.sign(userID: id, role: .enduser, lifetime: 6 * 3_600))
        case .authService(_, _, let users):
            return users[index % users.count]
        }
    }

    /// An admin's token, for allocating credits.
    var adminToken: String {
        switch kind {
        case .signing(let signer): signer.sign(userID: "admin", role: .admin, lifetime: 6 * 3_600)
        case .authService(let admin, _, _): admin
        }
    }

    /// A supervisor's token, for observing sessions.
    var supervisorToken: String {
        switch kind {
        case .signing(let signer): signer.sign(userID: "bench-supervisor", role: .supervisor, lifetime: 6 * 3_600)
        case .authService(_, let supervisor, _): supervisor
        }
    }
}

/// Prepares a step's virtual users on the full path: credits allocated at the accounting stand-in up front,
/// then one chat session each, so that the measured requests only stream.
struct FullPathUsers: Sendable {
    let settings: BenchSettings
    let http: BenchHTTP
    let tokens: TokenSource

    /// `count` users with credits for `messages` replies each (and plenty to spare), each with a new session.
    func prepare(count: Int, messages: Int, step: String) async throws -> [VirtualUser] {
        let admin = tokens.adminToken
        let credits = 1_000_000 + messages * 100_000
        return try await concurrentMap(count, width: 32) { [settings, http, tokens] index in
            let (id, token) = tokens.user(index, step: step)
            _ = try await http.call(
                .POST, settings.accountingURL + "/api/credits/allocate", bearer: admin, json: ["targetUserId": id, "credits": credits]
            )
            let session = try await http.call(
                .POST, settings.chatURL + "/api/chat/sessions", bearer: token, json: ["title": "bench \(step) \(index)", "modelId": settings.modelID]
            )
            guard let sessionID = session["sessionId"] as? String else {
                throw BenchHTTP.CallError(url: settings.chatURL + "/api/chat/sessions", status: 201, body: "no sessionId in \(session)")
            }
            return VirtualUser(index: index, userID: id, token: token, sessionID: sessionID)
        }
    }
}
