import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// What closes a connection that would otherwise hold chat-api's resources, and its shutdown, for ever:
/// - a first request head that has not fully arrived within `timeout` (a slow or half-sent request, or a
///   connection that sent nothing). hummingbird-websocket adds the HTTP idle timeout only once a request head has
///   been read and is not an upgrade; later requests on the connection are timed by that idle handler;
/// - a client that stopped reading: the connection's outbound buffer stays full (not writable) for `timeout`
///   while a stream is written to it (an SSE or WebSocket relay waits in its write, so it never sees the hub
///   drop it, and the WebSocket's own ping waits behind it).
/// When the server begins to stop, a connection in either state is closed at once.
struct GuardedConnection<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            // First in the pipeline: they see the bytes before the HTTP decoder does, and stay after an upgrade.
            try channel.pipeline.syncOperations.addHandler(FirstHeadDeadlineHandler(timeout: timeout))
            try channel.pipeline.syncOperations.addHandler(StalledReaderHandler(timeout: timeout))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        let channel = value.channel
        await withGracefulShutdownHandler {
            await base.handle(value: value, logger: logger)
        } onGracefulShutdown: {
            channel.eventLoop.execute {
                let waitingForHead = (try? channel.pipeline.syncOperations.handler(type: FirstHeadDeadlineHandler.self)) != nil
                if waitingForHead || !channel.isWritable { channel.closeQuietly() }
            }
        }
    }
}

/// Closes the channel when it has not been writable (its peer reads nothing while its outbound buffer is full)
/// for `timeout`.
final class StalledReaderHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            deadline?.cancel()
            deadline = nil
        } else if deadline == nil {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }
}

/// Closes the channel at `timeout` after it became active unless the end of a request head (`\r\n\r\n` after
/// the request line began) came first; then it removes itself.
final class FirstHeadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// How many bytes of `\r\n\r\n` the bytes read so far end with.
    private var matched = 0
    /// Whether a byte other than a line end has come (the request line began).
    private var started = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) { bound.value.channel.closeQuietly() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ended = headEnded(in: unwrapInboundIn(data))
        context.fireChannelRead(data)
        if ended {
            deadline?.cancel()
            deadline = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    /// Whether `buffer`, after what came before, completes the blank line (`\r\n\r\n`) that ends a request head.
    private func headEnded(in buffer: ByteBuffer) -> Bool {
        for byte in buffer.readableBytesView {
            if !started {
                // Line ends before the request line are skipped by the parser, and do not count here either.
                guard byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") else {
                    started = true
                    continue
                }
                continue
            }
            let expected = matched % 2 == 0 ? UInt8(ascii: "\r") : UInt8(ascii: "\n")
            if byte == expected {
                matched += 1
                if matched == 4 { return true }
            } else {
                matched = byte == UInt8(ascii: "\r") ? 1 : 0
            }
        }
        return false
    }
}

extension Channel {
    /// Closes the connection as if its peer had half-closed it first: the upgrade handler then ends its wait
    /// quietly, where a bare close would be logged as an error once per such connection.
    func closeQuietly() {
        pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        close(promise: nil)
    }
}
