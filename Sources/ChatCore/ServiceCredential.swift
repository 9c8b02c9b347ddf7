/// The credential that marks an accounting call as the chat service's own (`ACCOUNTING_SERVICE_TOKEN`, sent as
/// `X-Service-Token`). Where it is set, the accounting service reserves and settles credits only for callers
/// that present it, so a user holding a valid token of their own cannot settle a reservation for nothing.
public struct ServiceCredential: Sendable {
    /// The header that carries it.
    public static let headerName = "X-Service-Token"
    /// The setting that holds it.
    public static let setting = "ACCOUNTING_SERVICE_TOKEN"
    /// The shortest credential accepted.
    public static let minimumLength = 32
    /// The credential itself (never logged).
    public let token: String

    /// A credential of at least `minimumLength` bytes.
    public init(token: String) throws {
        guard token.utf8.count >= Self.minimumLength else {
            throw ConfigurationError("\(Self.setting) must be at least \(Self.minimumLength) bytes long (it has \(token.utf8.count))")
        }
        self.token = token
    }

    /// The credential `ACCOUNTING_SERVICE_TOKEN` sets, nil when unset; a short or published one (outside a
    /// development stack) throws a `ConfigurationError`.
    public static func from(_ environment: Environment) throws -> ServiceCredential? {
        guard let token = environment[setting] else { return nil }
        let credential = try ServiceCredential(token: token)
        try PublishedSecrets.refuse(token, setting: setting, in: environment)
        return credential
    }

    /// Whether `presented` is this credential, compared in time that does not depend on where they differ.
    public func matches(_ presented: String?) -> Bool {
        guard let presented else { return false }
        let expected = Array(token.utf8)
        let given = Array(presented.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }
}
