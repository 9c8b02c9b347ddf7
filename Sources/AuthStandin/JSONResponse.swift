import Foundation
import Hummingbird

/// JSON responses with sorted keys, compact and with unescaped slashes, so that the guide's
/// `grep -o '"accessToken":"[^"]*'` finds the token.
enum JSONResponse {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// A response with `body` encoded as JSON, plus `headers`.
    static func make(status: HTTPResponse.Status, _ body: some Encodable, headers: HTTPFields = [:]) -> Response {
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
