import Testing

@testable import BedrockEmulator

@Suite("The emulator's JSON parser")
struct EmulatorJSONParserTests {
    func parse(_ text: String) -> JSONValue? { JSONParser.parse(Array(text.utf8)) }

    @Test("a request body reads into the tree with its members in order, integers apart from other numbers")
    func document() throws {
        let body = #"""
             { "anthropic_version" : "bedrock-2023-05-31", "max_tokens": 512, "temperature": 0.5, "top_k": -3, "big": 1e3,
            "messages": [ {"role": "user", "content": [ {"type": "text", "text": "Hi \"there\"\n\tA\u00e9\ud83d\ude00 \/ end"} ]} ],
            "stop": [], "meta": {}, "flag": true, "off": false, "none": null, "huge": 100000000000000000000000 }
            """#
        let value = try #require(parse(body))
        #expect(
            value.serialized == #"""
                {"anthropic_version":"bedrock-2023-05-31","max_tokens":512,"temperature":0.5,"top_k":-3,"big":1000.0,"messages":[{"role":"user","content":[{"type":"text","text":"Hi \"there\"\n\tAé😀 / end"}]}],"stop":[],"meta":{},"flag":true,"off":false,"none":null,"huge":1e+23}
                """#
        )
        guard case .integer(512) = value["max_tokens"] else { Issue.record("max_tokens is not the integer 512"); return }
        guard case .number(0.5) = value["temperature"] else { Issue.record("temperature is not the number 0.5"); return }
        guard case .number = value["big"] else { Issue.record("1e3 should be a number with an exponent, not an integer"); return }
    }

    @Test("a key given twice keeps its first place and takes its last value")
    func duplicateKeys() throws {
        #expect(try #require(parse(#"{"a":1,"b":2,"a":3}"#)).serialized == #"{"a":3,"b":2}"#)
    }

    @Test("anything but exactly one well-formed JSON value is refused", arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e", "+1", "NaN", "tru", "nul",
        "\"open", "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud83d alone\"", "\"\\ud83d\\u0041\"", "1 2", "{} []", "1e400",
        "\"tab\there\"",
    ])
    func refused(_ text: String) {
        #expect(parse(text) == nil, "\(text)")
    }

    @Test("invalid UTF-8 in a string and documents nested past the limit are refused")
    func refusedBytes() {
        #expect(JSONParser.parse([UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")]) == nil)
        #expect(JSONParser.parse([UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\"")]) == nil)
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(parse(deep) == nil)
        let allowed = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect(parse(allowed) != nil)
    }
}
