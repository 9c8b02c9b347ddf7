import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The load generator's HTTP client: enough connections per host for every virtual user at once (HTTP/1.1
/// holds one per open stream), and small JSON calls for the set-up steps.
struct BenchHTTP: Sendable {
    let client: HTTPClient

    /// A client allowing `connections` concurrent connections per host.
    init(connections: Int) {
        var settings = HTTPClient.Configuration(timeout: .init(connect: .seconds(10)))
        settings.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: max(64, connections))
        settings.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    /// A set-up call failed: the status and the body the server sent.
    struct CallError: Error, CustomStringConvertible {
        var url: String
        var status: UInt
        var body: String
        var description: String { "\(url) answered \(status): \(body.prefix(300))" }
    }

    /// Sends a JSON body (or none) and returns the JSON object answered; a status outside 2xx throws `CallError`.
    func call(_ method: HTTPMethod, _ url: String, bearer: String? = nil, json: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 4 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw CallError(url: url, status: response.status.code, body: String(buffer: body))
        }
        return (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }

    /// Closes every connection.
    func shutdown() async throws {
        try await client.shutdown()
    }
}

/// Runs `body` for each index in `0..<count`, at most `width` at a time, and returns the results in index order.
func concurrentMap<T: Sendable>(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var results = [T?](repeating: nil, count: count)
        var next = 0
        while next < min(width, count) {
            let index = next
            group.addTask { (index, try await body(index)) }
            next += 1
        }
        while let (index, value) = try await group.next() {
            results[index] = value
            if next < count {
                let index = next
                group.addTask { (index, try await body(index)) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}
