import AsyncHTTPClient
import NIOCore

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
