import Dispatch
import XformCore

/// A stand-in reactor thread for async-bridge tests: a serial `DispatchQueue` that runs
/// ``callFromThread(_:)`` work at once, in order, and knows whether the caller is on it.
///
/// It owns a ``ManualClock`` that may be touched only on the queue (use ``run(_:)`` or
/// ``advance(by:)``), so timed Deferred code can run on the "reactor thread" too.
public final class DispatchReactorThread: ReactorThreading {
    let queue: DispatchQueue
    let key = DispatchSpecificKey<ObjectIdentifier>()
    let clockStore: QueueConfined<ManualClock>

    /// Creates the thread with a queue labelled `label`.
    public init(label: String = "xform.test.reactor") {
        let q = DispatchQueue(label: label)
        queue = q
        clockStore = QueueConfined(ManualClock())
        q.setSpecific(key: key, value: ObjectIdentifier(clockStore))
        clockStore.owner = self
    }

    public func callFromThread(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    public var isReactorThread: Bool {
        DispatchQueue.getSpecific(key: key) == ObjectIdentifier(clockStore)
    }

    /// Runs `body` on the reactor thread and waits for it.
    ///
    /// - Precondition: not called from the reactor thread.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        precondition(!isReactorThread, "DispatchReactorThread.run called on the reactor thread")
        return try queue.sync(execute: body)
    }

    /// The clock; only usable on the reactor thread.
    public var clock: ManualClock { clockStore.value }

    /// Advances the clock on the reactor thread and waits for the calls it runs.
    public func advance(by amount: Duration) {
        run { clock.advance(by: amount) }
    }

    /// Waits until the work queued so far has run.
    public func drain() { run {} }

    /// Makes a box whose value may be read and written only on this reactor thread.
    public func confined<T>(_ value: T) -> QueueConfined<T> {
        let box = QueueConfined(value)
        box.owner = self
        return box
    }
}

/// A value confined to a ``DispatchReactorThread``: reading or writing it off that thread is a
/// precondition failure.
///
/// `@unchecked Sendable` because every access to `stored` checks that it runs on the owning
/// serial queue, which serialises them.
public final class QueueConfined<T>: @unchecked Sendable {
    var stored: T
    weak var owner: DispatchReactorThread?

    init(_ value: T) { stored = value }

    /// The value. Precondition: on the owning reactor thread.
    public var value: T {
        get {
            precondition(owner?.isReactorThread ?? false, "QueueConfined value read off its reactor thread")
            return stored
        }
        set {
            precondition(owner?.isReactorThread ?? false, "QueueConfined value written off its reactor thread")
            stored = newValue
        }
    }
}
