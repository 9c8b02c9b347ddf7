import ChatCore
import Logging
import NIOConcurrencyHelpers
import Queue
import ServiceLifecycle

/// The one reader of session events in a process: every relay, observer and waiting request subscribes here,
/// and one blocking `XREAD` over all their sessions' streams fans the events out in the process, so the
/// process's Redis connections do not grow with its open streams.
///
/// Each subscriber has its own cursor and a bounded buffer; a subscriber too slow to keep its buffer from
/// filling is dropped (its sequence ends with `overflowed` set) and resumes with `Last-Event-ID`. A subscriber
/// that waits longer than the heartbeat interval for an event gets `SessionEvent.heartbeat`. New subscribers
/// wake a read in progress through a stream of the process's own (`chat:api:wake:<id>`).
public final class EventHub: Service, Sendable {
    /// The hub's limits and timings.
    public struct Configuration: Sendable {
        /// A subscriber with no event for this long gets a heartbeat.
        public var heartbeatInterval: Duration
        /// Events buffered per subscriber before it counts as too slow.
        public var bufferSize: Int
        /// Entries read per stream and read.
        public var batchSize: Int

        /// Defaults: 15 s heartbeats, 1,024 buffered events, 512 entries a read.
        public init(heartbeatInterval: Duration = .seconds(15), bufferSize: Int = 1_024, batchSize: Int = 512) {
            self.heartbeatInterval = heartbeatInterval
            self.bufferSize = bufferSize
            self.batchSize = batchSize
        }
    }

    /// The limits and timings in use.
    public let configuration: Configuration
    private let redis: RedisClient
    private let events: SessionEvents
    private let logger: Logger
    private let wakeKey: String
    private let state = NIOLockedValueBox(State())
    private let idle: AsyncStream<Void>
    private let idleContinuation: AsyncStream<Void>.Continuation

    private struct Subscriber {
        var cursor: EntryID
        var continuation: AsyncStream<SessionEvent>.Continuation
        var overflowed: NIOLockedValueBox<Bool>
        var lastSent: ContinuousClock.Instant
    }

    private struct State {
        var nextID = 0
        var sessions: [String: [Int: Subscriber]] = [:]
        var reading = false
        var wakeCursor = "0-0"
        var stopped = false
    }

