import Catalog
@testable import ChatCore
import Foundation
import Testing

@Suite("the model catalog: built in, from a file, and the recommendation", .timeLimit(.minutes(1)))
struct ModelCatalogTests {
    static let builtIn = ModelCatalog.builtIn

    /// Writes `text` to a file of its own ending in `suffix` and returns its path.
    static func file(_ text: String, suffix: String) throws -> String {
        let path = NSTemporaryDirectory() + "catalog-\(UUID().uuidString)" + suffix
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The one-line error a file gives.
    static func failure(_ text: String, suffix: String = ".yaml") throws -> String {
        let path = try file(text, suffix: suffix)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": path]))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("the built-in catalog covers each family's current models, keeps the guide's model, and every fallback is in it")
    func builtInCatalog() throws {
        let ids = Set(Self.builtIn.models.map(\.id))
        for id in [
            "anthropic.claude-3-sonnet-20240229-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-opus-4-1-20250805-v1:0", "amazon.nova-premier-v1:0", "meta.llama3-3-70b-instruct-v1:0",
            "meta.llama4-maverick-17b-instruct-v1:0", "mistral.mistral-large-2407-v1:0", "amazon.titan-text-premier-v1:0",
        ] {
            #expect(ids.contains(id), "\(id)")
        }
        #expect(Set(Self.builtIn.models.map(\.family)) == Set(ModelFamily.allCases))
        for model in Self.builtIn.models {
            for fallback in model.fallbacks { #expect(Self.builtIn.model(id: fallback) != nil) }
            if model.requiresInferenceProfile { #expect(model.inferenceProfiles["us"] != nil, "\(model.id)") }
            #expect(model.maxOutputTokens <= model.contextWindow)
        }
        // Titan and Mistral's instruct models keep InvokeModel (Converse refuses their system prompts); Mistral Large 2 uses Converse.
        #expect(Self.builtIn.model(id: "amazon.titan-text-express-v1")?.api == .invokeModel)
        #expect(Self.builtIn.model(id: "mistral.mistral-7b-instruct-v0:2")?.api == .invokeModel)
        #expect(Self.builtIn.model(id: "mistral.mistral-large-2407-v1:0")?.api == .converse)
        #expect(Self.builtIn.models(for: .enduser).allSatisfy { $0.roles.contains(.enduser) })
        #expect(!Self.builtIn.models(for: .enduser).contains { $0.id == "anthropic.claude-opus-4-20250514-v1:0" })
    }

    @Test("a model served only through a profile is called by its region's profile; the others by their id")
    func invocationIDs() throws {
        let sonnet4 = try #require(Self.builtIn.model(id: "anthropic.claude-sonnet-4-20250514-v1:0"))
        #expect(sonnet4.invocationID(inRegion: "us-east-1") == "us.anthropic.claude-sonnet-4-20250514-v1:0")
        #expect(sonnet4.invocationID(inRegion: "eu-west-1") == "eu.anthropic.claude-sonnet-4-20250514-v1:0")
        #expect(sonnet4.invocationID(inRegion: "ap-southeast-2") == "apac.anthropic.claude-sonnet-4-20250514-v1:0")
        let sonnet45 = try #require(Self.builtIn.model(id: "anthropic.claude-sonnet-4-5-20250929-v1:0"))
        #expect(sonnet45.invocationID(inRegion: "ap-southeast-2") == "global.anthropic.claude-sonnet-4-5-20250929-v1:0")
        #expect(Self.builtIn.model(id: "amazon.nova-pro-v1:0")?.invocationID(inRegion: "us-east-1") == "amazon.nova-pro-v1:0")
        var pinned = sonnet4
        pinned.bedrockModelID = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
        #expect(pinned.invocationID(inRegion: "eu-west-1") == pinned.bedrockModelID)
        pinned.bedrockModelID = nil
        pinned.region = "eu-central-1"
        #expect(pinned.invocationID(inRegion: "us-east-1") == "eu.anthropic.claude-sonnet-4-20250514-v1:0")
    }

    @Test("a YAML file extends the built-in catalog: a new model with every field, a built-in one changed in two")
    func yamlExtends() throws {
        let path = try Self.file(
            """
            mode: extend
            models:
              - id: acme.house-model-v1:0
                name: House model
                family: anthropic
                contextWindow: 100000
                maxOutputTokens: 2000
                pricing: { inputCreditsPer1K: 1.5, outputCreditsPer1K: 7 }
                roles: [admin, supervisor]
                bedrockModelId: anthropic.claude-3-haiku-20240307-v1:0
                region: us-west-2
                fallbacks: [amazon.nova-lite-v1:0]
                recommendation: { strengths: [legal], speed: 4, quality: 4, cost: 2 }
              - id: anthropic.claude-3-sonnet-20240229-v1:0
                pricing: { outputCreditsPer1K: 20 }
                listed: false
            """,
            suffix: ".yaml"
        )
        defer { try? FileManager.default.removeItem(atPath: path) }
        let catalog = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": path]))
        #expect(catalog.models.count == Self.builtIn.models.count + 1)
        let house = try #require(catalog.model(id: "acme.house-model-v1:0"))
        #expect(house.api == .converse && house.region == "us-west-2" && house.roles == [.admin, .supervisor] && house.traits.strengths == ["legal"])
        #expect(house.invocationID(inRegion: "us-east-1") == "anthropic.claude-3-haiku-20240307-v1:0")
        #expect(catalog.models(for: .admin).contains(house) && !catalog.models(for: .enduser).contains(house))
        let sonnet = try #require(catalog.model(id: "anthropic.claude-3-sonnet-20240229-v1:0"))
        #expect(sonnet.outputCreditsPer1K == 20 && sonnet.inputCreditsPer1K == 3 && !sonnet.listed)
        #expect(catalog.selectable(id: sonnet.id, role: .admin) == nil)
        #expect(catalog.defaultModelID == Self.builtIn.defaultModelID)
    }

    @Test("a JSON file in replace mode is the whole catalog, with its own default")
    func jsonReplaces() throws {
        let path = try Self.file(
            """
            {"mode": "replace", "defaultModel": "amazon.nova-micro-v1:0", "models": [
              {"id": "amazon.nova-micro-v1:0", "name": "Micro", "family": "amazon-nova", "contextWindow": 128000, "maxOutputTokens": 5000,
               "pricing": {"inputCreditsPer1K": 0.04, "outputCreditsPer1K": 0.15}}
            ]}
            """,
            suffix: ".json"
        )
        defer { try? FileManager.default.removeItem(atPath: path) }
        let catalog = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": path]))
        #expect(catalog.models.map(\.id) == ["amazon.nova-micro-v1:0"])
        #expect(catalog.defaultModelID == "amazon.nova-micro-v1:0")
        #expect(catalog.models[0].roles == UserRole.allCases && catalog.models[0].traits == ModelTraits())
    }

    @Test("a broken file names the entry and what is wrong with it")
    func brokenFiles() throws {
        let newModel = "family: anthropic\n    contextWindow: 1000\n    maxOutputTokens: 100\n    pricing: {inputCreditsPer1K: 1, outputCreditsPer1K: 1}"
        let cases: [(String, String)] = [
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    contextWindw: 5", #"model 1 ("x.new") has an unknown field "contextWindw""#),
            ("models:\n  - id: x.new\n    name: New\n    family: anthropic", #"model 1 ("x.new"): contextWindow is required"#),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    fallbacks: [y.none]", #"fallback "y.none" is not in the catalog"#),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    recommendation: {speed: 9}", "recommendation.speed must be a whole number from 1 to 5"),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n  - id: x.new\n    name: Again", #"model 2 ("x.new"): the id appears twice in the file"#),
            ("models:\n  - id: x.new\n    name: New\n    family: anthropic\n    contextWindow: lots", "models[0].contextWindow"),
            ("models:\n  - id: x.new\n    name: New\n    family: openai\n    contextWindow: 5", "models[0].family"),
            ("models:\n  - id: x.new\n    name: New\n    family: anthropic\n    contextWindow: 100\n    maxOutputTokens: 500\n    pricing: {inputCreditsPer1K: 1, outputCreditsPer1K: 1}", "maxOutputTokens must be positive and at most contextWindow"),
            ("mode: replace\nmodels:\n  - id: x.new\n    name: New\n    \(newModel)\n    roles: [admin]", #"the default model "x.new" must be listed and open to every role"#),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    fallbacks: [anthropic.claude-opus-4-20250514-v1:0]",
             #"fallback "anthropic.claude-opus-4-20250514-v1:0" is not open to enduser, who may use the model"#),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    fallbacks: [amazon.nova-lite-v1:0, amazon.nova-lite-v1:0]", "fallbacks must name at most 4 models, each once"),
            ("models:\n  - id: x.new\n    name: New\n    family: anthropic\n    contextWindow: 9223372036854775807\n    maxOutputTokens: 100\n    pricing: {inputCreditsPer1K: 1, outputCreditsPer1K: 1}",
             "contextWindow must be a whole number from 1 to 10000000"),
            ("models:\n  - id: x.new\n    name: New\n    \(newModel)\n    inferenceProfiles: {us: \"us. x\"}", "inferenceProfiles.us must be a profile id without spaces"),
            ("models: [", "is not valid YAML"),
        ]
        for (text, expected) in cases {
            let message = try Self.failure(text)
            #expect(message.hasPrefix("MODEL_CATALOG_PATH: "), "\(message)")
            #expect(message.contains(expected), "\(message)")
        }
        #expect(try Self.failure("{\"models\": [{\"name\": \"no id\"}]}", suffix: ".json").contains("model 1: id is required"))
        #expect(try Self.failure("just words").contains("the file must hold an object with a models list"))
        // Nine levels of ten aliases each stand for 10^9 values in 12 lines: refused at once, not built.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        // Without the check this would never end: the suite's time limit fails it.
        #expect(try Self.failure(bomb + "models: []").contains("stands for more than 100000 values, counting each alias as a copy of what it names"))
        // As a key, an alias (or a list) would make the YAML library hash the whole expanded tree while composing.
        #expect(try Self.failure("a: &a [1, 2]\n*a : x\nmodels: []").contains("an alias is used as a key"))
        #expect(try Self.failure("? [a, b]\n: x\nmodels: []").contains("a list or an object is used as a key"))
        // A large file without aliases counts the same way.
        let big = "models:\n" + String(repeating: "  - [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", count: 10_000)
        #expect(try Self.failure(big).contains("stands for more than 100000 values"))
        // One mapping of many keys, written out or merged in: the YAML library would look each key up one by one.
        let manyKeys = "models: []\nx: {" + (0..<1_001).map { "k\($0): 1" }.joined(separator: ", ") + "}\n"
        #expect(try Self.failure(manyKeys).contains("line 2: a mapping has more than 1000 keys"))
        let merged = "base: &base {" + (0..<600).map { "k\($0): 1" }.joined(separator: ", ") + "}\n"
            + "models: []\nx: {<<: *base, y: {<<: [*base, *base]}}\n"
        #expect(try Self.failure(merged).contains("a mapping has more than 1000 keys, merged ones included"))
        // Aliases within the limit are fine: one price block shared by two entries.
        let shared = "models:\n"
            + "  - {id: x.one, name: One, family: anthropic, contextWindow: 1000, maxOutputTokens: 100, pricing: &prices {inputCreditsPer1K: 1, outputCreditsPer1K: 2}}\n"
            + "  - {id: x.two, name: Two, family: anthropic, contextWindow: 1000, maxOutputTokens: 100, pricing: *prices}\n"
        let path = try Self.file(shared, suffix: ".yaml")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let catalog = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": path]))
        #expect(catalog.models.filter { $0.id.hasPrefix("x.") }.map(\.outputCreditsPer1K) == [2, 2])
        do {
            _ = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": "/nonexistent/catalog.yaml"]))
            Issue.record("a missing file was accepted")
        } catch {
            #expect("\(error)".contains("cannot read the model catalog /nonexistent/catalog.yaml"))
        }
    }

    @Test("the recommendation weighs quality, speed and cost by the priority, the task's words against strengths, and long inputs")
    func recommendation() throws {
        let quality = try #require(ModelRecommender.recommend(task: "complex reasoning", priority: .quality, role: .enduser, catalog: Self.builtIn))
        let best = Self.builtIn.models(for: .enduser).map(\.traits.quality).max()
        #expect(quality.model.traits.quality == best && quality.model.roles.contains(.enduser))
        #expect(quality.reason.contains("quality 5/5") && quality.reason.contains("reasoning"))
        #expect(quality.alternatives.count == 2 && !quality.alternatives.contains(quality.model))
        let cost = try #require(ModelRecommender.recommend(task: "say hi", priority: .cost, role: .enduser, catalog: Self.builtIn))
        #expect(cost.model.traits.cost == 1)
        let long = try #require(ModelRecommender.recommend(task: "summarize this long document", priority: .cost, role: .enduser, catalog: Self.builtIn))
        #expect(long.model.contextWindow >= 100_000 && long.reason.contains("large context window"))

        // Two models alike but for one strength: the task that names it picks that one, and says so.
        func model(_ id: String, _ strengths: [String]) -> ModelInfo {
            ModelInfo(
                id: id, name: id, family: .amazonNova, contextWindow: 10_000, maxOutputTokens: 1_000, inputCreditsPer1K: 1, outputCreditsPer1K: 1,
                traits: ModelTraits(strengths: strengths, speed: 3, quality: 3, cost: 3)
            )
        }
        let pair = try ModelCatalog(models: [model("a.plain", ["chat"]), model("b.legal", ["contracts"])], defaultModelID: "a.plain")
        let legal = try #require(ModelRecommender.recommend(task: "review these contracts", priority: .balanced, role: .enduser, catalog: pair))
        #expect(legal.model.id == "b.legal" && legal.reason.contains("strong at contracts"))
        #expect(ModelRecommender.recommend(task: "say hi", priority: .balanced, role: .enduser, catalog: pair)?.model.id == "a.plain")
        // Strengths match whole words, and long ones by their stem; a word that merely begins the same does not.
        let words = ModelRecommender.words("Summarize the contract, then review legacy code")
        #expect(ModelRecommender.task(words, names: "summaries") && ModelRecommender.task(words, names: "contracts"))
        #expect(!ModelRecommender.task(words, names: "legal") && !ModelRecommender.task(words, names: "agents"))
        #expect(ModelRecommender.task(ModelRecommender.words("long documents, please"), names: "long documents"))
    }

    @Test("a reservation is priced at the dearest model of the chain")
    func dearest() throws {
        let haiku = try #require(Self.builtIn.model(id: "anthropic.claude-3-haiku-20240307-v1:0"))
        #expect(Self.builtIn.dearest(inChainOf: haiku).id == "anthropic.claude-3-haiku-20240307-v1:0")
        let micro = try #require(Self.builtIn.model(id: "amazon.nova-micro-v1:0"))
        #expect(Self.builtIn.dearest(inChainOf: micro).id == "amazon.nova-lite-v1:0")
        let titan = try #require(Self.builtIn.model(id: "amazon.titan-text-express-v1"))
        #expect(Self.builtIn.dearest(inChainOf: titan) == titan)
    }
}
