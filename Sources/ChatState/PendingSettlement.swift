/// A settlement the accounting service could not take when it was made (or that the sweeper parked for a job
/// it ended), kept as JSON in `GenerationState.pendingSettlementsKey` under its reservation id until a
/// worker's retry gets it accepted.
public struct PendingSettlement: Codable, Sendable, Equatable {
    public var reservationID: String
    public var userID: String
    public var modelID: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var success: Bool

    /// A settlement to retry.
    public init(reservationID: String, userID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool) {
        self.reservationID = reservationID
        self.userID = userID
        self.modelID = modelID
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.success = success
    }
}
