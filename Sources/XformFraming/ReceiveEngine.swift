import XformCore

/// What a receiver offers the engine that feeds it frames.
protocol FrameSink: AnyObject {
    associatedtype Failure: Error
    /// One frame; the bytes are valid only during the call.
    func deliverFrame(_ frame: UnsafeRawBufferPointer)
    /// Malformed input. Returns true to skip the bad frame and go on, false to stop for good.
    func handleFailure(_ failure: Failure) -> Bool
    /// True when nothing more may be delivered (the transport is disconnecting).
    var deliveryStopped: Bool { get }
    /// Every complete frame before the peer's EOF was delivered. `leftover` holds the bytes of a
    /// partial frame (empty if none); `midFrame` says whether a frame was begun at all.
    func inputEnded(leftover: UnsafeRawBufferPointer, midFrame: Bool)
    /// Delivery is paused and more than the backlog limit is buffered (true), or no longer (false).
    func backlogChanged(overLimit: Bool)
}

/// Feeds frames from incoming chunks to a receiver, zero-copy when it can.
///
/// When nothing is buffered and delivery is not paused, frames that lie wholly inside a chunk are
/// delivered as pointers into the chunk; only the tail of the chunk (a partial frame) is copied.
/// Otherwise bytes go to one buffer, read by index and compacted when mostly consumed.
///
/// Re-entrancy: a frame handler may pause or resume delivery, close the connection, or even cause
/// more `receive` calls (a loopback transport). While a delivery is running (`busy`), nested input
/// is set aside in `reentrant` and taken up, in order, by the running loop; nested resumes only
/// clear the flag. The buffer is never mutated while a pointer into it is being delivered.
final class ReceiveEngine<Parser: InPlaceFrameParser> {
    private(set) var parser: Parser
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var reentrant: [UInt8] = []
    private var busy = false
    private(set) var paused = false
    /// Stopped for good: a framing error or the connection was lost.
    private(set) var halted = false
    private var eof = false
    private var endDelivered = false
    private var overLimit = false
    /// While paused, buffering more than this many bytes asks the sink to stop reading.
    let backlogLimit: Int

    init(parser: Parser, backlogLimit: Int) {
        self.parser = parser
        self.backlogLimit = backlogLimit
    }

    /// Bytes received and not yet delivered (nor consumed into a length prefix).
    var bufferedByteCount: Int { buffer.count - readIndex + reentrant.count }

    func receive<S: FrameSink>(_ chunk: UnsafeRawBufferPointer, sink: S) where S.Failure == Parser.Failure {
        if halted || eof || chunk.isEmpty { return }
        if busy {
            reentrant.append(contentsOf: chunk)
            return
        }
        if sink.deliveryStopped { return }
        if paused || readIndex < buffer.count {
            buffer.append(contentsOf: chunk)
            drain(sink)
            return
        }
        // Fast path: parse the chunk in place.
        busy = true
        var pos = 0
        parsing: while true {
            switch parser.step(chunk, from: pos) {
            case .frame(let range, let next):
                pos = next
                sink.deliverFrame(UnsafeRawBufferPointer(rebasing: chunk[range]))
                if sink.deliveryStopped || halted {
                    busy = false
                    halt()
                    return
                }
                if paused { break parsing }
            case .needMore(let keep):
                pos = keep
                break parsing
            case .failed(let failure, let at):
                if !halted && sink.handleFailure(failure) && !sink.deliveryStopped && !halted {
                    parser.resync()
                    pos = at
                } else {
                    busy = false
                    halt()
                    return
                }
            }
        }
        if pos < chunk.count {
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[pos...]))
        }
        busy = false
        drain(sink)
    }

    func pause() {
        paused = true
    }

    func resume<S: FrameSink>(sink: S) where S.Failure == Parser.Failure {
        guard paused else { return }
        paused = false
        // Inside a delivery the running loop sees the flag; otherwise deliver what is buffered now.
        if !busy { drain(sink) }
    }

    func endOfInput<S: FrameSink>(sink: S) where S.Failure == Parser.Failure {
        if halted || eof { return }
        eof = true
        if !busy { drain(sink) }
    }

    /// Stops all delivery and frees the buffers (later, if a delivery is running).
    func halt() {
        halted = true
        if !busy {
            buffer = []
            reentrant = []
            readIndex = 0
        }
    }

    /// Delivers buffered frames until more input is needed, delivery is paused, or it stops.
    private func drain<S: FrameSink>(_ sink: S) where S.Failure == Parser.Failure {
        if busy || halted { return }
        busy = true
        draining: while true {
            if !reentrant.isEmpty {
                buffer.append(contentsOf: reentrant)
                reentrant.removeAll(keepingCapacity: reentrant.capacity <= 65_536)
            }
            if paused || halted { break }
            if sink.deliveryStopped {
                busy = false
                halt()
                return
            }
            let start = readIndex
            let step: ParseStep<Parser.Failure> = buffer.withUnsafeBytes { raw in
                let s = parser.step(raw, from: start)
                if case .frame(let range, let next) = s {
                    readIndex = next
                    sink.deliverFrame(UnsafeRawBufferPointer(rebasing: raw[range]))
                }
                return s
            }
            switch step {
            case .frame:
                continue draining
            case .needMore(let keep):
                readIndex = keep
                if reentrant.isEmpty { break draining }
            case .failed(let failure, let at):
                readIndex = at
                if !(!halted && sink.handleFailure(failure) && !sink.deliveryStopped && !halted) {
                    busy = false
                    halt()
                    return
                }
                parser.resync()
            }
        }
        compact()
        busy = false
        if halted {
            halt()
            return
        }
        if paused {
            if !overLimit && bufferedByteCount > backlogLimit {
                overLimit = true
                sink.backlogChanged(overLimit: true)
            }
            return
        }
        if overLimit {
            overLimit = false
            sink.backlogChanged(overLimit: false)
        }
        if eof && !endDelivered && !sink.deliveryStopped {
            endDelivered = true
            busy = true
            let mid = parser.isMidFrame
            let start = readIndex
            buffer.withUnsafeBytes { raw in
                sink.inputEnded(leftover: UnsafeRawBufferPointer(rebasing: raw[start...]), midFrame: mid)
            }
            busy = false
            halt()
        }
    }

    private func compact() {
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
