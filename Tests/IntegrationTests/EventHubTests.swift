import Foundation
import ServiceLifecycle
import Testing

@testable import ChatState
@testable import Queue

/// Runs a hub as a service for the body's duration.
func withEventHub<T: Sendable>(
    _ configuration: EventHub.Configuration = EventHub.Configuration(heartbeatInterval: .milliseconds(300)),
    _ body: @Sendable (EventHub, SessionEvents) async throws -> T
) async throws -> T {
    let redis = try testRedisClient()
    defer { redis.shutdown() }
    let events = SessionEvents(redis: redis)
    let hub = EventHub(redis: redis, events: events, configuration: configuration)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await hub.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(hub, events)
    }
}

/// Collects the events (heartbeats left out) of `subscription` until `count` came.
func collect(_ subscription: EventSubscription, count: Int) async -> [SessionEvent] {
    var seen: [SessionEvent] = []
    for await event in subscription where !event.isHeartbeat {
        seen.append(event)
        if seen.count == count { break }
    }
    return seen
}

@Suite("The event hub: one reader fanning session events out", .timeLimit(.minutes(1)))
struct EventHubTests {
    @Test("consumers cancelled while events are being delivered to them do not stall the hub (a stream's termination never waits for the hub's lock)")
    func cancelledWhileDelivering() async throws {
        try await withEventHub { hub, events in
            let session = UUID().uuidString
            let writer = Task {
                var index = 0
                while !Task.isCancelled {
                    _ = try? await events.append(sessionID: session, jobID: "j", type: "chunk", data: "\(index)")
                    index += 1
                }
            }
            defer { writer.cancel() }
            // Rounds of twenty consumers, cancelled at a random moment of the delivery (as a closed WebSocket's
            // relay is): before the fix, a cancellation and a delivery could each wait for the other's lock.
            for _ in 0..<25 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<20 {
                        let subscription = try await hub.subscribe(sessionID: session, after: nil)
                        group.addTask { for await _ in subscription {} }
                    }
                    try await Task.sleep(for: .milliseconds(Int.random(in: 1...15)))
                    group.cancelAll()
                }
            }
            // The hub still delivers, and the cancelled consumers are gone from it.
            let last = try await hub.subscribe(sessionID: session, after: nil)
            #expect(await collect(last, count: 3).count == 3)
            try await expectEventually(.seconds(5)) { hub.subscriberCount <= 1 }
        }
    }

    @Test("subscribers of one session and of another each get their own events, in order, once, from their own start")
    func fansOut() async throws {
        try await withEventHub { hub, events in
            let first = UUID().uuidString
            let second = UUID().uuidString
            let early = try await events.append(sessionID: first, jobID: "j", type: "chunk", data: "0")
            let fromStart = try await hub.subscribe(sessionID: first, after: "0-0")
            let fromEarly = try await hub.subscribe(sessionID: first, after: early)
            let other = try await hub.subscribe(sessionID: second, after: nil)
            async let a = collect(fromStart, count: 51)
            async let b = collect(fromEarly, count: 50)
            async let c = collect(other, count: 25)
            for index in 1...50 {
                try await events.append(sessionID: first, jobID: "j", type: "chunk", data: "\(index)")
                if index % 2 == 0 { try await events.append(sessionID: second, jobID: "k", type: "chunk", data: "\(index)") }
            }
            let (all, later, others) = await (a, b, c)
            #expect(all.map(\.data) == (0...50).map(String.init))
            #expect(later.map(\.data) == (1...50).map(String.init))
            #expect(others.map(\.data) == stride(from: 2, through: 50, by: 2).map(String.init))
            #expect(Set(all.map(\.id)).count == 51)
        }
    }

    @Test("a subscriber that stops reading is dropped once its buffer is full, and says so")
    func dropsSlowSubscriber() async throws {
        try await withEventHub(EventHub.Configuration(heartbeatInterval: .seconds(5), bufferSize: 4)) { hub, events in
            let session = UUID().uuidString
            let slow = try await hub.subscribe(sessionID: session, after: nil)
            let fast = try await hub.subscribe(sessionID: session, after: nil)
            async let fastSeen = collect(fast, count: 20)
            for index in 0..<20 {
                try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "\(index)")
                // Give the fast reader a turn now and then; the slow one never reads until the end.
                if index % 3 == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(await fastSeen.count == 20)
            var slowSeen = 0
            for await event in slow where !event.isHeartbeat { slowSeen += 1 }
            #expect(slow.overflowed)
            #expect(slowSeen <= 4)
        }
    }

    @Test("a quiet subscriber gets heartbeats, and leaving removes it from the hub")
    func heartbeatsAndLeaving() async throws {
        try await withEventHub { hub, _ in
            let subscription = try await hub.subscribe(sessionID: UUID().uuidString, after: nil)
            #expect(hub.subscriberCount >= 1)
            var iterator = subscription.makeAsyncIterator()
            let event = await iterator.next()
            #expect(event?.isHeartbeat == true)
            let before = hub.subscriberCount
            let consumer = Task {
                for await _ in subscription {}
            }
            consumer.cancel()
            await consumer.value
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            while hub.subscriberCount >= before, clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(hub.subscriberCount < before)
        }
    }

    @Test("many subscribers on many sessions are served by the hub's one read")
    func manySessions() async throws {
        try await withEventHub { hub, events in
            let sessions = (0..<200).map { _ in UUID().uuidString }
            var subscriptions: [EventSubscription] = []
            for session in sessions { subscriptions.append(try await hub.subscribe(sessionID: session, after: nil)) }
            let all = subscriptions
            async let seen = withTaskGroup(of: Int.self) { group in
                for subscription in all { group.addTask { await collect(subscription, count: 3).count } }
                return await group.reduce(0, +)
            }
            for round in 0..<3 {
                for session in sessions { try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "\(round)") }
            }
            #expect(await seen == 600)
        }
    }

    @Test("an event whose inbox copy was lost still arrives, in order: after a gap from the session's stream, and the last one by the resync")
    func lostCopies() async throws {
        let configuration = EventHub.Configuration(heartbeatInterval: .seconds(10), resyncInterval: .milliseconds(500))
        try await withEventHub(configuration) { hub, events in
            let session = UUID().uuidString
            let subscription = try await hub.subscribe(sessionID: session, after: nil)
            async let seen = collect(subscription, count: 6)
            try await hub.waitUntilRegistered(sessionID: session, redis: events.redis)
            try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "0")
            // Two events whose copies never reached the inbox, then one that did: the gap is read from the stream.
            try await events.appendUncopied(sessionID: session, jobID: "j", type: "chunk", data: "1")
            try await events.appendUncopied(sessionID: session, jobID: "j", type: "chunk", data: "2")
            try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "3")
            try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "4")
            // The last event's copy is lost and nothing follows it: the periodic read of the stream brings it.
            try await events.appendUncopied(sessionID: session, jobID: "j", type: "chunk", data: "5")
            #expect(await seen.map(\.data) == ["0", "1", "2", "3", "4", "5"])
        }
    }

    @Test("subscribers joining other sessions all the time do not hold up a session's events (they come from the inbox, not the resync)")
    func churnDoesNotStarve() async throws {
        let configuration = EventHub.Configuration(heartbeatInterval: .seconds(10), resyncInterval: .seconds(600))
        try await withEventHub(configuration) { hub, events in
            let session = UUID().uuidString
            let subscription = try await hub.subscribe(sessionID: session, after: nil)
            try await hub.waitUntilRegistered(sessionID: session, redis: events.redis)
            let churn = Task {
                var held: [EventSubscription] = []
                while !Task.isCancelled {
                    guard let joined = try? await hub.subscribe(sessionID: UUID().uuidString, after: nil) else { break }
                    held.append(joined)
                    if held.count > 50 { held.removeFirst().finish() }
                }
                held.forEach { $0.finish() }
            }
            defer { churn.cancel() }
            let seen = Task { await collect(subscription, count: 20) }
            for index in 0..<20 {
                try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "\(index)")
                try await Task.sleep(for: .milliseconds(10))
            }
            // Within a deadline far below the resync interval (600 s), the only other way the events could come.
            let arrived = try await withThrowingTaskGroup(of: [SessionEvent]?.self) { group in
                group.addTask { await seen.value }
                group.addTask {
                    try await Task.sleep(for: .seconds(15))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            seen.cancel()
            subscription.finish()
            #expect(arrived?.map(\.data) == (0..<20).map(String.init))
        }
    }

    @Test("an inbox that is gone is not recreated by a copy (it would have no ttl): the reader is dropped instead")
    func goneInbox() async throws {
        try await withEventHub(EventHub.Configuration(heartbeatInterval: .seconds(10), resyncInterval: .seconds(600))) { hub, events in
            let session = UUID().uuidString
            let readers = SessionEvents.readersKey(sessionID: session)
            let subscription = try await hub.subscribe(sessionID: session, after: nil)
            try await hub.waitUntilRegistered(sessionID: session, redis: events.redis)
            #expect(try await events.redis.send("PTTL", hub.inboxKey).int ?? 0 > 0)
            try await events.redis.send("DEL", hub.inboxKey)
            try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "after")
            #expect(try await events.redis.send("EXISTS", hub.inboxKey).int == 0)
            #expect(try await events.redis.send("ZSCORE", readers, hub.inboxKey).isNull)
            subscription.finish()
        }
    }

    @Test("the hub is registered as a session's reader while it has subscribers there, and drops the registration when the last leaves")
    func registration() async throws {
        try await withEventHub { hub, events in
            let session = UUID().uuidString
            let readers = SessionEvents.readersKey(sessionID: session)
            let subscription = try await hub.subscribe(sessionID: session, after: nil)
            try await hub.waitUntilRegistered(sessionID: session, redis: events.redis)
            // The registration lapses unless renewed; the key itself expires no sooner than the registration.
            let score = try #require(Double(try await events.redis.send("ZSCORE", readers, hub.inboxKey).string ?? ""))
            #expect(score > Date().timeIntervalSince1970 * 1000)
            #expect(try await events.redis.send("PTTL", readers).int ?? 0 > 0)
            #expect(try await events.redis.send("PTTL", hub.inboxKey).int ?? 0 > 0)
            let consumer = Task { for await _ in subscription {} }
            consumer.cancel()
            await consumer.value
            try await expectEventually(.seconds(5)) { (try? await events.redis.send("ZSCORE", readers, hub.inboxKey))?.isNull == true }
        }
    }

    @Test("a subscriber resuming from further back while a read for a newer cursor is in flight still gets every event after its own id")
    func joinBehindAReadInFlight() async throws {
        try await withEventHub(EventHub.Configuration(heartbeatInterval: .seconds(10))) { hub, events in
            for round in 0..<20 {
                let session = UUID().uuidString
                var ids: [String] = []
                for index in 0..<5 { ids.append(try await events.append(sessionID: session, jobID: "j", type: "chunk", data: "\(index)")) }
                // One subscriber is up to date, so the hub's blocking read starts after the newest event.
                let ahead = try await hub.subscribe(sessionID: session, after: nil)
                try await Task.sleep(for: .milliseconds(5))
                // Another resumes from the first event while that read waits; a new event races its wake-up.
                async let appended = events.append(sessionID: session, jobID: "j", type: "chunk", data: "5")
                let behind = try await hub.subscribe(sessionID: session, after: ids[0])
                _ = try await appended
                let seen = await collect(behind, count: 5)
                #expect(seen.map(\.data) == ["1", "2", "3", "4", "5"], "round \(round)")
                #expect(await collect(ahead, count: 1).map(\.data) == ["5"])
            }
        }
    }
}

