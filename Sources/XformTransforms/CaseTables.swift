/// Basic Multilingual Plane lookup tables for ``PythonCase``, built once from its per-code-point
/// reference functions, so the Unicode 14 pinning of those functions carries over exactly.
///
/// Each BMP code point has one 64-bit entry: bits 0-15, 16-31 and 32-47 hold the wrapping
/// difference from the code point to its lowercase, uppercase and titlecase mapping when that
/// mapping is a single BMP code point; bits 48-55 hold ``cased``, ``ignorable`` and the
/// "slow" flags (the mapping is several code points, or context-dependent as for U+03A3: ask
/// the reference function). Entries live in 256-code-point blocks and identical blocks are
/// stored once; `blockIndex` maps the high byte of a code point to its block.
///
/// The tables are immutable after construction and `shared` is a `static let` (initialised
/// once, thread-safely), so any thread may read them concurrently.
struct CaseTable: Sendable {
    static let cased: UInt64 = 1 << 48
    static let ignorable: UInt64 = 1 << 49
    static let lowerSlow: UInt64 = 1 << 50
    static let upperSlow: UInt64 = 1 << 51
    static let titleSlow: UInt64 = 1 << 52
    /// The entry of every code point outside the BMP: all mappings slow, flags unknown.
    static let allSlow: UInt64 = lowerSlow | upperSlow | titleSlow

    /// For each high byte of a BMP code point, the index of its 256-entry block in `entries`.
    let blockIndex: [UInt16]
    /// The distinct blocks, 256 entries each.
    let entries: [UInt64]

    /// The tables, built on first use.
    static let shared = CaseTable()

    /// Builds the tables by asking the reference functions about each BMP code point.
    init() {
        var blockIndex: [UInt16] = []
        var entries: [UInt64] = []
        var seen: [[UInt64]: UInt16] = [:]
        var scratch: [UInt8] = []
        scratch.reserveCapacity(32)
        var block = [UInt64](repeating: 0, count: 256)
        for high in UInt32(0)..<256 {
            for low in UInt32(0)..<256 {
                let v = high << 8 | low
                guard let c = Unicode.Scalar(v) else {
                    block[Int(low)] = 0  // a surrogate: never decoded from valid UTF-8
                    continue
                }
                var entry: UInt64 = 0
                if PythonCase.isCased(c) { entry |= Self.cased }
                if PythonCase.isCaseIgnorable(c) { entry |= Self.ignorable }
                for k in 0..<3 {
                    scratch.removeAll(keepingCapacity: true)
                    switch k {
                    case 0: PythonCase.appendLowerMapping(c, to: &scratch)
                    case 1: PythonCase.appendUpperMapping(c, to: &scratch)
                    default: PythonCase.appendTitleMapping(c, to: &scratch)
                    }
                    if let w = Self.singleBMPScalar(scratch) {
                        entry |= UInt64(UInt16(truncatingIfNeeded: w &- v)) << (16 * UInt64(k))
                    } else {
                        entry |= Self.lowerSlow << UInt64(k)
                    }
                }
                if c == PythonCase.capitalSigma { entry |= Self.lowerSlow }  // Final_Sigma
                block[Int(low)] = entry
            }
            if let index = seen[block] {
                blockIndex.append(index)
            } else {
                let index = UInt16(seen.count)
                seen[block] = index
                blockIndex.append(index)
                entries.append(contentsOf: block)
            }
        }
        self.blockIndex = blockIndex
        self.entries = entries
    }

    /// The code point `utf8` encodes, if it encodes exactly one and that one is in the BMP.
    static func singleBMPScalar(_ utf8: [UInt8]) -> UInt32? {
        switch utf8.count {
        case 1 where utf8[0] < 0x80:
            return UInt32(utf8[0])
        case 2 where utf8[0] & 0xE0 == 0xC0:
            return UInt32(utf8[0] & 0x1F) << 6 | UInt32(utf8[1] & 0x3F)
        case 3 where utf8[0] & 0xF0 == 0xE0:
            return UInt32(utf8[0] & 0x0F) << 12 | UInt32(utf8[1] & 0x3F) << 6 | UInt32(utf8[2] & 0x3F)
        default:
            return nil
        }
    }

