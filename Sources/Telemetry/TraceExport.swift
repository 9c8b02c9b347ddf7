import Logging
import ServiceLifecycle

#if OTLP
import OTel
#endif

/// Span export over OTLP/HTTP, in builds with the `OTLP` trait (`swift build --traits OTLP`) and when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set: swift-otel becomes the process's tracer (traces only: logs and metrics
/// stay JSON lines and Prometheus) with W3C trace-context propagation, and the returned service, run with the
/// process's others, exports the spans in batches. The `OTEL_*` variables of the OpenTelemetry specification
/// tune it (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_BSP_SCHEDULE_DELAY`, ...).
public enum TraceExport {
    /// Whether this build can export spans.
    public static var isBuiltIn: Bool {
        #if OTLP
        true
        #else
        false
        #endif
    }

    /// Installs the exporting tracer for `serviceName` and returns the service that exports its spans; nil when
    /// export is not asked for (no endpoint) or not built in (then a set endpoint is reported once).
    public static func start(serviceName: String, environment: [String: String], logger: Logger) throws -> (any Service)? {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? ""
        guard !endpoint.isEmpty else { return nil }
        #if OTLP
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        logger.info("exporting spans over OTLP")
        return try OTel.bootstrap(configuration: configuration)
        #else
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no OTLP exporter (build with --traits OTLP)")
        return nil
        #endif
    }
}
