import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@testable import Bedrock
@testable import SigV4

/// A local stand-in for the ECS container endpoint and EC2's instance metadata service (IMDSv2).
struct FakeMetadataServer {
    let requests = NIOLockedValueBox<[String]>([])
    let expiration: Date

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        let expiry = expiration.formatted(.iso8601)
        let log = requests
        router.get("/container-credentials") { request, _ -> Response in
            log.withLockedValue { $0.append("container") }
            guard request.headers[.authorization] == "container-secret" else { return Response(status: .unauthorized) }
            return Self.json(#"{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"container-key","Token":"container-token","Expiration":"\#(expiry)"}"#)
        }
        router.put("/latest/api/token") { request, _ -> Response in
            log.withLockedValue { $0.append("token") }
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token-ttl-seconds")!] != nil else { return Response(status: .badRequest) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "imds-session-token")))
        }
        router.get("/latest/meta-data/iam/security-credentials/") { request, _ -> Response in
            log.withLockedValue { $0.append("roles") }
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!] == "imds-session-token" else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "chat-worker-role\n")))
        }
        router.get("/latest/meta-data/iam/security-credentials/chat-worker-role") { request, _ -> Response in
            log.withLockedValue { $0.append("credentials") }
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!] == "imds-session-token" else { return Response(status: .unauthorized) }
            return Self.json(#"{"Code":"Success","AccessKeyId":"AKIDINSTANCE","SecretAccessKey":"instance-key","Token":"instance-token","Expiration":"\#(expiry)"}"#)
        }
        return router
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

@Suite("AWS credentials from container and instance metadata endpoints")
struct CredentialProviderTests {
    @Test("container credentials: full URI with an authorization token")
    func containerCredentials() async throws {
        let expiration = Date().addingTimeInterval(3600).rounded()
        let fake = FakeMetadataServer(expiration: expiration)
        let app = Application(router: fake.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await withHTTPClient { http in
                let provider = ContainerCredentialProvider(
                    environment: [
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(client.port!)/container-credentials",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-secret",
                    ],
                    httpClient: http, timeout: .seconds(10)
                )
                let credentials = try await provider.credentials()
                #expect(credentials == AWSCredentials(accessKeyID: "AKIDCONTAINER", secretAccessKey: "container-key", sessionToken: "container-token", expiration: expiration))

                let wrongToken = ContainerCredentialProvider(
                    environment: [
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(client.port!)/container-credentials",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "nope",
                    ],
                    httpClient: http, timeout: .seconds(10)
                )
                await #expect(throws: CredentialError.self) { try await wrongToken.credentials() }
            }
        }
    }

    @Test("instance metadata: IMDSv2 token, role name, then the role's credentials")
    func instanceMetadataCredentials() async throws {
        let expiration = Date().addingTimeInterval(3600).rounded()
        let fake = FakeMetadataServer(expiration: expiration)
        let app = Application(router: fake.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await withHTTPClient { http in
                let provider = InstanceMetadataCredentialProvider(
                    environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(client.port!)/"], httpClient: http, timeout: .seconds(10)
                )
                let credentials = try await provider.credentials()
                #expect(credentials.accessKeyID == "AKIDINSTANCE")
                #expect(credentials.sessionToken == "instance-token")
                #expect(credentials.expiration == expiration)
                #expect(fake.requests.withLockedValue { $0 } == ["token", "roles", "credentials"])
            }
        }
    }

    @Test("credentials are cached, and fetched again once they are within the refresh margin of expiry")
    func refreshBeforeExpiry() async throws {
        let expiration = Date().addingTimeInterval(600).rounded()
        let fake = FakeMetadataServer(expiration: expiration)
        let app = Application(router: fake.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await withHTTPClient { http in
                let clock = NIOLockedValueBox(Date())
                let provider = RefreshingCredentialProvider(
                    InstanceMetadataCredentialProvider(
                        environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(client.port!)"], httpClient: http, timeout: .seconds(10)
                    ),
                    refreshMargin: 300, now: { clock.withLockedValue { $0 } }
                )
                _ = try await provider.credentials()
                _ = try await provider.credentials()
                #expect(fake.requests.withLockedValue { $0.filter { $0 == "credentials" }.count } == 1)
                clock.withLockedValue { $0 = $0.addingTimeInterval(400) }  // now 200 s before expiry: inside the margin
                _ = try await provider.credentials()
                #expect(fake.requests.withLockedValue { $0.filter { $0 == "credentials" }.count } == 2)
            }
        }
    }
}

/// Runs `body` with an HTTP client that is shut down afterwards whatever happens (a client dropped without a
/// shutdown stops the whole test process).
func withHTTPClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

extension Date {
    /// This date to the whole second, as ISO 8601 carries it.
    func rounded() -> Date {
        Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down))
    }
}
