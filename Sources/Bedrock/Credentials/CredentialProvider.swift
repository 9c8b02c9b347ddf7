import Foundation
import SigV4

/// A source of AWS credentials.
public protocol CredentialProvider: Sendable {
    /// Current credentials; throws `CredentialError` when this source has none or cannot be reached.
    func credentials() async throws -> AWSCredentials
}

/// No credentials could be found or fetched.
public struct CredentialError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The source that failed, e.g. `environment`, `profile default`, `container`, `instance metadata`.
    public var source: String
    public var message: String

    /// Creates an error.
    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "AWS credentials (\(source)): \(message)" }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialProvider: CredentialProvider {
    private let environment: [String: String]

    /// Reads the given environment (the process's by default) on every call.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public func credentials() async throws -> AWSCredentials {
        guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        else { throw CredentialError(source: "environment", message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, expiration: nil)
    }
}

/// Tries each provider in turn and uses the first that has credentials, remembering which one it was.
public final class CredentialChain: CredentialProvider {
    private let providers: [any CredentialProvider]

    /// A chain over `providers`, in order.
    public init(_ providers: [any CredentialProvider]) {
        self.providers = providers
    }

    public func credentials() async throws -> AWSCredentials {
        var failures: [String] = []
        for provider in providers {
            do {
                return try await provider.credentials()
            } catch let error as CredentialError {
                failures.append(error.description)
            }
        }
        throw CredentialError(source: "chain", message: "no source had credentials: " + failures.joined(separator: "; "))
    }
}

/// Caches another provider's credentials and fetches new ones `refreshMargin` before they expire; concurrent
/// callers share one fetch.
public actor RefreshingCredentialProvider: CredentialProvider {
    private let base: any CredentialProvider
    private let refreshMargin: TimeInterval
    private let now: @Sendable () -> Date
    private var cached: AWSCredentials?
    private var refreshing: Task<AWSCredentials, any Error>?

    /// Wraps `base`; `now` is injectable for tests.
    public init(_ base: any CredentialProvider, refreshMargin: TimeInterval = 300, now: @escaping @Sendable () -> Date = Date.init) {
        self.base = base
        self.refreshMargin = refreshMargin
        self.now = now
    }

    public func credentials() async throws -> AWSCredentials {
        if let cached, !needsRefresh(cached) { return cached }
        if let refreshing { return try await refreshing.value }
        let task = Task { [base] in try await base.credentials() }
        refreshing = task
        defer { refreshing = nil }
        do {
            let fresh = try await task.value
            cached = fresh
            return fresh
        } catch {
            // Keep using credentials that have not expired yet if a refresh fails.
            if let cached, let expiration = cached.expiration, expiration > now() { return cached }
            throw error
        }
    }

    private func needsRefresh(_ credentials: AWSCredentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return expiration.timeIntervalSince(now()) < refreshMargin
    }
}
