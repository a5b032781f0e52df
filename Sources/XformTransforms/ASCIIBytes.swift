/// Byte loops for all-ASCII text: the server's fast path.
///
/// Each transform with an ASCII fast path maps `input` to an `output` of the same length. The
/// loops are simple enough for the compiler to vectorise; none allocates.
public enum ASCIIBytes {
    /// True if every byte is below 0x80. Reads eight bytes at a time.
    @inlinable
    public static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return true }
        let high: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while i + 32 <= count {
            let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            if (a | b | c | d) & high != 0 { return false }
            i += 32
        }
        while i + 8 <= count {
            if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & high != 0 { return false }
            i += 8
        }
        var rest: UInt8 = 0
        while i < count {
            rest |= base.load(fromByteOffset: i, as: UInt8.self)
            i += 1
        }
        return rest & 0x80 == 0
    }

    /// True if `text` is all ASCII, read word-at-a-time from its UTF-8 storage.
    public static func isASCII(_ text: String) -> Bool {
        if let answer = text.utf8.withContiguousStorageIfAvailable({ isASCII(UnsafeRawBufferPointer($0)) }) {
            return answer
        }
        return text.utf8.allSatisfy { $0 < 0x80 }
    }

    @inline(__always)
    static func withBytes(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer,
        _ body: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>, Int) -> Void
    ) {
        precondition(output.count >= input.count, "ASCII fast path: output shorter than input")
        guard let src = input.baseAddress, let dst = output.baseAddress else { return }
        // Byte buffers: UInt8 is layout-compatible with raw bytes and trivially bound.
        body(src.assumingMemoryBound(to: UInt8.self), dst.assumingMemoryBound(to: UInt8.self), input.count)
    }

    /// Lowercases ASCII letters: `A`-`Z` become `a`-`z`; other bytes are copied.
    public static func lowercase(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
        withBytes(input, output) { src, dst, n in
            for i in 0..<n {
                let b = src[i]
                dst[i] = b | (b &- 65 < 26 ? 0x20 : 0)
            }
        }
    }

    /// ``lowercase(_:_:)`` checking for ASCII in the same pass: false if a byte was not ASCII.
    public static func lowercaseChecked(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> Bool {
        mapChecked(input, output) { $0 | ($0 &- 65 < 26 ? 0x20 : 0) }
    }

    /// ``uppercase(_:_:)`` checking for ASCII in the same pass: false if a byte was not ASCII.
    public static func uppercaseChecked(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> Bool {
        mapChecked(input, output) { $0 & ($0 &- 97 < 26 ? 0xDF : 0xFF) }
    }

    /// Maps every byte with `map` and ORs the input bytes together on the way: one loop the
    /// compiler vectorises (inlined, so `map` is too).
    @inline(__always)
    static func mapChecked(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, _ map: (UInt8) -> UInt8
    ) -> Bool {
        var seen: UInt8 = 0
        withBytes(input, output) { src, dst, n in
            for i in 0..<n {
                let b = src[i]
                seen |= b
                dst[i] = map(b)
            }
        }
        return seen & 0x80 == 0
    }

    /// Uppercases ASCII letters: `a`-`z` become `A`-`Z`; other bytes are copied.
    public static func uppercase(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
        withBytes(input, output) { src, dst, n in
            for i in 0..<n {
                let b = src[i]
                dst[i] = b & (b &- 97 < 26 ? 0xDF : 0xFF)
            }
        }
    }

    /// ROT13: rotates ASCII letters by 13 places, keeping their case; other bytes are copied.
    public static func rot13(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
        withBytes(input, output) { src, dst, n in
            for i in 0..<n {
                let b = src[i]
                let offset = (b | 0x20) &- 97  // 0..<26 for letters
                let shift: UInt8 = offset < 13 ? 13 : (offset < 26 ? 243 : 0)  // 243 == -13 mod 256
                dst[i] = b &+ shift
            }
        }
    }

    /// Python `str.title()` on ASCII: a letter after a letter is lowercased, any other letter
    /// uppercased.
    public static func title(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
        withBytes(input, output) { src, dst, n in
            var previousIsLetter = false
            for i in 0..<n {
                let b = src[i]
                let isLetter = (b | 0x20) &- 97 < 26
                dst[i] = isLetter ? (previousIsLetter ? b | 0x20 : b & 0xDF) : b
                previousIsLetter = isLetter
            }
        }
    }

    /// Reverses ASCII text by grapheme cluster: every byte is its own cluster except `\r\n`,
    /// which stays in order.
    public static func reverse(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
        withBytes(input, output) { src, dst, n in
            var i = 0
            var end = n
            while i < n {
                if src[i] == 13, i + 1 < n, src[i + 1] == 10 {
                    dst[end - 2] = 13
                    dst[end - 1] = 10
                    i += 2
                    end -= 2
                } else {
                    dst[end - 1] = src[i]
                    i += 1
                    end -= 1
                }
            }
        }
    }
}
