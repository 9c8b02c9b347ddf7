import ChatCore
import Logging
import NIOConcurrencyHelpers
import Queue
import ServiceLifecycle

/// The one reader of session events in a process: every relay, observer and waiting request subscribes here,
/// and the events of all their sessions arrive in one stream of the process's own, its inbox, which one blocking
/// `XREAD` reads and fans out in the process; so the process's Redis connections do not grow with its open
/// streams, and a read costs what it returns, not how many sessions are open.
///
/// The hub registers as a reader of each session it has subscribers for (`SessionEvents.readersKey`, a lease it
/// renews); every script that publishes a session event also copies it to each registered reader's inbox, with
/// the id of the event before it. An event whose predecessor a subscriber has not seen (its registration came
/// later, or a copy was lost: a lapsed registration, a trimmed inbox, a Redis that restarted) makes the hub read
/// the session's own stream from the subscriber's cursor, as it does for a new subscriber and, as a safety net,
/// for every session every `resyncInterval`. So events reach each subscriber in order, each once, none missed.
///
/// Each subscriber has its own cursor and a bounded buffer; a subscriber too slow to keep its buffer from
/// filling is dropped (its sequence ends with `overflowed` set) and resumes with `Last-Event-ID`. A subscriber
/// that waits longer than the heartbeat interval for an event gets `SessionEvent.heartbeat`. A new subscriber
/// wakes a read in progress by adding to the inbox.
public final class EventHub: Service, Sendable {
    /// The hub's limits and timings.
    public struct Configuration: Sendable {
        /// A subscriber with no event for this long gets a heartbeat.
        public var heartbeatInterval: Duration
        /// Events buffered per subscriber before it counts as too slow.
        public var bufferSize: Int
        /// Entries read per read.
        public var batchSize: Int
        /// How long a registration as a session's reader lasts unless renewed (renewed every third of it).
        public var readerLease: Duration
        /// How often every open session's stream is read besides the inbox, for events whose copy was lost.
        public var resyncInterval: Duration

        /// Defaults: 15 s heartbeats, 1,024 buffered events, 512 entries a read, 60 s reader leases, a resync every 5 s.
        public init(
            heartbeatInterval: Duration = .seconds(15), bufferSize: Int = 1_024, batchSize: Int = 512, readerLease: Duration = .seconds(60),
            resyncInterval: Duration = .seconds(5)
        ) {
            self.heartbeatInterval = heartbeatInterval
            self.bufferSize = bufferSize
            self.batchSize = batchSize
            self.readerLease = readerLease
            self.resyncInterval = resyncInterval
        }
    }

    /// The limits and timings in use.
    public let configuration: Configuration
    /// This process's inbox: copies of the events of the sessions it reads, and wake-ups.
    public let inboxKey: String
    private let redis: RedisClient
    private let events: SessionEvents
    private let logger: Logger
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

