import CORS
import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import API

/// Pages of allowed origins may call the API from a browser: preflights answered, answers readable (errors
/// included), the request id and rate-limit headers exposed. Other origins get no CORS header at all.
@Suite("CORS for browser pages on other origins")
struct CORSTests {
    static let policy = try! CORSPolicy(parsing: "http://localhost:*, https://console.example.com")

    @Test("the setting: exact origins, any port of a host, *, and malformed entries refused")
    func policyParsing() throws {
        #expect(Self.policy.allows("http://localhost:5173"))
        #expect(Self.policy.allows("http://LOCALHOST:8080"))
        #expect(Self.policy.allows("https://console.example.com"))
        #expect(!Self.policy.allows("https://console.example.com:8443"))
        #expect(!Self.policy.allows("https://localhost:5173"))
        #expect(!Self.policy.allows("http://localhost.evil.example:80"))
        #expect(!Self.policy.allows("https://evil.example"))
        #expect(!Self.policy.allows("null"))
        #expect(try CORSPolicy(parsing: "*").allows("https://anything.example"))
        #expect(try !CORSPolicy(parsing: "").allows("http://localhost:3000"))
        for bad in ["localhost:3000", "https://app.example.com/", "https://app.example.com/path", "ftp://x"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try CORSPolicy(parsing: bad) }
        }
    }

    @Test("a preflight from an allowed origin is 204 with the methods and headers a page needs; from another origin, no CORS header")
    func preflight() async throws {
        try await APIFixture.with(cors: Self.policy) { _, client in
            let allowed = try await client.execute(
                uri: "/api/chat/sessions/0123456789abcdef01234567/stream", method: .options,
                headers: [.origin: "http://localhost:5173", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "authorization, content-type, last-event-id"]
            )
            #expect(allowed.status == .noContent)
            #expect(allowed.headers[.accessControlAllowOrigin] == "http://localhost:5173")
            let methods = allowed.headers[.accessControlAllowMethods] ?? ""
            #expect(["GET", "POST", "DELETE"].allSatisfy { methods.contains($0) })
            let headers = (allowed.headers[.accessControlAllowHeaders] ?? "").lowercased()
            #expect(["authorization", "content-type", "last-event-id", "prefer"].allSatisfy { headers.contains($0) })
            let refused = try await client.execute(
                uri: "/api/chat/sessions", method: .options, headers: [.origin: "https://evil.example", .accessControlRequestMethod: "POST"]
            )
            #expect(refused.headers[.accessControlAllowOrigin] == nil)
            #expect(refused.headers[.accessControlAllowMethods] == nil)
        }
    }

    @Test("answers to an allowed origin, errors included, name it and expose the request id and rate-limit headers; another origin's are served as before, with no CORS header")
    func simpleRequests() async throws {
        try await APIFixture.with(cors: Self.policy) { fixture, client in
            var headers = fixture.auth("cors-user")
            headers[.origin] = "https://console.example.com"
            let models = try await client.execute(uri: "/api/models", method: .get, headers: headers)
            #expect(models.status == .ok)
            #expect(models.headers[.accessControlAllowOrigin] == "https://console.example.com")
            let exposed = models.headers[.accessControlExposeHeaders] ?? ""
            #expect(["X-Request-Id", "RateLimit-Remaining", "Retry-After"].allSatisfy { exposed.contains($0) })
            #expect(models.headers[values: .vary].contains("Origin"))
            // A 401 is readable too: the page can tell the user to sign in again.
            let unauthorized = try await client.execute(uri: "/api/models", method: .get, headers: [.origin: "https://console.example.com"])
            #expect(unauthorized.status == .unauthorized)
            #expect(unauthorized.headers[.accessControlAllowOrigin] == "https://console.example.com")
            headers[.origin] = "https://evil.example"
            let other = try await client.execute(uri: "/api/models", method: .get, headers: headers)
            #expect(other.status == .ok)
            #expect(other.headers[.accessControlAllowOrigin] == nil && other.headers[.accessControlExposeHeaders] == nil)
        }
    }
}

@Suite("CORS at the stand-ins, as at chat-api")
struct StandinCORSTests {
    @Test("a page of an allowed origin may sign in at the auth stand-in and read its balance at the accounting stand-in; another origin gets no CORS header")
    func standins() async throws {
        try await AuthStandinFixture.with(["CORS_ALLOWED_ORIGINS": "http://localhost:*"]) { client in
            let preflight = try await client.execute(
                uri: "/api/auth/login", method: .options,
                headers: [.origin: "http://localhost:8080", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "content-type"]
            )
            #expect(preflight.status == .noContent && preflight.headers[.accessControlAllowOrigin] == "http://localhost:8080")
            let login = try await client.execute(
                uri: "/api/auth/login", method: .post, headers: [.origin: "http://localhost:8080", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"user1","password":"User1@123"}"#)
            )
            #expect(login.status == .ok && login.headers[.accessControlAllowOrigin] == "http://localhost:8080")
            let other = try await client.execute(
                uri: "/api/auth/login", method: .options, headers: [.origin: "https://evil.example", .accessControlRequestMethod: "POST"]
            )
            #expect(other.headers[.accessControlAllowOrigin] == nil)
        }
        try await AccountingFixture.with(cors: try CORSPolicy(parsing: "http://localhost:*")) { fixture in
            let token = fixture.verifier.sign(userID: "cors-balance", role: .enduser, lifetime: 60)
            let balance = try await fixture.client.execute(
                uri: "/api/credits/balance", method: .get, headers: [.origin: "http://localhost:3000", .authorization: "Bearer " + token]
            )
            #expect(balance.status == .ok && balance.headers[.accessControlAllowOrigin] == "http://localhost:3000")
            let other = try await fixture.client.execute(
                uri: "/api/credits/balance", method: .get, headers: [.origin: "https://evil.example", .authorization: "Bearer " + token]
            )
            #expect(other.status == .ok && other.headers[.accessControlAllowOrigin] == nil)
        }
    }
}
