/// A growable scratch buffer where the netstring hot path builds replies without per-request
/// allocation. Owned by one connection, on the reactor thread.
final class ScratchBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
        self.base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Returns the buffer, grown to at least `count` bytes (its old content is not kept).
    @inline(__always)
    func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if count > capacity { grow(to: count) }
        return base
    }

    private func grow(to count: Int) {
        var newCapacity = capacity * 2
        while newCapacity < count { newCapacity *= 2 }
        base.deallocate()
        base = .allocate(byteCount: newCapacity, alignment: 16)
        capacity = newCapacity
    }
}
