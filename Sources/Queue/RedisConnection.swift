import Logging
import NIOCore
import NIOPosix

/// One TCP connection to Redis, pipelined: any number of commands may be in flight, replies come back in order.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let commandTimeout: TimeAmount

    private init(channel: any Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// Opens a connection (TCP_NODELAY), authenticates and selects the database of `configuration`.
    public static func connect(
        configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup
    ) async throws -> RedisConnection {
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler())
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw RedisClientError(.connectionFailed, "cannot connect to Redis at \(configuration.host):\(configuration.port) (\(error))")
        }
        let connection = RedisConnection(channel: channel, commandTimeout: TimeAmount(configuration.commandTimeout))
        do {
            if let password = configuration.password {
                _ = try await connection.send(RedisCommand("AUTH", password))
            }
            if configuration.database != 0 {
                _ = try await connection.send(RedisCommand("SELECT", String(configuration.database)))
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Whether the socket is still open.
    public var isActive: Bool { channel.isActive }

    /// Sends one command and returns its reply; an error reply is thrown as `RedisServerError`.
    /// `extraTime` lengthens the timeout (a blocking read's block time).
    public func send(_ command: RedisCommand, extraTime: TimeAmount = .zero) async throws -> RedisValue {
        try Self.check(try await submit(command, extraTime: extraTime).get())
    }

    /// Sends the commands in one write with one flush; returns the replies in order, error replies as `.error`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        let deadline = NIODeadline.now() + commandTimeout
        var futures: [EventLoopFuture<RedisValue>] = []
        futures.reserveCapacity(commands.count)
        var requests: [RedisRequest] = []
        requests.reserveCapacity(commands.count)
        let allocator = channel.allocator
        for command in commands {
            var buffer = allocator.buffer(capacity: 64)
            RespEncoder.encode(command, into: &buffer)
            let promise = channel.eventLoop.makePromise(of: RedisValue.self)
            futures.append(promise.futureResult)
            requests.append(RedisRequest(bytes: buffer, promise: promise, deadline: deadline))
        }
        let channel = self.channel
        let batch = requests
        channel.eventLoop.execute {
            for request in batch {
                channel.write(request, promise: nil)
            }
            channel.flush()
        }
        var values: [RedisValue] = []
        values.reserveCapacity(futures.count)
        for future in futures {
            values.append(try await future.get())
        }
        return values
    }

    /// Closes the socket; commands in flight fail with `connectionClosed`.
    public func close() {
        channel.close(promise: nil)
    }

    func submit(_ command: RedisCommand, extraTime: TimeAmount) -> EventLoopFuture<RedisValue> {
        var buffer = channel.allocator.buffer(capacity: 64)
        RespEncoder.encode(command, into: &buffer)
        let promise = channel.eventLoop.makePromise(of: RedisValue.self)
        let request = RedisRequest(bytes: buffer, promise: promise, deadline: .now() + commandTimeout + extraTime)
        channel.writeAndFlush(request).whenFailure { error in
            promise.fail(RedisClientError(.connectionClosed, "could not write to Redis (\(error))"))
        }
        return promise.futureResult
    }

    static func check(_ value: RedisValue) throws -> RedisValue {
        if case .error(let message) = value { throw RedisServerError(message: message) }
        return value
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
