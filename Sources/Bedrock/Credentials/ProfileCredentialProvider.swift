import Foundation
import SigV4

/// The shared credentials file (`~/.aws/credentials`, or `AWS_SHARED_CREDENTIALS_FILE`) and config file
/// (`~/.aws/config`, or `AWS_CONFIG_FILE`), profile `AWS_PROFILE` (default `default`).
public struct ProfileCredentialProvider: CredentialProvider {
    private let profile: String
    private let credentialsPath: String
    private let configPath: String

    /// Reads the files named by `environment` (the process's by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        configPath = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
    }

    public func credentials() async throws -> AWSCredentials {
        let source = "profile \(profile)"
        // The credentials file names sections `[name]`; the config file `[profile name]` (and `[default]`).
        let fromCredentials = (try? String(contentsOfFile: credentialsPath, encoding: .utf8)).map { IniFile.parse($0)[profile] } ?? nil
        let configSection = profile == "default" ? "default" : "profile \(profile)"
        let fromConfig = (try? String(contentsOfFile: configPath, encoding: .utf8)).map { IniFile.parse($0)[configSection] } ?? nil
        let values = (fromConfig ?? [:]).merging(fromCredentials ?? [:]) { $1 }
        guard let key = values["aws_access_key_id"], !key.isEmpty, let secret = values["aws_secret_access_key"], !secret.isEmpty else {
            throw CredentialError(source: source, message: "no aws_access_key_id and aws_secret_access_key in \(credentialsPath) or \(configPath)")
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"], expiration: nil)
    }
}

/// The INI dialect of the AWS shared files: `[section]`, `key = value`, `#` and `;` comments.
enum IniFile {
    /// Sections by name, each a dictionary of lowercased keys to trimmed values.
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }
}
