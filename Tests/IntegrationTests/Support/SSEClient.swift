import AsyncHTTPClient
import NIOHTTP1
import Foundation
import NIOCore

/// One Server-Sent Event as a client sees it.
struct SSEEvent: Sendable, Equatable {
    var id: String?
    var event: String
    var data: String

    /// The data parsed as a JSON object (empty if it is not one).
    var json: [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any]) ?? [:]
    }
}

/// A minimal SSE client over AsyncHTTPClient, for tests: opens a request and reads events one by one.
/// Dropping it (or calling `close`) closes the connection.
final class SSEConnection: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let status: Int
    /// The response's headers.
    let headers: HTTPHeaders
    private var iterator: HTTPClientResponse.Body.AsyncIterator?
    private var buffer = ""
    private let task: Task<Void, Never>?
    /// `METHOD` and path of the request, for `ExchangeLog`.
    private let request: (method: String, path: String)

    private init(status: Int, headers: HTTPHeaders, iterator: HTTPClientResponse.Body.AsyncIterator, request: (method: String, path: String)) {
        self.status = status
        self.headers = headers
        self.iterator = iterator
        self.task = nil
        self.request = request
    }

    /// Records what was read (an event's frame, or an error's body) for the OpenAPI check.
    private func record(_ body: String) {
        ExchangeLog.record(method: request.method, url: request.path, status: status, headers: headers, body: body)
    }

    /// Opens `url` with `method`, headers and an optional JSON body.
    static func open(_ url: String, method: HTTPMethodName = .POST, headers: [String: String] = [:], json: [String: Any]? = nil) async throws -> SSEConnection {
        var request = HTTPClientRequest(url: url)
        request.method = method == .POST ? .POST : .GET
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        return SSEConnection(
            status: Int(response.status.code), headers: response.headers, iterator: response.body.makeAsyncIterator(),
            request: (method == .POST ? "POST" : "GET", URLComponents(string: url)?.path ?? url)
        )
    }

    enum HTTPMethodName { case GET, POST }

    /// Hangs up: the response body is dropped, which closes the connection.
    func close() {
        iterator = nil
    }

    /// The next event (comments skipped), or nil at the end of the stream.
    func next() async throws -> SSEEvent? {
        while true {
            if let range = buffer.range(of: "\n\n") {
                let block = String(buffer[..<range.lowerBound])
                buffer = String(buffer[range.upperBound...])
                if let event = Self.parse(block) {
                    record(block + "\n\n")
                    return event
                }
                continue
            }
            guard let chunk = try await iterator?.next() else { return nil }
            buffer += String(buffer: chunk)
        }
    }

    /// Reads until a comment line (`: ...`) arrives, as heartbeats are; returns its text.
    func nextComment() async throws -> String? {
        while true {
            if let range = buffer.range(of: "\n: ") ?? (buffer.hasPrefix(": ") ? buffer.range(of: ": ") : nil),
                let end = buffer[range.upperBound...].range(of: "\n\n")
            {
                let comment = String(buffer[range.upperBound..<end.lowerBound])
                buffer = String(buffer[end.upperBound...])
                return comment
            }
            guard let chunk = try await iterator?.next() else { return nil }
            buffer += String(buffer: chunk)
        }
    }

    /// The raw body of a non-SSE answer (an error), as JSON.
    func errorBody() async throws -> [String: Any] {
        var text = buffer
        while let chunk = try await iterator?.next() { text += String(buffer: chunk) }
        record(text)
        return ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]) ?? [:]
    }

    /// Reads events until `stop` says so (inclusive) or the stream ends.
    func collect(until stop: (SSEEvent) -> Bool) async throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        while let event = try await next() {
            events.append(event)
            if stop(event) { break }
        }
        return events
    }

    private static func parse(_ block: String) -> SSEEvent? {
        var id: String?
        var event = "message"
        var data: [String] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") { continue }
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
            if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
        }
        return data.isEmpty && id == nil ? nil : SSEEvent(id: id, event: event, data: data.joined(separator: "\n"))
    }
}
