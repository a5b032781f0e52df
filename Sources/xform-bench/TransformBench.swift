#if canImport(Glibc)
import Glibc
#endif
import XformCore
import XformTransforms

/// Measures the cummingsify paths: the ASCII byte loop, the server's `apply` entry, and the
/// String paths, on 64 B and 1 MiB inputs; then the non-ASCII case mappings (Greek, Cyrillic,
/// Latin-1) and the one-time build of their tables. Prints medians of several repetitions; asserts nothing.
enum TransformBench {
    /// A clock nothing is scheduled on: the synchronous transforms never touch it.
    final class IdleClock: ReactorTime {
        var now: Duration { .zero }
        func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall {
            fatalError("the benchmark schedules nothing")
        }
        func schedule(_ target: any TimerTarget, atNanoseconds deadline: Int64) -> TimerToken {
            fatalError("the benchmark schedules nothing")
        }
        func cancelTimer(_ token: TimerToken) {}
    }

    /// Writes a line straight to fd 1, so each figure shows as soon as it is measured.
    static func emit(_ line: String) {
        var line = line + "\n"
        line.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// Runs `body` `iterations` times per repetition; returns the median nanoseconds per iteration.
    static func measure(iterations: Int, repetitions: Int = 7, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<repetitions {
            let start = clock.now
            for _ in 0..<iterations { body() }
            let elapsed = clock.now - start
            samples.append(elapsed.seconds * 1e9 / Double(iterations))
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    static func report(_ label: String, bytes: Int, nanoseconds: Double) {
        let mbps = Double(bytes) / nanoseconds * 1e9 / 1e6
        let ns = nanoseconds < 10_000 ? "\(Int(nanoseconds.rounded())) ns" : "\(Int((nanoseconds / 1000).rounded())) µs"
        emit("\(pad(label, 52)) \(pad(ns, 10)) \(Int(mbps.rounded())) MB/s")
    }

    static func run() {
        var sink: UInt64 = 0  // results feed this so the optimiser keeps the work
        let service = TransformService()
        let handle = service.lookup("cummingsify")!
        let fast = handle.asciiFastPath!
        let context = TransformContext(clock: IdleClock())  // no pool: everything inline
        let line = Array("HERE IS MY POEM, Twisted Style: IT IS A POEM ABOUT SWIFT AND PY!".utf8)
        precondition(line.count == 64)
        let big = [UInt8]((0..<(1 << 20)).map { line[$0 % 64] })
        let greek = String(repeating: "ΟΔΟΣ ΚΑΙ ΠΟΙΗΜΑ. ", count: 1 << 20 / 32)

        // First, before anything touches them: the case tables' one-time build.
        let buildStart = ContinuousClock.now
        let tableBytes = PythonCase.prepareTables()
        let buildTime = ContinuousClock.now - buildStart
        emit("case tables: built once in \(Int((buildTime.seconds * 1e3).rounded())) ms, \(tableBytes / 1024) KiB")

        emit("cummingsify (median of 7 repetitions)")
        for (input, iterations) in [(line, 2_000_000), (big, 40)] {
            let size = input.count == 64 ? "64 B" : "1 MiB"
            var output = [UInt8](repeating: 0, count: input.count)
            let fastNs = input.withUnsafeBytes { i in
                output.withUnsafeMutableBytes { o in
                    measure(iterations: iterations) {
                        fast(i, o)
                        sink &+= UInt64(o[o.count - 1])
                    }
                }
            }
            report("ASCII fast path, \(size) (into a reused buffer)", bytes: input.count, nanoseconds: fastNs)
            let checkNs = input.withUnsafeBytes { i in
                measure(iterations: iterations) { sink &+= ASCIIBytes.isASCII(i) ? 1 : 0 }
            }
            report("isASCII, \(size)", bytes: input.count, nanoseconds: checkNs)
            let applyNs = input.withUnsafeBytes { i in
                measure(iterations: iterations) {
                    if case .done(let out) = handle.apply(i, context: context) { sink &+= UInt64(out.count) }
                }
            }
            report("apply(bytes): isASCII + fast path + reply array, \(size)", bytes: input.count, nanoseconds: applyNs)
            let text = String(decoding: input, as: UTF8.self)
            let pythonNs = measure(iterations: iterations) { sink &+= UInt64(PythonCase.lower(text).utf8.count) }
            report("String path PythonCase.lower, \(size)", bytes: input.count, nanoseconds: pythonNs)
            let swiftNs = measure(iterations: iterations) { sink &+= UInt64(text.lowercased().utf8.count) }
            report("String.lowercased() (not Python-exact), \(size)", bytes: input.count, nanoseconds: swiftNs)
            let mapNs = measure(iterations: iterations) {
                let out = input.map { $0 &- 65 < 26 ? $0 | 0x20 : $0 }
                sink &+= UInt64(out.count)
            }
            report("[UInt8].map, \(size)", bytes: input.count, nanoseconds: mapNs)
        }
        let greekNs = measure(iterations: 1, repetitions: 5) { sink &+= UInt64(PythonCase.lower(greek).utf8.count) }
        report("String path on Greek (non-ASCII), 1 MiB", bytes: greek.utf8.count, nanoseconds: greekNs)
        let cyrillic = String(repeating: "ЗДРАВСТВУЙ, МИР; Привет ", count: 1 << 20 / 42)
        let latin1 = String(repeating: "ÉTÉ À L'ÎLE DU ŒUVRE, Straße. ", count: 1 << 20 / 36)
        let greek16K = String(repeating: "ΟΔΟΣ ΚΑΙ ΠΟΙΗΜΑ. ", count: 16 << 10 / 32)
        let cases: [(String, (String) -> String)] = [
            ("lower", PythonCase.lower), ("upper", PythonCase.upper), ("title", PythonCase.title),
        ]
        for (name, f) in cases {
            for (script, text) in [("Greek", greek), ("Cyrillic", cyrillic), ("Latin-1", latin1)] {
                let ns = measure(iterations: 3, repetitions: 5) { sink &+= UInt64(f(text).utf8.count) }
                report("PythonCase.\(name), \(script), \(text.utf8.count >> 10) KiB", bytes: text.utf8.count, nanoseconds: ns)
            }
        }
        let smallNs = measure(iterations: 200) { sink &+= UInt64(PythonCase.lower(greek16K).utf8.count) }
        report("PythonCase.lower, Greek, 16 KiB (one request)", bytes: greek16K.utf8.count, nanoseconds: smallNs)
        let name = Array("cummingsify".utf8)
        let lookupNs = name.withUnsafeBytes { n in
            measure(iterations: 2_000_000) { sink &+= service.lookup(name: n) == nil ? 0 : 1 }
        }
        report("lookup(name: bytes) of cummingsify", bytes: name.count, nanoseconds: lookupNs)
        emit("(checksum \(sink))")
    }
}
