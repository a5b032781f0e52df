// libFuzzer target: the Unicode case mappings (XformTransforms PythonCase), built with
// -enable-testing. The table-driven paths must give exactly the bytes of the per-code-point
// reference, on any text (invalid UTF-8 is repaired first, as String(decoding:) does), and the
// server's entry point must agree with them; reverse must keep every byte.
@testable import XformTransforms
import XformCore

final class NoClock: ReactorTime {
    var now: Duration { .zero }
    func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall { fatalError("unused") }
}

// libFuzzer calls the target from one thread only.
nonisolated(unsafe) let handles = TransformService()
nonisolated(unsafe) let context = TransformContext(clock: NoClock())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCaseMapping(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = UnsafeRawBufferPointer(start: start, count: count)
    let text = String(decoding: data, as: UTF8.self)
    let lower = PythonCase.lower(text)
    let upper = PythonCase.upper(text)
    let title = PythonCase.title(text)
    precondition(lower == PythonCase.lowerScalars(text), "lower differs from the reference")
    precondition(upper == PythonCase.upperScalars(text), "upper differs from the reference")
    precondition(title == PythonCase.titleScalars(text), "title differs from the reference")
    let reversed = BuiltinTransforms.reverseText(text)
    precondition(reversed.utf8.count == text.utf8.count, "reverse lost bytes")
    // The linear forward segmentation must find the clusters the standard library's backward
    // walk finds (that walk is quadratic on long runs, so only short texts are compared).
    if count < 512 { precondition(reversed == String(text.reversed()), "reverse differs from String.reversed()") }
    let bytes = Array(text.utf8)
    for (name, expected) in [("cummingsify", lower), ("upper", upper), ("title", title), ("reverse", reversed)] {
        let outcome = bytes.withUnsafeBytes { handles.lookup(name)!.apply($0, context: context) }
        guard case .done(let out) = outcome, out == Array(expected.utf8) else { preconditionFailure("\(name) apply differs") }
    }
    return 0
}
