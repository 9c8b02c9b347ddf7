import NIOCore

/// Writes requests in order and matches replies to them in the same order (RESP is strictly ordered).
///
/// A reply that does not come by its request's deadline, a protocol error or a closed socket fails every
/// request in flight and closes the channel: after a missed reply the order can no longer be trusted.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<RedisRequest>(initialCapacity: 64)
    private var decoder: RespDecoder?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var failure: RedisClientError?

    init() {}

    func handlerAdded(context: ChannelHandlerContext) {
        decoder = RespDecoder()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, "the connection to Redis was closed"))
        decoder = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.responder.fail(failure)
            promise?.fail(failure)
            return
        }
        pending.append(request)
        armTimer(context: context, for: request.deadline)
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let decoder else { return }
        do {
            try decoder.decode(unwrapInboundIn(data)) { value in
                guard let request = pending.popFirst() else {
                    throw RedisClientError(.protocolError, "a reply arrived with no command waiting for it")
                }
                request.responder.succeed(value)
            }
            if pending.isEmpty { cancelTimer() }
        } catch {
            fail(context: context, with: error as? RedisClientError ?? RedisClientError(.protocolError, "\(error)"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, "the connection to Redis was lost"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, with: RedisClientError(.connectionClosed, "the connection to Redis failed: \(error)"))
    }

    private func fail(context: ChannelHandlerContext, with error: RedisClientError) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        if failure == nil { failure = error }
        cancelTimer()
        while let request = pending.popFirst() {
            request.responder.fail(error)
        }
    }

    /// One timer at a time, set for the oldest deadline that can be missed: the head of the queue's, or a
    /// newer request's if it is earlier. On firing it checks the head again rather than trusting the schedule.
    private func armTimer(context: ChannelHandlerContext, for deadline: NIODeadline) {
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timer = nil
            self.timerDeadline = nil
            self.checkDeadlines(context: context)
        }
    }

    private func checkDeadlines(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        if pending.contains(where: { $0.deadline <= now }) {
            fail(context: context, with: RedisClientError(.timeout, "Redis did not reply in time"))
            return
        }
        if let earliest = pending.map(\.deadline).min() {
            armTimer(context: context, for: earliest)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}
