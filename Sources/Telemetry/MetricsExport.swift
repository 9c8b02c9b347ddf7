import Metrics
import NIOCore
import Prometheus

/// The process's metrics registry: swift-metrics bootstrapped once with Prometheus as its backend, so that every
/// `Counter`, `Gauge`, `Meter` and `Timer` of the process (ours and the libraries') lands here, and `/metrics`
/// renders them in Prometheus's text format.
public enum MetricsExport {
    /// Histogram buckets for every duration: 1 ms to 2 minutes, which covers a request's head and a whole reply.
    public static let durationBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(120),
    ]

    /// The registry; the first use bootstraps swift-metrics with it (once per process, as swift-metrics requires).
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Bootstraps the registry now (call it first thing in `main`, before anything records a metric).
    public static func bootstrap() {
        _ = registry
    }

    /// Every metric in Prometheus's text exposition format (version 0.0.4).
    public static func render() -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    /// The `Content-Type` of `render()`'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
