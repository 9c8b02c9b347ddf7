/// The behaviour a prompt asks of the emulator through `[[name:value]]` markers (see docs/emulator.md).
///
/// Markers are read from the prompt's seed text and stay part of it; an unknown name is ordinary text, a known
/// name with a bad value is refused with a 400 so that a typo in a test does not pass silently.
struct FaultMarkers: Sendable {
    /// A fault answered instead of the reply for the first N identical requests (or every one).
    enum CountedFault: String, Sendable, CaseIterable {
        case throttle
        case notReady = "not-ready"
        case error500

        /// The HTTP error this fault answers with.
        var error: ServiceError {
            switch self {
            case .throttle: .throttling
            case .notReady: .modelNotReady
            case .error500: .internalServer
            }
        }
    }

    /// For each counted fault present: how many identical requests fail, nil meaning all of them.
    var counted: [CountedFault: Int?] = [:]
    /// `[[throttle-model:ID]]`, `[[not-ready-model:ID]]` (the id as the request's path names it, a profile id or
    /// ARN included), `[[throttle-region:R]]`, `[[not-ready-region:R]]` (the region the request is signed for):
    /// every such request fails; others pass. What a model's fallback chain is tested with.
    var targeted: [TargetedFault] = []

    /// A fault for the requests to one model id or one region.
    struct TargetedFault: Sendable, Equatable {
        var fault: CountedFault
        var modelID: String?
        var region: String?

        /// Whether a request to `modelID` signed for `region` fails with it.
        func matches(modelID: String, region: String?) -> Bool {
            (self.modelID.map { $0 == modelID } ?? true) && (self.region.map { $0 == region } ?? true)
        }
    }
    /// `[[exception:K:type]]`: an exception frame after K chunks with text (InvokeModel: the matching HTTP error).
    var exception: (afterTextChunks: Int, type: StreamException)?
    /// `[[stall:S]]`: silence after the first chunk with text.
    var stall: Duration?
    /// `[[slow-first-byte:S]]`: delay before the response head.
    var slowFirstByte: Duration?
    /// `[[tokens:N]]`: the reply length before the max-tokens cut.
    var replyTokens: Int?
    /// `[[tps:N]]`: the pace of this reply; 0 means as fast as possible.
    var tokensPerSecond: Int?

    /// No markers.
    /// `[[echo-settings]]`: the reply is the sampling settings the request carried (`temperature=0.2 topP=0.9
    /// maxTokens=50 stop=END`), so a test can see what reached the model through the whole service.
    var echoSettings = false

    init() {}

    /// The markers in `text`; when a marker repeats, the last one wins.
    init(parsing text: String) throws(ServiceError) {
        var rest = text[...]
        while let open = rest.range(of: "[["), let close = rest[open.upperBound...].range(of: "]]") {
            let marker = rest[open.upperBound..<close.lowerBound]
            rest = rest[close.upperBound...]
            let parts = marker.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            try apply(name: parts[0], arguments: Array(parts.dropFirst()), marker: String(marker))
        }
    }

    private mutating func apply(name: String, arguments: [String], marker: String) throws(ServiceError) {
        func bad(_ expectation: String) -> ServiceError {
            .validation("Emulator marker [[\(marker)]]: \(expectation).")
        }
        func count(_ text: String, in range: ClosedRange<Int>) throws(ServiceError) -> Int {
            guard let number = Int(text), range.contains(number) else {
                throw bad("expected a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func seconds(_ arguments: [String]) throws(ServiceError) -> Duration {
            guard arguments.count == 1, let value = Double(arguments[0]), value >= 0, value <= 3600 else {
                throw bad("expected seconds in 0...3600")
            }
            return .milliseconds(Int((value * 1000).rounded()))
        }

        if let fault = CountedFault(rawValue: name) {
            switch arguments.count {
            case 0: counted[fault] = .some(nil)
            case 1: counted[fault] = .some(try count(arguments[0], in: 0...1_000_000))
            default: throw bad("expected [[\(name)]] or [[\(name):N]]")
            }
            return
        }
        for fault in [CountedFault.throttle, .notReady] {
            if name == fault.rawValue + "-model" || name == fault.rawValue + "-region" {
                let value = arguments.joined(separator: ":")
                guard !value.isEmpty else { throw bad("expected [[\(name):value]]") }
                targeted.append(
                    name.hasSuffix("-model") ? TargetedFault(fault: fault, modelID: value) : TargetedFault(fault: fault, region: value)
                )
                return
            }
        }
        switch name {
        case "exception":
            guard arguments.count == 2 else { throw bad("expected [[exception:K:type]]") }
            guard let type = StreamException(rawValue: arguments[1]) else {
                let known = StreamException.allCases.map(\.rawValue).joined(separator: ", ")
                throw bad("the exception type must be one of \(known)")
            }
            exception = (try count(arguments[0], in: 0...1_000_000), type)
        case "stall":
            stall = try seconds(arguments)
        case "slow-first-byte":
            slowFirstByte = try seconds(arguments)
        case "tokens":
            guard arguments.count == 1 else { throw bad("expected [[tokens:N]]") }
            replyTokens = try count(arguments[0], in: 0...1_000_000)
        case "echo-settings":
            echoSettings = true
        case "tps":
            guard arguments.count == 1 else { throw bad("expected [[tps:N]]") }
            tokensPerSecond = try count(arguments[0], in: 0...1_000_000)
        default:
            break
        }
    }
}

/// Remembers, per fault and exact request body, how many requests a counted fault has failed; in memory only.
actor FaultCounters {
    private var failures: [String: Int] = [:]

    /// Whether this request fails with `fault`: always when `limit` is nil, else while fewer than `limit`
    /// requests with this body (by SHA-256) have failed with it, counting this one.
    func shouldFail(_ fault: FaultMarkers.CountedFault, bodySHA256: String, limit: Int?) -> Bool {
        guard let limit else { return true }
        let key = "\(fault.rawValue):\(bodySHA256)"
        let count = failures[key, default: 0]
        guard count < limit else { return false }
        failures[key] = count + 1
        return true
    }

    /// Forgets every count, so that each `[[throttle:N]]` body fails N times again.
    func reset() {
        failures.removeAll()
    }
}
