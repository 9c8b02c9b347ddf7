import ChatCore
import Foundation
import Yams

/// The model catalog file (`MODEL_CATALOG_PATH`, JSON or YAML, docs/models.md): whether it replaces the built-in
/// catalog or extends it, the default model, and its entries. In `extend` mode an entry with a built-in id
/// changes only the fields it gives; a new id must give every required field.
public struct CatalogFile: Decodable, Sendable {
    /// How the file's entries combine with the built-in catalog.
    public enum Mode: String, Decodable, Sendable {
        /// The built-in entries, changed and followed by the file's.
        case extend
        /// The file's entries alone.
        case replace
    }

    /// One entry as written; every field optional, so that an `extend` entry may change only some.
    struct Entry: Decodable, Sendable {
        struct Pricing: Decodable, Sendable {
            var inputCreditsPer1K: Double?
            var outputCreditsPer1K: Double?
        }

        struct Recommendation: Decodable, Sendable {
            var strengths: [String]?
            var speed: Int?
            var quality: Int?
            var cost: Int?
        }

        var id: String?
        var name: String?
        var family: ModelFamily?
        var contextWindow: Int?
        var maxOutputTokens: Int?
        var pricing: Pricing?
        var roles: [UserRole]?
        var api: BedrockAPI?
        var bedrockModelId: String?
        var inferenceProfiles: [String: String]?
        var requiresInferenceProfile: Bool?
        var region: String?
        var fallbacks: [String]?
        var listed: Bool?
        var recommendation: Recommendation?
    }

    /// `extend` (the default) or `replace`.
    var mode: Mode?
    /// The model used when a request names none (default: the base catalog's, if kept; else the first entry).
    var defaultModel: String?
    /// The entries, in the order users see them after the base catalog's.
    var models: [Entry]

