import Foundation
import HummingbirdTesting
import Testing

@Suite("chat-api's OpenAPI document", .timeLimit(.minutes(1)))
struct OpenAPITests {
    @Test("/openapi.json is an OpenAPI 3.1 document describing exactly the routes the router serves")
    func documentMatchesRoutes() async throws {
        try await APIFixture.with { fixture, client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
                let documented = Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
                let served = Set(fixture.routes)
                #expect(served.count > 15)
                #expect(served.subtracting(documented).sorted() == [], "served but not documented")
                #expect(documented.subtracting(served).sorted() == [], "documented but not served")
            }
        }
    }
}
