import Testing

@testable import ChatBench

@Suite("chat-bench's parsers and aggregation")
struct ChatBenchParsingTests {
    @Test("SSE events come out whole whatever the pieces' sizes")
    func sseAtOddSizes() {
        let text = "id: 1-0\nevent: chunk\ndata: {\"content\":\"a\"}\n\n: heartbeat\n\r\nevent: complete\r\ndata: line one\r\ndata: line two\r\n\r\ndata: [DONE]\n\n"
        let bytes = Array(text.utf8)
        for size in [1, 2, 3, 7, 64, bytes.count] {
            var parser = SSEParser()
            var events: [SSEEvent] = []
            var offset = 0
            while offset < bytes.count {
                events += parser.feed(bytes[offset..<min(offset + size, bytes.count)])
                offset += size
            }
            #expect(events == [
                SSEEvent(name: "chunk", data: "{\"content\":\"a\"}"),
                SSEEvent(name: "complete", data: "line one\nline two"),
                SSEEvent(name: "message", data: "[DONE]"),
            ])
        }
    }

    @Test("Server-Timing entries are read tolerantly")
    func serverTimingHeader() {
        let timings = ServerTiming.parseHeader("auth;dur=0.25, ratelimit;desc=\"x\";dur=1, session;dur=abc, reserve, enqueue;dur=\"2.5\"")
        #expect(timings == ["auth": 0.25, "ratelimit": 1, "enqueue": 2.5])
        #expect(ServerTiming.parseHeader("") == [:])
    }

    @Test("the complete event's spans are read when present")
    func completeSpans() {
        let spans = ServerTiming.parseSpans(eventData: #"{"content":"x","spans":{"pickup":1.5,"prepare":2,"firstByte":"3.25","publish":null}}"#)
        #expect(spans == ["pickup": 1.5, "prepare": 2, "firstByte": 3.25])
        #expect(ServerTiming.parseSpans(eventData: #"{"content":"x"}"#).isEmpty)
        #expect(ServerTiming.parseSpans(eventData: "not json").isEmpty)
    }

    @Test("a step's figures: percentiles, errors, the residual span")
    func stepAggregation() {
        var samples: [StreamSample] = []
        for index in 1...100 {
            var sample = StreamSample()
            sample.headers = .milliseconds(10)
            sample.chunk(at: .milliseconds(20 + index))
            sample.chunk(at: .milliseconds(40 + index))
            sample.complete = .milliseconds(45 + index)
            sample.total = .milliseconds(45 + index)
            sample.spans = ["pickup": 1, "prepare": 2, "firstByte": 3, "publish": 1]
            samples.append(sample)
        }
        var failed = StreamSample()
        failed.error = "status-402"
        samples.append(failed)
        let step = StepResult(
            target: .full, concurrency: 1, messagesPerUser: 101, samples: samples, duration: .seconds(2),
            processes: [ProcessUsage(name: "chat-api", pid: 1, cpuMilliseconds: 100, peakRSSKiB: 1)], ownProcesses: ["chat-api"],
            redisConnectionsPeak: nil
        )
        #expect(step.requests == 101 && step.completed == 100 && step.errors == ["status-402": 1])
        #expect(step.chunks == 200 && step.repliesPerSecond == 50)
        #expect(abs((step.latency["firstChunk"]?.p50 ?? 0) - 70) < 0.1)
        #expect(abs((step.latency["gap"]?.max ?? 0) - 20) < 0.1)
        #expect(step.ownCPUMillisecondsPer1kChunks == 500)
        // first chunk (21...120) − headers (10) − spans (7) = 4...103, whose 50th value is 53
        #expect(abs((step.breakdown[StepResult.residual]?.p50 ?? 0) - 53) < 0.1)
    }
}
