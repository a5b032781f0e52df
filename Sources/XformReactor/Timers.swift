import XformCore

/// A call scheduled on an ``EpollReactor`` with ``EpollReactor/callLater(_:_:)``.
final class ReactorDelayedCall: DelayedCall {
    /// Weak: a handle kept after the reactor is gone must not keep it alive.
    weak var reactor: EpollReactor?
    /// The scheduled closure; nil once the call ran or was cancelled.
    var work: (() -> Void)?
    var deadlineNanos: Int64
    /// The sequence number of this call's live heap entry; older entries are stale.
    var seq: UInt64

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
        reactor?.timerEntryInvalidated()
    }

    func reset(_ delay: Duration) {
        guard work != nil, let reactor else { return }
        reactor.reschedule(self, delay)
    }
}

/// One heap slot: valid while `call.seq == seq` and the call is active.
struct TimerEntry {
    var deadline: Int64
    var seq: UInt64
    var call: ReactorDelayedCall

    @inline(__always) var isLive: Bool { call.seq == seq && call.work != nil }

    @inline(__always) static func before(_ a: TimerEntry, _ b: TimerEntry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq)
    }
}

/// A binary min-heap of timer entries ordered by (deadline, sequence number): calls due at the
/// same instant run in the order they were scheduled.
struct TimerHeap {
    var items: [TimerEntry] = []

    var count: Int { items.count }
    var first: TimerEntry? { items.first }

    mutating func push(_ e: TimerEntry) {
        items.append(e)
        siftUp(items.count - 1)
    }

    mutating func popFirst() -> TimerEntry {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown(0)
        }
        return top
    }

    /// Drops the entries that fail `keep` and restores heap order in O(n).
    mutating func filter(_ keep: (TimerEntry) -> Bool) {
        items.removeAll { !keep($0) }
        var i = items.count / 2
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
            let parent = (child - 1) / 2
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
            var child = 2 * parent + 1
            if child >= n { break }
            if child + 1 < n && TimerEntry.before(items[child + 1], items[child]) { child += 1 }
            if !TimerEntry.before(items[child], e) { break }
            items[parent] = items[child]
            parent = child
        }
        items[parent] = e
    }
}
