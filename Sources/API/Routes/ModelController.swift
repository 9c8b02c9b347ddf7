import ChatCore
import Hummingbird

/// `GET /api/models` (the models the caller's role may use) and `POST /api/models/recommend`.
struct ModelController: Sendable {
    func register(on group: RouterGroup<ChatRequestContext>) {
        group.get("/", use: list)
        group.post("/recommend", use: recommend)
    }

    @Sendable func list(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let models = ModelCatalog.models(for: user.role).map(Self.json)
        return Response.json(status: .ok, ["models": models, "defaultModelId": ModelCatalog.defaultModelID] as [String: Any])
    }

    @Sendable func recommend(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await JSONBody(request: request, context: context)
        let task = try body.string("task", required: true, maxLength: 500)!
        let priorityText = try body.string("priority", required: false, maxLength: 20) ?? ModelPriority.balanced.rawValue
        guard let priority = ModelPriority(rawValue: priorityText.lowercased()) else {
            throw ChatError(
                .badRequest, code: "VALIDATION_ERROR",
                message: "priority must be one of " + ModelPriority.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        guard let recommendation = ModelRecommender.recommend(task: task, priority: priority, role: user.role) else {
            throw ChatError(.notFound, code: "NO_MODEL", message: "No model is available to you")
        }
        return Response.json(
            status: .ok,
            [
                "recommendedModel": Self.json(recommendation.model), "reason": recommendation.reason,
                "alternatives": recommendation.alternatives.map(Self.json), "priority": priority.rawValue,
            ] as [String: Any]
        )
    }

    static func json(_ model: ModelInfo) -> [String: Any] {
        [
            "id": model.id, "name": model.name, "family": model.family.rawValue, "provider": String(model.id.prefix { $0 != "." }),
            "contextWindow": model.contextWindow, "maxOutputTokens": model.maxOutputTokens,
            "pricing": ["inputCreditsPer1K": model.inputCreditsPer1K, "outputCreditsPer1K": model.outputCreditsPer1K],
        ]
    }
}
