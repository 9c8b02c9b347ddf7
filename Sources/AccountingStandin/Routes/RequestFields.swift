import ChatCore
import Foundation
import Hummingbird

/// A request's named values, from its JSON object body or its query string, with readers that fail with
/// a clear 400 (`VALIDATION_ERROR`).
struct RequestFields {
    private let values: [String: Any]

    /// The JSON object body; bad JSON or not an object is 400, too large 413. An empty body is no fields
    /// when `optional`, else 400.
    static func body(of request: Request, context: AccountingRequestContext, optional: Bool = false) async throws -> RequestFields {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        if buffer.readableBytes == 0, optional { return RequestFields(values: [:]) }
        guard buffer.readableBytes > 0 else {
            throw ChatError(.badRequest, code: "INVALID_BODY", message: "The request body must be a JSON object")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)), let object = parsed as? [String: Any] else {
            throw ChatError(.badRequest, code: "INVALID_JSON", message: "The request body is not valid JSON")
        }
        return RequestFields(values: object)
    }

    /// The query parameters (each a string).
    static func query(of request: Request) -> RequestFields {
        var values: [String: Any] = [:]
        for parameter in request.uri.queryParameters { values[String(parameter.key)] = String(parameter.value) }
        return RequestFields(values: values)
    }

    /// Whether `name` is present and not null.
    func has(_ name: String) -> Bool {
        guard let value = values[name] else { return false }
        return !(value is NSNull)
    }

    /// A string: trimmed, 1...`maxLength` characters; nil when absent and not required.
    func string(_ name: String, required: Bool = false, maxLength: Int = 200) throws -> String? {
        guard has(name) else {
            if required { throw Self.invalid("\(name) is required") }
            return nil
        }
        guard let text = values[name] as? String else { throw Self.invalid("\(name) must be a string") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw Self.invalid("\(name) must not be empty") }
        guard trimmed.count <= maxLength else { throw Self.invalid("\(name) must be at most \(maxLength) characters") }
        return trimmed
    }

    /// A whole number within `range` (a JSON number without a fraction, or its text in a query); nil when absent.
    func integer(_ name: String, required: Bool = false, in range: ClosedRange<Int>) throws -> Int? {
        guard let number = try number(name, required: required) else { return nil }
        guard number.rounded() == number, let whole = Int(exactly: number), range.contains(whole) else {
            throw Self.invalid("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return whole
    }

    /// A finite number (a JSON number, or its text in a query); nil when absent.
    func number(_ name: String, required: Bool = false) throws -> Double? {
        guard has(name) else {
            if required { throw Self.invalid("\(name) is required") }
            return nil
        }
        let parsed: Double?
        switch values[name] {
        case let text as String: parsed = Double(text.trimmingCharacters(in: .whitespaces))
        case let number as NSNumber where !Self.isBoolean(number): parsed = number.doubleValue
        default: parsed = nil
        }
        guard let parsed, parsed.isFinite else { throw Self.invalid("\(name) must be a number") }
        return parsed
    }

    /// A boolean (JSON `true`/`false`, or `true`/`false` in a query); nil when absent.
    func bool(_ name: String) throws -> Bool? {
        guard has(name) else { return nil }
        switch values[name] {
        case let number as NSNumber where Self.isBoolean(number): return number.boolValue
        case let text as String where ["true", "false"].contains(text.lowercased()): return text.lowercased() == "true"
        default: throw Self.invalid("\(name) must be true or false")
        }
    }

    /// The model `modelId` names, or `catalog`'s default when absent (nil with `orDefault` false); a model the
    /// catalog does not list is 400.
    func model(in catalog: ModelCatalog, orDefault: Bool = true) throws -> ModelInfo? {
        guard let id = try string("modelId") ?? (orDefault ? catalog.defaultModelID : nil) else { return nil }
        guard let model = catalog.model(id: id) else { throw AccountingErrors.invalidModel }
        return model
    }

    /// JSONSerialization gives booleans as NSNumber too; they are told apart by class.
    private static func isBoolean(_ number: NSNumber) -> Bool {
        type(of: number) == type(of: NSNumber(value: true))
    }

    private static func invalid(_ message: String) -> ChatError {
        ChatError(.badRequest, code: "VALIDATION_ERROR", message: message)
    }
}
