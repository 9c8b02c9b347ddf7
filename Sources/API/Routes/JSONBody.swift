import ChatCore
import Foundation
import Hummingbird

/// A request's JSON object body, with field readers that fail with a clear 400.
struct JSONBody {
    private let object: [String: Any]

    /// Reads and parses the body; not an object, bad JSON or too large → 400 / 413.
    init(request: Request, context: ChatRequestContext) async throws {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else {
            throw ChatError(.badRequest, code: "INVALID_BODY", message: "The request body must be a JSON object")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)), let object = parsed as? [String: Any] else {
            throw ChatError(.badRequest, code: "INVALID_JSON", message: "The request body is not valid JSON")
        }
        self.object = object
    }

    /// A string field: trimmed, 1...`maxLength` characters; nil when absent (or null) and not required.
    func string(_ name: String, required: Bool, maxLength: Int) throws -> String? {
        guard let value = object[name], !(value is NSNull) else {
            if required { throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) is required") }
            return nil
        }
        guard let text = value as? String else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be a string")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty {
            if required { throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must not be empty") }
            return nil
        }
        guard trimmed.count <= maxLength else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be at most \(maxLength) characters")
        }
        return trimmed
    }
}
