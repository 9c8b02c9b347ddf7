import AsyncHTTPClient
import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import API

/// What chat-api answers to bodies, headers and texts built to hurt it: a clear 4xx, never a 5xx, never a
/// crash, and nothing stored.
@Suite("hostile input: sizes, encodings and nesting", .serialized)
struct HostileInputTests {
    @Test("a process: 6 MiB body 413, 70 KB header 431, invalid UTF-8 400, JSON nested 100,000 deep 400; it still serves", .timeLimit(.minutes(2)))
    func processRefusesHostileRequests() async throws {
        let pair = try ServicePair()
        defer { pair.kill() }
        try await pair.ready()
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let token = verifier.sign(userID: "hostile-\(UUID().uuidString.prefix(8))", role: .enduser, lifetime: 600)
        let sessions = pair.apiURL + "/api/chat/sessions"

        let huge = try await Self.send(.POST, sessions, token: token, body: ByteBuffer(repeating: UInt8(ascii: "a"), count: 6 << 20))
        #expect(huge.status == 413)
        #expect(huge.body["code"] as? String == "BODY_TOO_LARGE")
        // A route whose body is small has a small limit: 100 KB is far more than a job id.
        let padded = #"{"streamingSessionId":"x","pad":""# + String(repeating: "p", count: 100_000) + #""}"#
        let update = try await Self.send(.POST, sessions + "/000000000000000000000000/update-stream", token: token, body: ByteBuffer(string: padded))
        #expect(update.status == 413)

        let header = try await Self.send(.GET, sessions, token: token, headers: ["X-Padding": String(repeating: "h", count: 70_000)])
        #expect(header.status == 431)
        #expect(header.body["code"] as? String == "HEADERS_TOO_LARGE")
        let padding = String(repeating: "h", count: 30_000)
        let three = try await Self.send(.GET, sessions, token: token, headers: ["X-A": padding, "X-B": padding, "X-C": padding])
        #expect(three.status == 431)
        #expect(three.body["code"] as? String == "HEADERS_TOO_LARGE")
        let longTarget = try await Self.send(.GET, sessions + "?pad=" + String(repeating: "u", count: 400_000), token: token)
        #expect(longTarget.status == 414)
        #expect(longTarget.body["code"] as? String == "URI_TOO_LONG")
        // The query form of /stream: a message past its byte limit is named as such, not refused by the parser.
        let query = try await Self.send(
            .GET, sessions + "/000000000000000000000000/stream?message=" + String(repeating: "a", count: 150_000), token: token
        )
        #expect(query.status == 400)
        #expect(query.body["code"] as? String == "VALIDATION_ERROR")

        var invalid = ByteBuffer(string: #"{"title":""#)
        invalid.writeBytes([0xC3, 0x28, 0xFF, 0xFE])
        invalid.writeString(#""}"#)
        let notUTF8 = try await Self.send(.POST, sessions, token: token, body: invalid)
        #expect(notUTF8.status == 400)
        #expect(notUTF8.body["code"] as? String == "INVALID_JSON")

        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let nested = try await Self.send(.POST, sessions, token: token, body: ByteBuffer(string: #"{"title":"t","x":"# + deep + "}"))
        #expect(nested.status == 400)
        let nestedObjects = String(repeating: #"{"a":"#, count: 50_000) + "1" + String(repeating: "}", count: 50_000)
        #expect(try await Self.send(.POST, sessions, token: token, body: ByteBuffer(string: nestedObjects)).status == 400)

        // Still serving, and nothing was stored by any of it.
        let list = try await Self.send(.GET, sessions, token: token)
        #expect(list.status == 200)
        #expect((list.body["sessions"] as? [Any])?.isEmpty == true)
        #expect(pair.api.isRunning)
        _ = try await pair.stop()
    }

    @Test("sizes are bytes: a title of one letter and 2,000 combining marks, or a message one byte too long, is 400 naming the field")
    func sizesAreCountedInBytes() async throws {
        try await APIFixture.with { fixture, client in
            let user = "bytes-\(UUID().uuidString.prefix(8))"
            try await fixture.fund(user)
            let marks = "a" + String(repeating: "\u{0301}", count: 2_000)
            #expect(marks.count == 1)
            let title = try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: fixture.auth(user), body: Self.json(["title": marks])
            )
            #expect(title.status == .badRequest)
            #expect(String(buffer: title.body).contains("title must be at most 200 characters and 1000 bytes"))
            // 200 characters of three bytes each (600 bytes) are a fine title.
            let wide = try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: fixture.auth(user), body: Self.json(["title": String(repeating: "語", count: 200)])
            )
            #expect(wide.status == .created)

            let session = try JSONSerialization.jsonObject(with: Data(buffer: wide.body)) as? [String: Any]
            let id = try #require(session?["sessionId"] as? String)
            let tooLong = String(repeating: "é", count: SessionController.maxMessageBytes / 2) + "x"
            #expect(tooLong.utf8.count == SessionController.maxMessageBytes + 1)
            for path in ["/stream", "/messages"] {
                let answer = try await client.execute(
                    uri: "/api/chat/sessions/\(id)\(path)", method: .post, headers: fixture.auth(user), body: Self.json(["message": tooLong])
                )
                #expect(answer.status == .badRequest, "\(path)")
                #expect(String(buffer: answer.body).contains("message must be at most 100000 bytes"), "\(path)")
            }
            let query = try await client.execute(
                uri: "/api/chat/sessions/\(id)/stream?message=" + String(repeating: "%C3%A9", count: 50_001), method: .get, headers: fixture.auth(user)
            )
            #expect(query.status == .badRequest)
            let initial = try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: fixture.auth(user), body: Self.json(["title": "t", "initialMessage": tooLong])
            )
            #expect(initial.status == .badRequest)
            #expect(String(buffer: initial.body).contains("initialMessage must be at most 100000 bytes"))
        }
    }

    static func json(_ object: [String: Any]) -> ByteBuffer {
        ByteBuffer(data: try! JSONSerialization.data(withJSONObject: object))
    }

    /// One request to a process; the status and the JSON object answered (empty when it is not one).
    static func send(
        _ method: HTTPMethod, _ url: String, token: String, headers: [String: String] = [:], body: ByteBuffer? = nil
    ) async throws -> (status: Int, body: [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = ((try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any]) ?? [:]
        return (Int(response.status.code), object)
    }
}
