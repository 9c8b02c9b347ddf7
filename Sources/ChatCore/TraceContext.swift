import Instrumentation
import ServiceContextModule

/// A W3C Trace Context (`traceparent: 00-<trace id>-<parent span id>-<flags>`): taken from a request when it has a
/// valid one, else started, and carried through the job to the worker and its Bedrock call, so that one trace id
/// ties a reply's log lines together across chat-api, the queue and chat-worker.
public struct TraceContext: Sendable, Equatable {
    /// 32 lowercase hex digits, not all zero.
    public var traceID: String
    /// 16 lowercase hex digits, not all zero: the span this context's holder works in.
    public var spanID: String
    /// Whether the caller asked for the trace to be recorded (flag `01`).
    public var sampled: Bool

    /// The context of a `traceparent` header; nil for anything the W3C format does not allow (another length,
    /// upper case, all-zero ids, version `ff`).
    public init?(traceparent: String) {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts.prefix(4).allSatisfy({ $0.utf8.allSatisfy(Self.isLowerHex) }), parts[0] != "ff",
            parts[0] != "00" || parts.count == 4,
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" }),
            let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        traceID = String(parts[1])
        spanID = String(parts[2])
        sampled = flags & 1 == 1
    }

    /// A new trace, sampled.
    public static func start() -> TraceContext {
        TraceContext(traceID: randomHex(bytes: 16), spanID: randomHex(bytes: 8), sampled: true)
    }

    private init(traceID: String, spanID: String, sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// The same trace with a new span: what a step hands to the next one.
    public func child() -> TraceContext {
        TraceContext(traceID: traceID, spanID: Self.randomHex(bytes: 8), sampled: sampled)
    }

    /// The header value.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    /// The trace the current task works in, if any: clients of other services (Bedrock, accounting) send a
    /// child of it as their request's `traceparent`.
    @TaskLocal public static var current: TraceContext?

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// Random hex digits, drawn again in the (2^-64 or less) case they are all zero, which W3C does not allow.
    private static func randomHex(bytes: Int) -> String {
        var text: String
        repeat { text = RandomID.hex(bytes: bytes) } while text.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
        return text
    }
}

extension TraceContext {
    /// The `traceparent` for a call made now: the current span's when a tracer records spans (the OTLP build),
    /// else a new span of `fallback`, else of the task's `current` trace; nil when there is no trace at all.
    public static func outgoingTraceparent(fallback: TraceContext? = nil) -> String? {
        var carrier: [String: String] = [:]
        if let context = ServiceContext.current {
            InstrumentationSystem.instrument.inject(context, into: &carrier, using: HeaderInjector())
        }
        if let traceparent = carrier["traceparent"], TraceContext(traceparent: traceparent) != nil { return traceparent }
        return (fallback ?? current)?.child().traceparent
    }

    /// A service context whose parent is this trace, for a span that continues it (with no tracer installed,
    /// the context is as it was: spans are not recorded, and this type alone carries the trace).
    public func serviceContext() -> ServiceContext {
        var context = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: HeaderExtractor())
        return context
    }
}

/// Reads a propagation header from a dictionary of headers.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

/// Writes a propagation header into a dictionary of headers.
struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
