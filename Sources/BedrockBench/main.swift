// bedrock-bench: the event-stream decoder alone, then the Bedrock client's cost per streamed chunk against
// the emulator; printed as one Markdown table. With `BENCH=pipeline`, the full path against its floor instead.
import Foundation

if ProcessInfo.processInfo.environment["BENCH"] == "pipeline" {
    print("| concurrent streams | floor: first chunk p50 | full path: first chunk p50 | first chunk added (p50 / p99) | whole reply added (p50) |")
    print("| --- | --- | --- | --- | --- |")
    for row in try await runPipelineBenchmark() {
        print(row)
    }
} else {
    print("| benchmark | throughput | rate |")
    print("| --- | --- | --- |")
    for row in runDecoderBenchmark() {
        print(row)
    }
    for row in try await runClientBenchmark() {
        print(row)
    }
}
