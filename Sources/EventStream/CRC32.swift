/// The IEEE 802.3 / zlib CRC-32 (reflected polynomial 0xEDB88320), computed incrementally.
///
/// Event-stream frames carry two of these: one over the prelude and one over the whole message.
/// The checksum is table-driven, sixteen bytes per step ("slicing-by-16").
package struct CRC32: Sendable {
    /// The running register, kept inverted as the algorithm requires.
    private var register: UInt32 = 0xFFFF_FFFF

    /// A checksum of no bytes yet.
    package init() {}

    /// The checksum of every byte passed to `update` so far.
    package var value: UInt32 { ~register }

    /// Folds `bytes` into the checksum.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, let base = bytes.baseAddress else { return }
        register = crc32Tables.withUnsafeBufferPointer { table in
            CRC32.advance(register, base: base, count: bytes.count, table: table)
        }
    }

    /// Folds `bytes` into the checksum.
    package mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The checksum of `bytes` alone.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    /// The checksum of `bytes` alone.
    package static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    @inline(__always)
    private static func advance(
        _ start: UInt32,
        base: UnsafeRawPointer,
        count: Int,
        table t: UnsafeBufferPointer<UInt32>
    ) -> UInt32 {
        var crc = start
        var offset = 0
        // Sixteen bytes per step: table k maps a byte to its contribution k bytes further on.
        while count &- offset >= 16 {
            let first = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let second = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset &+ 8, as: UInt64.self))
            let a = UInt32(truncatingIfNeeded: first) ^ crc
            let b = UInt32(truncatingIfNeeded: first &>> 32)
            let c = UInt32(truncatingIfNeeded: second)
            let d = UInt32(truncatingIfNeeded: second &>> 32)
            crc = t[15 &* 256 &+ Int(a & 0xFF)] ^ t[14 &* 256 &+ Int((a &>> 8) & 0xFF)]
                ^ t[13 &* 256 &+ Int((a &>> 16) & 0xFF)] ^ t[12 &* 256 &+ Int(a &>> 24)]
                ^ t[11 &* 256 &+ Int(b & 0xFF)] ^ t[10 &* 256 &+ Int((b &>> 8) & 0xFF)]
                ^ t[9 &* 256 &+ Int((b &>> 16) & 0xFF)] ^ t[8 &* 256 &+ Int(b &>> 24)]
                ^ t[7 &* 256 &+ Int(c & 0xFF)] ^ t[6 &* 256 &+ Int((c &>> 8) & 0xFF)]
                ^ t[5 &* 256 &+ Int((c &>> 16) & 0xFF)] ^ t[4 &* 256 &+ Int(c &>> 24)]
                ^ t[3 &* 256 &+ Int(d & 0xFF)] ^ t[2 &* 256 &+ Int((d &>> 8) & 0xFF)]
                ^ t[256 &+ Int((d &>> 16) & 0xFF)] ^ t[Int(d &>> 24)]
            offset &+= 16
        }
        while offset < count {
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc &>> 8)
            offset &+= 1
        }
        return crc
    }
}

/// Sixteen 256-entry tables: table 0 is the classic byte table, table k advances it by k more zero bytes.
private let crc32Tables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 16 * 256)
    for byte in 0..<256 {
        var crc = UInt32(byte)
        for _ in 0..<8 {
            crc = (crc & 1) == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
        }
        tables[byte] = crc
    }
    for k in 1..<16 {
        for byte in 0..<256 {
            let previous = tables[(k - 1) * 256 + byte]
            tables[k * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
        }
    }
    return tables
}()
