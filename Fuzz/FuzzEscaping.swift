// libFuzzer target: the line protocol's text escaping (XformFraming LineTransformCodec, shared by server and client).
// escape then unescape gives the input back; unescape of anything either fails cleanly or gives
// text whose escaping unescapes to the same text; escaped text has no line breaks.
import XformFraming

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEscaping(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = UnsafeRawBufferPointer(start: start, count: count)
    var escaped: [UInt8] = []
    LineTransformCodec.escape(data, into: &escaped)
    precondition(!escaped.contains(10) && !escaped.contains(13), "escaped text holds a line break")
    let back = escaped.withUnsafeBytes { LineTransformCodec.unescape($0) }
    guard case .success(let text) = back, text.elementsEqual(data) else { preconditionFailure("round trip failed") }
    if case .success(let decoded) = LineTransformCodec.unescape(data) {
        var again: [UInt8] = []
        decoded.withUnsafeBytes { LineTransformCodec.escape($0, into: &again) }
        let twice = again.withUnsafeBytes { LineTransformCodec.unescape($0) }
        guard case .success(let same) = twice, same == decoded else { preconditionFailure("re-escape failed") }
    }
    return 0
}
