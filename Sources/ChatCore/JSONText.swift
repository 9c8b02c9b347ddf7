/// JSON text written by hand where an encoder would cost more than the text itself.
public enum JSONText {
    /// Appends `string` as the inside of a JSON string literal: quotes, backslashes and control characters
    /// escaped (as JSONEncoder does; `/` is left alone), everything else as it is.
    public static func appendEscaped(_ string: String, to text: inout String) {
        var start = string.utf8.startIndex
        let utf8 = string.utf8
        var index = start
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 {
                text += string[start..<index]
                switch byte {
                case UInt8(ascii: "\""): text += "\\\""
                case UInt8(ascii: "\\"): text += "\\\\"
                case 0x0A: text += "\\n"
                case 0x0D: text += "\\r"
                case 0x09: text += "\\t"
                case 0x08: text += "\\b"
                case 0x0C: text += "\\f"
                default:
                    let hex = Array("0123456789abcdef")
                    text += "\\u00"
                    text.append(hex[Int(byte >> 4)])
                    text.append(hex[Int(byte & 0x0f)])
                }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        text += string[start..<utf8.endIndex]
    }

    /// The byte a JSON short escape `\<letter>` stands for (`"`, `\`, `/`, `b`, `f`, `n`, `r`, `t`); nil for `u`
    /// (whose four hex digits the reader decodes itself) and for anything that is not an escape.
    public static func unescaped(_ letter: UInt8) -> UInt8? {
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): letter
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }
}
