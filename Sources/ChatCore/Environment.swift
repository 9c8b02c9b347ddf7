import Foundation

/// Reads settings from environment variables, with defaults, and fails with one clear line on a bad value.
public struct Environment: Sendable {
    private let values: [String: String]

    /// Settings from `values` (the process environment by default).
    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    /// The raw value, or nil when unset or empty.
    public subscript(_ key: String) -> String? {
        guard let value = values[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// A text setting with a default.
    public func string(_ key: String, default value: String) -> String {
        self[key] ?? value
    }

    /// A required text setting.
    public func required(_ key: String) throws -> String {
        guard let value = self[key] else { throw ConfigurationError("\(key) is required but not set") }
        return value
    }

    /// An integer setting within `range`.
    public func int(_ key: String, default value: Int, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let text = self[key] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError("\(key) must be an integer in \(range.lowerBound)...\(range.upperBound) (got \(text))")
        }
        return number
    }

    /// A duration setting given in milliseconds, within `range` milliseconds.
    public func milliseconds(_ key: String, default value: Duration, in range: ClosedRange<Int> = 1...86_400_000) throws -> Duration {
        guard self[key] != nil else { return value }
        return .milliseconds(try int(key, default: 0, in: range))
    }

    /// A yes/no setting (`1`, `true`, `yes` or `0`, `false`, `no`).
    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let text = self[key]?.lowercased() else { return value }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError("\(key) must be true or false (got \(text))")
        }
    }
}
