import ChatCore
import Hummingbird

/// `GET /api/models` (the models the caller's role may use) and `POST /api/models/recommend`.
struct ModelController: Sendable {
    /// The models offered.
    let catalog: ModelCatalog

    func register(on group: RouterGroup<ChatRequestContext>) {
        group.get("/", use: list)
        group.post("/recommend", use: recommend)
    }

    @Sendable func list(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        return Response.json(status: .ok, ModelsBody(models: catalog.models(for: user.role).map { ModelView($0, catalog: catalog, role: user.role) }, defaultModelId: catalog.defaultModelID))
    }

    @Sendable func recommend(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await request.decodeBody(RecommendBody.self, context: context)
        let task = body.task!
        let priorityText = body.priority ?? ModelPriority.balanced.rawValue
        guard let priority = ModelPriority(rawValue: priorityText.lowercased()) else {
            throw ChatError(
                .badRequest, code: "VALIDATION_ERROR",
                message: "priority must be one of " + ModelPriority.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        guard let recommendation = ModelRecommender.recommend(task: task, priority: priority, role: user.role, catalog: catalog) else {
            throw ChatError(.notFound, code: "NO_MODEL", message: "No model is available to you")
        }
        return Response.json(
            status: .ok,
            RecommendationBody(
                recommendedModel: ModelView(recommendation.model, catalog: catalog, role: user.role), reason: recommendation.reason,
                alternatives: recommendation.alternatives.map { ModelView($0, catalog: catalog, role: user.role) }, priority: priority.rawValue
            )
        )
    }
}
