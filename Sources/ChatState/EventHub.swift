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
    /// Subscriptions whose consumer stopped, to be taken out of `state` by the next holder of its lock. A
    /// stream's termination handler runs while the Swift runtime holds its task's status lock (when the task is
    /// cancelled), and `deliver` yields to streams while holding `state`'s lock, which takes that status lock:
    /// so the handler must never wait for `state`'s lock, only for this one, which is held for nothing else.
    private let terminated = NIOLockedValueBox<[(key: String, id: Int)]>([])
    private let idle: AsyncStream<Void>
    private let idleContinuation: AsyncStream<Void>.Continuation

    private struct Subscriber {
        var cursor: EntryID
        var continuation: AsyncStream<SessionEvent>.Continuation
        var overflowed: NIOLockedValueBox<Bool>
        var lastSent: ContinuousClock.Instant
    }

    /// The subscribers of one session's stream, and the oldest cursor among them (where the next read starts).
    private struct Session {
        var subscribers: [Int: Subscriber] = [:]
        var cursor: EntryID

        mutating func recomputeCursor() {
            if let oldest = subscribers.values.map(\.cursor).min() { cursor = oldest }
        }
    }

    private struct State {
        var nextID = 0
        var sessions: [String: Session] = [:]
        var reading = false
        var wakeCursor = "0-0"
        var stopped = false
        var lastSweep = ContinuousClock.now
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
    public var subscriberCount: Int {
        state.withLockedValue { state in
            removeTerminated(&state)
            return state.sessions.values.reduce(0) { $0 + $1.subscribers.count }
        }
    }

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
            state.sessions[key, default: Session(cursor: cursor)].subscribers[state.nextID] = subscriber
            state.sessions[key]!.cursor = min(state.sessions[key]!.cursor, cursor)
            return (state.nextID, state.reading, false)
        }
        if stopped {
            continuation.finish()
            throw ChatError(.unavailable, code: "SHUTTING_DOWN", message: "This server is shutting down; try again")
        }
        continuation.onTermination = { [weak self] _ in self?.terminated.withLockedValue { $0.append((key, id)) } }
        if wasReading {
            _ = try? await redis.pipeline([
                RedisClient.xaddCommand(wakeKey, maxLength: 64, fields: [("s", "1")]),
                RedisCommand("PEXPIRE", wakeKey, "60000"),
            ])
        } else {
            idleContinuation.yield()
        }
        return EventSubscription(stream: stream, overflowedBox: overflowed, continuation: continuation)
    }

    /// Takes the subscriptions whose consumers stopped out of `state` (its lock held by the caller).
    private func removeTerminated(_ state: inout State) {
        let gone = terminated.withLockedValue { gone in
            defer { gone.removeAll() }
            return gone
        }
        for (key, id) in gone {
            guard state.sessions[key]?.subscribers.removeValue(forKey: id) != nil else { continue }
            if state.sessions[key]!.subscribers.isEmpty {
                state.sessions[key] = nil
            } else {
                state.sessions[key]!.recomputeCursor()
            }
        }
    }

    /// Reads and fans out until graceful shutdown; then ends every subscription.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.readLoop() }
        let open = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            state.stopped = true
            defer { state.sessions = [:] }
            return state.sessions.values.flatMap { $0.subscribers.values.map(\.continuation) }
        }
        open.forEach { $0.finish() }
        _ = try? await redis.send("DEL", wakeKey)
    }

    private func readLoop() async {
        var failures = 0
        let block = min(configuration.heartbeatInterval / 2, .seconds(2))
        while !Task.isCancelled {
            let (plan, wakeCursor) = state.withLockedValue { state -> ([(key: String, cursor: EntryID)], String) in
                removeTerminated(&state)
                let plan = state.sessions.map { key, session in (key: key, cursor: session.cursor) }
                state.reading = !plan.isEmpty
                return (plan, state.wakeCursor)
            }
            if plan.isEmpty {
                for await _ in idle { break }
                continue
            }
            var streams: [(key: String, after: String)] = [(key: wakeKey, after: wakeCursor)]
            streams.reserveCapacity(plan.count + 1)
            for (key, cursor) in plan { streams.append((key: key, after: cursor.description)) }
            let read: [String: [StreamEntry]]
            do {
                read = try await redis.xread(streams: streams, count: configuration.batchSize, block: block)
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("reading session events failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 * failures)))
                continue
            }
            // Where this read started, for the sessions it returned entries of (the others need nothing).
            var starts: [String: EntryID] = [:]
            starts.reserveCapacity(read.count)
            if !read.isEmpty {
                for (key, cursor) in plan where read[key] != nil { starts[key] = cursor }
            }
            deliver(read, starts: starts)
        }
    }

    /// Hands the subscribers of each session that had events the entries after their cursors; about twice a
    /// heartbeat interval (at most every second) also heartbeats every subscriber that waited long enough.
    /// Only the sessions in `read` are touched otherwise, so a read costs what it returned, not what is open.
    /// A subscriber whose cursor is older than where the read started (it joined during the read, resuming
    /// from further back) gets nothing from it: the next read starts at its cursor, so it misses nothing.
    private func deliver(_ read: [String: [StreamEntry]], starts: [String: EntryID]) {
        let now = ContinuousClock.now
        let heartbeat = configuration.heartbeatInterval
        let dropped = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            removeTerminated(&state)
            state.reading = false
            if let wake = read[wakeKey]?.last { state.wakeCursor = wake.id }
            var dropped: [AsyncStream<SessionEvent>.Continuation] = []
            for (key, entries) in read where key != wakeKey {
                guard var session = state.sessions[key] else { continue }
                let events = entries.compactMap { entry in EntryID(entry.id).map { ($0, SessionEvents.event(entry)) } }
                let start = starts[key]
                for (id, var subscriber) in session.subscribers {
                    if let start, subscriber.cursor < start { continue }
                    var overflow = false
                    for (entryID, event) in events where entryID > subscriber.cursor {
                        if case .dropped = subscriber.continuation.yield(event) {
                            overflow = true
                            break
                        }
                        subscriber.cursor = entryID
                        subscriber.lastSent = now
                    }
                    if overflow {
                        subscriber.overflowed.withLockedValue { $0 = true }
                        dropped.append(subscriber.continuation)
                        session.subscribers[id] = nil
                    } else {
                        session.subscribers[id] = subscriber
                    }
                }
                session.recomputeCursor()
                state.sessions[key] = session.subscribers.isEmpty ? nil : session
            }
            if now - state.lastSweep >= min(heartbeat / 2, .seconds(1)) {
                state.lastSweep = now
                for (key, var session) in state.sessions {
                    var changed = false
                    for (id, var subscriber) in session.subscribers where now - subscriber.lastSent >= heartbeat {
                        changed = true
                        subscriber.lastSent = now
                        if case .dropped = subscriber.continuation.yield(.heartbeat) {
                            subscriber.overflowed.withLockedValue { $0 = true }
                            dropped.append(subscriber.continuation)
                            session.subscribers[id] = nil
                        } else {
                            session.subscribers[id] = subscriber
                        }
                    }
                    if changed { state.sessions[key] = session.subscribers.isEmpty ? nil : session }
                }
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
    let continuation: AsyncStream<SessionEvent>.Continuation

    /// Whether the hub dropped this subscriber for falling behind (it should resume from its last event id).
    public var overflowed: Bool { overflowedBox.withLockedValue { $0 } }

    /// Ends the sequence from outside (the process stopping, the reader's token expiring): the consumer gets what
    /// is already buffered, then the end. Safe from any task, any number of times.
    public func finish() { continuation.finish() }

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
