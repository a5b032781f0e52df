import Foundation
import Testing
import XformCore
import XformReactor

/// `stop()` must end `run()` from wherever it is called, even when nothing else would wake the
/// loop (the watchdog of `withReactor` is the only other timer: a hang shows as a time-out).
@Suite("Stopping the reactor")
struct StopTests {
    @Test("stop() from a zero-delay timer ends run()")
    func stopFromTimer() async {
        let run = await withReactor(timeout: .seconds(5)) { reactor in
            reactor.callLater(.zero) { reactor.stop() }
        }
        #expect(!run.timedOut)
    }

    @Test("requestStop() from another thread ends run()")
    func stopFromOtherThread() async {
        let run = await withReactor(timeout: .seconds(5)) { reactor in
            let threading = reactor.threadingHandle
            Thread { threading.requestStop() }.start()
        }
        #expect(!run.timedOut)
    }

    @Test("A shutdown trigger whose Deferred fires from a later timer lets run() end")
    func triggerFiringLater() async {
        let fired = Locked(false)
        let run = await withReactor(timeout: .seconds(5)) { reactor in
            reactor.addShutdownTrigger {
                deferLater(reactor, .milliseconds(20)) { fired.update { $0 = true } }
            }
            reactor.callLater(.zero) { reactor.stop() }
        }
        #expect(!run.timedOut)
        #expect(fired.value)
    }
}
