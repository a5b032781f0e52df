import CXformShims
import Dispatch
import Glibc
import Synchronization
import XformCore

/// The thread-safe door into an ``EpollReactor``: a queue of calls and an eventfd that wakes
/// the reactor (Twisted's `callFromThread`).
///
/// This is the only part of a reactor that other threads may touch. It is a small `Sendable`
/// handle: hand it to thread-pool work, async code or other threads.
public final class EpollThreading: ReactorThreading {
    /// The eventfd the reactor watches. Owned by this handle, closed when it goes away.
    let eventFD: Int32
    /// Calls queued for the reactor thread, in arrival order.
    struct Queue {
        var calls: [@Sendable () -> Void] = []
    }
    let queue = PthreadMutex(Queue())  // not Mutex: TSan cannot see Mutex's futex slow path
    /// True while ``queue`` holds calls: set under the lock after an enqueue, cleared under the
    /// lock when the reactor takes them, so a loop turn with nothing queued takes no lock.
    let callsQueued = Atomic<Bool>(false)
    /// True while the reactor is (about to be) blocked in `epoll_wait` without a wake-up on its
    /// way. An atomic, not part of ``queue``: a loop turn that sleeps then takes no lock (the
    /// lock cost about 200 instructions per keep-alive request, callgrind).
    let sleeping = Atomic<Bool>(false)
    /// Set by ``requestStop()``; the reactor turns it into ``EpollReactor/stop()``.
    let stopRequested = Atomic<Bool>(false)
    /// The `pthread_t` of the thread running the reactor.
    let owner = Atomic<UInt>(0)

    init() throws(SystemError) {
        let fd = cxf_eventfd()
        guard fd >= 0 else { throw SystemError("eventfd", errno: lastErrno()) }
        eventFD = fd
        owner.store(UInt(pthread_self()), ordering: .releasing)
    }

    deinit { closeFD(eventFD) }

    /// Queues `work` to run on the reactor thread, in order with the other queued calls, and
    /// wakes the reactor. Never runs `work` synchronously, even on the reactor thread. Calls
    /// queued after the reactor has shut down are dropped.
    public func callFromThread(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { q in
            q.calls.append(work)
            callsQueued.store(true, ordering: .sequentiallyConsistent)
        }
        // The reactor sets `sleeping` and then reads `callsQueued`; we set `callsQueued` and
        // then read `sleeping` (both sequentially consistent): either it sees this call before
        // blocking, or we see it sleeping here. One wake-up per sleep is enough.
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake() }
    }

    /// True when the caller runs on the reactor thread.
    public var isReactorThread: Bool {
        pthread_equal(pthread_self(), pthread_t(owner.load(ordering: .acquiring))) != 0
    }

    /// Asks the reactor to stop (as ``EpollReactor/stop()`` does), from any thread.
    public func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        sleeping.store(false, ordering: .relaxed)
        wake()
    }

    /// Reactor thread, before `epoll_wait`: marks the loop sleeping unless calls are queued.
    /// - Returns: true when calls are waiting (the loop must not block).
    func prepareToSleep() -> Bool {
        sleeping.store(true, ordering: .sequentiallyConsistent)
        if callsQueued.load(ordering: .sequentiallyConsistent) {
            sleeping.store(false, ordering: .relaxed)
            return true
        }
        return false
    }

    /// Reactor thread, after `epoll_wait`.
    func awake() {
        sleeping.store(false, ordering: .relaxed)
    }

    /// Makes the eventfd readable so `epoll_wait` returns.
    func wake() {
        var one: UInt64 = 1
        while true {
            let n = Glibc.write(eventFD, &one, 8)
            if n < 0 && lastErrno() == EINTR { continue }
            // EAGAIN means the counter is saturated: the reactor is already woken.
            return
        }
    }

    /// Clears the eventfd (reactor thread).
    func drain() {
        var value: UInt64 = 0
        while true {
            let n = Glibc.read(eventFD, &value, 8)
            if n < 0 && lastErrno() == EINTR { continue }
            return
        }
    }
}

/// Runs a closure on a new detached POSIX thread.
func spawnDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Start: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Start(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(
        &tid, nil,
        { arg in
            Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, context)
    if rc != 0 {
        Unmanaged<Start>.fromOpaque(context).release()
        return false
    }
    pthread_detach(tid)
    return true
}

/// A fixed-size pool of worker threads, started lazily, fed from one FIFO queue.
final class WorkerPool: Sendable {
    struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var threads = 0
        var idle = 0
        var stopping = false
    }

    let state = PthreadMutex(State())  // not Mutex: TSan cannot see Mutex's futex slow path
    let available = DispatchSemaphore(value: 0)
    let maxThreads: Int

    init(maxThreads: Int) { self.maxThreads = max(1, maxThreads) }

    /// Queues `job`; starts another thread if none is idle and the pool is not full.
    /// - Returns: false when the pool is stopping (the job is dropped).
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let (accepted, spawn) = state.withLock { s -> (Bool, Bool) in
            if s.stopping { return (false, false) }
            s.jobs.append(job)
            if s.idle == 0 && s.threads < maxThreads {
                s.threads += 1
                return (true, true)
            }
            return (true, false)
        }
        guard accepted else { return false }
        if spawn {
            if !spawnDetachedThread({ self.workerLoop() }) {
                state.withLock { $0.threads -= 1 }
            }
        }
        available.signal()
        return true
    }

    func workerLoop() {
        while true {
            state.withLock { $0.idle += 1 }
            available.wait()
            let job: (@Sendable () -> Void)? = state.withLock { s in
                s.idle -= 1
                if s.stopping { return nil }
                guard s.head < s.jobs.count else { return { } }
                let j = s.jobs[s.head]
                s.head += 1
                if s.head == s.jobs.count {
                    s.jobs.removeAll(keepingCapacity: true)
                    s.head = 0
                } else if s.head > 1024 && s.head * 2 > s.jobs.count {
                    s.jobs.removeFirst(s.head)
                    s.head = 0
                }
                return j
            }
            guard let job else {
                state.withLock { $0.threads -= 1 }
                return
            }
            job()
        }
    }

    /// Drops queued jobs and lets every thread exit once its current job returns.
    func stop() {
        let n = state.withLock { s -> Int in
            s.stopping = true
            s.jobs.removeAll()
            s.head = 0
            return s.threads
        }
        for _ in 0..<n { available.signal() }
    }
}
