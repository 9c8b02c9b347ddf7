import Foundation

/// Where a page of a session's messages ends: a message's time and id, in the order messages are kept (by
/// time, then id). Clients see it as an opaque token (`<milliseconds>_<id>`) and hand it back for the page of
/// older messages.
public struct MessageCursor: Sendable, Equatable {
    /// The message's time, in whole milliseconds as stored.
    public var createdAt: Date
    /// The message's id (24 hex digits).
    public var id: String

    /// The cursor just before `message`.
    public init(_ message: ChatMessage) {
        createdAt = message.createdAt
        id = message.id
    }

    /// The last millisecond of the year 9999: no message is stored later, and some databases' drivers cannot
    /// read a later date (a time past it is no cursor, 400, rather than a database error).
    static let latestMilliseconds: Int64 = 253_402_300_799_999

    /// The cursor a token names; nil when it is not one.
    public init?(token: some StringProtocol) {
        let parts = token.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 15, let milliseconds = Int64(parts[0]), (0...Self.latestMilliseconds).contains(milliseconds),
            parts[1].count == 24, parts[1].utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        createdAt = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        id = String(parts[1])
    }

    /// The token clients hand back.
    public var token: String { "\(Int64((createdAt.timeIntervalSince1970 * 1000).rounded()))_\(id)" }
}
