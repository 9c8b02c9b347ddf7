import ChatCore
import Foundation

/// How Bedrock finds the model a request's path names: a model id, a foundation-model ARN, a cross-region
/// inference profile id (`us.`, `eu.`, `apac.`, `global.`… before the model id) or its ARN. Built from the
/// emulator's catalog: every entry is reachable by the Bedrock id it calls and by its profiles.
struct ModelDirectory: Sendable {
    /// The geography prefixes of system-defined inference profiles.
    static let geographies: Set<String> = ["us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"]

    private var models: [String: ModelInfo] = [:]

    /// The directory of `catalog`'s models, keyed by their base model ids (the first entry of an id wins).
    init(catalog: ModelCatalog) {
        for model in catalog.models {
            for id in [model.bedrockModelID ?? model.id, model.id] + model.inferenceProfiles.values.sorted() {
                let base = Self.parse(id).baseID
                if models[base] == nil { models[base] = model }
            }
        }
    }

    /// What a path segment names: the model's base id and whether it came through an inference profile.
    static func parse(_ raw: String) -> (baseID: String, viaProfile: Bool) {
        var id = raw
        var viaProfile = false
        if id.hasPrefix("arn:") {
            if let range = id.range(of: ":foundation-model/") {
                id = String(id[range.upperBound...])
            } else if let range = id.range(of: ":inference-profile/") {
                id = String(id[range.upperBound...])
            }
        }
        if let dot = id.firstIndex(of: "."), geographies.contains(String(id[..<dot])) {
            id = String(id[id.index(after: dot)...])
            viaProfile = true
        }
        return (id, viaProfile)
    }

    /// The model a percent-encoded path segment names. An unknown id is 404 ResourceNotFoundException; a model
    /// Bedrock serves on demand only through a profile, named by its plain id, is refused as Bedrock does.
    func model(rawID: String) throws(ServiceError) -> ModelInfo {
        guard let decoded = rawID.removingPercentEncoding else { throw .resourceNotFound }
        let (base, viaProfile) = Self.parse(decoded)
        guard let model = models[base] else { throw .resourceNotFound }
        if model.requiresInferenceProfile, !viaProfile, model.bedrockModelID.map({ !Self.parse($0).viaProfile }) != true {
            throw .validation(
                "Invocation of model ID \(base) with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an "
                    + "inference profile that contains this model."
            )
        }
        return model
    }
}
