// libFuzzer target: the netstring decoder (XformFraming). Kept thin so it follows API renames.
// The input is decoded twice, all at once and in chunks whose sizes come from the input itself;
// both must give the same frames and the same error. Every frame must re-encode to a netstring
// that decodes back to it. A small maximum length reaches the limit checks too.
import XformFraming

func decodeAll(_ data: UnsafeRawBufferPointer, chunk: Int, maxLength: Int) -> ([[UInt8]], String?) {
    var decoder = NetstringDecoder(maxLength: maxLength)
    var frames: [[UInt8]] = []
    var start = 0
    repeat {
        let end = min(data.count, start + chunk)
        decoder.feed(UnsafeRawBufferPointer(rebasing: data[start..<end]))
        start = end
        do {
            while let f = try decoder.next() { frames.append(f) }
        } catch {
            return (frames, "\(error)")
        }
    } while start < data.count
    return (frames, nil)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetstring(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = UnsafeRawBufferPointer(start: start, count: count)
    let chunk = count > 0 ? Int(data[0] % 7) + 1 : 1
    let maxLength = count > 1 && data[1] & 1 == 1 ? 16 : defaultNetstringMaxLength
    let whole = decodeAll(data, chunk: max(count, 1), maxLength: maxLength)
    let pieces = decodeAll(data, chunk: chunk, maxLength: maxLength)
    precondition(whole.0 == pieces.0, "frames differ between whole and chunked input")
    precondition((whole.1 == nil) == (pieces.1 == nil), "errors differ: \(String(describing: whole.1)) / \(String(describing: pieces.1))")
    for frame in whole.0 {
        precondition(frame.count <= maxLength)
        let encoded = NetstringEncoder.encode(frame)
        let again = encoded.withUnsafeBytes { decodeAll($0, chunk: encoded.count, maxLength: maxLength) }
        precondition(again.0 == [frame] && again.1 == nil, "round trip failed")
    }
    return 0
}
