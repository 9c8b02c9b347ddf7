/// Secrets this repository publishes for development: the guide's JWT secrets and the development stack's
/// service token. Anyone can read them, so a process that guards users' data and credits refuses to start
/// with one unless `ALLOW_DEVELOPMENT_SECRETS` says it is a development stack.
public enum PublishedSecrets {
    /// The published values.
    public static let values: Set<String> = [
        "dev_access_secret_key_change_this_in_production",
        "dev_refresh_secret_key_change_this_in_production",
        "dev_accounting_service_token_change_this_in_production",
    ]

    /// Throws a `ConfigurationError` naming `setting` when `value` is published and `ALLOW_DEVELOPMENT_SECRETS`
    /// is not true in `environment`.
    public static func refuse(_ value: String, setting: String, in environment: Environment) throws {
        guard values.contains(value), try !environment.bool("ALLOW_DEVELOPMENT_SECRETS", default: false) else { return }
        throw ConfigurationError(
            "\(setting) is a development secret this repository publishes; set one of your own (openssl rand -hex 32),"
                + " or ALLOW_DEVELOPMENT_SECRETS=true on a development stack"
        )
    }
}
