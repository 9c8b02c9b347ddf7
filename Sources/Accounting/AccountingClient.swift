import AsyncHTTPClient
import ChatCore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// The accounting service over HTTP (`ACCOUNTING_URL`), with a timeout per call and one retry for the
/// idempotent calls (check, finalize) when the service could not be reached. Every call carries the service
/// credential, when one is set, beside the user's bearer token.
public final class AccountingClient: CreditLedger {
    private let baseURL: String
    private let httpClient: HTTPClient
    private let timeout: Duration
    private let serviceCredential: ServiceCredential?
    private let logger: Logger

    /// A client of the service at `baseURL`; `timeout` bounds each call; `serviceCredential` goes with every call.
    public init(
        baseURL: String, httpClient: HTTPClient, timeout: Duration = .seconds(3), serviceCredential: ServiceCredential? = nil,
        logger: Logger = Logger(label: "accounting")
    ) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.httpClient = httpClient
        self.timeout = timeout
        self.serviceCredential = serviceCredential
        self.logger = logger
    }

    public func hasCredits(_ credits: Double, token: String) async throws -> Bool {
        try await Self.counted("balance") {
            let (status, body) = try await call("/api/credits/check", CheckBody(credits: credits), token: token, idempotent: true)
            guard status == 200, let sufficient = body.sufficient else { throw unexpected("credits/check", status) }
            return sufficient
        }
    }

    public func reserve(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation {
        try await Self.counted("reserve") {
            try await reserveOnce(reservationID: reservationID, sessionID: sessionID, modelID: modelID, estimatedTokens: estimatedTokens, token: token)
        }
    }

    public func finalize(
        reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String
    ) async throws -> CreditSettlement {
        try await Self.counted("finalize") {
            try await finalizeOnce(
                reservationID: reservationID, modelID: modelID, inputTokens: inputTokens, outputTokens: outputTokens, success: success, token: token
            )
        }
    }

    /// Runs one call of `operation`, counting its outcome: `ok`, `refused` (not enough credits, or the request
    /// rejected), `unavailable` (any failure that may pass), or `cancelled`.
    private static func counted<T>(_ operation: String, _ call: () async throws -> T) async throws -> T {
        do {
            let result = try await call()
            ChatMetrics.accountingCall(operation: operation, outcome: "ok")
            return result
        } catch let error as ChatError {
            let outcome = switch error.kind {
            case .paymentRequired, .badRequest, .forbidden: "refused"
            default: "unavailable"
            }
            ChatMetrics.accountingCall(operation: operation, outcome: outcome)
            throw error
        } catch {
            ChatMetrics.accountingCall(operation: operation, outcome: error is CancellationError ? "cancelled" : "unavailable")
            throw error
        }
    }

    private func reserveOnce(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation {
        let (status, body) = try await call(
            "/api/streaming-sessions/initialize",
            ReserveBody(sessionId: reservationID, chatSessionId: sessionID, modelId: modelID, estimatedTokens: estimatedTokens),
            token: token, idempotent: false
        )
        switch status {
        case 200, 201:
            return CreditReservation(id: reservationID, allocatedCredits: body.allocatedCredits ?? 0)
        case 402:
            throw Self.insufficient
        default:
            throw unexpected("streaming-sessions/initialize", status)
        }
    }

    private func finalizeOnce(
        reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String
    ) async throws -> CreditSettlement {
        let (status, body) = try await call(
            "/api/streaming-sessions/finalize",
            FinalizeBody(
                sessionId: reservationID, modelId: modelID, actualTokens: inputTokens + outputTokens, inputTokens: inputTokens,
                outputTokens: outputTokens, success: success
            ),
            token: token, idempotent: true
        )
        if status == 404 {
            // No such reservation (never made, or already expired and refunded): nothing is left to settle.
            logger.warning("finalize of an unknown reservation", metadata: ["reservation": "\(reservationID)"])
            return CreditSettlement(creditsUsed: 0, refund: 0, unknownReservation: true)
        }
        guard status == 200 else { throw unexpected("streaming-sessions/finalize", status) }
        return CreditSettlement(
            creditsUsed: body.creditsUsed ?? 0, refund: body.refund ?? 0, expired: body.status == "expired",
            inputTokens: body.inputTokens, outputTokens: body.outputTokens
        )
    }

    /// An HTTP client for the accounting service: up to `maxConnections` calls in flight (AsyncHTTPClient's
    /// default of 8 would queue the requests of a busy API behind each other).
    public static func makeHTTPClient(maxConnections: Int = 128) -> HTTPClient {
        var settings = HTTPClient.Configuration()
        settings.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    /// 402 as the API answers it.
    public static let insufficient = ChatError(.paymentRequired, code: "INSUFFICIENT_CREDITS", message: "Insufficient credits to process request")
    /// Anything else that keeps the service from answering.
    public static let unavailable = ChatError(.unavailable, code: "ACCOUNTING_UNAVAILABLE", message: "The accounting service is unavailable")

    private func call(_ path: String, _ body: some Encodable, token: String, idempotent: Bool) async throws -> (Int, ReplyFields) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let serviceCredential { request.headers.add(name: ServiceCredential.headerName, value: serviceCredential.token) }
        if let traceparent = TraceContext.outgoingTraceparent() { request.headers.add(name: "traceparent", value: traceparent) }
        request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        let attempts = idempotent ? 2 : 1
        for attempt in 1...attempts {
            do {
                let response = try await httpClient.execute(request, timeout: TimeAmount.nanoseconds(timeout.nanoseconds))
                let bytes = try await response.body.collect(upTo: 1024 * 1024)
                let fields = (try? JSONDecoder().decode(ReplyFields.self, from: bytes)) ?? ReplyFields()
                let status = Int(response.status.code)
                if status >= 500, attempt < attempts { continue }
                return (status, fields)
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as HTTPClientError where error == .cancelled || Task.isCancelled {
                // The calling task was cancelled (a worker draining, or whose attempt lost its job): not an outage.
                throw CancellationError()
            } catch {
                logger.warning("accounting call failed", metadata: ["path": "\(path)", "attempt": "\(attempt)", "error": "\(error)"])
                if attempt == attempts { throw Self.unavailable }
            }
        }
        throw Self.unavailable
    }

    /// An answer the call cannot use, classified for whoever retries it: `.unavailable` (a server error, 408,
    /// 429, and 403: the service refuses the chat service itself, a credential missing or rotated, which an
    /// operator cures; settlements wait for it, parked) and `.unauthorized` (401, which a fresh token cures when
    /// the clocks disagree) may succeed later; `.badRequest` (any other 4xx: the request itself is wrong) will not.
    private func unexpected(_ call: String, _ status: Int) -> ChatError {
        switch status {
        case 403:
            logger.error(
                "the accounting service refuses the chat service; is ACCOUNTING_SERVICE_TOKEN the same here and there?",
                metadata: ["call": "\(call)", "status": "\(status)"]
            )
        default:
            logger.warning("accounting answered unexpectedly", metadata: ["call": "\(call)", "status": "\(status)"])
        }
        switch status {
        case 401:
            return ChatError(.unauthorized, code: "ACCOUNTING_UNAUTHORIZED", message: "The accounting service did not accept the token")
        case 403:
            return ChatError(.unavailable, code: "ACCOUNTING_REFUSED", message: "The accounting service refused the chat service's call")
        case 400..<500 where status != 408 && status != 429:
            return ChatError(.badRequest, code: "ACCOUNTING_REJECTED", message: "The accounting service rejected the request (\(status))")
        default:
            return Self.unavailable
        }
    }

}

/// The bodies of the calls, as the guide's accounting contract names their fields.
private struct CheckBody: Encodable {
    var credits: Double
}

private struct ReserveBody: Encodable {
    var sessionId: String
    var chatSessionId: String
    var modelId: String
    var estimatedTokens: Int
}

private struct FinalizeBody: Encodable {
    var sessionId: String
    var modelId: String
    var actualTokens: Int
    var inputTokens: Int
    var outputTokens: Int
    var success: Bool
}

/// The fields of the service's answers this client reads; each one is read on its own, so a field of an
/// unexpected type is missing rather than spoiling the others.
struct ReplyFields: Decodable {
    var status: String?
    var sufficient: Bool?
    var allocatedCredits: Double?
    var creditsUsed: Double?
    var refund: Double?
    var inputTokens: Int?
    var outputTokens: Int?

    init() {}

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try? container.decodeIfPresent(String.self, forKey: .status)
        sufficient = try? container.decodeIfPresent(Bool.self, forKey: .sufficient)
        allocatedCredits = try? container.decodeIfPresent(Double.self, forKey: .allocatedCredits)
        creditsUsed = try? container.decodeIfPresent(Double.self, forKey: .creditsUsed)
        refund = try? container.decodeIfPresent(Double.self, forKey: .refund)
        inputTokens = try? container.decodeIfPresent(Int.self, forKey: .inputTokens)
        outputTokens = try? container.decodeIfPresent(Int.self, forKey: .outputTokens)
    }

    private enum CodingKeys: String, CodingKey {
        case status, sufficient, allocatedCredits, creditsUsed, refund, inputTokens, outputTokens
    }
}

