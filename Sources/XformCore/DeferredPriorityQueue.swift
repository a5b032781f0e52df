/// A binary min-heap of entries ordered by (priority, insertion count), with lazy deletion: the
/// store behind ``DeferredPriorityQueue`` and ``ResizableDispatchQueue``.
struct PriorityHeap<Element: AnyObject> {
    struct Entry {
        let element: Element
        let priority: Int
        let count: UInt64
        func precedes(_ other: Entry) -> Bool {
            priority != other.priority ? priority < other.priority : count < other.count
        }
    }

    private var heap: [Entry] = []
    /// The live entry of each queued element: (priority, count). An entry in `heap` that does not
    /// match is stale (deleted or reprioritised) and skipped when popped.
    private var live: [ObjectIdentifier: (priority: Int, count: UInt64)] = [:]
    private var nextCount: UInt64 = 0

    var count: Int { live.count }
    var isEmpty: Bool { live.isEmpty }

    func contains(_ element: Element) -> Bool { live[ObjectIdentifier(element)] != nil }

    func priority(of element: Element) -> Int? { live[ObjectIdentifier(element)]?.priority }

    /// Adds `element`; `count` keeps the original place among equals when reprioritising.
    mutating func push(_ element: Element, priority: Int, count: UInt64? = nil) {
        let c: UInt64
        if let count { c = count } else { nextCount += 1; c = nextCount }
        live[ObjectIdentifier(element)] = (priority, c)
        heap.append(Entry(element: element, priority: priority, count: c))
        siftUp(heap.count - 1)
        compactIfMostlyStale()
    }

    /// Removes and returns the most important element.
    mutating func pop() -> Element? {
        while let top = heap.first {
            removeTop()
            let id = ObjectIdentifier(top.element)
            if let l = live[id], l.priority == top.priority, l.count == top.count {
                live[id] = nil
                return top.element
            }
        }
        return nil
    }

    /// Removes `element`; returns false when it was not queued.
    @discardableResult
    mutating func remove(_ element: Element) -> Bool {
        live.removeValue(forKey: ObjectIdentifier(element)) != nil
    }

    /// Gives a queued element a new priority, keeping its place among elements of that priority.
    @discardableResult
    mutating func reprioritize(_ element: Element, to priority: Int) -> Bool {
        guard let l = live[ObjectIdentifier(element)] else { return false }
        if l.priority != priority { push(element, priority: priority, count: l.count) }
        return true
    }

    /// The queued elements, most important first.
    var sorted: [Element] {
        heap.filter { e in
            let l = live[ObjectIdentifier(e.element)]
            return l?.priority == e.priority && l?.count == e.count
        }
        .sorted { $0.precedes($1) }.map(\.element)
    }

    /// Empties the heap, returning the elements most important first.
    mutating func removeAll() -> [Element] {
        let all = sorted
        heap.removeAll()
        live.removeAll()
        return all
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func compactIfMostlyStale() {
        guard heap.count > 64, heap.count > 2 * live.count else { return }
        let keep = heap.filter { e in
            let l = live[ObjectIdentifier(e.element)]
            return l?.priority == e.priority && l?.count == e.count
        }
        heap = keep
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
    }

    private mutating func siftUp(_ index: Int) {
        var i = index
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].precedes(heap[parent]) else { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var i = index
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < heap.count, heap[l].precedes(heap[best]) { best = l }
            if r < heap.count, heap[r].precedes(heap[best]) { best = r }
            if best == i { return }
            heap.swapAt(i, best)
            i = best
        }
    }
}

/// The failure of ``DeferredPriorityQueue/put(_:priority:)`` for an element already queued.
public struct AlreadyQueuedError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "the object is already in the queue" }
}

/// A prioritised event queue whose `get()` returns a Deferred: txrdq's `DeferredPriorityQueue`
/// (Terry Jones, "A resizable dispatch queue for Twisted", seed 001), a ``DeferredQueue`` whose
/// values come out most important first.
///
/// Lower priority numbers are more important; equal priorities come out in the order they were
/// put. Elements are objects, identified by identity, so a queued one can be deleted or
/// reprioritised; the same object cannot be queued twice at once. Confined to the reactor thread.
public final class DeferredPriorityQueue<Element: AnyObject> {
    var heap = PriorityHeap<Element>()
    var waiting: [Deferred<Element>] = []
    /// The most elements kept, or nil for no limit.
    public let size: Int?
    /// The most waiting `get()` calls, or nil for no limit.
    public let backlog: Int?

    /// Creates an empty queue with optional limits (as ``DeferredQueue``).
    public init(size: Int? = nil, backlog: Int? = nil) {
        self.size = size
        self.backlog = backlog
    }

    /// Gives `element` to the oldest waiting `get()`, or keeps it with `priority`.
    ///
    /// - Throws: ``QueueOverflowError`` when `size` elements are kept; ``AlreadyQueuedError``
    ///   when `element` is queued already.
    public func put(_ element: Element, priority: Int = 0) throws {
        if !waiting.isEmpty {
            try? waiting.removeFirst().callback(element)
            return
        }
        if heap.contains(element) { throw AlreadyQueuedError() }
        if let size, heap.count >= size { throw QueueOverflowError() }
        heap.push(element, priority: priority)
    }

    /// Returns a Deferred of the most important element: fired at once when one is kept.
    /// Cancelling a waiting `get()` withdraws it.
    ///
    /// - Throws: ``QueueOverflowError`` when `backlog` calls already wait.
    public func get() throws(QueueOverflowError) -> Deferred<Element> {
        if let e = heap.pop() { return succeed(e) }
        if let backlog, waiting.count >= backlog { throw QueueOverflowError() }
        let d = Deferred<Element>(canceller: { [weak self] d in self?.waiting.removeAll { $0 === d } })
        waiting.append(d)
        return d
    }

    /// Removes a kept element. Returns false when it is not in the queue.
    @discardableResult
    public func delete(_ element: Element) -> Bool { heap.remove(element) }

    /// Changes a kept element's priority. Returns false when it is not in the queue.
    @discardableResult
    public func reprioritize(_ element: Element, priority: Int) -> Bool {
        heap.reprioritize(element, to: priority)
    }

    /// The kept elements, most important first (a snapshot).
    public var contents: [Element] { heap.sorted }

    /// The number of kept elements.
    public var count: Int { heap.count }

    /// The number of `get()` calls waiting for an element.
    public var waitingCount: Int { waiting.count }
}
