
/// The reactor thread as a Swift task executor: what makes async bodies behave like Twisted's
/// `inlineCallbacks` (Introduction Part 17, seed 002).
///
/// A new body's first job runs at once, inside `deferredFromAsync`, even from inside another
/// body (as `Task.immediate` would): it runs to its first suspension before `deferredFromAsync`
/// returns. A resumption enqueued on the reactor thread while no job of this executor is running
/// also runs at once, inside the call that enqueued it: a body awaiting a Deferred resumes inside
/// that Deferred's `callback`, as a generator does under `inlineCallbacks`. A resumption enqueued
/// while one of this executor's jobs is running (a body firing a Deferred another body awaits, a
/// `Task.yield()`) waits in a FIFO drained as soon as the outermost running job returns, before
/// its caller regains control: the same reactor turn, deterministic order, no unbounded nesting
/// (Twisted would resume the other generator inside the `callback`; here it resumes right after
/// the current body's step). A job enqueued from another thread (a body resuming after awaiting
/// something off the reactor) goes through ``ReactorThreading/callFromThread(_:)``. So every job
/// runs on the reactor thread.
///
/// Chosen over a global actor (there is one reactor per thread, not one per process, and a
/// global actor's executor is process-wide) and over a custom actor with an `isolated`
/// parameter (bodies would have to send their captured reactor state to it): as a task executor
/// preference, it makes every nonisolated async function a body calls run on the reactor thread,
/// where its non-Sendable state lives, with no hop.
///
/// Get the one executor of a reactor thread with ``ReactorThreading/executor``.
public final class ReactorExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `running` and `queued` are touched only in `runOnReactor`, which runs
    // only on the reactor thread (checked with `isReactorThread` before it is called).

    /// The reactor thread this executor runs jobs on.
    public let threading: any ReactorThreading
    var running = false
    var queued: [UnownedJob] = []
    /// Set by `deferredFromAsync` around creating a body's task: the job enqueued meanwhile is
    /// the body's first, run at once even inside another job.
    @usableFromInline var startingTask = false

    init(threading: any ReactorThreading) {
        self.threading = threading
    }

    /// Runs `job` on the reactor thread: at once when called there outside another of this
    /// executor's jobs, after the running job when inside one, else through `callFromThread`.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if threading.isReactorThread {
            let starting = startingTask
            startingTask = false
            runOnReactor(job, nested: starting)
        } else {
            threading.callFromThread { [self] in runOnReactor(job) }
        }
    }

    func runOnReactor(_ job: UnownedJob, nested: Bool = false) {
        if running, !nested {
            queued.append(job)
            return
        }
        let outer = running
        running = true
        job.runSynchronously(on: asUnownedTaskExecutor())
        // Inside another job: that job's caller drains the queue.
        if outer { return }
        var index = 0
        while index < queued.count {
            let next = queued[index]
            index += 1
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
        queued.removeAll(keepingCapacity: true)
        running = false
    }

    /// The executors of live reactor threads, by the identity of their threading object. Weak:
    /// a running body keeps its executor alive; a new one is made when none is left.
    static let registry = PthreadMutex<[ObjectIdentifier: WeakExecutor]>([:])

    struct WeakExecutor {
        weak var executor: ReactorExecutor?
    }

    /// The one executor of `threading`'s thread.
    static func shared(for threading: any ReactorThreading) -> ReactorExecutor {
        let key = ObjectIdentifier(threading as AnyObject)
        return registry.withLock { map in
            if let e = map[key]?.executor { return e }
            let e = ReactorExecutor(threading: threading)
            map[key] = WeakExecutor(executor: e)
            if map.count > 64 { map = map.filter { $0.value.executor != nil } }
            return e
        }
    }
}

extension ReactorThreading {
    /// The reactor thread's task executor, shared by every async body started on it (see
    /// ``deferredFromAsync(on:file:line:_:)``). Conforming types must be classes (all are: the
    /// executor is found by the threading object's identity).
    public var executor: ReactorExecutor { ReactorExecutor.shared(for: self) }
}
