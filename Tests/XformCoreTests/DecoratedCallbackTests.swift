// "Simpler Twisted deferred code via decorated callbacks" (Terry Jones, 2012, seed 001).
import Testing
import XformCore
import XformTesting

@Suite("Decorated callbacks")
struct DecoratedCallbackTests {
    @Test("reformat(cleanup(errcheck(getPage(), a1), a2), a3): the chain is hooked up by the lifted functions")
    func pageExample() throws {
        var log: [String] = []
        let errcheck = liftErrback { (e: any Error) -> String in log.append("errcheck \(e)"); return "<error page>" }
        let cleanup = liftCallback { (page: String, arg: Int) -> String in log.append("cleanup \(arg)"); return page.lowercased() }
        let reformat = liftCallback { (page: String, arg: String) -> String in log.append("reformat"); return "\(arg)\(page)\(arg)" }
        let getPage = Deferred<String>()
        let result = reformat(cleanup(errcheck(getPage), succeed(1)), succeed("*"))
        #expect(log.isEmpty && !result.called)
        try getPage.callback("PAGE")
        #expect(log == ["cleanup 1", "reformat"])  // errcheck is not called without an error
        #expect(successResult(of: result) == "*page*")

        log.removeAll()
        let failing = Deferred<String>()
        let recovered = reformat(cleanup(errcheck(failing), succeed(2)), succeed("!"))
        try failing.errback(PyException("404"))
        #expect(log == ["errcheck 404", "cleanup 2", "reformat"])
        #expect(successResult(of: recovered) == "!<error page>!")
    }

    @Test("func1(d1, errcheck(func2(d2, d3))): arguments are gathered whatever order they fire in")
    func nested() throws {
        var calls: [String] = []
        let func2 = liftCallback { (a: Int, b: Int) -> Int in calls.append("func2(\(a), \(b))"); return a + b }
        let func1 = liftCallback { (x: String, y: Int) -> String in calls.append("func1(\(x), \(y))"); return "\(x)=\(y)" }
        let errcheck = liftErrback { (_: any Error) -> Int in -1 }
        let d1 = Deferred<String>(), d2 = Deferred<Int>(), d3 = Deferred<Int>()
        let r = func1(d1, errcheck(func2(d2, d3)))
        try d3.callback(3)
        try d1.callback("sum")
        #expect(calls.isEmpty)
        try d2.callback(2)
        #expect(calls == ["func2(2, 3)", "func1(sum, 5)"])
        #expect(successResult(of: r) == "sum=5")
    }

    @Test("A failing argument fails the call without calling the function; cancelling cancels the arguments")
    func failures() throws {
        var called = false
        let f = liftCallback { (a: Int, b: String) -> String in called = true; return "\(a)\(b)" }
        let a = Deferred<Int>(), b = Deferred<String>()
        let r = f(a, b)
        try a.errback(PyException("bad a"))
        #expect(failureResult(of: r, as: PyException.self)?.message == "bad a")
        try b.callback("late")
        #expect(!called)

        let c = Deferred<Int>(), d = Deferred<String>()
        let r2 = f(c, d)
        r2.cancel()
        #expect(c.called && d.called)
        _ = failureResult(of: r2, as: CancelledError.self)

        let none = liftCallback { () -> Int in 42 }
        #expect(successResult(of: none()) == 42)
    }
}
