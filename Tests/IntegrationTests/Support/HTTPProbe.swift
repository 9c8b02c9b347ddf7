import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// One-line HTTP calls for tests that talk to processes.
enum HTTPProbe {
    /// The status of a GET, with an optional bearer token.
    static func status(_ url: String, token: String? = nil) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }
}

extension HTTPProbe {
    /// A JSON request; returns the status and the body as a JSON object (empty if it is not one).
    static func json(
        _ method: HTTPMethod, _ url: String, token: String? = nil, body: [String: Any]? = nil, headers: [String: String] = [:]
    ) async throws -> (status: Int, body: [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        ExchangeLog.record(method: "\(method)", url: url, status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
        let object = ((try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any]) ?? [:]
        return (Int(response.status.code), object)
    }
}
