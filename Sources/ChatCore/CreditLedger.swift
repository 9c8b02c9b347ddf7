/// A credit reservation held for one generation job.
public struct CreditReservation: Sendable, Equatable, Codable {
    /// The id the reservation is known by (the accounting service's `sessionId`): random, never shown to a client.
    public var id: String
    /// Credits set aside.
    public var allocatedCredits: Double

    /// Creates a reservation value.
    public init(id: String, allocatedCredits: Double) {
        self.id = id
        self.allocatedCredits = allocatedCredits
    }
}

/// How a finalized reservation settled.
public struct CreditSettlement: Sendable, Equatable {
    public var creditsUsed: Double
    public var refund: Double
    /// The reservation had expired before this settlement: nothing was charged by it.
    public var expired: Bool
    /// The service knows no such reservation (never made, or already gone): nothing was charged.
    public var unknownReservation: Bool
    /// The input tokens the service settled the reservation with, when it says (a repeat answers the first
    /// settlement's).
    public var inputTokens: Int?
    /// The output tokens the service settled the reservation with, when it says.
    public var outputTokens: Int?

    /// Creates a settlement value.
    public init(
        creditsUsed: Double, refund: Double, expired: Bool = false, unknownReservation: Bool = false, inputTokens: Int? = nil,
        outputTokens: Int? = nil
    ) {
        self.creditsUsed = creditsUsed
        self.refund = refund
        self.expired = expired
        self.unknownReservation = unknownReservation
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

/// The accounting service, as chat-api and chat-worker use it. Each call acts for the user whose bearer token
/// it carries. Errors: `ChatError` with `.paymentRequired` (402, not enough credits) or `.unavailable`
/// (`ACCOUNTING_UNAVAILABLE`: unreachable, timed out, or failing; the service fails closed).
public protocol CreditLedger: Sendable {
    /// Whether the user has at least `credits` available.
    func hasCredits(_ credits: Double, token: String) async throws -> Bool
    /// Reserves the credits `estimatedTokens` of `modelID` may cost, under `reservationID`.
    func reserve(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation
    /// Settles a reservation with the tokens actually used; idempotent (a second call refunds nothing more).
    func finalize(
        reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String
    ) async throws -> CreditSettlement
}
