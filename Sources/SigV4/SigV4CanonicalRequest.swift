import Crypto

/// The canonical form of one HTTP request that a SigV4 signature covers; signer and verifier build it the same way.
package struct SigV4CanonicalRequest: Sendable, Equatable, CustomStringConvertible {
    /// The HTTP method, upper-cased.
    package let method: String
    /// The path with dot segments and duplicate slashes removed, each segment URI-encoded once more.
    package let uri: String
    /// The query items encoded and sorted by name, then value, joined by `&`.
    package let query: String
    /// One `name:value` line per header name, sorted, without the final newline.
    package let headers: String
    /// The lower-cased header names, sorted, joined by `;`.
    package let signedHeaders: String
    /// The hex SHA-256 of the body.
    package let payloadHash: String

    /// The canonical request of a request whose every given header is signed.
    ///
    /// `path` is the path as it goes on the wire (already percent-encoded, no query);
    /// `query` holds decoded names and values; `headers` may repeat a name.
    package init(
        method: String,
        path: String,
        query: [(name: String, value: String)],
        headers: [(name: String, value: String)],
        bodySHA256: String
    ) {
        self.method = method.uppercased()
        uri = Self.canonicalURI(path)
        self.query = Self.canonicalQuery(query)
        (self.headers, signedHeaders) = Self.canonicalHeaders(headers)
        payloadHash = bodySHA256.lowercased()
    }

    /// The text that is hashed into the string to sign.
    package var description: String {
        [method, uri, query, headers + "\n", signedHeaders, payloadHash].joined(separator: "\n")
    }

    /// The hex SHA-256 of the canonical request text.
    package var hashHex: String {
        SHA256.hash(data: Array(description.utf8)).hexEncoded
    }

    /// The canonical URI of a non-S3 service: normalised, then every segment URI-encoded again (`%3A` becomes `%253A`).
    package static func canonicalURI(_ path: String) -> String {
        let normalised = normalisedPath(path)
        return uriEncode(normalised, keepingSlashes: true)
    }

    /// The path with `.` and `..` segments resolved and empty segments dropped; always starts with `/`.
    package static func normalisedPath(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".":
                continue
            case "..":
                _ = segments.popLast()
            default:
                segments.append(segment)
            }
        }
        guard !segments.isEmpty else { return "/" }
        let trailingSlash = path.hasSuffix("/") ? "/" : ""
        return "/" + segments.joined(separator: "/") + trailingSlash
    }

    /// The query items encoded, sorted by encoded name and then encoded value, as `name=value` joined by `&`.
    package static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
        let encoded = items.map { (name: uriEncode($0.name), value: uriEncode($0.value)) }
        let sorted = encoded.sorted { lhs, rhs in
            lhs.name == rhs.name ? precedesBytewise(lhs.value, rhs.value) : precedesBytewise(lhs.name, rhs.name)
        }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// The canonical header lines and the signed-headers list of the given headers.
    ///
    /// Names are lower-cased; values are trimmed with inner runs of white space collapsed to one space;
    /// the values of a repeated name are joined by `,` in the order they came.
    package static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (lines: String, signedHeaders: String) {
        var valuesByName: [String: [String]] = [:]
        for header in headers {
            let name = trimmedCollapsingWhiteSpace(header.name).lowercased()
            valuesByName[name, default: []].append(trimmedCollapsingWhiteSpace(header.value))
        }
        let names = valuesByName.keys.sorted(by: precedesBytewise)
        let lines = names.map { "\($0):\(valuesByName[$0]!.joined(separator: ","))" }
        return (lines.joined(separator: "\n"), names.joined(separator: ";"))
    }

    /// The value without leading or trailing white space, each inner run of white space replaced by one space.
    package static func trimmedCollapsingWhiteSpace(_ value: String) -> String {
        value.utf8.split(whereSeparator: isWhiteSpace).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    private static func isWhiteSpace(_ byte: UInt8) -> Bool {
        // Space, tab, LF, vertical tab, form feed, CR: what botocore's `str.split()` removes in ASCII.
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    private static func precedesBytewise(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}
