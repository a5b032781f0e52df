// Framing micro-benchmarks: the cost of the netstring and line receivers per frame, with no
// sockets. Run with `swift run -c release xform-bench framing`.
import XformCore
import XformFraming

/// A transport that drops writes: only the receiver's own cost is measured.
private final class NullTransport: Transport {
    func write(_ bytes: UnsafeRawBufferPointer) {}
    func loseConnection() { disconnecting = true }
    func abortConnection() { disconnecting = true }
    func loseWriteConnection() {}
    func pauseReading() {}
    func resumeReading() {}
    var disconnecting = false
    var bufferedByteCount: Int { 0 }
    var peer = SocketAddress(host: "127.0.0.1", port: 1)
    var host = SocketAddress(host: "127.0.0.1", port: 2)
}

/// Counts frames and folds one byte of each, so the work cannot be optimised away.
private final class CountingNetstring: NetstringReceiver {
    var frames = 0
    var check = 0
    override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        frames &+= 1
        check &+= Int(payload[payload.count &- 1])
    }
}

private final class CountingLines: LineReceiver {
    var frames = 0
    var check = 0
    override func lineReceived(_ line: UnsafeRawBufferPointer) {
        frames &+= 1
        check &+= Int(line[line.count &- 1])
    }
}

/// Runs `body` (which processes `frames` frames) `repetitions` times; returns the median ns/frame.
private func measure(frames: Int, repetitions: Int = 7, _ body: () -> Int) -> (Double, Int) {
    var samples: [Double] = []
    var check = 0
    let clock = ContinuousClock()
    for _ in 0..<repetitions {
        let start = clock.now
        check &+= body()
        let elapsed = clock.now - start
        samples.append(elapsed.seconds * 1e9 / Double(frames))
    }
    samples.sort()
    return (samples[samples.count / 2], check)
}

/// Feeds `stream` to `feed` in chunks of `size` bytes, as pointers into the one stream buffer
/// (the harness itself allocates and retains nothing per chunk).
@inline(__always)
private func forEachChunk(_ stream: [UInt8], _ size: Int, _ feed: (UnsafeRawBufferPointer) -> Void) {
    stream.withUnsafeBytes { raw in
        var i = 0
        while i < raw.count {
            let end = min(raw.count, i + size)
            feed(UnsafeRawBufferPointer(rebasing: raw[i..<end]))
            i = end
        }
    }
}

/// Measures netstring and line decoding of 64-byte frames and prints ns/frame per scenario.
/// With `only`, runs just the scenarios whose name contains it (for `perf stat` per scenario).
func runFramingBench(only: String? = nil) {
    let payloadSize = 64
    let framesPerRun = 200_000
    let payload = (0..<payloadSize).map { UInt8(ascii: "a") + UInt8($0 % 26) }
    var one: [UInt8] = []
    payload.withUnsafeBytes { NetstringEncoder.append($0, to: &one) }
    let stream = Array((0..<framesPerRun).map { _ in one }.joined())
    var lineOne = payload
    lineOne.append(UInt8(ascii: "\n"))
    let lineStream = Array((0..<framesPerRun).map { _ in lineOne }.joined())

    print("framing: \(framesPerRun) frames of \(payloadSize) bytes per run, median of 7 runs")
    var sink = 0

    func netstringScenario(_ name: String, _ chunkSize: Int) {
        if let only, !"netstring receiver, \(name)".contains(only) { return }
        let (ns, c) = measure(frames: framesPerRun) {
            let t = NullTransport()
            let p = CountingNetstring()
            p.makeConnection(t)
            forEachChunk(stream, chunkSize) { p.dataReceived($0) }
            precondition(p.frames == framesPerRun, "\(name): got \(p.frames) frames")
            return p.check
        }
        sink &+= c
        print("  netstring receiver, \(name): \(String(format: ns)) ns/frame")
    }

    func lineScenario(_ name: String, _ chunkSize: Int) {
        if let only, !"line receiver, \(name)".contains(only) { return }
        let (ns, c) = measure(frames: framesPerRun) {
            let t = NullTransport()
            let p = CountingLines()
            p.makeConnection(t)
            forEachChunk(lineStream, chunkSize) { p.dataReceived($0) }
            precondition(p.frames == framesPerRun, "\(name): got \(p.frames) frames")
            return p.check
        }
        sink &+= c
        print("  line receiver, \(name): \(String(format: ns)) ns/frame")
    }

    // 16 KiB reads holding ~240 frames, cut at frame boundaries: pure zero-copy path.
    let framesPer16K = 16_384 / one.count
    netstringScenario("zero-copy, \(framesPer16K) whole frames per read", framesPer16K * one.count)
    // One frame per read: the request/response case.
    netstringScenario("zero-copy, one frame per read", one.count)
    // 16 KiB reads cut anywhere: mostly zero-copy, one frame per read goes through the buffer.
    netstringScenario("16 KiB reads cut mid-frame", 16_384)
    // 7-byte reads: every frame goes through the buffer.
    netstringScenario("buffered, 7-byte reads", 7)

    // The pure decoder, which returns each payload as a new array.
    if only == nil || "NetstringDecoder".contains(only!) {
        let (ns, c) = measure(frames: framesPerRun) {
            var d = NetstringDecoder()
            var n = 0
            var check = 0
            forEachChunk(stream, 16_384) { chunk in
                d.feed(chunk)
                while let f = try? d.next() {
                    n += 1
                    check &+= Int(f[f.count - 1])
                }
            }
            precondition(n == framesPerRun)
            return check
        }
        sink &+= c
        print("  NetstringDecoder (allocates each frame), 16 KiB reads: \(String(format: ns)) ns/frame")
    }

    let linesPer16K = 16_384 / lineOne.count
    lineScenario("zero-copy, \(linesPer16K) whole lines per read", linesPer16K * lineOne.count)
    lineScenario("zero-copy, one line per read", lineOne.count)
    lineScenario("buffered, 7-byte reads", 7)
    if sink == 42 { print("") }
}

extension String {
    fileprivate init(format value: Double) {
        let scaled = (value * 10).rounded() / 10
        self = "\(scaled)"
    }
}
