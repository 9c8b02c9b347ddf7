import Foundation

/// A settlement the accounting service could not take when it was made (or that the sweeper parked for a job
/// it ended), kept as JSON in `GenerationState.pendingSettlementsKey` under its reservation id until a
/// worker's retry gets it accepted.
public struct PendingSettlement: Codable, Sendable, Equatable {
    /// The reservation to finalize.
    public var reservationID: String
    /// The user it is finalized for (a token on their behalf is signed for each try).
    public var userID: String
    /// The model whose prices apply.
    public var modelID: String
    /// The tokens to bill.
    public var inputTokens: Int
    public var outputTokens: Int
    /// Whether the reply completed.
    public var success: Bool
    /// The chat session the reservation was made for (for a late charge); absent in settlements parked before it was kept.
    public var sessionID: String?
    /// How often a retry failed so far (absent: never).
    public var tries: Int?
    /// When a retry first failed, in seconds since 1970 (absent: never): a settlement is given up a day later.
    public var firstFailedAt: Double?
    /// The last failure, for whoever looks at a settlement that was given up.
    public var lastError: String?

    /// A settlement to retry.
    public init(reservationID: String, userID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, sessionID: String? = nil) {
        self.sessionID = sessionID
        self.reservationID = reservationID
        self.userID = userID
        self.modelID = modelID
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.success = success
    }
}

extension PendingSettlement {
    /// The settlement as it is kept in Redis.
    public func json() throws -> String {
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }

    /// The settlement kept in Redis as `json`.
    public init(json: String) throws {
        self = try JSONDecoder().decode(PendingSettlement.self, from: Data(json.utf8))
    }
}