    /// The number of bytes the tables occupy (element storage only).
    var byteCount: Int { blockIndex.count * 2 + entries.count * 8 }
}

/// A read view of ``CaseTable`` for one transform call, plus UTF-8 decoding.
struct CaseLookup {
    let blockIndex: UnsafeBufferPointer<UInt16>
    let entries: UnsafeBufferPointer<UInt64>

    /// The table entry of code point `v`; outside the BMP, the flags come from the reference
    /// functions and every mapping is marked slow.
    @inline(__always)
    func entry(_ v: UInt32) -> UInt64 {
        if v < 0x10000 {
            return entries[Int(blockIndex[Int(v >> 8)]) << 8 | Int(v & 0xFF)]
        }
        let c = Unicode.Scalar(v).unsafelyUnwrapped
        var e = CaseTable.allSlow
        if PythonCase.isCased(c) { e |= CaseTable.cased }
        if PythonCase.isCaseIgnorable(c) { e |= CaseTable.ignorable }
        return e
    }

    /// Decodes the code point starting at `i` in valid UTF-8; returns it and its length.
    @inline(__always)
    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
        }
        return (
            (b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                | UInt32(p[i + 3] & 0x3F), 4
        )
    }

    /// The single-code-point mapping stored at bit `shift` of `entry`, applied to `v`.
    @inline(__always)
    static func mapped(_ v: UInt32, _ entry: UInt64, shift: UInt64) -> UInt32 {
        UInt32(UInt16(truncatingIfNeeded: v) &+ UInt16(truncatingIfNeeded: entry >> shift))
    }

    /// CPython's Final_Sigma look-ahead from byte `start`: true if the next code point that is not
    /// case-ignorable is missing or not cased.
    @inline(__always)
    func noCasedAhead(_ p: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        var i = start
        while i < p.count {
            let (v, length) = Self.decode(p, i)
            let e = entry(v)
            if e & CaseTable.ignorable == 0 { return e & CaseTable.cased == 0 }
            i += length
        }
        return true
    }
}

/// A growable output byte buffer written without Array's per-append checks. Owned by one
/// transform call, which frees it with `deallocate()`.
struct ByteWriter {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int
    /// Reused for the reference functions' output on the slow path.
    var scratch: [UInt8] = []

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    /// Makes room for `k` more bytes.
    @inline(__always)
    mutating func ensure(_ k: Int) {
        if capacity &- count < k { grow(k) }
    }

    @inline(never)
    mutating func grow(_ k: Int) {
        let newCapacity = max(capacity * 2, count + k)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Appends BMP code point `v` (not a surrogate) as UTF-8.
    @inline(__always)
    mutating func appendBMP(_ v: UInt32) {
        ensure(3)
        if v < 0x80 {
            base[count] = UInt8(v)
            count &+= 1
        } else if v < 0x800 {
            base[count] = 0xC0 | UInt8(v >> 6)
            base[count &+ 1] = 0x80 | UInt8(v & 0x3F)
            count &+= 2
        } else {
            base[count] = 0xE0 | UInt8(v >> 12)
            base[count &+ 1] = 0x80 | UInt8((v >> 6) & 0x3F)
            base[count &+ 2] = 0x80 | UInt8(v & 0x3F)
            count &+= 3
        }
    }

    /// Appends what `reference` appends for `v` (any code point).
    @inline(never)
    mutating func appendSlow(_ v: UInt32, _ reference: (Unicode.Scalar, inout [UInt8]) -> Void) {
        scratch.removeAll(keepingCapacity: true)
        reference(Unicode.Scalar(v).unsafelyUnwrapped, &scratch)
        ensure(scratch.count)
        for byte in scratch {
            base[count] = byte
            count &+= 1
        }
    }

    func deallocate() { base.deallocate() }
}

extension PythonCase {
    /// Runs `body` with the UTF-8 of `text`, a read view of the tables and an output buffer;
    /// returns the output as a String.
    @inline(__always)
    static func withTables(
        _ text: String,
        _ body: (UnsafeBufferPointer<UInt8>, CaseLookup, inout ByteWriter) -> Void
    ) -> String {
        let table = CaseTable.shared
        var out = ByteWriter(capacity: text.utf8.count + text.utf8.count / 4 + 16)
        defer { out.deallocate() }
        func run(_ p: UnsafeBufferPointer<UInt8>) {
            table.blockIndex.withUnsafeBufferPointer { blockIndex in
                table.entries.withUnsafeBufferPointer { entries in
                    body(p, CaseLookup(blockIndex: blockIndex, entries: entries), &out)
                }
            }
        }
        if text.utf8.withContiguousStorageIfAvailable(run) == nil {
            var copy = text
            copy.withUTF8(run)
        }
        return String(decoding: UnsafeBufferPointer(start: out.base, count: out.count), as: UTF8.self)
    }

