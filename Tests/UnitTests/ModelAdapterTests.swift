@testable import Bedrock
import ChatCore
import Foundation
import Testing

@Suite("Model family adapters")
struct ModelAdapterTests {
    static let metrics = #""amazon-bedrock-invocationMetrics":{"inputTokenCount":31,"outputTokenCount":7,"invocationLatency":812,"firstByteLatency":304}"#

    /// A system prompt and four turns, two of them (the middle user turns) of the same role.
    let conversation = GenerationRequest(
        system: "You are terse.",
        turns: [
            ConversationTurn(role: .user, text: "Hi"),
            ConversationTurn(role: .assistant, text: "Hello."),
            ConversationTurn(role: .user, text: "Name a colour."),
        ],
        maxTokens: 300, temperature: 0.5, topP: 0.9, stopSequences: ["END"]
    )

    func body(_ adapter: any ModelAdapter, _ request: GenerationRequest) throws -> JSONValue {
        try JSONValue(adapter.requestBody(for: request))
    }

    // MARK: Anthropic Claude

    @Test("Claude: the Messages API body with system prompt and parameters")
    func claudeRequest() throws {
        let expected = try JSONValue(#"""
            {"anthropic_version":"bedrock-2023-05-31","max_tokens":300,"system":"You are terse.",
             "temperature":0.5,"top_p":0.9,"stop_sequences":["END"],
             "messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]},
                         {"role":"assistant","content":[{"type":"text","text":"Hello."}]},
                         {"role":"user","content":[{"type":"text","text":"Name a colour."}]}]}
            """#)
        #expect(try body(ClaudeAdapter(), conversation) == expected)
    }

    @Test("Claude: absent optionals are left out")
    func claudeOmitsOptionals() throws {
        let request = GenerationRequest(turns: [ConversationTurn(role: .user, text: "Hi")], maxTokens: 10)
        let expected = try JSONValue(#"""
            {"anthropic_version":"bedrock-2023-05-31","max_tokens":10,
             "messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}
            """#)
        #expect(try body(ClaudeAdapter(), request) == expected)
    }

    /// The body `JSONEncoder` gave (sorted keys, slashes unescaped) before Claude's was written by hand.
    private struct EncodedClaudeBody: Encodable {
        struct Block: Encodable { var type = "text", text: String }
        struct Message: Encodable { var role: String, content: [Block] }
        var anthropic_version = "bedrock-2023-05-31"
        var max_tokens: Int
        var messages: [Message]
        var system: String?
        var temperature: Double?
        var top_p: Double?
        var stop_sequences: [String]?
    }

    @Test("Claude: the hand-written body is byte for byte what JSONEncoder wrote", arguments: [
        GenerationRequest(
            system: "sys \"q\" / \u{1}", turns: [ConversationTurn(role: .user, text: "He said \"hi\" \\ </s> 🎉 é\u{0}\n\t\r\u{8}\u{c}\u{1f}")],
            maxTokens: 20, temperature: 0.25, topP: 1, stopSequences: ["\"\n", "END"]
        ),
        GenerationRequest(turns: [ConversationTurn(role: .user, text: "Hi"), ConversationTurn(role: .assistant, text: "Yo"), ConversationTurn(role: .user, text: "")], maxTokens: 4096),
        GenerationRequest(turns: [ConversationTurn(role: .user, text: "x")], maxTokens: 1, temperature: -0.0, topP: 1e16),
    ])
    func claudeBodyBytes(request: GenerationRequest) throws {
        let expected = try AdapterJSON.encode(
            EncodedClaudeBody(
                max_tokens: request.maxTokens,
                messages: ModelAdapters.alternatingTurns(of: request).map { .init(role: $0.role.rawValue, content: [.init(text: $0.text)]) },
                system: ModelAdapters.systemPrompt(of: request), temperature: request.temperature, top_p: request.topP,
                stop_sequences: ModelAdapters.stopSequences(of: request)
            )
        )
        #expect(String(decoding: try ClaudeAdapter().requestBody(for: request), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
    }

    @Test("Claude and Nova: same-role turns merge and leading assistant turns are dropped")
    func mergesTurns() throws {
        let request = GenerationRequest(
            turns: [
                ConversationTurn(role: .assistant, text: "Welcome!"),
                ConversationTurn(role: .user, text: "one"),
                ConversationTurn(role: .user, text: "two"),
                ConversationTurn(role: .assistant, text: "ok"),
                ConversationTurn(role: .assistant, text: "and"),
                ConversationTurn(role: .user, text: "three"),
            ],
            maxTokens: 10
        )
        let claude = try body(ClaudeAdapter(), request)["messages"]
        #expect(claude == (try JSONValue(#"""
            [{"role":"user","content":[{"type":"text","text":"one\n\ntwo"}]},
             {"role":"assistant","content":[{"type":"text","text":"ok\n\nand"}]},
             {"role":"user","content":[{"type":"text","text":"three"}]}]
            """#)))
        let nova = try body(NovaAdapter(), request)["messages"]
        #expect(nova == (try JSONValue(#"""
            [{"role":"user","content":[{"text":"one\n\ntwo"}]},
             {"role":"assistant","content":[{"text":"ok\n\nand"}]},
             {"role":"user","content":[{"text":"three"}]}]
            """#)))
    }

    @Test("Claude: a response yields joined text, stop reason and usage")
    func claudeResponse() throws {
        let response = #"""
            {"id":"msg_bdrk_01Xq","type":"message","role":"assistant","model":"claude-3-haiku-20240307",
             "content":[{"type":"text","text":"Teal."},{"type":"text","text":" Or \"blue\"\n🎨"}],
             "stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":9}}
            """#
        let completion = try ClaudeAdapter().parseResponse(Data(response.utf8))
        #expect(completion == Completion(text: "Teal. Or \"blue\"\n🎨", stopReason: .maxTokens, usage: TokenUsage(inputTokens: 21, outputTokens: 9)))
    }

    @Test("Claude: a stream accumulates text, stop reason, usage and metrics")
    func claudeStream() throws {
        let chunks = [
            #"{"type":"message_start","message":{"id":"msg_bdrk_01Xq","type":"message","role":"assistant","model":"claude-3-haiku-20240307","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":31,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Teal"}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", mostly."}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":7}}"#,
            #"{"type":"message_stop",\#(Self.metrics)}"#,
        ]
        let totals = try StreamTotals(ClaudeAdapter(), chunks: chunks)
        #expect(totals == StreamTotals(
            text: "Teal, mostly.", stopReason: .stopSequence, usage: TokenUsage(inputTokens: 31, outputTokens: 7),
            invocationMetrics: TokenUsage(inputTokens: 31, outputTokens: 7)
        ))
    }

    @Test("Claude: text deltas read without the decoder say exactly what the decoder says; other shapes go to the decoder")
    func claudeTextDeltaFastPath() throws {
        struct Delta: Decodable { var delta: Inner; struct Inner: Decodable { var text: String } }
        let texts = ["Teal", "", " a/b ", "quote \" back \\ slash", "line\nbreak\ttab\r\u{8}\u{c}", "é 中文 😀👩‍👩‍👧", "\u{1}\u{1f}\u{7f}", "}}\"}}"]
        for text in texts {
            // As Bedrock writes it (`/` unescaped), and with every escape JSONSerialization uses (`\/`, `\u00XX`).
            let plain = String(decoding: try JSONEncoder().encode(text), as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
            let escaped = String(decoding: try JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
            for literal in [plain, escaped] {
                let body = Data((#"{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"# + literal + "}}").utf8)
                let decoded = try JSONDecoder().decode(Delta.self, from: body).delta.text
                #expect(decoded == text)
                #expect(try ClaudeAdapter().parseChunk(body).text == text)
                if let fast = ClaudeAdapter.plainTextDelta(body) { #expect(fast == text) }
            }
            if !text.unicodeScalars.contains(where: { $0.value < 0x20 && !"\n\r\t\u{8}\u{c}".unicodeScalars.contains($0) }) {
                let body = Data((#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"# + plain + "}}").utf8)
                #expect(ClaudeAdapter.plainTextDelta(body) == text, "the common case takes the fast path: \(plain)")
            }
        }
        for other in [
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"extra":1}"#,
            #"{"type": "content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#,
            #"{"type":"content_block_delta","index":,"delta":{"type":"text_delta","text":"a"}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u0041"}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"a"}}"#,
        ] {
            #expect(ClaudeAdapter.plainTextDelta(Data(other.utf8)) == nil, "\(other)")
        }
        #expect(ClaudeAdapter.plainTextDelta(Data(#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""#.utf8) + [0xFF] + Data(#""}}"#.utf8)) == nil)
    }

    // MARK: Amazon Nova

    @Test("Nova: the messages-v1 body with system prompt and inference config")
    func novaRequest() throws {
        let expected = try JSONValue(#"""
            {"schemaVersion":"messages-v1","system":[{"text":"You are terse."}],
             "messages":[{"role":"user","content":[{"text":"Hi"}]},{"role":"assistant","content":[{"text":"Hello."}]},
                         {"role":"user","content":[{"text":"Name a colour."}]}],
             "inferenceConfig":{"maxTokens":300,"temperature":0.5,"topP":0.9,"stopSequences":["END"]}}
            """#)
        #expect(try body(NovaAdapter(), conversation) == expected)
    }

    @Test("Nova and Converse: the hand-written body is byte for byte what JSONEncoder wrote", arguments: [
        GenerationRequest(
            system: "sys \"q\" / \u{1}", turns: [ConversationTurn(role: .user, text: "He said \"hi\" \\ </s> 🎉 é\u{0}\n\t\r\u{8}\u{c}\u{1f}")],
            maxTokens: 20, temperature: 0.25, topP: 1, stopSequences: ["\"\n", "END"]
        ),
        GenerationRequest(turns: [ConversationTurn(role: .user, text: "Hi"), ConversationTurn(role: .assistant, text: "Yo"), ConversationTurn(role: .user, text: "")], maxTokens: 4096),
        GenerationRequest(system: "", turns: [ConversationTurn(role: .user, text: "x")], maxTokens: 1, temperature: 1e-7, topP: 0.999, stopSequences: []),
        GenerationRequest(turns: [ConversationTurn(role: .user, text: "x")], maxTokens: 1, temperature: -0.0, topP: 1e16),
    ])
    func novaBodyBytes(request: GenerationRequest) throws {
        for adapter in [NovaAdapter(), NovaAdapter(family: .anthropicClaude, schemaVersion: nil)] {
            let written = String(decoding: try adapter.requestBody(for: request), as: UTF8.self)
            #expect(written == String(decoding: try adapter.encodedRequestBody(for: request), as: UTF8.self))
        }
    }

    @Test("Nova and Converse: text deltas read without the decoder say exactly what the decoder says; other shapes go to the decoder")
    func novaFastDeltas() throws {
        let texts = ["Teal", "", " a/b ", "quote \" back \\ slash", "line\nbreak\ttab\r\u{8}\u{c}", "é 中文 😀👩‍👩‍👧", "}}\"}}"]
        let adapter = ConverseAdapter(family: .anthropicClaude)
        for text in texts {
            let literal = String(decoding: try JSONEncoder().encode(text), as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
            // As the emulator writes it, as Bedrock's ConverseStream writes it (index first, padding last), and as Nova's InvokeModel stream.
            for payload in [
                #"{"delta":{"text":"# + literal + #"},"contentBlockIndex":0}"#,
                #"{"contentBlockIndex":0,"delta":{"text":"# + literal + #"},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}"#,
                #"{"contentBlockIndex":12,"delta":{"text":"# + literal + "}}",
            ] {
                let body = Data((#"{"contentBlockDelta":"# + payload + "}").utf8)
                #expect(NovaAdapter.plainTextDelta(body) == text, "the common case takes the fast path: \(payload)")
                #expect(try adapter.parseChunk(body).text == text)
                #expect(try NovaAdapter().parseChunk(body).text == text)
            }
        }
        for other in [
            #"{"contentBlockDelta":{"delta":{"toolUse":{"input":"{}"}},"contentBlockIndex":0}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"a"},"contentBlockIndex":0,"extra":{"x":1}}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"a"},"delta":{"text":"b"}}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"a"},"contentBlockIndex":0}}x"#,
            #"{"contentBlockDelta":{"delta": {"text":"a"},"contentBlockIndex":0}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"\u0041"},"contentBlockIndex":0}}"#,
            #"{"contentBlockDelta":{"contentBlockIndex":0}}"#,
            #"{"contentBlockDelta":{"contentBlockIndex":-1,"delta":{"text":"a"}}}"#,
            #"{"messageStop":{"stopReason":"end_turn"}}"#,
            #"{"metadata":{"usage":{"inputTokens":3,"outputTokens":4}}}"#,
        ] {
            #expect(NovaAdapter.plainTextDelta(Data(other.utf8)) == nil, "\(other)")
        }
        #expect(NovaAdapter.plainTextDelta(Data(#"{"contentBlockDelta":{"delta":{"text":""#.utf8) + [0xFF] + Data(#""},"contentBlockIndex":0}}"#.utf8)) == nil)
        // The decoder still reads what the fast path leaves to it.
        #expect(try adapter.parseChunk(Data(#"{"contentBlockDelta":{"delta":{"text":"\u0041"},"contentBlockIndex":0}}"#.utf8)).text == "A")
    }

    @Test("Nova: a response yields text, stop reason and usage")
    func novaResponse() throws {
        let response = #"""
            {"output":{"message":{"role":"assistant","content":[{"text":"Crimson."}]}},"stopReason":"content_filtered",
             "usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15,"cacheReadInputTokenCount":0}}
            """#
        let completion = try NovaAdapter().parseResponse(Data(response.utf8))
        #expect(completion == Completion(text: "Crimson.", stopReason: .contentFiltered, usage: TokenUsage(inputTokens: 12, outputTokens: 3)))
    }

    @Test("Nova: a stream accumulates text, stop reason, usage and metrics")
    func novaStream() throws {
        let chunks = [
            #"{"messageStart":{"role":"assistant"}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"Crim"},"contentBlockIndex":0}}"#,
            #"{"contentBlockDelta":{"delta":{"text":"son."},"contentBlockIndex":0}}"#,
            #"{"contentBlockStop":{"contentBlockIndex":0}}"#,
            #"{"messageStop":{"stopReason":"max_tokens"}}"#,
            #"{"metadata":{"usage":{"inputTokens":31,"outputTokens":7},"metrics":{},"trace":{}},\#(Self.metrics)}"#,
        ]
        let totals = try StreamTotals(NovaAdapter(), chunks: chunks)
        #expect(totals == StreamTotals(
            text: "Crimson.", stopReason: .maxTokens, usage: TokenUsage(inputTokens: 31, outputTokens: 7),
            invocationMetrics: TokenUsage(inputTokens: 31, outputTokens: 7)
        ))
    }

    // MARK: Amazon Titan Text

    @Test("Titan: the conversation rendered as User/Bot lines after the system prompt")
    func titanRequest() throws {
        let expected = try JSONValue(#"""
            {"inputText":"You are terse.\n\nUser: Hi\nBot: Hello.\nUser: Name a colour.\nBot:",
             "textGenerationConfig":{"maxTokenCount":300,"temperature":0.5,"topP":0.9,"stopSequences":["END"]}}
            """#)
        #expect(try body(TitanTextAdapter(), conversation) == expected)
    }

    @Test("Titan: a response yields text, completion reason and counts", arguments: [
        ("FINISH", StopReason.endTurn), ("LENGTH", .maxTokens), ("STOP_CRITERIA_MET", .stopSequence), ("CONTENT_FILTERED", .contentFiltered),
    ])
    func titanResponse(reason: String, expected: StopReason) throws {
        let response = #"{"inputTextTokenCount":18,"results":[{"tokenCount":4,"outputText":" Ochre.","completionReason":"\#(reason)"}]}"#
        let completion = try TitanTextAdapter().parseResponse(Data(response.utf8))
        #expect(completion == Completion(text: " Ochre.", stopReason: expected, usage: TokenUsage(inputTokens: 18, outputTokens: 4)))
    }

    @Test("Titan: a stream accumulates text, stop reason, usage and metrics")
    func titanStream() throws {
        let chunks = [
            #"{"outputText":" Och","index":0,"totalOutputTextTokenCount":null,"completionReason":null,"inputTextTokenCount":31}"#,
            #"{"outputText":"re.","index":0,"totalOutputTextTokenCount":7,"completionReason":"FINISH","inputTextTokenCount":null,\#(Self.metrics)}"#,
        ]
        let totals = try StreamTotals(TitanTextAdapter(), chunks: chunks)
        #expect(totals == StreamTotals(
            text: " Ochre.", stopReason: .endTurn, usage: TokenUsage(inputTokens: 31, outputTokens: 7),
            invocationMetrics: TokenUsage(inputTokens: 31, outputTokens: 7)
        ))
    }

    // MARK: Meta Llama 3

    @Test("Llama 3: the chat template exactly, and the body around it")
    func llamaRequest() throws {
        let prompt = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        #expect(Llama3Adapter.prompt(for: conversation) == prompt)
        let expected = JSONValue.object([
            "prompt": .string(prompt), "max_gen_len": .number(300), "temperature": .number(0.5), "top_p": .number(0.9),
        ])
        #expect(try body(Llama3Adapter(), conversation) == expected)
    }

    @Test("Llama 3: a response yields generation, stop reason and counts")
    func llamaResponse() throws {
        let response = #"{"generation":"Amber.","prompt_token_count":40,"generation_token_count":3,"stop_reason":"length"}"#
        let completion = try Llama3Adapter().parseResponse(Data(response.utf8))
        #expect(completion == Completion(text: "Amber.", stopReason: .maxTokens, usage: TokenUsage(inputTokens: 40, outputTokens: 3)))
    }

    @Test("Llama 3: stream counts are taken as reported (first prompt count, running generation count), not summed")
    func llamaStream() throws {
        let chunks = [
            #"{"generation":"Am","prompt_token_count":31,"generation_token_count":1,"stop_reason":null}"#,
            #"{"generation":"ber","prompt_token_count":null,"generation_token_count":2,"stop_reason":null}"#,
            #"{"generation":", say.","prompt_token_count":null,"generation_token_count":6,"stop_reason":null}"#,
            #"{"generation":"","prompt_token_count":null,"generation_token_count":7,"stop_reason":"stop",\#(Self.metrics)}"#,
        ]
        let totals = try StreamTotals(Llama3Adapter(), chunks: chunks)
        #expect(totals == StreamTotals(
            text: "Amber, say.", stopReason: .endTurn, usage: TokenUsage(inputTokens: 31, outputTokens: 7),
            invocationMetrics: TokenUsage(inputTokens: 31, outputTokens: 7)
        ))
    }

    // MARK: Mistral

    @Test("Mistral: the [INST] layout exactly, system prompt joined to the first user turn")
    func mistralRequest() throws {
        let prompt = "<s>[INST] You are terse.\n\nHi [/INST] Hello.</s>[INST] Name a colour. [/INST]"
        #expect(MistralAdapter.prompt(for: conversation) == prompt)
        let expected = JSONValue.object([
            "prompt": .string(prompt), "max_tokens": .number(300), "stop": .array([.string("END")]),
            "temperature": .number(0.5), "top_p": .number(0.9),
        ])
        #expect(try body(MistralAdapter(), conversation) == expected)
        let single = GenerationRequest(turns: [ConversationTurn(role: .user, text: "Hi")], maxTokens: 5)
        #expect(MistralAdapter.prompt(for: single) == "<s>[INST] Hi [/INST]")
    }

    @Test("Mistral: a response yields text and stop reason, and no usage")
    func mistralResponse() throws {
        let response = #"{"outputs":[{"text":" Indigo.","stop_reason":"stop"}]}"#
        let completion = try MistralAdapter().parseResponse(Data(response.utf8))
        #expect(completion == Completion(text: " Indigo.", stopReason: .endTurn, usage: nil))
    }

    @Test("Mistral: a stream's counts come only from the invocation metrics")
    func mistralStream() throws {
        let chunks = [
            #"{"outputs":[{"text":" Ind","stop_reason":null}]}"#,
            #"{"outputs":[{"text":"igo","stop_reason":null}]}"#,
            #"{"outputs":[{"text":".","stop_reason":"length"}],\#(Self.metrics)}"#,
        ]
        let totals = try StreamTotals(MistralAdapter(), chunks: chunks)
        #expect(totals == StreamTotals(text: " Indigo.", stopReason: .maxTokens, usage: nil, invocationMetrics: TokenUsage(inputTokens: 31, outputTokens: 7)))
    }

    // MARK: All families

    static let families: [ModelFamily] = [.anthropicClaude, .amazonNova, .amazonTitan, .metaLlama3, .mistral]

    @Test("quotes, backslashes, newlines, tags and emoji reach the body intact", arguments: families)
    func specialCharacters(family: ModelFamily) throws {
        let tricky = "He said \"hi\" \\ {\"json\": [1]}\n\t</s>[INST] 🎉👩‍💻 é\u{0}"
        let request = GenerationRequest(
            system: "sys \"q\"", turns: [ConversationTurn(role: .user, text: tricky)], maxTokens: 20, stopSequences: ["\"\n"]
        )
        let strings = try body(ModelAdapters.adapter(for: family), request).allStrings
        #expect(strings.contains { $0.contains(tricky) })
        #expect(strings.contains { $0.contains("sys \"q\"") })
    }

    @Test("invocation metrics are read from any chunk that carries them", arguments: [
        (ModelFamily.anthropicClaude, #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"#),
        (.amazonNova, #"{"contentBlockDelta":{"delta":{"text":"x"},"contentBlockIndex":0},"#),
        (.amazonTitan, #"{"outputText":"x","index":0,"totalOutputTextTokenCount":null,"completionReason":null,"#),
        (.metaLlama3, #"{"generation":"x","prompt_token_count":null,"generation_token_count":3,"stop_reason":null,"#),
        (.mistral, #"{"outputs":[{"text":"x","stop_reason":null}],"#),
    ])
    func metricsAnywhere(family: ModelFamily, chunkStart: String) throws {
        let delta = try ModelAdapters.adapter(for: family).parseChunk(Data((chunkStart + Self.metrics + "}").utf8))
        #expect(delta.text == "x")
        #expect(delta.invocationMetrics == TokenUsage(inputTokens: 31, outputTokens: 7))
    }

    @Test("bodies that are not JSON or lack required fields throw ModelResponseError", arguments: families)
    func badInput(family: ModelFamily) {
        let adapter = ModelAdapters.adapter(for: family)
        let wrongTypes = #"{"generation":5,"outputs":7,"results":"x","output":[],"content":{},"type":3}"#
        for bad in ["not json", "{}", "[1,2]", "null", wrongTypes] {
            let responseError = #expect(throws: ModelResponseError.self) { try adapter.parseResponse(Data(bad.utf8)) }
            #expect(responseError?.family == family)
        }
        for bad in ["not json", "{}", "[1,2]", "null", ""] {
            let chunkError = #expect(throws: ModelResponseError.self) { try adapter.parseChunk(Data(bad.utf8)) }
            #expect(chunkError?.family == family)
        }
    }

    @Test("the lookup gives each family its adapter")
    func lookup() throws {
        for family in Self.families {
            #expect(ModelAdapters.adapter(for: family).family == family)
        }
    }

    // MARK: Context window

    func turns(_ count: Int, length: Int) -> [ConversationTurn] {
        (0..<count).map { ConversationTurn(role: $0.isMultiple(of: 2) ? .user : .assistant, text: "\($0):" + String(repeating: "a", count: length)) }
    }

    @Test("a conversation that fits is left alone")
    func fitKeepsSmall() {
        let request = GenerationRequest(system: "s", turns: turns(5, length: 30), maxTokens: 100)
        #expect(ContextWindow.fit(request, contextWindow: 1_000) == request)
    }

    @Test("the oldest turns go first; the newest turns and the last user turn stay, within the budget")
    func fitDropsOldest() {
        let request = GenerationRequest(system: "be brief", turns: turns(21, length: 297), maxTokens: 500)
        let fitted = ContextWindow.fit(request, contextWindow: 2_000)
        #expect(fitted.turns.count < request.turns.count)
        #expect(fitted.turns.count >= 2)
        #expect(Array(request.turns.suffix(fitted.turns.count)) == fitted.turns)
        #expect(fitted.turns.last == request.turns.last)
        #expect(ContextWindow.estimatedPromptTokens(fitted) + fitted.maxTokens <= 2_000)
        #expect(fitted.system == request.system && fitted.maxTokens == request.maxTokens)
    }

    @Test("a last user turn too long on its own is cut from the start, keeping its end")
    func fitTruncatesLastTurn() {
        let long = "START " + String(repeating: "words ", count: 2_000) + "the actual question?"
        let request = GenerationRequest(turns: turns(4, length: 50) + [ConversationTurn(role: .user, text: long)], maxTokens: 200)
        let fitted = ContextWindow.fit(request, contextWindow: 1_000)
        #expect(fitted.turns.count == 1)
        let text = fitted.turns[0].text
        #expect(text.hasSuffix("the actual question?"))
        #expect(!text.hasPrefix("START"))
        #expect(long.hasSuffix(text))
        #expect(ContextWindow.estimatedPromptTokens(fitted) + fitted.maxTokens <= 1_000)
        #expect(ContextWindow.estimatedPromptTokens(fitted) + fitted.maxTokens > 1_000 - 10)
    }

    @Test("the token estimate is conservative: UTF-8 bytes over three, rounded up")
    func estimate() {
        #expect(ContextWindow.estimatedTokens("") == 0)
        #expect(ContextWindow.estimatedTokens("abcd") == 2)
        #expect(ContextWindow.estimatedTokens("🎉") == 2)
    }
}

// MARK: - Test support

extension ModelAdapterTests {
    /// A parsed JSON value, so bodies are compared as objects rather than as text.
    enum JSONValue: Equatable, Decodable {
        case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Double.self) { self = .number(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
            else { self = .object(try container.decode([String: JSONValue].self)) }
        }

        init(_ data: Data) throws { self = try JSONDecoder().decode(JSONValue.self, from: data) }
        init(_ text: String) throws { try self.init(Data(text.utf8)) }

        subscript(key: String) -> JSONValue? {
            if case .object(let members) = self { members[key] } else { nil }
        }

        var string: String? {
            if case .string(let value) = self { value } else { nil }
        }

        /// Every string anywhere inside this value.
        var allStrings: [String] {
            switch self {
            case .string(let value): [value]
            case .array(let values): values.flatMap(\.allStrings)
            case .object(let members): members.values.flatMap(\.allStrings)
            default: []
            }
        }
    }

    /// What a stream client makes of a sequence of chunks: text appended, the last stop reason, the latest counts.
    struct StreamTotals: Equatable {
        var text = ""
        var stopReason: StopReason?
        var usage: TokenUsage?
        var invocationMetrics: TokenUsage?

        init(text: String = "", stopReason: StopReason? = nil, usage: TokenUsage? = nil, invocationMetrics: TokenUsage? = nil) {
            (self.text, self.stopReason, self.usage, self.invocationMetrics) = (text, stopReason, usage, invocationMetrics)
        }

        init(_ adapter: any ModelAdapter, chunks: [String]) throws {
            for chunk in chunks {
                let delta = try adapter.parseChunk(Data(chunk.utf8))
                text += delta.text
                stopReason = delta.stopReason ?? stopReason
                if let counts = delta.usage { usage = (usage ?? TokenUsage(inputTokens: nil, outputTokens: nil)).merged(with: counts) }
                invocationMetrics = delta.invocationMetrics ?? invocationMetrics
            }
        }
    }

    @Test("blank turns (a reply a stop sequence cut to nothing) are never sent: Bedrock refuses a blank text block")
    func blankTurnsDropped() {
        let request = GenerationRequest(turns: [
            ConversationTurn(role: .user, text: "first"), ConversationTurn(role: .assistant, text: " "),
            ConversationTurn(role: .user, text: "second"),
        ], maxTokens: 10)
        let turns = ModelAdapters.alternatingTurns(of: request)
        #expect(turns.map(\.role) == [.user])
        #expect(turns.first?.text == "first\n\nsecond")
    }
}
