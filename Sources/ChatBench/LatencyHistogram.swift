import Histogram

/// Percentiles of one latency in milliseconds, as reported.
struct LatencySummary: Codable, Sendable {
    var count: Int
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double
}

/// Latencies recorded in microseconds (1 µs to 10 minutes, three significant digits) in an HdrHistogram.
struct LatencyHistogram: Sendable {
    private static let highest: UInt64 = 600_000_000
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)

    /// Records a duration; below 1 µs counts as 1 µs, above 10 minutes as 10 minutes.
    mutating func record(_ duration: Duration) {
        record(milliseconds: duration.milliseconds)
    }

    /// Records a value in milliseconds (negative values count as 1 µs).
    mutating func record(milliseconds: Double) {
        let micros = milliseconds.isFinite ? UInt64(Swift.max(1, Swift.min(Double(Self.highest), (milliseconds * 1_000).rounded()))) : Self.highest
        _ = histogram.record(micros)
    }

    /// The p50, p95, p99 and maximum, or nil when nothing was recorded.
    var summary: LatencySummary? {
        guard histogram.totalCount > 0 else { return nil }
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1_000 }
        return LatencySummary(
            count: Int(histogram.totalCount),
            p50: ms(histogram.valueAtPercentile(50)), p95: ms(histogram.valueAtPercentile(95)),
            p99: ms(histogram.valueAtPercentile(99)), max: ms(histogram.max)
        )
    }
}
