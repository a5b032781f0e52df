import XformCore

/// A call scheduled on an ``EpollReactor`` with ``EpollReactor/callLater(_:_:)``.
final class ReactorDelayedCall: DelayedCall {
    /// The reactor while the call is pending; nil once it ran or was cancelled. The reactor
    /// clears it for every pending call when it shuts down or deinitialises, so it never
    /// dangles (which is why `unowned(unsafe)` is safe here and avoids weak-reference costs).
    unowned(unsafe) var reactor: EpollReactor?
    /// The scheduled closure; nil once the call ran or was cancelled.
    var work: (() -> Void)?
    var deadlineNanos: Int64
    /// The sequence number of this call's live heap entry; older entries are stale.
    var seq: UInt64
    /// This call's index in the reactor's slot table while pending.
    var slot: Int32 = -1

    init(reactor: EpollReactor, deadline: Int64, seq: UInt64, work: @escaping () -> Void) {
        self.reactor = reactor
        self.deadlineNanos = deadline
        self.seq = seq
        self.work = work
    }

    var deadline: Duration { .nanoseconds(deadlineNanos) }
    var isActive: Bool { work != nil }

    func cancel() {
        guard work != nil else { return }
        work = nil
        reactor?.timerCancelled(self)
    }

    func reset(_ delay: Duration) {
        guard work != nil, let reactor else { return }
        reactor.reschedule(self, delay)
    }
}

/// What a timer slot holds: a ``ReactorDelayedCall`` (``EpollReactor/callLater(_:_:)``), a
/// target (``EpollReactor/schedule(_:atNanoseconds:)``), or nothing.
enum TimerSlot {
    case free
    case call(ReactorDelayedCall)
    case target(any TimerTarget)
}

/// One heap slot, a plain value (no reference counting while the heap is reordered). It is
/// live while the reactor's `timerSeqs[slot] == seq`.
struct TimerEntry {
    var deadline: Int64
    var seq: UInt64
    var slot: Int32

    @inline(__always) static func before(_ a: TimerEntry, _ b: TimerEntry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq)
    }
}

/// A 4-ary min-heap (half the depth of a binary one, children share cache lines) of timer entries ordered by (deadline, sequence number): calls due at the
/// same instant run in the order they were scheduled.
struct TimerHeap {
    var items: [TimerEntry] = []

    var count: Int { items.count }
    var first: TimerEntry? { items.first }

    mutating func push(_ e: TimerEntry) {
        items.append(e)
        siftUp(items.count - 1)
    }

    mutating func removeFirst() {
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown(0)
        }
    }

    /// Drops the entries that fail `keep` and restores heap order in O(n).
    mutating func filter(_ keep: (TimerEntry) -> Bool) {
        items.removeAll { !keep($0) }
        // Sift down every parent, the last one ((count - 2) / 4) first.
        var i = items.count > 1 ? (items.count - 2) / 4 + 1 : 0
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    mutating func removeAll() { items.removeAll() }

    private mutating func siftUp(_ index: Int) {
        var child = index
        let e = items[child]
        while child > 0 {
            let parent = (child - 1) / 4
            if !TimerEntry.before(e, items[parent]) { break }
            items[child] = items[parent]
            child = parent
        }
        items[child] = e
    }

    private mutating func siftDown(_ index: Int) {
        let n = items.count
        var parent = index
        let e = items[parent]
        while true {
            let firstChild = 4 * parent + 1
            if firstChild >= n { break }
            var child = firstChild
            let lastChild = min(firstChild + 3, n - 1)
            var c = firstChild + 1
            while c <= lastChild {
                if TimerEntry.before(items[c], items[child]) { child = c }
                c += 1
            }
            if !TimerEntry.before(items[child], e) { break }
            items[parent] = items[child]
            parent = child
        }
        items[parent] = e
    }
}
