/// Where Bedrock is and how patiently to call it.
public struct BedrockConfiguration: Sendable, Equatable {
    /// The AWS region, e.g. `us-east-1`.
    public var region: String
    /// Overrides `https://bedrock-runtime.{region}.amazonaws.com` (`BEDROCK_ENDPOINT`, the emulator locally).
    public var endpoint: String?
    /// Opening a connection.
    public var connectTimeout: Duration
    /// From sending the request to the response head (and, for streams, to the first event).
    public var firstByteTimeout: Duration
    /// Between two events of a stream.
    public var chunkTimeout: Duration
    /// Tries per call, the first included; retries happen only before the first chunk.
    public var maxAttempts: Int
    /// The first retry waits up to this (full jitter), doubling each time up to `maxBackoff`.
    public var baseBackoff: Duration
    public var maxBackoff: Duration
    /// Connections kept open to Bedrock at most: one per stream in flight (HTTP/1.1), so at least the
    /// worker's concurrency. AsyncHTTPClient's default of 8 would queue the ninth stream.
    public var maxConnections: Int

    /// A configuration with production defaults.
    public init(
        region: String = "us-east-1", endpoint: String? = nil, connectTimeout: Duration = .seconds(5),
        firstByteTimeout: Duration = .seconds(60), chunkTimeout: Duration = .seconds(30), maxAttempts: Int = 4,
        baseBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(5), maxConnections: Int = 256
    ) {
        self.region = region
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.firstByteTimeout = firstByteTimeout
        self.chunkTimeout = chunkTimeout
        self.maxAttempts = max(1, maxAttempts)
        self.baseBackoff = baseBackoff
        self.maxBackoff = maxBackoff
        self.maxConnections = max(1, maxConnections)
    }

    /// The base URL requests go to, without a trailing slash.
    public var baseURL: String { baseURL(region: region) }

    /// The base URL of `region`'s endpoint: `endpoint` when set (one endpoint answers for every region, as the
    /// emulator does), else `https://bedrock-runtime.{region}.amazonaws.com`.
    public func baseURL(region: String) -> String {
        var url = endpoint ?? "https://bedrock-runtime.\(region).amazonaws.com"
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
