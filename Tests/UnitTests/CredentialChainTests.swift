import Foundation
import Testing

@testable import Bedrock
@testable import SigV4

@Suite("AWS credentials from the environment and the shared files")
struct CredentialChainTests {
    @Test("environment variables, with and without a session token")
    func environment() async throws {
        let plain = try await EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"]).credentials()
        #expect(plain == AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"))
        let temporary = try await EnvironmentCredentialProvider(
            environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"]
        ).credentials()
        #expect(temporary.sessionToken == "token")
        await #expect(throws: CredentialError.self) { try await EnvironmentCredentialProvider(environment: [:]).credentials() }
    }

    @Test("shared credentials and config files, with AWS_PROFILE")
    func profiles() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentialsFile = folder.appendingPathComponent("credentials")
        let configFile = folder.appendingPathComponent("config")
        try """
            # comment
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = default-secret

            [work]
            aws_access_key_id=AKIDWORK
            aws_secret_access_key=work-secret
            aws_session_token = work-token
            """.write(to: credentialsFile, atomically: true, encoding: .utf8)
        try """
            [profile fromconfig]
            region = eu-west-1
            aws_access_key_id = AKIDCONFIG
            aws_secret_access_key = config-secret
            """.write(to: configFile, atomically: true, encoding: .utf8)
        let base = ["AWS_SHARED_CREDENTIALS_FILE": credentialsFile.path, "AWS_CONFIG_FILE": configFile.path]
        #expect(try await ProfileCredentialProvider(environment: base).credentials().accessKeyID == "AKIDDEFAULT")
        let work = try await ProfileCredentialProvider(environment: base.merging(["AWS_PROFILE": "work"]) { $1 }).credentials()
        #expect(work == AWSCredentials(accessKeyID: "AKIDWORK", secretAccessKey: "work-secret", sessionToken: "work-token"))
        #expect(try await ProfileCredentialProvider(environment: base.merging(["AWS_PROFILE": "fromconfig"]) { $1 }).credentials().accessKeyID == "AKIDCONFIG")
        await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(environment: base.merging(["AWS_PROFILE": "missing"]) { $1 }).credentials()
        }
    }

    @Test("the chain takes the first source that has credentials")
    func chainOrder() async throws {
        let chain = CredentialChain([
            EnvironmentCredentialProvider(environment: [:]),
            EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "SECOND", "AWS_SECRET_ACCESS_KEY": "s"]),
            EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "THIRD", "AWS_SECRET_ACCESS_KEY": "s"]),
        ])
        #expect(try await chain.credentials().accessKeyID == "SECOND")
        await #expect(throws: CredentialError.self) { try await CredentialChain([EnvironmentCredentialProvider(environment: [:])]).credentials() }
    }

    @Test("backoff is full jitter under a doubling cap")
    func backoff() {
        var random = SystemRandomNumberGenerator()
        let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(1))
        for retry in 1...8 {
            let cap = min(Duration.seconds(1), .milliseconds(100) * (1 << (retry - 1)))
            for _ in 0..<50 {
                let delay = backoff.delay(beforeRetry: retry, using: &random)
                #expect(delay >= .zero && delay <= cap)
            }
        }
    }

    @Test("model ids are percent-encoded once in the path")
    func pathEncoding() {
        #expect(BedrockClient.percentEncode("anthropic.claude-3-sonnet-20240229-v1:0") == "anthropic.claude-3-sonnet-20240229-v1%3A0")
        #expect(BedrockClient.percentEncode("a/b c") == "a%2Fb%20c")
    }
}
