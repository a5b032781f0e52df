// The shared shape of the in-place parsers behind both the pure decoders and the receivers.
//
// A parser looks at bytes it does not own (a chunk handed to `dataReceived`, or a receiver's
// or decoder's buffer), from a start index, and says where the next frame is. It keeps only a
// little state of its own (a half-read length prefix, how much of a partial line was already
// scanned), so the same parser value can move from a chunk to a buffer that holds that chunk's
// leftover bytes.

/// What one parsing step found.
enum ParseStep<Failure: Error> {
    /// A whole frame: its payload's byte range in the input, and where the next frame starts.
    case frame(Range<Int>, next: Int)
    /// No whole frame yet. Bytes before `keepFrom` were consumed into the parser's state; the
    /// bytes from `keepFrom` on must be kept and handed in again (followed by more input).
    case needMore(keepFrom: Int)
    /// Malformed input. `at` is where the offending frame starts, for parsers that can resync.
    case failed(Failure, at: Int)
}

/// A framing parser that works on borrowed bytes.
protocol InPlaceFrameParser {
    associatedtype Failure: Error
    /// Parses from `start`, which is the first byte not consumed by an earlier step.
    mutating func step(_ input: UnsafeRawBufferPointer, from start: Int) -> ParseStep<Failure>
    /// True when some of a frame was consumed into the parser's state (a partial length prefix).
    var isMidFrame: Bool { get }
    /// After a failure the owner chose to survive: skip the rest of the bad frame.
    mutating func resync()
}