extension EventHub {
    /// Waits (up to 5 s) until the hub is registered as a reader of the session.
    func waitUntilRegistered(sessionID: String, redis: RedisClient) async throws {
        let readers = SessionEvents.readersKey(sessionID: sessionID)
        try await expectEventually(.seconds(5)) { (try? await redis.send("ZSCORE", readers, self.inboxKey))?.string != nil }
    }
}

extension SessionEvents {
    /// Appends an event as a worker's scripts do (copied to the inbox of each registered reader), as a test stands
    /// in for a worker; returns its entry id.
    @discardableResult
    func append(sessionID: String, jobID: String, type: String, data: String) async throws -> String {
        let script = GenerationScripts.relayFunction + "return relay(KEYS[1], KEYS[2], ARGV[1], 'jobId', ARGV[2], 'type', ARGV[3], 'data', ARGV[4])"
        let reply = try await redis.send(
            RedisCommand(
                arguments: ["EVAL", script, "2", Self.key(sessionID: sessionID), Self.readersKey(sessionID: sessionID), String(configuration.maxLength), jobID, type, data]
            )
        )
        return try #require(reply.string)
    }

    /// Appends an event to the session's stream alone, with no copy to any reader's inbox (a copy lost).
    @discardableResult
    func appendUncopied(sessionID: String, jobID: String, type: String, data: String) async throws -> String {
        try await redis.xadd(Self.key(sessionID: sessionID), maxLength: configuration.maxLength, fields: [("jobId", jobID), ("type", type), ("data", data)])
    }
}
