// libFuzzer target: the line decoder (XformFraming). Kept thin so it follows API renames.
// Whole and chunked decoding must agree (lines, errors, recovery after an over-long line), and
// no line may contain a newline or exceed the maximum.
import XformFraming

func decodeAll(_ data: UnsafeRawBufferPointer, chunk: Int, maxLength: Int) -> [String] {
    var decoder = LineDecoder(maxLineLength: maxLength)
    var events: [String] = []
    var start = 0
    repeat {
        let end = min(data.count, start + chunk)
        decoder.feed(UnsafeRawBufferPointer(rebasing: data[start..<end]))
        start = end
        while true {
            do {
                guard let line = try decoder.next() else { break }
                precondition(!line.contains(10) && line.count <= maxLength, "bad line")
                events.append("line \(line)")
            } catch {
                events.append("error")
                decoder.discardUntilNextLine()
            }
        }
    } while start < data.count
    if let rest = decoder.takeUnterminatedLine() { events.append("rest \(rest)") }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLine(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = UnsafeRawBufferPointer(start: start, count: count)
    let chunk = count > 0 ? Int(data[0] % 5) + 1 : 1
    let maxLength = count > 1 && data[1] & 1 == 1 ? 8 : defaultMaxLineLength
    let whole = decodeAll(data, chunk: max(count, 1), maxLength: maxLength)
    let pieces = decodeAll(data, chunk: chunk, maxLength: maxLength)
    // An over-long line is reported once it passes the limit, wherever the chunks split it;
    // the lines themselves must be identical.
    precondition(whole.filter { $0 != "error" } == pieces.filter { $0 != "error" }, "lines differ")
    return 0
}
