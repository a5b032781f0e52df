import XformCore
import XformTransforms

/// `xform-bench linear [MAXBYTES]`: every synchronous built-in transform on every
/// ``PathologicalText`` shape, doubling the input from 4 KiB to MAXBYTES (default 256 KiB).
/// Prints the time per call and the ratio to the previous size: a linear transform stays near
/// 2.0, a quadratic one near 4.0 (issue 10 §3). Asserts nothing; the test suite has the bounds.
enum LinearityBench {
    static func run(maxBytes: Int) {
        let service = TransformService()
        let context = TransformContext(clock: TransformBench.IdleClock(), threadPool: nil, maximumInputBytes: Int.max)
        let names = service.catalog.map(\.name).filter { !service.lookup($0)!.isAsynchronous }
        TransformBench.emit("time per call (median of 5), and the ratio to half the input")
        for shape in PathologicalText.shapes {
            for name in names {
                let handle = service.lookup(name)!
                var line = TransformBench.pad("\(name) \(shape.name)", 38)
                var previous: Double?
                var worst = 0.0
                var bytes = 4096
                while bytes <= maxBytes {
                    let input = Array(shape.make(bytes).utf8)
                    let ns = TransformBench.measure(iterations: 1, repetitions: 5) {
                        _ = input.withUnsafeBytes { handle.apply($0, context: context) }
                    }
                    line += " \(bytes / 1024)K:" + format(ns)
                    if let previous { worst = max(worst, ns / previous) }
                    previous = ns
                    bytes *= 2
                }
                let nsPerByte = (previous ?? 0) / Double(bytes / 2)
                line += "  worst x\(String(format2: worst))  \(String(format2: nsPerByte)) ns/B"
                TransformBench.emit(line)
            }
        }
    }

    static func format(_ ns: Double) -> String {
        ns >= 1e6 ? "\(String(format2: ns / 1e6))ms" : "\(Int((ns / 1e3).rounded()))us"
    }
}

extension String {
    /// Two decimals, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
