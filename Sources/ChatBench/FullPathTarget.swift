import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// The whole service: `POST /api/chat/sessions/:id/stream` on chat-api, read as SSE (`model`, `chunk`...,
/// `complete` or `error`). Also collects chat-api's `Server-Timing` header and the `complete` event's `spans`.
struct FullPathTarget: StreamTarget {
    let settings: BenchSettings
    let http: BenchHTTP
    let users: FullPathUsers

    var kind: BenchTarget { .full }

    func prepareUsers(count: Int, messages: Int, step: String) async throws -> [VirtualUser] {
        try await users.prepare(count: count, messages: messages, step: step)
    }

    func stream(user: VirtualUser, message: Int, step: String) async -> StreamSample {
        var request = HTTPClientRequest(url: settings.chatURL + "/api/chat/sessions/\(user.sessionID ?? "-")/stream")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + user.token)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let body: [String: Any] = ["message": settings.prompt(user: user.index, message: message, step: step), "modelId": settings.modelID]
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
            let timing = response.headers[canonicalForm: "Server-Timing"].joined(separator: ",")
            if !timing.isEmpty { sample.serverTiming = ServerTiming.parseHeader(timing) }
            guard response.status == .ok else {
                let body = try? await response.body.collect(upTo: 1 << 20)
                let code = body.flatMap { try? JSONSerialization.jsonObject(with: Data(buffer: $0)) as? [String: Any] }?["code"] as? String
                sample.error = "status-\(response.status.code)" + (code.map { ":" + $0 } ?? "")
                return
            }
            var parser = SSEParser()
            for try await buffer in response.body {
                let now = clock.now - start
                for event in parser.feed(buffer.readableBytesView) {
                    switch event.name {
                    case "chunk":
                        if Self.hasText(event.data) { sample.chunk(at: now) }
                    case "complete":
                        sample.complete = now
                        sample.spans = ServerTiming.parseSpans(eventData: event.data)
                        if sample.chunks == 0 { sample.error = "no-chunks" }
                        return
                    case "error":
                        let code = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any])?["code"] as? String
                        sample.error = "event-error:" + (code ?? "unknown")
                        return
                    default:
                        continue
                    }
                }
            }
            sample.error = "incomplete"
        } catch {
            sample.error = errorKind(error)
        }
    }

    /// Whether a `chunk` event's data carries text (`{"content": "...", "index": N}`).
    private static func hasText(_ data: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return !data.isEmpty }
        return (object["content"] as? String).map { !$0.isEmpty } ?? true
    }
}
