import ChatCore
import Foundation
import HTTPTypes
import Hummingbird

/// `/api/streaming-sessions`: reserve credits for a generation, then settle them with the tokens it used. With a
/// service credential, both calls are the chat service's alone (403 for anyone else); the user is still the
/// bearer token's subject.
struct StreamingSessionsController: Sendable {
    let store: AccountStore
    let serviceCredential: ServiceCredential?

    func register(on group: RouterGroup<AccountingRequestContext>) {
        group.post("/initialize", use: initialize)
        group.post("/finalize", use: finalize)
    }

    /// `{sessionId, modelId?, estimatedTokens, chatSessionId?}` → 201 `{sessionId, allocatedCredits, ...}`;
    /// 402 when the available balance is below the estimate's cost. Repeating an open reservation with the
    /// same model and estimate answers it again (201); any other repeat of the session id is 409.
    @Sendable func initialize(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        try requireService(request)
        let fields = try await RequestFields.body(of: request, context: context)
        let sessionID = try fields.string("sessionId", required: true)!
        let model = try fields.model(in: store.catalog)!
        let estimatedTokens = try fields.integer("estimatedTokens", required: true, in: 0...Pricing.maxTokens)!
        let chatSessionID = try fields.string("chatSessionId")
        let (entry, _) = try await store.reserve(
            userID: user.id, sessionID: sessionID, chatSessionID: chatSessionID, model: model, estimatedTokens: estimatedTokens
        )
        return JSONReply.make(
            .created,
            [
                "sessionId": sessionID,
                "allocatedCredits": entry.reservedCredits,
                "status": entry.status.rawValue,
                "modelId": model.id,
                "estimatedTokens": estimatedTokens,
                "expiresAt": JSONReply.timestamp(entry.expiresAt),
            ] as [String: Any]
        )
    }

    /// `{sessionId, actualTokens, success?, inputTokens?, outputTokens?, modelId?}` → 200 `{status,
    /// creditsUsed, refund, ...}`. Idempotent: a repeat answers the first settlement and refunds nothing more.
    @Sendable func finalize(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        try requireService(request)
        let fields = try await RequestFields.body(of: request, context: context)
        let sessionID = try fields.string("sessionId", required: true)!
        let usage = try Self.usage(fields)
        let model = try fields.model(in: store.catalog, orDefault: false)
        let success = try fields.bool("success") ?? true
        let entry = try await store.finalize(userID: user.id, sessionID: sessionID, usage: usage, model: model, success: success)
        let settlement = entry.settlement
        var body: [String: Any] = [
            "status": entry.status.rawValue,
            "sessionId": sessionID,
            "reservedCredits": entry.reservedCredits,
            "creditsUsed": settlement?.creditsUsed ?? 0,
            "refund": settlement?.refund ?? 0,
            "actualCost": settlement?.actualCost ?? 0,
            "success": settlement?.success ?? false,
            "inputTokens": settlement?.inputTokens ?? 0,
            "outputTokens": settlement?.outputTokens ?? 0,
        ]
        if let forfeited = settlement?.forfeited, forfeited > 0 { body["forfeitedCredits"] = forfeited }
        return JSONReply.make(.ok, body)
    }

    /// 403 unless the request carries the service credential, when one is configured.
    private func requireService(_ request: Request) throws {
        guard let serviceCredential else { return }
        guard serviceCredential.matches(request.headers[HTTPField.Name(ServiceCredential.headerName)!]) else {
            throw ChatError(.forbidden, code: "SERVICE_CREDENTIAL_REQUIRED", message: "Only the chat service may reserve or settle credits")
        }
    }

    /// The tokens to bill: `inputTokens` and `outputTokens` when given (one of them missing is the rest of
    /// `actualTokens`), else `actualTokens` as output tokens.
    static func usage(_ fields: RequestFields) throws -> TokenUsage {
        let range = 0...Pricing.maxTokens
        let actual = try fields.integer("actualTokens", in: range)
        let input = try fields.integer("inputTokens", in: range)
        let output = try fields.integer("outputTokens", in: range)
        switch (input, output) {
        case let (input?, output?):
            return TokenUsage(inputTokens: input, outputTokens: output)
        case let (input?, nil):
            return TokenUsage(inputTokens: input, outputTokens: max(0, (actual ?? input) - input))
        case let (nil, output?):
            return TokenUsage(inputTokens: max(0, (actual ?? output) - output), outputTokens: output)
        case (nil, nil):
            guard let actual else {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "actualTokens is required")
            }
            return TokenUsage(inputTokens: 0, outputTokens: actual)
        }
    }
}
