import Glibc

/// A connection's unsent output: bytes appended at the end, taken from the front by `send(2)`.
///
/// Raw memory rather than `[UInt8]`: appending is a `memcpy` with no reference counting or
/// uniqueness checks, and consuming moves an index (the space is reused once the queue drains).
/// Owned by one connection, on the reactor thread; ``deallocate()`` must be called once.
///
/// While its connection handles its own event, an empty buffer with no memory borrows the
/// reactor's shared write space (``borrow(_:)``): a reply that `send(2)` takes whole never
/// needs memory of the connection's own, so an idle connection holds none (a kept 1 KiB buffer
/// was two thirds of a used keep-alive connection's memory). ``returnBorrowed()`` copies what
/// is left unsent into memory of its own.
struct OutputBuffer {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0
    /// `base` is the reactor's shared space, not ours to free.
    private var borrowed = false

    /// True when the buffer holds memory of its own.
    var ownsMemory: Bool { base != nil && !borrowed }

    /// Writes go to `space` (empty, not shared with anyone else) until ``returnBorrowed()``;
    /// does nothing when the buffer has memory already.
    @inline(__always) mutating func borrow(_ space: UnsafeMutableRawBufferPointer) {
        guard base == nil else { return }
        base = space.baseAddress
        capacity = space.count
        borrowed = true
    }

    /// Gives the shared space back: bytes still unsent move to memory of the buffer's own.
    @inline(__always) mutating func returnBorrowed() {
        if borrowed { keepUnsent() }
    }

    /// The slow part of ``returnBorrowed()``: detach, copying what was not sent.
    private mutating func keepUnsent() {
        let live = end - start
        guard live > 0 else {
            detach()
            return
        }
        var size = 1024
        while size < live { size *= 2 }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        memcpy(fresh, base! + start, live)
        base = fresh
        capacity = size
        start = 0
        end = live
        borrowed = false
    }

    private mutating func detach() {
        base = nil
        capacity = 0
        start = 0
        end = 0
        borrowed = false
    }

    /// Bytes queued.
    var count: Int { end - start }

    /// The queued bytes (valid until the next mutation).
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base.map { $0 + start }, count: end - start) }

    /// Queues a copy of `data`.
    mutating func append(_ data: UnsafeRawBufferPointer) {
        let n = data.count
        guard n > 0, let source = data.baseAddress else { return }
        if end + n > capacity { makeRoom(for: n) }
        memcpy(base! + end, source, n)
        end += n
    }

    /// Room for `n` more bytes at the end, to be filled and then ``commit(_:)``ted.
    mutating func reserve(_ n: Int) -> UnsafeMutableRawBufferPointer {
        if end + n > capacity { makeRoom(for: n) }
        return UnsafeMutableRawBufferPointer(start: base! + end, count: n)
    }

    /// Queues the first `n` bytes written into the space ``reserve(_:)`` returned.
    mutating func commit(_ n: Int) {
        end += n
    }

    /// Drops the first `n` queued bytes (they were sent).
    mutating func consume(_ n: Int) {
        start += n
        if start == end {
            start = 0
            end = 0
            // Give back borrowed space at once, and a buffer a burst made huge; keep the usual
            // few KiB of our own for the next reply.
            if borrowed {
                detach()
            } else if capacity > 1 << 20 {
                freeStorage()
            }
        }
    }

    /// Frees the memory; the buffer is empty afterwards.
    mutating func deallocate() { freeStorage() }

    private mutating func freeStorage() {
        if !borrowed { base?.deallocate() }
        borrowed = false
        base = nil
        capacity = 0
        start = 0
        end = 0
    }

    private mutating func makeRoom(for n: Int) {
        let live = end - start
        if start > 0, live + n <= capacity, start >= live {
            // Enough room once the sent prefix is reclaimed: slide the live bytes down.
            memmove(base!, base! + start, live)
        } else {
            // The first buffer is under glibc's per-thread cache limit (1,032 bytes): a 4 KiB one
            // took malloc's and free's slow paths, about 500 instructions per connection
            // (callgrind, connect per request); replies of a few dozen bytes are the usual case.
            // Outgrowing borrowed space: memory of our own, sized for what is needed.
            var newCapacity = borrowed ? 1024 : max(capacity * 2, 1024)
            while newCapacity < live + n { newCapacity *= 2 }
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            if live > 0 { memcpy(fresh, base! + start, live) }
            if !borrowed { base?.deallocate() }
            borrowed = false
            base = fresh
            capacity = newCapacity
        }
        start = 0
        end = live
    }
}
