import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One TCP connection to Redis, pipelined: any number of commands may be in flight, replies come back in order.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let commandTimeout: TimeAmount
    /// Requests waiting for the event loop's next turn, where they are written together with one flush.
    private let outbox = Mutex(Outbox())

    private struct Outbox: Sendable {
        var requests: [RedisRequest] = []
        var scheduled = false
    }

    private init(channel: any Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// The TLS context of `configuration`: the system's roots, or those of `tlsCAFile`; the server's certificate
    /// is always verified.
    static func tlsContext(_ configuration: RedisConfiguration) throws -> NIOSSLContext {
        var settings = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.tlsCAFile {
            settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
        }
        return try NIOSSLContext(configuration: settings)
    }

    /// Opens a connection (TCP_NODELAY, TLS for `rediss://`), authenticates (as the ACL user, if any) and selects
    /// the database of `configuration`.
    public static func connect(
        configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup
    ) async throws -> RedisConnection {
        let tls: NIOSSLContext?
        do {
            tls = try configuration.tls ? Self.tlsContext(configuration) : nil
        } catch {
            throw RedisClientError(.connectionFailed, "cannot set up TLS for Redis (\(error))")
        }
        // A host name is checked against the certificate's names; an address against its IP entries.
        let serverName = configuration.host.contains(where: { $0.isLetter }) && !configuration.host.contains(":") ? configuration.host : nil
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
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
                if let username = configuration.username {
                    _ = try await connection.send(RedisCommand("AUTH", username, password))
                } else {
                    _ = try await connection.send(RedisCommand("AUTH", password))
                }
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
        try Self.check(try await reply(to: command, extraTime: extraTime))
    }

    /// Sends the commands in one write with one flush; returns the replies in order, error replies as `.error`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        let deadline = NIODeadline.now() + commandTimeout
        var buffers: [ByteBuffer] = []
        buffers.reserveCapacity(commands.count)
        for command in commands {
            var buffer = channel.allocator.buffer(capacity: 64)
            RespEncoder.encode(command, into: &buffer)
            buffers.append(buffer)
        }
        let encoded = buffers
        return try await withCheckedThrowingContinuation { continuation in
            let batch = RedisBatch(count: encoded.count, continuation: continuation)
            let requests = encoded.enumerated().map { RedisRequest(bytes: $1, responder: .batch(batch, $0), deadline: deadline) }
            self.write(requests)
        }
    }

    /// Writes the command now and returns its reply's future: commands sent this way from one task reach
    /// Redis in the order they were sent, without waiting for each other's replies.
    public func sendWithoutWaiting(_ command: RedisCommand) -> EventLoopFuture<RedisValue> {
        var buffer = channel.allocator.buffer(capacity: 64)
        RespEncoder.encode(command, into: &buffer)
        let promise = channel.eventLoop.makePromise(of: RedisValue.self)
        write([RedisRequest(bytes: buffer, responder: .promise(promise), deadline: NIODeadline.now() + commandTimeout)])
        return promise.futureResult.flatMapThrowing(Self.check)
    }

    /// Closes the socket; commands in flight fail with `connectionClosed`.
    public func close() {
        channel.close(promise: nil)
    }

    /// The reply to one command, error replies included, resumed straight from the event loop.
    func reply(to command: RedisCommand, extraTime: TimeAmount) async throws -> RedisValue {
        var buffer = channel.allocator.buffer(capacity: 64)
        RespEncoder.encode(command, into: &buffer)
        let deadline = NIODeadline.now() + commandTimeout + extraTime
        let bytes = buffer
        return try await withCheckedThrowingContinuation { continuation in
            self.write([RedisRequest(bytes: bytes, responder: .continuation(continuation), deadline: deadline)])
        }
    }

    /// Queues the requests for the event loop's next turn, which writes everything queued by then, in the order
    /// it was queued, with one flush: commands from many tasks (each stream's chunks, under load) share one
    /// wake-up of the loop and one `write` system call instead of one each. On the loop, an active channel still
    /// has its handler, which then owns every request's reply; a closed one fails them here, so each is answered
    /// once.
    private func write(_ requests: [RedisRequest]) {
        guard channel.isActive else {
            // Closed (or its event loop stopped): fail now rather than queue for a turn that may never come.
            let error = RedisClientError(.connectionClosed, "the connection to Redis is closed")
            requests.forEach { $0.responder.fail(error) }
            return
        }
        let schedule = outbox.withLock { outbox in
            outbox.requests.append(contentsOf: requests)
            guard !outbox.scheduled else { return false }
            outbox.scheduled = true
            return true
        }
        guard schedule else { return }
        let channel = self.channel
        channel.eventLoop.execute { [self] in
            let batch = outbox.withLock { outbox in
                defer {
                    outbox.requests.removeAll(keepingCapacity: true)
                    outbox.scheduled = false
                }
                return outbox.requests
            }
            guard channel.isActive else {
                let error = RedisClientError(.connectionClosed, "the connection to Redis is closed")
                batch.forEach { $0.responder.fail(error) }
                return
            }
            for request in batch { channel.write(request, promise: nil) }
            channel.flush()
        }
    }

    /// The value, or the error reply thrown as `RedisServerError`.
    package static func check(_ value: RedisValue) throws -> RedisValue {
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
