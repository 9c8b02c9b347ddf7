import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// The peer: the LiteLLM proxy's OpenAI-compatible `POST /chat/completions` with `stream: true`, read as SSE
/// `data:` lines of chat-completion chunks until `data: [DONE]`; the bearer is `LITELLM_MASTER_KEY`.
struct LiteLLMTarget: StreamTarget {
    let settings: BenchSettings
    let http: BenchHTTP

    var kind: BenchTarget { .litellm }

    func prepareUsers(count: Int, messages: Int, step: String) async throws -> [VirtualUser] {
        anonymousUsers(count)
    }

    func stream(user: VirtualUser, message: Int, step: String) async -> StreamSample {
        var request = HTTPClientRequest(url: settings.liteLLMURL + "/chat/completions")
        request.method = .POST
        if let key = settings.liteLLMKey { request.headers.add(name: "Authorization", value: "Bearer " + key) }
        request.headers.add(name: "Content-Type", value: "application/json")
        let body: [String: Any] = [
            "model": settings.liteLLMModel, "stream": true, "max_tokens": settings.maxTokens,
            "messages": [["role": "user", "content": settings.prompt(user: user.index, message: message, step: step)]],
        ]
        request.body = .bytes(ByteBuffer(data: (try? JSONSerialization.data(withJSONObject: body)) ?? Data()))

        var sample = StreamSample()
        let clock = ContinuousClock()
        let start = clock.now
        await measure(request, into: &sample, clock: clock, start: start)
        sample.total = clock.now - start
        return sample
    }

    /// Sends the request and reads the stream into `sample`, times counted from `start`.
    private func measure(_ request: HTTPClientRequest, into sample: inout StreamSample, clock: ContinuousClock, start: ContinuousClock.Instant) async {
        do {
            let response = try await http.client.execute(request, timeout: .init(settings.requestTimeout))
            sample.headers = clock.now - start
            guard response.status == .ok else {
                sample.error = "status-\(response.status.code)"
                _ = try? await response.body.collect(upTo: 1 << 20)
                return
            }
            var parser = SSEParser()
            for try await buffer in response.body {
                let now = clock.now - start
                for event in parser.feed(buffer.readableBytesView) {
                    if event.data == "[DONE]" {
                        if sample.chunks == 0 { sample.error = "no-chunks" }
                        return
                    }
                    switch Self.content(event.data) {
                    case .text: sample.chunk(at: now)
                    case .empty: continue
                    case .error(let kind):
                        sample.error = kind
                        return
                    }
                }
            }
            sample.error = "incomplete"
        } catch {
            sample.error = errorKind(error)
        }
    }

    /// What a `data:` line carries.
    private enum Content {
        case text
        case empty
        case error(String)
    }

    /// A chat-completion chunk with non-empty `choices[].delta.content` is text; `{"error": ...}` is a failure.
    private static func content(_ data: String) -> Content {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return .empty }
        if let error = object["error"] {
            let code = (error as? [String: Any])?["code"].map { "\($0)" } ?? "unknown"
            return .error("stream-error:" + code)
        }
        let choices = object["choices"] as? [[String: Any]] ?? []
        for choice in choices {
            if let text = (choice["delta"] as? [String: Any])?["content"] as? String, !text.isEmpty { return .text }
        }
        return .empty
    }
}
