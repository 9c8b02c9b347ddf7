import ChatCore

/// An account as clients see it: no secret material.
struct UserProfile: Sendable, Equatable, Codable {
    /// The user's id, which is also the tokens' subject; here the same as the username.
    var id: String
    var username: String
    var email: String
    var role: UserRole
}

/// How a login names its user: by username or by email (both matched case-insensitively).
enum LoginIdentifier: Sendable, Equatable {
    case username(String)
    case email(String)
}

/// The guide's five test users. This is a development stand-in: the passwords are the guide's published
/// ones and sit in this binary as literals. They are hashed at start and only the hashes are kept; `all`
/// is computed so that no long-lived copy of the list stays in memory.
enum SeedUsers {
    /// One user to create: the profile and its plaintext password.
    struct Seed: Sendable {
        var profile: UserProfile
        var password: String
    }

    /// admin, supervisor1, supervisor2, user1 and user2, with the guide's emails, passwords and roles.
    static var all: [Seed] {
        [
            seed("admin", "admin@admin", .admin),
            seed("supervisor1", "Supervisor1@", .supervisor),
            seed("supervisor2", "Supervisor2@", .supervisor),
            seed("user1", "User1@123", .enduser),
            seed("user2", "User2@123", .enduser),
        ]
    }

    private static func seed(_ username: String, _ password: String, _ role: UserRole) -> Seed {
        Seed(profile: UserProfile(id: username, username: username, email: "\(username)@example.com", role: role), password: password)
    }
}

/// The accounts auth-standin knows, each with its password hash; fixed after start.
struct UserDirectory: Sendable {
    private struct Account: Sendable {
        var profile: UserProfile
        var password: PasswordHash
    }

    private let accounts: [String: Account]
    private let idByUsername: [String: String]
    private let idByEmail: [String: String]
    private let decoy: PasswordHash

    /// Hashes every seed's password with `rounds` PBKDF2 rounds, concurrently and each on a detached task
    /// (never on an event loop); the plaintext passwords are dropped when this returns.
    static func hashing(_ seeds: [SeedUsers.Seed], rounds: Int) async throws -> UserDirectory {
        let tasks = seeds.map { seed in
            let password = seed.password
            return (seed.profile, Task.detached(priority: .userInitiated) { try PasswordHash.make(password: password, rounds: rounds) })
        }
        var accounts: [String: Account] = [:]
        for (profile, task) in tasks {
            accounts[profile.id] = Account(profile: profile, password: try await task.value)
        }
        return UserDirectory(accounts: accounts, decoy: PasswordHash.decoy(rounds: rounds))
    }

    private init(accounts: [String: Account], decoy: PasswordHash) {
        self.accounts = accounts
        self.idByUsername = Dictionary(uniqueKeysWithValues: accounts.values.map { ($0.profile.username.lowercased(), $0.profile.id) })
        self.idByEmail = Dictionary(uniqueKeysWithValues: accounts.values.map { ($0.profile.email.lowercased(), $0.profile.id) })
        self.decoy = decoy
    }

    /// How many users there are.
    var count: Int { accounts.count }

    /// The user with this id, if there is one.
    func profile(id: String) -> UserProfile? {
        accounts[id]?.profile
    }

    /// The id of the user a login names, if there is one.
    func userID(for identifier: LoginIdentifier) -> String? {
        switch identifier {
        case .username(let name): idByUsername[name.lowercased()]
        case .email(let address): idByEmail[address.lowercased()]
        }
    }

    /// The user whose password `password` is, or nil for a wrong password or an unknown user. An unknown
    /// user costs one hash too, so timing does not tell which names exist. The hash runs on a detached task.
    func authenticate(_ identifier: LoginIdentifier, password: String) async -> UserProfile? {
        let account = userID(for: identifier).flatMap { accounts[$0] }
        let hash = account?.password ?? decoy
        let matches = await Task.detached(priority: .userInitiated) { hash.matches(password) }.value
        guard matches, let account else { return nil }
        return account.profile
    }
}
