import Foundation
import Testing

@testable import API

@Suite("The client's address behind trusted proxies", .serialized, .timeLimit(.minutes(2)))
struct ClientAddressTests {
    @Test("addresses and CIDR ranges, IPv4 and IPv6, are parsed; anything else is refused naming the entry")
    func parsing() throws {
        let trusted = try TrustedProxies(parsing: " 10.0.0.0/8, 172.16.0.0/12,127.0.0.1, ::1, fd00::/8 ")
        #expect(trusted.contains("10.255.1.2") && trusted.contains("172.31.0.9") && trusted.contains("127.0.0.1"))
        #expect(trusted.contains("::1") && trusted.contains("fd12::5"))
        #expect(!trusted.contains("172.32.0.1") && !trusted.contains("127.0.0.2") && !trusted.contains("8.8.8.8") && !trusted.contains("fe80::1"))
        #expect(!trusted.contains("not an address"))
        #expect(try TrustedProxies(parsing: "").ranges.isEmpty)
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.1/x", "::1/129"] {
            #expect(throws: (any Error).self, "\(bad)") { try TrustedProxies(parsing: bad) }
        }
    }

    @Test("the client is the nearest untrusted hop, read from the right; an untrusted peer's header is ignored")
    func choosingTheClient() throws {
        let trusted = try TrustedProxies(parsing: "10.0.0.0/8")
        #expect(trusted.client(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"]) == "203.0.113.9")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        // A client that writes its own header gets only what the trusted proxy appended.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["6.6.6.6, 1.2.3.4"]) == "1.2.3.4")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["6.6.6.6", "1.2.3.4, 10.0.0.7"]) == "1.2.3.4")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: []) == "10.0.0.2")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["garbage, 1.2.3.4"]) == "1.2.3.4")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["1.2.3.4, garbage"]) == "10.0.0.2")
        #expect(trusted.client(peer: nil, forwardedFor: ["1.2.3.4"]) == nil)
    }

    /// Requests to a route behind the per-IP limit (`/api/models` without a token: 401 until the limit, then 429)
    /// from `forwardedFor`, until the first 429; how many were let through.
    func admittedBefore429(_ url: String, forwardedFor: String, limit: Int = 20) async throws -> Int {
        for sent in 0..<limit {
            let status = try await HTTPProbe.json(.GET, url + "/api/models", headers: ["X-Forwarded-For": forwardedFor]).status
            if status == 429 { return sent }
            #expect(status == 401)
        }
        return limit
    }

    @Test("behind a trusted proxy each client has its own per-IP bucket; without trust they share the proxy's; probes are never limited")
    func bucketsPerClient() async throws {
        let limits = ["RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_IP": "3/60:3"]
        let first = "198.51.100.\(Int.random(in: 1...250))"
        let second = "192.0.2.\(Int.random(in: 1...250))"

        let trusting = try ServicePair(apiEnvironment: limits.merging(["TRUSTED_PROXIES": "127.0.0.1"]) { $1 })
        defer { trusting.kill() }
        try await trusting.ready()
        let admitted = try await admittedBefore429(trusting.apiURL, forwardedFor: first)
        #expect((1...5).contains(admitted))
        #expect(try await HTTPProbe.json(.GET, trusting.apiURL + "/api/models", headers: ["X-Forwarded-For": second]).status == 401)
        for _ in 0..<10 { #expect(try await HTTPProbe.status(trusting.apiURL + "/livez") == 200) }
        _ = try await trusting.stop()

        let untrusting = try ServicePair(apiEnvironment: limits)
        defer { untrusting.kill() }
        try await untrusting.ready()
        let shared = try await admittedBefore429(untrusting.apiURL, forwardedFor: "203.0.113.\(Int.random(in: 1...250))")
        #expect((1...5).contains(shared))
        // A different header changes nothing: the peer (127.0.0.1) is the client, and its bucket is spent.
        #expect(try await HTTPProbe.json(.GET, untrusting.apiURL + "/api/models", headers: ["X-Forwarded-For": second]).status == 429)
        _ = try await untrusting.stop()
    }
}
