import ChatCore
import Foundation
import HTTPTypes
import Hummingbird

/// A set of network addresses (`TRUSTED_PROXIES`): single addresses or CIDR ranges, IPv4 or IPv6, comma-separated,
/// e.g. `10.0.0.0/8, 172.16.0.0/12, ::1`.
struct TrustedProxies: Sendable, Equatable {
    /// One range: the address's 16 bytes (IPv4 as IPv4-mapped IPv6) and the prefix length over them.
    struct Range: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            var remaining = prefix
            for index in 0..<16 where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if bytes[index] & mask != address[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    var ranges: [Range]

    /// The ranges of `text`; throws a `ConfigurationError` naming the entry that is not an address or range.
    init(parsing text: String, setting: String = "TRUSTED_PROXIES") throws {
        ranges = try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { entry in
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = Self.address(parts[0]) else {
                throw ConfigurationError("\(setting): \(entry) is not an IP address or CIDR range")
            }
            let isV4 = !parts[0].contains(":")
            let width = isV4 ? 32 : 128
            var prefix = width
            if parts.count == 2 {
                guard let value = Int(parts[1]), (0...width).contains(value) else {
                    throw ConfigurationError("\(setting): \(entry) has a prefix length outside 0...\(width)")
                }
                prefix = value
            }
            return Range(bytes: address, prefix: isV4 ? prefix + 96 : prefix)
        }
    }

    /// Whether `address` (text) is one of the trusted ones.
    func contains(_ address: String) -> Bool {
        guard let bytes = Self.address(address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The client of a request that came from `peer` with `forwardedFor` (the `X-Forwarded-For` values, in
    /// order): the peer itself unless it is a trusted proxy; else the nearest address in the chain that is not a
    /// trusted proxy, read from the right (what a client writes to the left of its proxies cannot be trusted).
    /// An entry that is not an address ends the walk at the last good one.
    func client(peer: String?, forwardedFor: [String]) -> String? {
        guard let peer, contains(peer) else { return peer }
        var client = peer
        let chain = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in chain.reversed() {
            guard Self.address(hop) != nil else { break }
            client = hop
            if !contains(hop) { break }
        }
        return client
    }

    /// The 16 bytes of an IPv4 (mapped) or IPv6 address; nil for anything else.
    static func address(_ text: String) -> [UInt8]? {
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + withUnsafeBytes(of: &v4) { Array($0) }
        }
        return nil
    }
}

/// Puts the client's own address in `clientIP` when the request came through a trusted proxy
/// (`X-Forwarded-For`); from anyone else that header is ignored, so a client cannot choose its rate-limit bucket.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let trusted: TrustedProxies

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !trusted.ranges.isEmpty else { return try await next(request, context) }
        var context = context
        context.clientIP = trusted.client(peer: context.clientIP, forwardedFor: request.headers[values: .xForwardedFor])
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`.
    static let xForwardedFor = Self("X-Forwarded-For")!
}
