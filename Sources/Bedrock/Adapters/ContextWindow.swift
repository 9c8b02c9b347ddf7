import ChatCore

/// Trimming a conversation to a model's context window before it is sent.
public enum ContextWindow {
    /// Tokens assumed per turn beyond its text: role markers and template tokens.
    public static let tokensPerTurn = 8

    /// Tokens assumed for the request as a whole: the template's opening and the reply's header.
    public static let tokensPerRequest = 16

    /// A deliberately high token estimate for `text`: its UTF-8 byte count divided by 3, rounded up
    /// (English runs about 4 characters a token; counting bytes also covers scripts with several bytes a character).
    public static func estimatedTokens(_ text: String) -> Int {
        (text.utf8.count + 2) / 3
    }

    /// The estimated prompt tokens of `request`: system prompt and turns, each turn plus `tokensPerTurn`,
    /// plus `tokensPerRequest`.
    public static func estimatedPromptTokens(_ request: GenerationRequest) -> Int {
        tokensPerRequest + (request.system.map(estimatedTokens) ?? 0)
            + request.turns.reduce(0) { $0 + tokensPerTurn + estimatedTokens($1.text) }
    }

    /// `request` cut so that its estimated prompt plus `maxTokens` fits `contextWindow`: the oldest turns are
    /// dropped first; the last user turn (and anything after it) is always kept, and if it alone is too long
    /// its text is cut from the start, keeping its end. When the system prompt and `maxTokens` leave no room
    /// at all, the last user turn is kept whole and the service is left to reject the request.
    public static func fit(_ request: GenerationRequest, contextWindow: Int) -> GenerationRequest {
        let budget = contextWindow - request.maxTokens - tokensPerRequest - (request.system.map(estimatedTokens) ?? 0)
        guard !request.turns.isEmpty, estimatedPromptTokens(request) > contextWindow - request.maxTokens else { return request }
        let keptFrom = request.turns.lastIndex { $0.role == .user } ?? request.turns.endIndex - 1
        var tail = Array(request.turns[keptFrom...])
        var used = tail.reduce(0) { $0 + tokensPerTurn + estimatedTokens($1.text) }

        if used > budget, let first = tail.first {
            let room = budget - (used - estimatedTokens(first.text))
            if room > 0 {
                tail[0].text = suffix(of: first.text, fittingTokens: room)
                used = used - estimatedTokens(first.text) + estimatedTokens(tail[0].text)
            }
        }

        var start = keptFrom
        while start > request.turns.startIndex {
            let cost = tokensPerTurn + estimatedTokens(request.turns[start - 1].text)
            guard used + cost <= budget else { break }
            used += cost
            start -= 1
        }

        var fitted = request
        fitted.turns = Array(request.turns[start..<keptFrom]) + tail
        return fitted
    }

    /// The longest end of `text`, in whole characters, whose estimate is at most `tokens`.
    private static func suffix(of text: String, fittingTokens tokens: Int) -> String {
        let byteLimit = tokens * 3
        var bytes = 0
        var start = text.endIndex
        while start > text.startIndex {
            let previous = text.index(before: start)
            let size = text[previous..<start].utf8.count
            guard bytes + size <= byteLimit else { break }
            bytes += size
            start = previous
        }
        return String(text[start...])
    }
}