        /// Yields `event`; false, with the subscriber marked as overflowed, when its buffer is full.
        func offer(_ event: SessionEvent) -> Bool {
            guard case .dropped = continuation.yield(event) else { return true }
            overflowed.withLockedValue { $0 = true }
            return false
        }
    }

    /// The subscribers of one session's stream, the oldest cursor among them (where a read of the stream starts),
    /// whether the hub is registered as its reader, and whether its stream must be read.
    private struct Session {
        var sessionID: String
        var subscribers: [Int: Subscriber] = [:]
        var cursor: EntryID
        var registered = false
        var needsRead = true

        mutating func recomputeCursor() {
            if let oldest = subscribers.values.map(\.cursor).min() { cursor = oldest }
        }
    }

    private struct State {
        var nextID = 0
        var sessions: [String: Session] = [:]
        /// The loop waits on the inbox (a new subscriber must wake it).
        var reading = false
        var inboxCursor = "0-0"
        var stopped = false
        /// Sessions whose last subscriber left while registered: their registration is dropped by the loop.
        var unregister: [String] = []
        /// Set after a failed read: every session registers and is read again.
        var lost = false
        var lastSweep = ContinuousClock.now
        var lastRenewal = ContinuousClock.now
        var lastResync = ContinuousClock.now
    }

    /// What one turn of the loop does before it waits on the inbox.
    private struct Plan {
        var unregister: [String] = []
        var register: [String] = []
        var reads: [(key: String, cursor: EntryID)] = []
        var isEmpty: Bool { unregister.isEmpty && register.isEmpty && reads.isEmpty }
    }

    /// A hub reading through `redis`; `events` gives the stream keys and the newest event of a session.
    public init(redis: RedisClient, events: SessionEvents, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "event-hub")) {
        self.redis = redis
        self.events = events
        self.configuration = configuration
        self.logger = logger
        self.inboxKey = "chat:api:inbox:\(UInt64.random(in: 1...UInt64.max))"
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
            var session = state.sessions[key] ?? Session(sessionID: sessionID, cursor: cursor)
            session.subscribers[state.nextID] = subscriber
            session.cursor = min(session.cursor, cursor)
            // Its stream is read from its cursor once the hub is registered: nothing before the registration is missed.
            session.needsRead = true
            state.sessions[key] = session
            return (state.nextID, state.reading, false)
        }
        if stopped {
            continuation.finish()
            throw ChatError(.unavailable, code: "SHUTTING_DOWN", message: "This server is shutting down; try again")
        }
        continuation.onTermination = { [weak self] _ in self?.terminated.withLockedValue { $0.append((key, id)) } }
        if wasReading {
            _ = try? await redis.pipeline([
                RedisClient.xaddCommand(inboxKey, maxLength: SessionEvents.inboxMaxLength, fields: [("wake", "1")]),
                RedisCommand("PEXPIRE", inboxKey, String((configuration.readerLease * 2).milliseconds)),
            ])
        } else {
            idleContinuation.yield()
        }
        return EventSubscription(stream: stream, overflowedBox: overflowed, continuation: continuation)
    }

    /// Takes the subscriptions whose consumers stopped out of `state` (its lock held by the caller); a session
    /// left without subscribers is forgotten, and its registration dropped by the loop.
    private func removeTerminated(_ state: inout State) {
        let gone = terminated.withLockedValue { gone in
            defer { gone.removeAll() }
            return gone
        }
        for (key, id) in gone {
            guard var session = state.sessions[key], session.subscribers.removeValue(forKey: id) != nil else { continue }
            store(session, at: key, in: &state)
        }
    }

    /// Reads and fans out until graceful shutdown; then ends every subscription and drops the registrations.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.readLoop() }
        let (open, registered) = state.withLockedValue { state -> ([AsyncStream<SessionEvent>.Continuation], [String]) in
            state.stopped = true
            defer { state.sessions = [:] }
            return (
                state.sessions.values.flatMap { $0.subscribers.values.map(\.continuation) },
                state.unregister + state.sessions.values.filter(\.registered).map(\.sessionID)
            )
        }
        open.forEach { $0.finish() }
        if !registered.isEmpty { _ = try? await redis.send(readersCommand(registered, lease: .zero)) }
        // The inbox is left to its ttl: a registration that outlives this (a failed drop) finds it there.
    }

    private func readLoop() async {
        var failures = 0
        // Waits no longer than a renewal or a resync may be late by.
        let block = max(.milliseconds(50), min(configuration.heartbeatInterval / 2, .seconds(2), configuration.readerLease / 3, configuration.resyncInterval))
        while !Task.isCancelled {
            guard let plan = nextPlan() else {
                for await _ in idle { break }
                continue
            }
            do {
                if plan.isEmpty {
                    // Nothing to register or read: wait for the inbox (new subscribers wake it).
                    let cursor = state.withLockedValue { $0.inboxCursor }
                    let entries = try await redis.xread(inboxKey, after: cursor, count: configuration.batchSize, block: block)
                    deliverInbox(entries)
                } else {
                    try await carryOut(plan)
                }
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                // Redis may have lost the registrations (a restart): register every session and read it again; the
                // registrations this plan was to drop are dropped by the next.
                let dropped = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
                    state.reading = false
                    state.lost = true
                    state.unregister += plan.unregister
                    // Subscribers still get their heartbeats while Redis cannot be read.
                    var dropped: [AsyncStream<SessionEvent>.Continuation] = []
                    sweep(&state, now: .now, dropping: &dropped)
                    return dropped
                }
                dropped.forEach { $0.finish() }
                logger.warning("reading session events failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 * failures)))
            }
        }
    }

    /// What to do before waiting on the inbox: registrations to drop, make or renew, and streams to read. Nil
    /// when no session is open and nothing is left to drop (the loop waits for a subscriber); an empty plan
    /// marks the hub as waiting on the inbox.
    private func nextPlan() -> Plan? {
        let now = ContinuousClock.now
        return state.withLockedValue { state -> Plan? in
            removeTerminated(&state)
            let renew = now - state.lastRenewal >= configuration.readerLease / 3
            if renew { state.lastRenewal = now }
            let resync = now - state.lastResync >= configuration.resyncInterval
            if resync { state.lastResync = now }
            let lost = state.lost
            state.lost = false
            var plan = Plan()
            plan.unregister = state.unregister
            state.unregister = []
            for key in Array(state.sessions.keys) {
                var session = state.sessions[key]!
                if !session.registered || renew || lost {
                    plan.register.append(session.sessionID)
                    session.registered = true
                }
                if session.needsRead || resync || lost {
                    plan.reads.append((key: key, cursor: session.cursor))
                    session.needsRead = false
                }
                state.sessions[key] = session
            }
            if plan.isEmpty {
                if state.sessions.isEmpty { return nil }
                state.reading = true
            }
            return plan
        }
    }

    /// Drops and makes registrations, then reads the planned streams and the inbox without waiting, in one
    /// pipeline (so a stream is read after the registration that makes its later events reach the inbox), and
    /// delivers. Reading the inbox here too keeps the other sessions' events flowing while new subscribers keep
    /// the loop from waiting on the inbox.
    private func carryOut(_ plan: Plan) async throws {
        var commands: [RedisCommand] = []
        if !plan.unregister.isEmpty { commands.append(readersCommand(plan.unregister, lease: .zero)) }
        if !plan.register.isEmpty { commands.append(readersCommand(plan.register, lease: configuration.readerLease)) }
        if !plan.reads.isEmpty {
            commands.append(RedisClient.xreadCommand(streams: plan.reads.map { (key: $0.key, after: $0.cursor.description) }, count: configuration.batchSize))
        }
        let inboxCursor = state.withLockedValue { $0.inboxCursor }
        commands.append(RedisClient.xreadCommand(streams: [(key: inboxKey, after: inboxCursor)], count: configuration.batchSize))
        let replies = try await redis.pipelineChecked(commands)
        if !plan.reads.isEmpty {
            let read = try RedisClient.streamsReply(replies[replies.count - 2])
            var starts: [String: EntryID] = [:]
            starts.reserveCapacity(read.count)
            for (key, cursor) in plan.reads where read[key] != nil { starts[key] = cursor }
            deliver(read, starts: starts)
        }
        deliverInbox(try RedisClient.streamsReply(replies[replies.count - 1])[inboxKey] ?? [])
    }

    /// The `readers` script for `sessionIDs`: registers the inbox for `lease` (zero: drops it).
    private func readersCommand(_ sessionIDs: [String], lease: Duration) -> RedisCommand {
        RedisCommand(
            arguments: ["EVAL", Self.readersScript.source, String(sessionIDs.count)] + sessionIDs.map { SessionEvents.readersKey(sessionID: $0) }
                + [inboxKey, String(lease.milliseconds), String((lease * 2).milliseconds)]
        )
    }

    /// KEYS: readers sets. ARGV: inbox, lease ms (0: drop), inbox ttl ms. Registers the inbox as a reader of each
    /// session until now + lease (dropping lapsed readers, and making sure the inbox exists with a ttl longer than
    /// any registration of it, so no copy ever lands in an inbox without one), or drops it.
    static let readersScript = RedisScript(
        """
        local lease = tonumber(ARGV[2])
        if lease == 0 then
          for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
          return 0
        end
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        if redis.call('EXISTS', ARGV[1]) == 0 then
          redis.call('XADD', ARGV[1], 'MAXLEN', '~', \(SessionEvents.inboxMaxLength), '*', 'wake', '1')
        end
        redis.call('PEXPIRE', ARGV[1], ARGV[3])
        for _, key in ipairs(KEYS) do
          redis.call('ZADD', key, now + lease, ARGV[1])
          redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
          if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
        end
        return #KEYS
        """
    )

    /// Hands each session's subscribers the entries of its stream after their cursors (`read`, from `carryOut`);
    /// a session that returned a full batch is read again. A subscriber whose cursor is older than where the read
    /// started (it joined during the read, resuming from further back) gets nothing from it: it is read again.
    private func deliver(_ read: [String: [StreamEntry]], starts: [String: EntryID]) {
        let now = ContinuousClock.now
        let batchSize = configuration.batchSize
        let dropped = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            removeTerminated(&state)
            var dropped: [AsyncStream<SessionEvent>.Continuation] = []
            for (key, entries) in read {
                guard var session = state.sessions[key] else { continue }
                let events = entries.compactMap { entry in EntryID(entry.id).map { ($0, SessionEvents.event(entry)) } }
                let start = starts[key]
                for (id, var subscriber) in session.subscribers {
                    if let start, subscriber.cursor < start { continue }
                    var overflow = false
                    for (entryID, event) in events where entryID > subscriber.cursor {
                        guard subscriber.offer(event) else {
                            overflow = true
                            break
                        }
                        subscriber.cursor = entryID
                        subscriber.lastSent = now
                    }
                    if overflow {
                        dropped.append(subscriber.continuation)
                        session.subscribers[id] = nil
                    } else {
                        session.subscribers[id] = subscriber
                    }
                }
                if entries.count >= batchSize { session.needsRead = true }
                store(session, at: key, in: &state)
            }
            return dropped
        }
        // Outside the lock: finishing runs the subscription's termination handler, which takes the lock.
        dropped.forEach { $0.finish() }
    }

    /// Hands the subscribers of each session the inbox's copies in order: an event whose predecessor a subscriber
    /// has seen is delivered, one it already has is skipped, and one after a gap makes the session's stream be
    /// read instead (from the subscriber's cursor). About twice a heartbeat interval (at most every second) it
    /// also heartbeats every subscriber that waited long enough.
    private func deliverInbox(_ entries: [StreamEntry]) {
        let now = ContinuousClock.now
        let dropped = state.withLockedValue { state -> [AsyncStream<SessionEvent>.Continuation] in
            removeTerminated(&state)
            state.reading = false
            if let last = entries.last { state.inboxCursor = last.id }
            var dropped: [AsyncStream<SessionEvent>.Continuation] = []
            for entry in entries {
                guard let key = entry.fields["key"], var session = state.sessions[key] else { continue }
                guard let eventID = entry.fields["id"], let id = EntryID(eventID), let previous = entry.fields["previous"].flatMap(EntryID.init) else {
                    // A copy that cannot be read: the session's stream has the event.
                    session.needsRead = true
                    state.sessions[key] = session
                    continue
                }
                var event: SessionEvent?
                for (subscriberID, var subscriber) in session.subscribers where subscriber.cursor < id {
                    guard subscriber.cursor >= previous else {
                        session.needsRead = true
                        continue
                    }
                    if event == nil { event = SessionEvents.event(StreamEntry(id: eventID, fields: entry.fields)) }
                    guard subscriber.offer(event!) else {
                        dropped.append(subscriber.continuation)
                        session.subscribers[subscriberID] = nil
                        continue
                    }
                    subscriber.cursor = id
                    subscriber.lastSent = now
                    session.subscribers[subscriberID] = subscriber
                }
                store(session, at: key, in: &state)
            }
            sweep(&state, now: now, dropping: &dropped)
            return dropped
        }
        dropped.forEach { $0.finish() }
    }

    /// Heartbeats the subscribers that waited long enough (at most about twice a heartbeat interval, at most every
    /// second), also while Redis cannot be read; `dropped` collects those whose buffer was full.
    private func sweep(_ state: inout State, now: ContinuousClock.Instant, dropping dropped: inout [AsyncStream<SessionEvent>.Continuation]) {
        let heartbeat = configuration.heartbeatInterval
        guard now - state.lastSweep >= min(heartbeat / 2, .seconds(1)) else { return }
        state.lastSweep = now
        for (key, var session) in state.sessions {
            var changed = false
            for (id, var subscriber) in session.subscribers where now - subscriber.lastSent >= heartbeat {
                changed = true
                subscriber.lastSent = now
                if subscriber.offer(.heartbeat) {
                    session.subscribers[id] = subscriber
                } else {
                    dropped.append(subscriber.continuation)
                    session.subscribers[id] = nil
                }
            }
            if changed { store(session, at: key, in: &state) }
        }
    }

    /// Puts `session` back after a delivery: its cursor recomputed, or, with no subscriber left, forgotten (its
    /// registration dropped by the loop).
    private func store(_ session: Session, at key: String, in state: inout State) {
        guard !session.subscribers.isEmpty else {
            if session.registered { state.unregister.append(session.sessionID) }
            state.sessions[key] = nil
            return
        }
        var session = session
        session.recomputeCursor()
        state.sessions[key] = session
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