    /// Reads the file at `path`: JSON when it ends in `.json`, YAML otherwise. A missing file, a syntax error, a
    /// field of the wrong type or an unknown value throws a `CatalogError` naming the entry.
    public static func read(path: String) throws -> CatalogFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw CatalogError("cannot read the model catalog \(path)") }
        let json = path.lowercased().hasSuffix(".json")
        do {
            let text = json ? "" : String(decoding: data, as: UTF8.self)
            if !json { try YAMLShape.check(text) }
            let tree: Any? = json ? try JSONSerialization.jsonObject(with: data) : try Yams.load(yaml: text)
            try checkFields(tree)
            if json {
                return try JSONDecoder().decode(CatalogFile.self, from: data)
            }
            return try YAMLDecoder().decode(CatalogFile.self, from: data)
        } catch let error as CatalogError {
            throw CatalogError("the model catalog \(path): \(error.description)")
        } catch let error as DecodingError {
            throw CatalogError("the model catalog \(path): \(describe(error))")
        } catch {
            throw CatalogError("the model catalog \(path) is not valid \(path.lowercased().hasSuffix(".json") ? "JSON" : "YAML"): \(error)")
        }
    }

    /// The catalog this file makes of `base`.
    public func catalog(base: ModelCatalog = .builtIn) throws(CatalogError) -> ModelCatalog {
        var models = mode == .replace ? [] : base.models
        var seen: Set<String> = []
        for (position, entry) in self.models.enumerated() {
            let name = "model \(position + 1)" + (entry.id.map { " (\"\($0)\")" } ?? "")
            guard let id = entry.id else { throw CatalogError("\(name): id is required") }
            guard seen.insert(id).inserted else { throw CatalogError("\(name): the id appears twice in the file") }
            if let existing = models.firstIndex(where: { $0.id == id }) {
                models[existing] = try entry.applied(to: models[existing])
            } else {
                models.append(try entry.newModel(name: name))
            }
        }
        let defaultModel = defaultModel ?? (models.contains { $0.id == base.defaultModelID } ? base.defaultModelID : models.first?.id ?? "")
        return try ModelCatalog(models: models, defaultModelID: defaultModel)
    }

    static let fileFields: Set<String> = ["mode", "defaultModel", "models"]
    static let entryFields: Set<String> = [
        "id", "name", "family", "contextWindow", "maxOutputTokens", "pricing", "roles", "api", "bedrockModelId", "inferenceProfiles",
        "requiresInferenceProfile", "region", "fallbacks", "listed", "recommendation",
    ]
    static let pricingFields: Set<String> = ["inputCreditsPer1K", "outputCreditsPer1K"]
    static let recommendationFields: Set<String> = ["strengths", "speed", "quality", "cost"]

    /// Refuses a field the format does not have (a misspelt one would otherwise be ignored), naming the entry.
    static func checkFields(_ tree: Any?) throws(CatalogError) {
        func unknown(_ object: Any?, _ known: Set<String>, _ place: String) throws(CatalogError) {
            guard let object = object as? [String: Any] else { return }
            if let field = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw CatalogError("\(place)has an unknown field \"\(field)\" (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        guard let root = tree as? [String: Any] else { throw CatalogError("the file must hold an object with a models list") }
        try unknown(root, fileFields, "the file ")
        for (position, entry) in ((root["models"] as? [Any]) ?? []).enumerated() {
            let place = "model \(position + 1)" + (((entry as? [String: Any])?["id"] as? String).map { " (\"\($0)\")" } ?? "") + " "
            try unknown(entry, entryFields, place)
            try unknown((entry as? [String: Any])?["pricing"], pricingFields, place + "pricing ")
            try unknown((entry as? [String: Any])?["recommendation"], recommendationFields, place + "recommendation ")
        }
    }

    /// Says where in the file a decoding error is, as `models[2].contextWindow`.
    static func describe(_ error: DecodingError) -> String {
        let path = CodingPathText.of
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context.codingPath)) has the wrong type (\(context.debugDescription))"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is required"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? context.debugDescription : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

extension CatalogFile.Entry {
    /// A model from an entry that gives every required field.
    func newModel(name: String) throws(CatalogError) -> ModelInfo {
        func required<T>(_ value: T?, _ field: String) throws(CatalogError) -> T {
            guard let value else { throw CatalogError("\(name): \(field) is required for a model not in the built-in catalog") }
            return value
        }
        let model = ModelInfo(
            id: try required(id, "id"), name: try required(self.name, "name"), family: try required(family, "family"),
            contextWindow: try required(contextWindow, "contextWindow"), maxOutputTokens: try required(maxOutputTokens, "maxOutputTokens"),
            inputCreditsPer1K: try required(pricing?.inputCreditsPer1K, "pricing.inputCreditsPer1K"),
            outputCreditsPer1K: try required(pricing?.outputCreditsPer1K, "pricing.outputCreditsPer1K")
        )
        return try applied(to: model)
    }

    /// `model` with the fields this entry gives.
    func applied(to model: ModelInfo) throws(CatalogError) -> ModelInfo {
        var model = model
        if let name { model.name = name }
        if let family {
            model.family = family
            if api == nil { model.api = family.defaultAPI }
        }
        if let contextWindow { model.contextWindow = contextWindow }
        if let maxOutputTokens { model.maxOutputTokens = maxOutputTokens }
        if let price = pricing?.inputCreditsPer1K { model.inputCreditsPer1K = price }
        if let price = pricing?.outputCreditsPer1K { model.outputCreditsPer1K = price }
        if let roles { model.roles = roles }
        if let api { model.api = api }
        if let bedrockModelId { model.bedrockModelID = bedrockModelId }
        if let inferenceProfiles { model.inferenceProfiles = inferenceProfiles }
        if let requiresInferenceProfile { model.requiresInferenceProfile = requiresInferenceProfile }
        if let region { model.region = region }
        if let fallbacks { model.fallbacks = fallbacks }
        if let listed { model.listed = listed }
        if let recommendation {
            if let strengths = recommendation.strengths { model.traits.strengths = strengths }
            if let speed = recommendation.speed { model.traits.speed = speed }
            if let quality = recommendation.quality { model.traits.quality = quality }
            if let cost = recommendation.cost { model.traits.cost = cost }
        }
        return model
    }
}

extension ModelCatalog {
    /// The catalog a process uses: the built-in one, or the one `MODEL_CATALOG_PATH` makes of it. A file that
    /// cannot be read or makes an inconsistent catalog throws a `ConfigurationError` with one line naming the entry.
    public static func load(environment: Environment) throws -> ModelCatalog {
        guard let path = environment["MODEL_CATALOG_PATH"] else { return .builtIn }
        do {
            return try CatalogFile.read(path: path).catalog()
        } catch let error as CatalogError {
            throw ConfigurationError("MODEL_CATALOG_PATH: \(error.description)")
        }
    }
}
