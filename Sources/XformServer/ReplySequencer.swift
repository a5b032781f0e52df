/// Keeps replies in request order when some of them come later (pipelining with asynchronous
/// transforms). While nothing waits, protocols write replies straight to the transport and this
/// stays empty: it costs nothing on the hot path.
struct ReplySequencer {
    enum Entry {
        case ready([UInt8])
        case waiting
        /// Close the connection when this entry is reached.
        case close
    }

    private var entries: [Entry] = []
    private var base = 0

    /// True when no reply is owed.
    var isEmpty: Bool { entries.isEmpty }

    /// Reserves the place of a reply that comes later; returns its ticket.
    mutating func reserve() -> Int {
        entries.append(.waiting)
        return base + entries.count - 1
    }

    /// Queues a reply that is ready now but must wait for earlier ones.
    mutating func append(_ bytes: [UInt8]) { entries.append(.ready(bytes)) }

    /// Queues a close after the replies owed so far.
    mutating func appendClose() { entries.append(.close) }

    /// Puts a close marker right after the reserved place `ticket` (dropping what follows it).
    mutating func appendCloseAfter(_ ticket: Int) {
        let i = ticket - base
        guard i >= 0, i < entries.count else { return }
        entries.removeSubrange((i + 1)...)
        entries.append(.close)
    }

    /// Fills a reserved place.
    mutating func fill(_ ticket: Int, with bytes: [UInt8]) {
        let i = ticket - base
        guard i >= 0, i < entries.count else { return }
        entries[i] = .ready(bytes)
    }

    /// Hands the ready replies at the head to `write`, in order.
    ///
    /// - Returns: true when a close marker was reached (entries after it are dropped).
    mutating func flush(_ write: ([UInt8]) -> Void) -> Bool {
        var taken = 0
        var closing = false
        loop: for entry in entries {
            switch entry {
            case .ready(let bytes):
                write(bytes)
                taken += 1
            case .waiting:
                break loop
            case .close:
                closing = true
                break loop
            }
        }
        if closing {
            entries.removeAll()
        } else if taken > 0 {
            entries.removeFirst(taken)
        }
        base += taken
        return closing
    }
}

/// A growable scratch buffer for building replies without per-request allocation.
final class ScratchBuffer {
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private(set) var capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
        self.base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Returns the buffer, grown to at least `count` bytes.
    func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if count > capacity {
            var newCapacity = capacity * 2
            while newCapacity < count { newCapacity *= 2 }
            base.deallocate()
            base = .allocate(byteCount: newCapacity, alignment: 16)
            capacity = newCapacity
        }
        return base
    }
}

/// Writes the decimal digits of `n` (n >= 0) at `p`; returns how many were written.
@inline(__always)
func writeDecimal(_ n: Int, to p: UnsafeMutableRawPointer) -> Int {
    var digits = 1
    var v = n
    while v >= 10 {
        v /= 10
        digits += 1
    }
    v = n
    var i = digits - 1
    while i >= 0 {
        p.storeBytes(of: UInt8(truncatingIfNeeded: 48 + v % 10), toByteOffset: i, as: UInt8.self)
        v /= 10
        i -= 1
    }
    return digits
}
