/// Reads the headers section of one frame: `[name length u8][name][type u8][value]`, repeated.
enum EventStreamHeaderParser {
    /// Beyond this many headers, duplicate names are found with a set instead of a scan.
    private static let linearScanLimit = 16

    /// The headers in `section`, which must be consumed exactly.
    static func parse(_ section: UnsafeRawBufferPointer) -> Result<[EventStreamHeader], EventStreamError> {
        var reader = SectionReader(bytes: section)
        var headers: [EventStreamHeader] = []
        // Bedrock frames carry three headers; one allocation up front instead of three as the array grows.
        headers.reserveCapacity(section.isEmpty ? 0 : 4)
        var seen: Set<String> = []
        while reader.offset < section.count {
            let header: EventStreamHeader
            switch readHeader(&reader) {
            case .success(let value): header = value
            case .failure(let error): return .failure(error)
            }
            let repeated: Bool
            if headers.count < linearScanLimit {
                repeated = headers.contains { $0.name == header.name }
            } else {
                if seen.isEmpty { seen = Set(headers.map(\.name)) }
                repeated = !seen.insert(header.name).inserted
            }
            if repeated {
                return .failure(EventStreamError(.duplicateHeader, "Header \"\(header.name)\" appears twice"))
            }
            headers.append(header)
        }
        return .success(headers)
    }

    private static func readHeader(_ reader: inout SectionReader) -> Result<EventStreamHeader, EventStreamError> {
        guard let nameLength = reader.readByte().map(Int.init), let nameBytes = reader.readBytes(nameLength) else {
            return .failure(truncated("a header name"))
        }
        guard let name = utf8String(nameBytes) else {
            return .failure(EventStreamError(.invalidUTF8, "A header name is not valid UTF-8"))
        }
        guard let type = reader.readByte() else {
            return .failure(truncated("the type of header \"\(name)\""))
        }
        let value: EventStreamHeaderValue?
        switch type {
        case 0: value = .bool(true)
        case 1: value = .bool(false)
        case 2: value = reader.readInteger(UInt8.self).map { .byte(Int8(bitPattern: $0)) }
        case 3: value = reader.readInteger(UInt16.self).map { .short(Int16(bitPattern: $0)) }
        case 4: value = reader.readInteger(UInt32.self).map { .integer(Int32(bitPattern: $0)) }
        case 5: value = reader.readInteger(UInt64.self).map { .long(Int64(bitPattern: $0)) }
        case 6: value = reader.readLengthPrefixed().map { .byteArray(Array($0)) }
        case 7:
            guard let bytes = reader.readLengthPrefixed() else {
                value = nil
                break
            }
            guard let text = utf8String(bytes) else {
                return .failure(EventStreamError(.invalidUTF8, "The value of header \"\(name)\" is not valid UTF-8"))
            }
            value = .string(text)
        case 8: value = reader.readInteger(UInt64.self).map { .timestamp(Int64(bitPattern: $0)) }
        case 9:
            guard let high = reader.readInteger(UInt64.self), let low = reader.readInteger(UInt64.self) else {
                value = nil
                break
            }
            value = .uuid(EventStreamUUID(high: high, low: low))
        default:
            return .failure(EventStreamError(.invalidHeaderType, "Header \"\(name)\" has unknown type \(type)"))
        }
        guard let value else {
            return .failure(truncated("the value of header \"\(name)\""))
        }
        return .success(EventStreamHeader(name: name, value: value))
    }

    /// The bytes as text, or nil if they are not valid UTF-8.
    private static func utf8String(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        // Header names and Bedrock's values are ASCII; the generic validator costs more than the check.
        if !bytes.contains(where: { $0 & 0x80 != 0 }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func truncated(_ what: String) -> EventStreamError {
        EventStreamError(.truncatedHeader, "The headers section ends inside \(what)")
    }
}

/// A cursor over the headers section whose reads fail (nil) rather than run past its end.
private struct SectionReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    mutating func readByte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readBytes(_ count: Int) -> UnsafeBufferPointer<UInt8>? {
        guard count <= bytes.count - offset else { return nil }
        defer { offset += count }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        return slice.assumingMemoryBound(to: UInt8.self)
    }

    mutating func readInteger<Integer: FixedWidthInteger>(_: Integer.Type) -> Integer? {
        let size = MemoryLayout<Integer>.size
        guard size <= bytes.count - offset else { return nil }
        defer { offset += size }
        return Integer(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Integer.self))
    }

    /// A u16 length and then that many bytes.
    mutating func readLengthPrefixed() -> UnsafeBufferPointer<UInt8>? {
        guard let length = readInteger(UInt16.self) else { return nil }
        return readBytes(Int(length))
    }
}
