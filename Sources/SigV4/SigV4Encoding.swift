extension SigV4CanonicalRequest {
    /// The text with every UTF-8 byte outside RFC 3986's unreserved set written as `%XX` (upper-case hex).
    ///
    /// With `keepingSlashes`, `/` is left alone too, which is how a path is encoded segment by segment.
    package static func uriEncode(_ text: String, keepingSlashes: Bool = false) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepingSlashes && byte == UInt8(ascii: "/")) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(upperHexDigits[Int(byte >> 4)])
                output.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

private let upperHexDigits = Array("0123456789ABCDEF".utf8)
private let lowerHexDigits = Array("0123456789abcdef".utf8)

extension Sequence<UInt8> {
    /// The bytes as lower-case hex, two digits each, as SigV4 writes hashes and signatures.
    var hexEncoded: String {
        var output: [UInt8] = []
        for byte in self {
            output.append(lowerHexDigits[Int(byte >> 4)])
            output.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}
