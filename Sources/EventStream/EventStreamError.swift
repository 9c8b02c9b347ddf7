/// Why an event stream could not be decoded; `code` is stable, `message` is for people.
public struct EventStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of decoding failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The CRC over the prelude (the two length fields) does not match.
        case preludeChecksumMismatch
        /// The CRC over the whole message does not match.
        case messageChecksumMismatch
        /// The total length is below 16 or leaves no room for the declared headers.
        case invalidLength
        /// The headers section is longer than the limit (128 KiB).
        case headersTooLong
        /// The payload is longer than the limit (24 MiB).
        case payloadTooLong
        /// Two headers of one message share a name.
        case duplicateHeader
        /// A header carries a type code outside 0 to 9.
        case invalidHeaderType
        /// A header runs past the end of the headers section.
        case truncatedHeader
        /// A header name or string value is not valid UTF-8.
        case invalidUTF8
    }

    /// What went wrong, for code to match on.
    public let code: Code
    /// What went wrong, with the numbers involved, for logs.
    public let message: String

    /// An error of kind `code` explained by `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The code and the message together.
    public var description: String { "\(code.rawValue): \(message)" }
}
