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
    /// When the frame being read has a declared size: how many bytes of it (from where the last
    /// step kept) the input will hold once it is complete, so a buffer can be sized once.
    var partialFrameSize: Int? { get }
}

extension InPlaceFrameParser {
    /// Unknown by default (lines have no declared size).
    var partialFrameSize: Int? { nil }
}

/// The input buffer of the pure decoders: bytes fed in, frames taken out by an in-place parser.
/// The buffer is read by index and compacted only when that is cheap (everything consumed, or a
/// consumed prefix at least as long as the rest), so drip-fed input costs amortised O(1) a byte.
/// What to do after a failure is the decoder's business.
struct BufferedParser<Parser: InPlaceFrameParser> {
    enum Outcome {
        case frame([UInt8])
        case needMore
        /// The parser failed at `at`, the first byte of the bad frame.
        case failed(Parser.Failure, at: Int)
    }

    var parser: Parser
    private(set) var buffer: [UInt8] = []
    var readIndex = 0

    init(_ parser: Parser) { self.parser = parser }

    /// Bytes fed and not yet consumed.
    var leftover: Int { buffer.count - readIndex }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Parses the next frame from the unconsumed input.
    mutating func next() -> Outcome {
        let start = readIndex
        let step = buffer.withUnsafeBytes { parser.step($0, from: start) }
        switch step {
        case .frame(let range, let next):
            readIndex = next
            return .frame(Array(buffer[range]))
        case .needMore(let keep):
            readIndex = keep
            return .needMore
        case .failed(let e, let at):
            return .failed(e, at: at)
        }
    }

    /// Drops all input.
    mutating func removeAll() {
        buffer = []
        readIndex = 0
    }

    private mutating func compact() {
        if readIndex == 0 { return }
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 65_536)
            readIndex = 0
        } else if readIndex >= buffer.count - readIndex {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
