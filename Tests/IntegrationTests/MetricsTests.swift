import AsyncHTTPClient
import ChatCore
import ChatStore
import Foundation
import NIOCore
import Testing

/// One scrape of a `/metrics` page: each sample's value by its series (`name{labels}`, as written).
struct MetricsScrape {
    let text: String
    let samples: [String: Double]

    /// Scrapes `url`; throws unless it answers 200 in Prometheus's text format.
    static func fetch(_ url: String) async throws -> MetricsScrape {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 8 << 20))
        ExchangeLog.record(method: "GET", url: url, status: Int(response.status.code), headers: response.headers, body: text)
        guard response.status == .ok, response.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true else {
            throw TestFailure("\(url) answered \(response.status) \(response.headers.first(name: "content-type") ?? "")")
        }
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return MetricsScrape(text: text, samples: samples)
    }

    /// The sample of `series`, 0 when absent (a counter not yet moved).
    subscript(_ series: String) -> Double { samples[series] ?? 0 }

    /// How much each of `series` moved from `earlier` to this scrape.
    func delta(_ series: String, since earlier: MetricsScrape) -> Double { self[series] - earlier[series] }
}

@Suite("Prometheus metrics of chat-api and chat-worker, as processes", .serialized, .timeLimit(.minutes(2)))
struct MetricsTests {
    @Test("one streamed reply moves the counters by exactly its job, tokens and credits; labels carry no user, session or job id")
    func oneReplyCounted() async throws {
        let pair = try ServicePair()
        defer { pair.kill() }
        let apiURL = pair.apiURL
        let workerURL = pair.workerURL
        try await pair.ready()
        #expect(try await HTTPProbe.status(workerURL + "/livez") == 200)

        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let (user, token) = try await Accounting.fundedUser("m", verifier: verifier, lifetime: 300)
        let created = try await HTTPProbe.json(.POST, apiURL + "/api/chat/sessions", token: token, body: ["title": "metrics"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let model = ModelCatalog.builtIn.defaultModelID

        let apiBefore = try await MetricsScrape.fetch(apiURL + "/metrics")
        let workerBefore = try await MetricsScrape.fetch(workerURL + "/metrics")
        // Series created at zero at start: a misspelt name below would read as absent, not as 0.
        for series in [
            #"chat_jobs_started_total{model="\#(model)"}"#, #"chat_jobs_finished_total{model="\#(model)",outcome="completed"}"#,
            #"chat_tokens_total{model="\#(model)",direction="output"}"#, #"chat_credits_charged_total{model="\#(model)"}"#,
            #"chat_bedrock_errors_total{exception="ThrottlingException"}"#, #"chat_accounting_calls_total{operation="finalize",outcome="ok"}"#,
        ] {
            #expect(workerBefore.samples[series] != nil, "chat-worker does not export \(series)")
        }
        for series in [
            #"chat_jobs_enqueued_total{model="\#(model)"}"#, #"chat_credits_reserved_total{model="\#(model)"}"#,
            #"chat_accounting_calls_total{operation="reserve",outcome="ok"}"#, #"chat_sse_streams_open{kind="reply"}"#,
        ] {
            #expect(apiBefore.samples[series] != nil, "chat-api does not export \(series)")
        }
        let message = "Count these words please [[tokens:7]]"
        let sse = try await SSEConnection.open(apiURL + "/api/chat/sessions/\(sessionID)/stream", headers: ["Authorization": "Bearer \(token)"], json: ["message": message])
        #expect(sse.status == 200)
        let events = try await sse.collect { $0.event == "complete" || $0.event == "error" }
        let complete = try #require(events.last?.json)
        #expect(events.last?.event == "complete")
        let jobID = try #require(complete["jobId"] as? String)
        let input = try #require(complete["inputTokens"] as? Int)
        let output = try #require(complete["outputTokens"] as? Int)
        let charged = (complete["creditsCharged"] as? Double) ?? Double(complete["creditsCharged"] as? Int ?? -1)
        #expect(output == 7)
        #expect(charged > 0)

        // The worker counts the job's end once `end` returned, just after `complete` was published.
        let finished = #"chat_jobs_finished_total{model="\#(model)",outcome="completed"}"#
        try await expectEventually { try await MetricsScrape.fetch(workerURL + "/metrics").delta(finished, since: workerBefore) == 1 }
        let workerAfter = try await MetricsScrape.fetch(workerURL + "/metrics")
        #expect(workerAfter.delta(#"chat_jobs_started_total{model="\#(model)"}"#, since: workerBefore) == 1)
        #expect(workerAfter.delta(#"chat_tokens_total{model="\#(model)",direction="input"}"#, since: workerBefore) == Double(input))
        #expect(workerAfter.delta(#"chat_tokens_total{model="\#(model)",direction="output"}"#, since: workerBefore) == Double(output))
        #expect(workerAfter.delta(#"chat_credits_charged_total{model="\#(model)"}"#, since: workerBefore) == charged)
        #expect(workerAfter.delta(#"chat_accounting_calls_total{operation="finalize",outcome="ok"}"#, since: workerBefore) == 1)
        #expect(workerAfter.delta(#"chat_time_to_first_token_seconds_count{model="\#(model)"}"#, since: workerBefore) == 1)
        #expect(workerAfter.delta(#"chat_job_duration_seconds_count{model="\#(model)",outcome="completed"}"#, since: workerBefore) == 1)
        #expect(workerAfter.delta(#"chat_bedrock_errors_total{exception="ThrottlingException"}"#, since: workerBefore) == 0)

        // The relay ends once `complete` is written: the open-stream gauge comes back down.
        let open = #"chat_sse_streams_open{kind="reply"}"#
        try await expectEventually { try await MetricsScrape.fetch(apiURL + "/metrics")[open] == apiBefore[open] }
        let apiAfter = try await MetricsScrape.fetch(apiURL + "/metrics")
        #expect(apiAfter.delta(#"chat_jobs_enqueued_total{model="\#(model)"}"#, since: apiBefore) == 1)
        #expect(apiAfter.delta(#"chat_accounting_calls_total{operation="reserve",outcome="ok"}"#, since: apiBefore) == 1)
        #expect(apiAfter.delta(#"chat_credits_reserved_total{model="\#(model)"}"#, since: apiBefore) >= charged)
        #expect(apiAfter.delta(#"http_server_requests_total{route="/api/chat/sessions/{id}/stream",method="POST",status="200"}"#, since: apiBefore) == 1)
        #expect(apiAfter.delta(#"http_server_request_duration_seconds_count{route="/api/chat/sessions/{id}/stream",method="POST"}"#, since: apiBefore) == 1)
        // The queue's backlog, read at the scrape: nothing left waiting or running.
        #expect(apiAfter.samples[#"chat_queue_jobs{state="waiting"}"#] == 0)
        #expect(apiAfter.samples[#"chat_queue_jobs{state="pending"}"#] == 0)
        #expect(apiAfter.samples["chat_queue_oldest_job_age_seconds"] == 0)
        #expect(apiAfter.samples["chat_queue_up"] == 1)

        // A path no route serves counts under one label, never the path itself.
        let probe = "/no-such-\(UUID().uuidString.prefix(8))"
        #expect(try await HTTPProbe.status(apiURL + probe) == 404)
        let afterProbe = try await MetricsScrape.fetch(apiURL + "/metrics")
        #expect(afterProbe.delta(#"http_server_requests_total{route="unmatched",method="GET",status="404"}"#, since: apiAfter) == 1)
        for scrape in [afterProbe, workerAfter] {
            for secret in [user, sessionID, jobID, token, String(probe.dropFirst())] {
                #expect(!scrape.text.contains(secret), "a metric names \(secret)")
            }
        }
        _ = try await pair.stop()
    }
}