    /// A hub reading through `redis`; `events` gives the stream keys and the newest event of a session.
    public init(redis: RedisClient, events: SessionEvents, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "event-hub")) {
        self.redis = redis
        self.events = events
        self.configuration = configuration
        self.logger = logger
        self.wakeKey = "chat:api:wake:\(UInt64.random(in: 1...UInt64.max))"
        (idle, idleContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How many subscribers are open now.
    public var subscriberCount: Int { state.withLockedValue { $0.sessions.values.reduce(0) { $0 + $1.count } } }

    /// Every event of the session after `entryID` (nil: only those appended from now on), in order, each once,
    /// with heartbeats while quiet. The sequence ends when the consumer stops iterating, when the subscriber
    /// fell too far behind (`overflowed`), or when the hub stops; once stopped, subscribing throws 503.
    public func subscribe(sessionID: String, after entryID: String?) async throws -> EventSubscription {
        var start = entryID ?? ""
        if entryID == nil { start = try await events.lastEventID(sessionID: sessionID) }
        guard let cursor = EntryID(start) else { throw RedisClientError(.unexpectedReply, "not a stream entry id: \(start)") }
        let (stream, continuation) = AsyncStream.makeStream(of: SessionEvent.self, bufferingPolicy: .bufferingOldest(configuration.bufferSize))
        let overflowed = NIOLockedValueBox(false)
        let key = SessionEvents.key(sessionID: sessionID)
        let (id, wasReading, stopped) = state.withLockedValue { state -> (Int, Bool, Bool) in
            if state.stopped { return (0, false, true) }
            state.nextID += 1
            let subscriber = Subscriber(cursor: cursor, continuation: continuation, overflowed: overflowed, lastSent: .now)
            state.sessions[key, default: [:]][state.nextID] = subscriber
            return (state.nextID, state.reading, false)
        }
        if stopped {
            continuation.finish()
            throw ChatError(.unavailable, code: "SHUTTING_DOWN", message: "This server is shutting down; try again")
        }
        continuation.onTermination = { [weak self] _ in self?.remove(key: key, id: id) }
        if wasReading {
            _ = try? await redis.pipeline([
                RedisClient.xaddCommand(wakeKey, maxLength: 64, fields: [("s", "1")]),
                RedisCommand("PEXPIRE", wakeKey, "60000"),
            ])
        } else {
            idleContinuation.yield()
        }
        return EventSubscription(stream: stream, overflowedBox: overflowed)
    }

    private func remove(key: String, id: Int) {
        state.withLockedValue { state in
            state.sessions[key]?[id] = nil
            if state.sessions[key]?.isEmpty == true { state.sessions[key] = nil }
        }
    }

    /// Reads and fans out until graceful shutdown; then ends every subscription.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.readLoop() }
        let open = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            state.stopped = true
            defer { state.sessions = [:] }
            return state.sessions.values.flatMap { $0.values.map(\.continuation) }
        }
        open.forEach { $0.finish() }
        _ = try? await redis.send("DEL", wakeKey)
    }

    private func readLoop() async {
        var failures = 0
        let block = min(configuration.heartbeatInterval, .seconds(2))
        while !Task.isCancelled {
            let plan = state.withLockedValue { state -> [(key: String, after: String)] in
                let plan = state.sessions.map { key, subscribers in
                    (key: key, after: subscribers.values.map(\.cursor).min()!.description)
                }
                state.reading = !plan.isEmpty
                return plan.isEmpty ? [] : [(key: wakeKey, after: state.wakeCursor)] + plan
            }
            if plan.isEmpty {
                for await _ in idle { break }
                continue
            }
            let read: [String: [StreamEntry]]
            do {
                read = try await redis.xread(streams: plan, count: configuration.batchSize, block: block)
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("reading session events failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 * failures)))
                continue
            }
            deliver(read)
        }
    }

    /// Hands each subscriber the entries after its cursor, and heartbeats to those that waited long enough.
    private func deliver(_ read: [String: [StreamEntry]]) {
        let now = ContinuousClock.now
        let heartbeat = configuration.heartbeatInterval
        let dropped = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            state.reading = false
            if let wake = read[wakeKey]?.last { state.wakeCursor = wake.id }
            var dropped: [AsyncStream<SessionEvent>.Continuation] = []
            for (key, subscribers) in state.sessions {
                let entries = read[key] ?? []
                var kept = subscribers
                for (id, var subscriber) in subscribers {
                    var overflow = false
                    for entry in entries {
                        guard let entryID = EntryID(entry.id), entryID > subscriber.cursor else { continue }
                        if case .dropped = subscriber.continuation.yield(SessionEvents.event(entry)) {
                            overflow = true
                            break
                        }
                        subscriber.cursor = entryID
                        subscriber.lastSent = now
                    }
                    if !overflow, now - subscriber.lastSent >= heartbeat {
                        if case .dropped = subscriber.continuation.yield(.heartbeat) { overflow = true }
                        subscriber.lastSent = now
                    }
                    if overflow {
                        subscriber.overflowed.withLockedValue { $0 = true }
                        dropped.append(subscriber.continuation)
                        kept[id] = nil
                    } else {
                        kept[id] = subscriber
                    }
                }
                state.sessions[key] = kept.isEmpty ? nil : kept
            }
            return dropped
        }
        // Outside the lock: finishing runs the subscription's termination handler, which takes the lock.
        dropped.forEach { $0.finish() }
    }
}

/// One subscriber's events: an `AsyncSequence` of `SessionEvent` (heartbeats included).
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = SessionEvent
    let stream: AsyncStream<SessionEvent>
    let overflowedBox: NIOLockedValueBox<Bool>

    /// Whether the hub dropped this subscriber for falling behind (it should resume from its last event id).
    public var overflowed: Bool { overflowedBox.withLockedValue { $0 } }

    /// Iterates the events.
    public func makeAsyncIterator() -> AsyncStream<SessionEvent>.Iterator { stream.makeAsyncIterator() }
}

/// A stream entry id (`<milliseconds>-<sequence>`), ordered as Redis orders them.
struct EntryID: Comparable, Sendable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    init?(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]) else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    static func < (lhs: EntryID, rhs: EntryID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    var description: String { "\(milliseconds)-\(sequence)" }
}
