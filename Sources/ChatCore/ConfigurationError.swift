/// A setting is missing or invalid; the process prints `message` as one line and exits at start.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    /// Creates an error with the line to print.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
