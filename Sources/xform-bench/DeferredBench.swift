import XformCore

/// Measures the cost per callback of long Deferred chains and prints the median over several
/// repetitions: `add then fire` (callbacks queued, then run by one `callback`) and `fire then
/// add` (each `addCallback` runs at once).
///
/// Optional arguments after `deferred`: chain length, repetitions, and a case-name filter, e.g.
/// `xform-bench deferred 100000 1 fire` (handy under `valgrind --tool=callgrind`).
func runDeferredBench() {
    let extra = Array(CommandLine.arguments.dropFirst(2))
    let chainLength = extra.count > 0 ? Int(extra[0]) ?? 1_000_000 : 1_000_000
    let repetitions = extra.count > 1 ? Int(extra[1]) ?? 7 : 7
    let filter = extra.count > 2 ? extra[2] : nil
    let clock = ContinuousClock()
    func nsPerCallback(_ body: () -> Void) -> Double {
        let elapsed = clock.measure(body)
        let c = elapsed.components
        let ns = Double(c.seconds) * 1e9 + Double(c.attoseconds) / 1e9
        return ns / Double(chainLength)
    }
    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s[s.count / 2]
    }
    var sink = 0
    let cases: [(String, () -> Void)] = [
        ("add then fire", {
            let d = Deferred<Int>()
            for _ in 0..<chainLength { d.addCallback { $0 &+ 1 } }
            try? d.callback(0)
            d.addCallback { sink &+= $0; return $0 }
        }),
        ("fire then add", {
            let d = Deferred<Int>()
            try? d.callback(0)
            for _ in 0..<chainLength { d.addCallback { $0 &+ 1 } }
            d.addCallback { sink &+= $0; return $0 }
        }),
        ("nested inner Deferreds (per level)", {
            let root = Deferred<Int>()
            var inners: [Deferred<Int>] = []
            inners.reserveCapacity(chainLength / 10)
            var current = root
            for _ in 0..<(chainLength / 10) {
                let next = Deferred<Int>()
                current.addCallback { _ in next }
                inners.append(next)
                current = next
            }
            try? root.callback(0)
            try? current.callback(1)
            root.addCallback { sink &+= $0; return $0 }
        }),
        // Unlike the case above (where only the root and the last level fire, so nothing resumes),
        // every level fires and waits on the next; firing the last resumes them all.
        ("nested inner Deferreds, every level resumed (per level)", {
            let levels = chainLength / 10
            let ds = (0..<levels).map { _ in Deferred<Int>() }
            for i in 0..<(levels - 1) {
                let next = ds[i + 1]
                ds[i].addCallback { _ in next }
                try? ds[i].callback(i)
            }
            try? ds[levels - 1].callback(1)
            ds[0].addCallback { sink &+= $0; return $0 }
        }),
    ]
    print("Deferred chain benchmark: \(chainLength) callbacks, \(repetitions) repetitions, median")
    for (name, body) in cases where filter.map({ name.contains($0) }) ?? true {
        let runs = (0..<repetitions).map { _ in nsPerCallback(body) }
        // The nested case builds a tenth as many levels; scale to ns per level.
        let scale = name.contains("nested") ? 10.0 : 1.0
        let m = median(runs) * scale
        let line = "  \(name): \(formatted(m)) ns/callback (min \(formatted(runs.min()! * scale)))"
        print(line)
    }
    if sink == 42 { print("") }  // keeps the work observable
}

func formatted(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    return String(r)
}
