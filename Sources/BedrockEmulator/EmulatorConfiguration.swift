import Catalog
import ChatCore
import Foundation

/// Everything bedrock-emulator reads from its environment, validated at start.
struct EmulatorConfiguration: Sendable {
    /// The address to listen on (`HOST`).
    var host: String
    /// The port to listen on (`PORT`).
    var port: Int
    /// The only access key id whose signatures are accepted (`EMULATOR_ACCESS_KEY_ID`).
    var accessKeyID: String
    /// The secret that key signs with (`EMULATOR_SECRET_ACCESS_KEY`).
    var secretAccessKey: String
    /// When set, every request must carry it as `X-Amz-Security-Token` (`EMULATOR_SESSION_TOKEN`).
    var sessionToken: String?
    /// The region a signature's credential scope must name (`EMULATOR_REGION`, the first of its comma-separated list).
    var region: String
    /// The other regions the emulator answers for, as if it were their endpoints too (the rest of `EMULATOR_REGION`):
    /// a model's fallback through another region reaches it.
    var otherRegions: [String]
    /// The models served: those of `MODEL_CATALOG_PATH` if set, else the built-in catalog.
    var catalog: ModelCatalog
    /// The pace of replies in tokens (words) per second; 0 means as fast as possible (`EMULATOR_TOKENS_PER_SECOND`).
    var tokensPerSecond: Int
    /// The number of words of a reply unless the prompt or the request's max tokens says fewer (`EMULATOR_REPLY_TOKENS`).
    var replyTokens: Int

    /// The defaults `make dev` and the tests rely on.
    static let defaultAccessKeyID = "AKIDEMULATOREXAMPLE"
    static let defaultSecretAccessKey = "emulator/secret/key/EXAMPLEKEY0000000000000"

    /// Settings given directly, for tests.
    init(
        host: String = "127.0.0.1", port: Int = 3010,
        accessKeyID: String = defaultAccessKeyID, secretAccessKey: String = defaultSecretAccessKey, sessionToken: String? = nil,
        region: String = "us-east-1", otherRegions: [String] = ["us-west-2"], tokensPerSecond: Int = 100, replyTokens: Int = 24,
        catalog: ModelCatalog = .builtIn
    ) {
        self.otherRegions = otherRegions
        self.catalog = catalog
        self.host = host
        self.port = port
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.tokensPerSecond = tokensPerSecond
        self.replyTokens = replyTokens
    }

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        let regions = Self.regions(environment)
        self.init(
            host: environment.string("HOST", default: "127.0.0.1"),
            port: try environment.int("PORT", default: 3010, in: 1...65535),
            accessKeyID: environment.string("EMULATOR_ACCESS_KEY_ID", default: Self.defaultAccessKeyID),
            secretAccessKey: environment.string("EMULATOR_SECRET_ACCESS_KEY", default: Self.defaultSecretAccessKey),
            sessionToken: environment["EMULATOR_SESSION_TOKEN"],
            region: regions[0],
            otherRegions: Array(regions.dropFirst()),
            tokensPerSecond: try environment.int("EMULATOR_TOKENS_PER_SECOND", default: 100, in: 0...1_000_000),
            replyTokens: try environment.int("EMULATOR_REPLY_TOKENS", default: 24, in: 0...1_000_000),
            catalog: try ModelCatalog.load(environment: environment)
        )
        guard accessKeyID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw ConfigurationError("EMULATOR_ACCESS_KEY_ID must be ASCII letters and digits (got \(accessKeyID))")
        }
        for region in [region] + otherRegions where !region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) {
            throw ConfigurationError("EMULATOR_REGION must be regions like us-east-1,us-west-2 (got \(region))")
        }
    }

    /// `EMULATOR_REGION` as a list: the home region first (by default us-east-1, with us-west-2 beside it).
    static func regions(_ environment: Environment) -> [String] {
        let listed = environment.string("EMULATOR_REGION", default: "us-east-1,us-west-2").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return listed.isEmpty ? ["us-east-1"] : listed
    }
}
