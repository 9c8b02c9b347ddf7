import AsyncHTTPClient
import Foundation
import NIOCore

/// Opens many idle observer streams on chat-api and reads its resident memory (VmRSS) and Redis connections
/// before, while all are open, and after they are closed.
struct IdleConnectionProbe: Sendable {
    let settings: BenchSettings
    let http: BenchHTTP
    let api: MonitoredProcess
    let redisPort: Int?

    /// What the probe measured.
    struct Result: Codable, Sendable {
        var connections: Int
        var opened: Int
        var baselineRSSKiB: Int
        var openRSSKiB: Int
        var closedRSSKiB: Int
        /// (open − baseline) / opened.
        var kibPerConnection: Double
        var redisConnectionsBaseline: Int?
        var redisConnectionsOpen: Int?

        /// One Markdown table.
        var markdown: String {
            func count(_ value: Int?) -> String { value.map(String.init) ?? "–" }
            return """
                | idle SSE connections open | chat-api VmRSS | per connection | chat-api Redis connections |
                | --- | --- | --- | --- |
                | 0 | \(baselineRSSKiB / 1_024) MiB | – | \(count(redisConnectionsBaseline)) |
                | \(opened) | \(openRSSKiB / 1_024) MiB | \(String(format: "%.1f", kibPerConnection)) KiB | \(count(redisConnectionsOpen)) |
                | 0 (after closing them) | \(closedRSSKiB / 1_024) MiB | – | – |
                """
        }
    }

    /// Opens `connections` observers over `sessions` sessions, waits until each has its `observer` event, lets
    /// chat-api settle, reads it, keeps them open `hold` longer (while another load runs), then closes them all.
    func run(connections: Int, sessions: Int, settle: Duration, hold holding: Duration = .zero) async throws -> Result {
        let tokens = try await TokenSource(settings: settings, http: http)
        let owner = tokens.user(0, step: "idle-\(UInt32.random(in: 0...UInt32.max))")
        let supervisor = tokens.supervisorToken
        _ = try await http.call(
            .POST, settings.accountingURL + "/api/credits/allocate", bearer: tokens.adminToken, json: ["targetUserId": owner.id, "credits": 1_000_000]
        )
        var sessionIDs: [String] = []
        for index in 0..<max(1, sessions) {
            let answer = try await http.call(.POST, settings.chatURL + "/api/chat/sessions", bearer: owner.token, json: ["title": "idle \(index)"])
            guard let id = answer["sessionId"] as? String else { throw BenchHTTP.CallError(url: settings.chatURL, status: 201, body: "no sessionId") }
            sessionIDs.append(id)
        }
        let ids = sessionIDs
        func rss() -> Int { ProcFS.memoryKiB(api.pid, field: "VmRSS") ?? 0 }
        func redis() -> Int? { redisPort.map { ProcFS.connections(api.pid, toPort: $0) } }

        // A first few opened and closed, so that what any first connection sets up is not counted per connection.
        _ = try await hold(16, sessions: ids, token: supervisor) {}
        try await Task.sleep(for: settle)
        let baseline = rss()
        let redisBaseline = redis()
        log("idle: chat-api VmRSS \(baseline) KiB with no stream open; opening \(connections)")
        var openRSS = 0
        var redisOpen: Int?
        let opened = try await hold(connections, sessions: ids, token: supervisor) {
            try? await Task.sleep(for: settle)
            openRSS = rss()
            redisOpen = redis()
            if holding > .zero {
                log("idle: holding \(connections) open for \(holding)")
                try? await Task.sleep(for: holding)
            }
        }
        try await Task.sleep(for: settle)
        let closed = rss()
        log("idle: \(opened) open: VmRSS \(openRSS) KiB; after closing: \(closed) KiB")
        return Result(
            connections: connections, opened: opened, baselineRSSKiB: baseline, openRSSKiB: openRSS, closedRSSKiB: closed,
            kibPerConnection: opened > 0 ? Double(openRSS - baseline) / Double(opened) : 0,
            redisConnectionsBaseline: redisBaseline, redisConnectionsOpen: redisOpen
        )
    }

    /// Opens `count` observers, runs `whileOpen` once every one has its first event (or failed, or 120 s passed),
    /// then closes them; returns how many opened.
    private func hold(_ count: Int, sessions: [String], token: String, whileOpen: () async -> Void) async throws -> Int {
        let (readiness, ready) = AsyncStream<Bool>.makeStream()
        return await withTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let url = settings.chatURL + "/api/chat/sessions/\(sessions[index % sessions.count])/observe"
                group.addTask { [http] in
                    var request = HTTPClientRequest(url: url)
                    request.headers.add(name: "Authorization", value: "Bearer " + token)
                    request.headers.add(name: "Accept", value: "text/event-stream")
                    var announced = false
                    do {
                        let response = try await http.client.execute(request, timeout: .hours(1))
                        guard response.status == .ok else {
                            ready.yield(false)
                            return
                        }
                        var parser = SSEParser()
                        for try await buffer in response.body {
                            if !announced, parser.feed(buffer.readableBytesView).contains(where: { $0.name == "observer" }) {
                                announced = true
                                ready.yield(true)
                            }
                        }
                    } catch {}
                    if !announced { ready.yield(false) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(120))
                ready.finish()
            }
            var opened = 0
            var seen = 0
            for await ok in readiness {
                seen += 1
                if ok { opened += 1 }
                if seen == count { break }
            }
            await whileOpen()
            group.cancelAll()
            return opened
        }
    }
}
