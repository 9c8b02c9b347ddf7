import AsyncHTTPClient
import Foundation
import NIOCore
import SigV4

/// EC2 instance role credentials through IMDSv2: a session token from `PUT /latest/api/token`, then the role
/// name and its credentials. `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the endpoint;
/// `AWS_EC2_METADATA_DISABLED=true` turns the source off.
public struct InstanceMetadataCredentialProvider: CredentialProvider {
    private let endpoint: String
    private let disabled: Bool
    private let httpClient: HTTPClient
    private let timeout: TimeAmount

    /// Uses `httpClient` for the metadata calls.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient, timeout: TimeAmount = .seconds(1)) {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://169.254.169.254"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.disabled = environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true"
        self.httpClient = httpClient
        self.timeout = timeout
    }

    public func credentials() async throws -> AWSCredentials {
        let source = "instance metadata"
        guard !disabled else { throw CredentialError(source: source, message: "AWS_EC2_METADATA_DISABLED is set") }
        var tokenRequest = HTTPClientRequest(url: endpoint + "/latest/api/token")
        tokenRequest.method = .PUT
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        let token = String(buffer: try await MetadataFetch.body(of: tokenRequest, client: httpClient, timeout: timeout, source: source))

        let rolesURL = endpoint + "/latest/meta-data/iam/security-credentials/"
        var roleRequest = HTTPClientRequest(url: rolesURL)
        roleRequest.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        let roles = String(buffer: try await MetadataFetch.body(of: roleRequest, client: httpClient, timeout: timeout, source: source))
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw CredentialError(source: source, message: "the instance has no IAM role")
        }
        var credentialsRequest = HTTPClientRequest(url: rolesURL + role)
        credentialsRequest.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        let body = try await MetadataFetch.body(of: credentialsRequest, client: httpClient, timeout: timeout, source: source)
        return try MetadataFetch.credentials(fromJSON: body, source: source)
    }
}

extension CredentialChain {
    /// The usual order: environment, shared files, container, instance metadata; cached and refreshed before expiry.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient) -> any CredentialProvider {
        RefreshingCredentialProvider(
            CredentialChain([
                EnvironmentCredentialProvider(environment: environment),
                ProfileCredentialProvider(environment: environment),
                ContainerCredentialProvider(environment: environment, httpClient: httpClient),
                InstanceMetadataCredentialProvider(environment: environment, httpClient: httpClient),
            ])
        )
    }
}
