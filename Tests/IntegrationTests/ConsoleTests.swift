import Foundation
import HummingbirdTesting
import Testing

/// The web console as chat-api serves it from its resource bundle: the files with their types and a strict
/// Content-Security-Policy, `/` sending a browser there, and the console's settings. (Its flows run in a real
/// Chromium in `scripts/browser-check.sh`.)
@Suite("the web console's files", .serialized)
struct ConsoleTests {
    /// A plain GET over a bare socket (no redirects followed): the status, the headers (names lowercased), the body.
    static func get(port: Int, _ path: String) async throws -> (status: Int, headers: [String: String], body: String) {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
        let answer = String(decoding: try await RawConnection.exchange(port: port, bytes: request, limit: .seconds(5)), as: UTF8.self)
        guard let split = answer.range(of: "\r\n\r\n") else { return (0, [:], "") }
        let lines = answer[..<split.lowerBound].split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, String(answer[split.upperBound...]))
    }

    @Test("/ and /console redirect to /console/; the page, its scripts and styles come with their types and the CSP; config.json names the services; nothing else is served", .timeLimit(.minutes(1)))
    func servesTheConsole() async throws {
        let pair = try ServicePair(apiEnvironment: ["CONSOLE_AUTH_URL": "https://auth.example.com/", "CONSOLE_ACCOUNTING_URL": "http://127.0.0.1:3001"])
        defer { pair.kill() }
        try await pair.ready()
        let port = pair.apiPort
        for path in ["/", "/console"] {
            let answer = try await Self.get(port: port, path)
            #expect(answer.status == 302, "\(path)")
            #expect(answer.headers["location"] == "/console/", "\(path)")
        }
        let page = try await Self.get(port: port, "/console/")
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.body.contains(#"<script type="module" src="app.js"></script>"#))
        let policy = try #require(page.headers["content-security-policy"])
        #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"))
        #expect(policy.contains("connect-src 'self' https://auth.example.com http://127.0.0.1:3001"), "\(policy)")
        #expect(page.headers["x-content-type-options"] == "nosniff")

        // Every module the page and its modules import is served as JavaScript.
        let script = try await Self.get(port: port, "/console/app.js")
        #expect(script.status == 200)
        #expect(script.headers["content-type"] == "text/javascript; charset=utf-8")
        let imports = script.body.matches(of: /from "\.\/([a-z]+\.js)"/).map { String($0.1) }
        #expect(!imports.isEmpty)
        for module in imports {
            let answer = try await Self.get(port: port, "/console/\(module)")
            #expect(answer.status == 200 && answer.headers["content-type"] == "text/javascript; charset=utf-8", "\(module)")
        }
        let style = try await Self.get(port: port, "/console/style.css")
        #expect(style.headers["content-type"] == "text/css; charset=utf-8")

        let config = try await Self.get(port: port, "/console/config.json")
        #expect(config.headers["content-type"] == "application/json")
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(config.body.utf8)) as? [String: String])
        #expect(settings == ["apiURL": "", "authURL": "https://auth.example.com/", "accountingURL": "http://127.0.0.1:3001"])

        for path in ["/console/nothing.js", "/console/..%2Fopenapi.json", "/console/%2E%2E", "/console/index.html/x"] {
            #expect(try await Self.get(port: port, path).status == 404, "\(path)")
        }
        _ = try await pair.stop()
    }

    @Test("in process (the test bundle sits beside the resources): / and /console redirect, the page and config.json answer, an unknown file is 404")
    func inProcess() async throws {
        try await APIFixture.with { _, client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .found)
                #expect(response.headers[.location] == "/console/")
            }
            try await client.execute(uri: "/console", method: .get) { #expect($0.status == .found) }
            for path in ["/console/", "/console/app.js"] {
                try await client.execute(uri: path, method: .get) { #expect($0.status == .ok, "\(path)") }
            }
            try await client.execute(uri: "/console/missing.js", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(json(response)["code"] as? String == "NOT_FOUND")
            }
            try await client.execute(uri: "/console/config.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(json(response)["apiURL"] as? String == "")
            }
        }
    }
}
