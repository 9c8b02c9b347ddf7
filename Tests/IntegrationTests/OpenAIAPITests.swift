import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import API

/// chat-api's OpenAI-compatible routes in process: every refusal in OpenAI's error shape with the right status, the
/// request's conversation read as a session, and the chunk format. The official SDK runs against a whole stack in
/// Tests/OpenAI (scripts/guide-check.sh).
@Suite("the OpenAI-compatible API: shapes and refusals", .timeLimit(.minutes(2)))
struct OpenAIAPITests {
    static let haiku = "anthropic.claude-3-haiku-20240307-v1:0"

    /// The `error` object of an OpenAI-shaped error body (empty when the body is not one).
    static func openAIError(_ response: TestResponse) -> [String: Any] {
        (json(response)["error"] as? [String: Any]) ?? [:]
    }

    @Test("bad requests are 400 invalid_request_error naming the field; no token is 401 invalid_api_key; an unknown or forbidden model is 404 model_not_found")
    func refusals() async throws {
        try await APIFixture.with { fixture, client in
            try await fixture.fund("oa-user")
            let user = fixture.auth("oa-user")
            let cases: [([String: Any], String)] = [
                (["messages": [["role": "user", "content": "hi"]]], "model is required"),
                (["model": Self.haiku, "messages": []], "messages must be a non-empty list"),
                (["model": Self.haiku, "messages": [["role": "assistant", "content": "hi"]]], "the last message must be a user message"),
                (["model": Self.haiku, "messages": [["role": "tool", "content": "x"], ["role": "user", "content": "hi"]]], "messages[0].role"),
                (["model": Self.haiku, "messages": [["role": "user", "content": [["type": "image_url", "image_url": ["url": "x"]]]]]], "only text parts"),
                (["model": Self.haiku, "n": 2, "messages": [["role": "user", "content": "hi"]]], "n must be 1"),
                (["model": Self.haiku, "tools": [["type": "function"]], "messages": [["role": "user", "content": "hi"]]], "tools and functions"),
                (["model": Self.haiku, "temperature": 3, "messages": [["role": "user", "content": "hi"]]], "temperature"),
                (["model": Self.haiku, "top_p": 2, "messages": [["role": "user", "content": "hi"]]], "top_p"),
                (["model": Self.haiku, "max_completion_tokens": 0, "messages": [["role": "user", "content": "hi"]]], "max_completion_tokens"),
                (["model": Self.haiku, "max_tokens": 9_999, "messages": [["role": "user", "content": "hi"]]], "max_tokens"),
                (["model": Self.haiku, "stop": ["a", "b", "c", "d", "e"], "messages": [["role": "user", "content": "hi"]]], "stop"),
                (["model": Self.haiku, "messages": "hello"], "messages"),
            ]
            for (request, expected) in cases {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: user, body: body(request)) { response in
                    #expect(response.status == .badRequest, "\(request)")
                    let error = Self.openAIError(response)
                    #expect(error["type"] as? String == "invalid_request_error", "\(request)")
                    #expect((error["message"] as? String)?.contains(expected) == true, "\(request): \(error)")
                    #expect(error.keys.sorted() == ["code", "message", "param", "type"])
                }
            }
            let hello: [String: Any] = ["model": Self.haiku, "messages": [["role": "user", "content": "hi"]]]
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"], body: body(hello)) { response in
                #expect(response.status == .unauthorized)
                #expect(Self.openAIError(response)["code"] as? String == "invalid_api_key")
            }
            try await client.execute(uri: "/v1/models", method: .get) { #expect(Self.openAIError($0)["code"] as? String == "invalid_api_key") }
            for model in ["openai.gpt-9", "anthropic.claude-opus-4-20250514-v1:0"] {
                var request = hello
                request["model"] = model
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: user, body: body(request)) { response in
                    #expect(response.status == .notFound)
                    let error = Self.openAIError(response)
                    #expect(error["code"] as? String == "model_not_found" && error["param"] as? String == "model", "\(error)")
                }
            }
            // Staff see the staff-only model; retrieving one the caller may not use is 404 too.
            try await client.execute(uri: "/v1/models", method: .get, headers: fixture.auth("oa-admin", role: .admin)) { response in
                let ids = (json(response)["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                #expect(ids.contains("anthropic.claude-opus-4-20250514-v1:0"))
                #expect(json(response)["object"] as? String == "list")
            }
            try await client.execute(uri: "/v1/models/anthropic.claude-opus-4-20250514-v1:0", method: .get, headers: user) {
                #expect($0.status == .notFound && Self.openAIError($0)["code"] as? String == "model_not_found")
            }
            // Outside /v1 errors keep the service's own shape.
            try await client.execute(uri: "/api/models", method: .get) { #expect(json($0)["code"] is String && json($0)["error"] == nil) }
        }
    }

    @Test("past the generation limit a completion is 429 rate_limit_exceeded with Retry-After, in OpenAI's shape")
    func rateLimited() async throws {
        let limits = try RateLimitSettings(environment: Environment(["RATE_LIMIT_GENERATION": "1/60:1"]))
        try await APIFixture.with(rateLimits: limits) { fixture, client in
            let user = fixture.auth("oa-limited-\(UUID().uuidString.prefix(6))")
            let request: [String: Any] = ["model": "openai.none", "messages": [["role": "user", "content": "hi"]]]
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: user, body: body(request)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: user, body: body(request)) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] != nil)
                let error = Self.openAIError(response)
                #expect(error["type"] as? String == "requests" && error["code"] as? String == "rate_limit_exceeded", "\(error)")
            }
        }
    }

    @Test("a refused completion (no credits) is 402 insufficient_quota and leaves no session behind")
    func noCredits() async throws {
        try await APIFixture.with { fixture, client in
            let user = fixture.auth("oa-broke-\(UUID().uuidString.prefix(6))")
            let request: [String: Any] = [
                "model": Self.haiku, "messages": [["role": "user", "content": "earlier"], ["role": "assistant", "content": "yes"], ["role": "user", "content": "hi"]],
            ]
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: user, body: body(request)) { response in
                #expect(response.status.code == 402)
                let error = Self.openAIError(response)
                #expect(error["type"] as? String == "insufficient_quota" && error["code"] as? String == "insufficient_quota", "\(error)")
            }
            try await client.execute(uri: "/api/chat/sessions", method: .get, headers: user) { response in
                #expect((json(response)["pagination"] as? [String: Any])?["total"] as? Int == 0)
            }
        }
    }

    @Test("the request's conversation becomes the session: system messages its prompt, the turns its history, the last message the job")
    func conversation() throws {
        let request = try JSONDecoder().decode(
            ChatCompletionRequest.self,
            from: Data(
                #"""
                {"model": "m", "stream": true, "stream_options": {"include_usage": true}, "max_completion_tokens": 40, "stop": "END",
                 "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "One"},
                              {"role": "developer", "content": [{"type": "text", "text": "No lists."}]},
                              {"role": "assistant", "content": "Two"}, {"role": "user", "content": [{"type": "text", "text": "Three"}, {"type": "text", "text": "Four"}]}],
                 "presence_penalty": 0.5, "user": "someone"}
                """#.utf8
            )
        )
        let conversation = try request.conversation()
        #expect(conversation.system == "Be brief.\n\nNo lists.")
        #expect(conversation.earlier.map(\.role) == [.user, .assistant] && conversation.earlier.map(\.text) == ["One", "Two"])
        #expect(conversation.message == "Three\nFour")
        #expect(conversation.settings == InferenceSettings(maxTokens: 40, stopSequences: ["END"]))
        #expect(conversation.streaming && conversation.includeUsage && conversation.maxTokensName == "max_completion_tokens")
        #expect(FinishReason.from(stopReason: "max_tokens") == "length" && FinishReason.from(stopReason: "end_turn") == "stop")
        #expect(FinishReason.from(stopReason: "stop_sequence") == "stop" && FinishReason.from(stopReason: "content_filtered") == "content_filter")
    }
}
