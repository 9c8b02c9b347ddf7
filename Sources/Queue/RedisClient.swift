import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A Redis client that reconnects by itself.
///
/// Ordinary commands share one pipelined connection. Blocking reads (`XREAD`/`XREADGROUP ... BLOCK`) each
/// lease a connection of their own, so they never hold up other commands. A dropped connection fails the
/// commands in flight with `RedisClientError.connectionClosed`; the next command opens a new one.
public final class RedisClient: Sendable {
    /// Where the client connects, and its timeouts.
    public let configuration: RedisConfiguration
    let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let shared = NIOLockedValueBox(SharedConnection.idle)
    private let idleBlocking = NIOLockedValueBox(IdleConnections())

    private enum SharedConnection {
        case idle
        case connecting(Task<RedisConnection, any Error>)
        case connected(RedisConnection)
        case shutdown
    }

    private struct IdleConnections {
        var connections: [RedisConnection] = []
        var isShutdown = false
    }

    /// A client for `configuration`; no connection is opened until the first command.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Sends one command and returns its reply. Error replies throw `RedisServerError`; no reply within the
    /// timeout, or a lost connection, throws `RedisClientError`. Blocking commands go to a leased connection.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        if command.isBlocking {
            return try await sendBlocking(command)
        }
        let connection = try await sharedConnection()
        return try RedisConnection.check(try await connection.reply(to: command, extraTime: .zero))
    }

    /// Sends `arguments` as one command; see `send(_:)`.
    @discardableResult
    public func send(_ arguments: String...) async throws -> RedisValue {
        try await send(RedisCommand(arguments: arguments))
    }

    /// Sends a (non-blocking) command on the shared connection without waiting for its reply; commands sent
    /// this way from one task reach Redis in order. The future fails with the error reply, if any.
    public func sendWithoutWaiting(_ command: RedisCommand) async throws -> EventLoopFuture<RedisValue> {
        try await sharedConnection().sendWithoutWaiting(command)
    }

    /// Sends the commands in one write and returns the replies in order; error replies come back as `.error`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        try await sharedConnection().pipeline(commands)
    }

    /// Sends the commands in one write; throws the first error reply, if any, once all replies are in.
    @discardableResult
    public func pipelineChecked(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        try await pipeline(commands).map(RedisConnection.check)
    }

    /// Runs a blocking command on a connection of its own. Cancelling the task closes that connection,
    /// which is the only way to stop a read that Redis is holding.
    public func sendBlocking(_ command: RedisCommand) async throws -> RedisValue {
        let connection = try await leaseBlockingConnection()
        let blockTime = Self.blockTime(of: command)
        let value: RedisValue
        do {
            value = try await withTaskCancellationHandler {
                try await connection.reply(to: command, extraTime: blockTime)
            } onCancel: {
                connection.close()
            }
        } catch {
            connection.close()
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        returnBlockingConnection(connection)
        return try RedisConnection.check(value)
    }

    /// Closes every connection; later commands fail with `RedisClientError.shutdown`.
    public func shutdown() {
        let previous = shared.withLockedValue { state -> SharedConnection in
            defer { state = .shutdown }
            return state
        }
        switch previous {
        case .connected(let connection): connection.close()
        case .connecting(let task): task.cancel()
        case .idle, .shutdown: break
        }
        let idle = idleBlocking.withLockedValue { pool -> [RedisConnection] in
            pool.isShutdown = true
            defer { pool.connections = [] }
            return pool.connections
        }
        idle.forEach { $0.close() }
    }

    private func sharedConnection() async throws -> RedisConnection {
        enum Next {
            case ready(RedisConnection)
            case wait(Task<RedisConnection, any Error>)
        }
        let next: Next = try shared.withLockedValue { state in
            switch state {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .connecting(let task):
                return .wait(task)
            case .shutdown:
                throw RedisClientError(.shutdown, "the Redis client was shut down")
            case .idle, .connected:
                let task = Task { [configuration, eventLoopGroup] in
                    try await RedisConnection.connect(configuration: configuration, eventLoopGroup: eventLoopGroup)
                }
                state = .connecting(task)
                return .wait(task)
            }
        }
        switch next {
        case .ready(let connection):
            return connection
        case .wait(let task):
            do {
                let connection = try await task.value
                // Several callers may await the same connect; a newer connect may also have finished first.
                // Whoever finds the state still waiting for this task installs its connection; a live connection
                // already installed is used as it is.
                let chosen = shared.withLockedValue { state -> RedisConnection? in
                    switch state {
                    case .connecting(let current) where current == task:
                        state = .connected(connection)
                        return connection
                    case .connected(let current) where current.isActive:
                        return current
                    case .shutdown:
                        return nil
                    case .idle, .connecting, .connected:
                        state = .connected(connection)
                        return connection
                    }
                }
                guard let chosen else {
                    connection.close()
                    throw RedisClientError(.shutdown, "the Redis client was shut down")
                }
                if chosen !== connection { connection.close() }
                return chosen
            } catch {
                shared.withLockedValue { state in
                    if case .connecting(let current) = state, current == task { state = .idle }
                }
                logger.warning("Redis connection failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    private func leaseBlockingConnection() async throws -> RedisConnection {
        let leased: RedisConnection? = try idleBlocking.withLockedValue { pool in
            if pool.isShutdown { throw RedisClientError(.shutdown, "the Redis client was shut down") }
            while let connection = pool.connections.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        if let leased { return leased }
        return try await RedisConnection.connect(configuration: configuration, eventLoopGroup: eventLoopGroup)
    }

    private func returnBlockingConnection(_ connection: RedisConnection) {
        let keep = idleBlocking.withLockedValue { pool -> Bool in
            guard !pool.isShutdown, connection.isActive, pool.connections.count < configuration.idleBlockingConnections else {
                return false
            }
            pool.connections.append(connection)
            return true
        }
        if !keep { connection.close() }
    }

    private static func blockTime(of command: RedisCommand) -> TimeAmount {
        guard let index = command.arguments.firstIndex(where: { $0.uppercased() == "BLOCK" }),
            index + 1 < command.arguments.count, let milliseconds = Int64(command.arguments[index + 1])
        else { return .zero }
        // BLOCK 0 waits forever; the command timeout still bounds it at one day so nothing is held for ever.
        return milliseconds == 0 ? .hours(24) : .milliseconds(milliseconds)
    }
}

/// Lets a `ServiceGroup` own the client: it runs until shutdown, then closes its connections.
extension RedisClient: Service {
    /// Waits for graceful shutdown, then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }
}
