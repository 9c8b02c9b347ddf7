import AsyncHTTPClient
import ServiceLifecycle

/// Lets a `ServiceGroup` own an `HTTPClient`: it runs until shutdown, then shuts the client down.
public struct HTTPClientService: Service {
    let client: HTTPClient

    /// A service around `client`.
    public init(client: HTTPClient) {
        self.client = client
    }

    /// Waits for graceful shutdown, then shuts the client down.
    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
