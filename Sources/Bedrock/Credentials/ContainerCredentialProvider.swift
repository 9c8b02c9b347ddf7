import AsyncHTTPClient
import Foundation
import NIOCore
import SigV4

/// ECS / EKS container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on 169.254.170.2) or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_TOKEN_FILE` when set.
public struct ContainerCredentialProvider: CredentialProvider {
    private let environment: [String: String]
    private let httpClient: HTTPClient
    private let timeout: TimeAmount

    /// Uses `httpClient` for the metadata calls.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient, timeout: TimeAmount = .seconds(2)) {
        self.environment = environment
        self.httpClient = httpClient
        self.timeout = timeout
    }

    public func credentials() async throws -> AWSCredentials {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = "http://169.254.170.2" + relative
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            url = full
        } else {
            throw CredentialError(source: "container", message: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set")
        }
        var request = HTTPClientRequest(url: url)
        if let tokenFile = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !tokenFile.isEmpty {
            let token = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let token else { throw CredentialError(source: "container", message: "cannot read \(tokenFile)") }
            request.headers.add(name: "Authorization", value: token)
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"], !token.isEmpty {
            request.headers.add(name: "Authorization", value: token)
        }
        let body = try await MetadataFetch.body(of: request, client: httpClient, timeout: timeout, source: "container")
        return try MetadataFetch.credentials(fromJSON: body, source: "container")
    }
}

/// What the container and instance metadata providers share: one bounded GET and the credentials JSON.
enum MetadataFetch {
    /// The body of a 200 answer, at most 64 KiB; anything else is a `CredentialError`.
    static func body(of request: HTTPClientRequest, client: HTTPClient, timeout: TimeAmount, source: String) async throws -> ByteBuffer {
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            guard response.status == .ok else {
                throw CredentialError(source: source, message: "\(request.url) answered \(response.status.code)")
            }
            return body
        } catch let error as CredentialError {
            throw error
        } catch {
            throw CredentialError(source: source, message: "\(request.url) could not be reached (\(error))")
        }
    }

    /// `{AccessKeyId, SecretAccessKey, Token, Expiration}` as container and instance metadata send them.
    static func credentials(fromJSON body: ByteBuffer, source: String) throws -> AWSCredentials {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let key = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String
        else { throw CredentialError(source: source, message: "the credentials document is not valid") }
        let expiration = (object["Expiration"] as? String).flatMap { try? Date.ISO8601FormatStyle().parse($0) }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: object["Token"] as? String, expiration: expiration)
    }
}