    /// `lower` through the tables: byte-identical to ``lowerScalars``.
    static func lowerFast(_ text: String) -> String {
        withTables(text) { p, look, out in
            var previousIsCased = false
            var i = 0
            while i < p.count {
                let (v, length) = CaseLookup.decode(p, i)
                let e = look.entry(v)
                if e & CaseTable.lowerSlow == 0 {
                    out.appendBMP(CaseLookup.mapped(v, e, shift: 0))
                } else if v == capitalSigma.value {
                    let final = previousIsCased && look.noCasedAhead(p, from: i + length)
                    out.appendBMP(final ? finalSigma.value : smallSigma.value)
                } else {
                    out.appendSlow(v) { appendLowerMapping($0, to: &$1) }
                }
                if e & CaseTable.ignorable == 0 { previousIsCased = e & CaseTable.cased != 0 }
                i += length
            }
        }
    }

    /// `upper` through the tables: byte-identical to ``upperScalars``.
    static func upperFast(_ text: String) -> String {
        withTables(text) { p, look, out in
            var i = 0
            while i < p.count {
                let (v, length) = CaseLookup.decode(p, i)
                // Outside the BMP the flags are not needed: go straight to the reference.
                let e = v < 0x10000 ? look.entry(v) : CaseTable.allSlow
                if e & CaseTable.upperSlow == 0 {
                    out.appendBMP(CaseLookup.mapped(v, e, shift: 16))
                } else {
                    out.appendSlow(v) { appendUpperMapping($0, to: &$1) }
                }
                i += length
            }
        }
    }

    /// `title` through the tables: byte-identical to ``titleScalars``.
    static func titleFast(_ text: String) -> String {
        withTables(text) { p, look, out in
            var previousIsCased = false  // the previous code point, for title's own rule
            var previousNonIgnorableIsCased = false  // for Final_Sigma's look-behind
            var i = 0
            while i < p.count {
                let (v, length) = CaseLookup.decode(p, i)
                let e = look.entry(v)
                if previousIsCased {
                    if e & CaseTable.lowerSlow == 0 {
                        out.appendBMP(CaseLookup.mapped(v, e, shift: 0))
                    } else if v == capitalSigma.value {
                        let final = previousNonIgnorableIsCased && look.noCasedAhead(p, from: i + length)
                        out.appendBMP(final ? finalSigma.value : smallSigma.value)
                    } else {
                        out.appendSlow(v) { appendLowerMapping($0, to: &$1) }
                    }
                } else if e & CaseTable.titleSlow == 0 {
                    out.appendBMP(CaseLookup.mapped(v, e, shift: 32))
                } else {
                    out.appendSlow(v) { appendTitleMapping($0, to: &$1) }
                }
                previousIsCased = e & CaseTable.cased != 0
                if e & CaseTable.ignorable == 0 { previousNonIgnorableIsCased = previousIsCased }
                i += length
            }
        }
    }
}
