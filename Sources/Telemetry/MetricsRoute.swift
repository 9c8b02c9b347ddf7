import Hummingbird

extension RouterMethods {
    /// Serves `/metrics` in Prometheus's text format; `sample` runs first, to set the gauges read at scrape time
    /// (a queue's length, say), and may throw without failing the scrape.
    @discardableResult
    public func addMetricsRoute(_ path: RouterPath = "/metrics", sample: (@Sendable () async throws -> Void)? = nil) -> Self {
        get(path) { _, _ -> Response in
            if let sample { try? await sample() }
            return Response(
                status: .ok, headers: [.contentType: MetricsExport.contentType, .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: MetricsExport.render())
            )
        }
        return self
    }
}
