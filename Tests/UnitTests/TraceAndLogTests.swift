@testable import ChatCore
import Foundation
import Logging
import Testing

@Suite("W3C trace context and JSON log lines")
struct TraceAndLogTests {
    @Test("a valid traceparent is taken as it is; its child keeps the trace and changes the span")
    func validTraceparent() throws {
        let trace = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.spanID == "00f067aa0ba902b7")
        #expect(trace.sampled)
        #expect(trace.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        let child = trace.child()
        #expect(child.traceID == trace.traceID && child.spanID != trace.spanID && child.spanID.count == 16)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
        // A later version may add fields after the flags.
        #expect(TraceContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") != nil)
    }

    @Test("anything the W3C format does not allow is refused", arguments: [
        "", "00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
    ])
    func invalidTraceparent(_ value: String) {
        #expect(TraceContext(traceparent: value) == nil, "\(value)")
    }

    @Test("started traces have random non-zero ids of the right lengths")
    func startedTrace() {
        let first = TraceContext.start()
        let second = TraceContext.start()
        #expect(first.traceID.count == 32 && first.spanID.count == 16 && first.traceID != second.traceID)
        #expect(TraceContext(traceparent: first.traceparent) == first)
    }

    @Test("random ids: version 4 UUIDs that Foundation reads back, hex of every length, every byte drawn")
    func randomIDs() throws {
        var seen = Set<String>()
        var digitsSeen = Set<Character>()
        var uuids: [[UInt8]] = []
        for _ in 0..<2_000 {
            let text = RandomID.uuidString()
            let parsed = try #require(UUID(uuidString: text), "\(text)")
            #expect(parsed.uuidString.lowercased() == text)
            let bytes = Array(text.utf8)
            try #require(bytes.count == 36, "\(text)")
            #expect([8, 13, 18, 23].allSatisfy { bytes[$0] == UInt8(ascii: "-") })
            #expect(bytes[14] == UInt8(ascii: "4"), "version: \(text)")
            #expect("89ab".utf8.contains(bytes[19]), "variant: \(text)")
            seen.insert(text)
            digitsSeen.formUnion(text.filter { $0 != "-" })
            uuids.append(Array(text.utf8.filter { $0 != UInt8(ascii: "-") }))
        }
        #expect(seen.count == 2_000)
        #expect(digitsSeen == Set("0123456789abcdef"))
        // Every digit but the version's varies, and the two 64-bit halves are drawn apart.
        for position in 0..<32 where position != 12 {
            #expect(Set(uuids.prefix(64).map { $0[position] }).count > 1, "UUID digit \(position)")
        }
        #expect(uuids.allSatisfy { $0[1..<12] != $0[17..<28] })
        #expect(Hex.lowercase([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff" && Hex.lowercase([UInt8]()).isEmpty)
        for count in [0, 1, 7, 8, 9, 16, 24] {
            let hex = RandomID.hex(bytes: count)
            #expect(hex.count == 2 * count && hex.allSatisfy { "0123456789abcdef".contains($0) }, "\(hex)")
        }
        // Every byte of a multi-word id is drawn: no position stays fixed, and no 8-byte word repeats another.
        let draws = (0..<64).map { _ in Array(RandomID.hex(bytes: 24).utf8) }
        for position in 0..<48 { #expect(Set(draws.map { $0[position] }).count > 1, "position \(position)") }
        #expect(draws.allSatisfy { $0[0..<16] != $0[16..<32] && $0[16..<32] != $0[32..<48] && $0[0..<16] != $0[32..<48] })
    }

    @Test("a log line is one JSON object: fixed fields first, then the metadata, escaped")
    func logLine() throws {
        let date = Date(timeIntervalSince1970: 1_764_459_461.123)
        let line = JSONLogHandler.line(
            time: date, level: .warning, service: "chat-api", logger: "chat-api.events", message: "a \"quoted\"\nline",
            metadata: ["requestId": "r1", "count": .stringConvertible(3), "nested": .dictionary(["b": "2", "a": .array(["x"])]), "message": "ignored"]
        )
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2025-11-29T23:37:41.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["service"] as? String == "chat-api")
        #expect(object["logger"] as? String == "chat-api.events")
        #expect(object["message"] as? String == "a \"quoted\"\nline")
        #expect(object["requestId"] as? String == "r1")
        #expect(object["count"] as? String == "3")
        #expect((object["nested"] as? [String: Any])?["b"] as? String == "2")
        #expect(line.hasPrefix(#"{"time":"2025-11-29T23:37:41.123Z","level":"warning","service":"chat-api""#))
    }
}
