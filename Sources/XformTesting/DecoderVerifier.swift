import Testing
import XformCore

/// Checks a ``FrameDecoder`` against known input/output pairs under many chunkings, like NIO's
/// `ByteToMessageDecoderVerifier`.
///
/// The same bytes are fed all at once, one byte at a time, one input at a time, and in seeded
/// random chunks; after every feed the decoder is drained. Each strategy must produce exactly the
/// expected frames, in order, and ``FrameDecoder/finish()`` must not throw at the end.
public enum DecoderVerifier<D: FrameDecoder> {
    /// One way the decoder went wrong under one chunking.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// The chunking, e.g. `one byte at a time` or `random chunks (seed 3)`.
        public let strategy: String
        /// What went wrong.
        public let message: String
        public var description: String { "\(strategy): \(message)" }
    }

    /// Verifies that `makeDecoder()` decodes each input into its frames under every chunking.
    ///
    /// - Parameters:
    ///   - inputOutputPairs: byte inputs and the frames each completes (an input may complete
    ///     none; frames are expected, over the whole stream, in the listed order).
    ///   - randomSeeds: how many seeded random chunkings to try.
    ///   - recordIssues: record a Swift Testing issue per failure (on by default).
    /// - Returns: the failures found (empty when the decoder is correct).
    @discardableResult
    public static func verify(
        inputOutputPairs: [([UInt8], [D.Frame])], randomSeeds: Int = 20, recordIssues: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation, makeDecoder: () -> D
    ) -> [Failure] {
        let all = inputOutputPairs.flatMap { $0.0 }
        let expected = inputOutputPairs.flatMap { $0.1 }
        var failures: [Failure] = []

        func run(_ strategy: String, _ chunks: [ArraySlice<UInt8>], checkpoints: [Int]?) {
            var decoder = makeDecoder()
            var produced: [D.Frame] = []
            for (i, chunk) in chunks.enumerated() {
                chunk.withUnsafeBytes { decoder.feed($0) }
                do {
                    while let f = try decoder.next() { produced.append(f) }
                } catch {
                    failures.append(
                        Failure(
                            strategy: strategy,
                            message: "decoder threw \(error) after chunk #\(i) (\(chunk.count) bytes), "
                                + "having produced \(produced.count) of \(expected.count) frames"))
                    return
                }
                if let problem = mismatch(produced, expected, complete: false) {
                    failures.append(Failure(strategy: strategy, message: "after chunk #\(i): \(problem)"))
                    return
                }
                if let checkpoints, produced.count != checkpoints[i] {
                    failures.append(
                        Failure(
                            strategy: strategy,
                            message: "after input #\(i) the decoder had produced \(produced.count) frames, "
                                + "expected \(checkpoints[i]) (\(produced.count < checkpoints[i] ? "under" : "over")"
                                + "-production)"))
                    return
                }
            }
            if let problem = mismatch(produced, expected, complete: true) {
                failures.append(Failure(strategy: strategy, message: problem))
                return
            }
            do { try decoder.finish() } catch {
                failures.append(Failure(strategy: strategy, message: "finish() threw \(error) at end of input"))
            }
        }

        run("all at once", [all[...]], checkpoints: nil)
        run("one byte at a time", all.indices.map { all[$0..<$0 + 1] }, checkpoints: nil)
        var running = 0
        let checkpoints = inputOutputPairs.map { pair -> Int in
            running += pair.1.count
            return running
        }
        run("each input whole", inputOutputPairs.map { $0.0[...] }, checkpoints: checkpoints)
        for seed in 0..<randomSeeds {
            run("random chunks (seed \(seed))", randomChunks(all, seed: UInt64(seed)), checkpoints: nil)
        }
        if recordIssues {
            for f in failures {
                Issue.record(Comment(rawValue: "DecoderVerifier: \(f)"), sourceLocation: sourceLocation)
            }
        }
        return failures
    }

    /// Verifies that `input` makes the decoder throw (from `next()` or from `finish()` at the
    /// end) under every chunking, and that the error satisfies `matching`.
    ///
    /// - Returns: the failures found (empty when every chunking threw a matching error).
    @discardableResult
    public static func verifyRejects(
        _ input: [UInt8], randomSeeds: Int = 20, recordIssues: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation, makeDecoder: () -> D,
        matching: (any Error) -> Bool = { _ in true }
    ) -> [Failure] {
        var failures: [Failure] = []
        func run(_ strategy: String, _ chunks: [ArraySlice<UInt8>]) {
            var decoder = makeDecoder()
            var produced = 0
            do {
                for chunk in chunks {
                    chunk.withUnsafeBytes { decoder.feed($0) }
                    while try decoder.next() != nil { produced += 1 }
                }
                try decoder.finish()
            } catch {
                if !matching(error) {
                    failures.append(Failure(strategy: strategy, message: "threw an unexpected error: \(error)"))
                }
                return
            }
            failures.append(
                Failure(strategy: strategy, message: "accepted the input (\(produced) frames) instead of throwing"))
        }
        run("all at once", [input[...]])
        run("one byte at a time", input.indices.map { input[$0..<$0 + 1] })
        for seed in 0..<randomSeeds {
            run("random chunks (seed \(seed))", randomChunks(input, seed: UInt64(seed)))
        }
        if recordIssues {
            for f in failures {
                Issue.record(Comment(rawValue: "DecoderVerifier: \(f)"), sourceLocation: sourceLocation)
            }
        }
        return failures
    }

    static func mismatch(_ produced: [D.Frame], _ expected: [D.Frame], complete: Bool) -> String? {
        for (i, f) in produced.enumerated() {
            if i >= expected.count {
                return "over-production: \(produced.count) frames, expected \(expected.count); extra frame #\(i): \(f)"
            }
            if f != expected[i] { return "wrong frame #\(i): got \(f), expected \(expected[i])" }
        }
        if complete, produced.count < expected.count {
            return "under-production: \(produced.count) frames, expected \(expected.count); "
                + "first missing frame #\(produced.count): \(expected[produced.count])"
        }
        return nil
    }
}

/// Splits `bytes` into chunks of random sizes (including empty ones) from a seeded generator.
func randomChunks(_ bytes: [UInt8], seed: UInt64) -> [ArraySlice<UInt8>] {
    var rng = SplitMix64(seed: seed)
    var chunks: [ArraySlice<UInt8>] = []
    var i = 0
    let maxChunk = max(2, min(64, bytes.count / 2 + 2))
    while i < bytes.count {
        let n = Int(rng.next() % UInt64(maxChunk))  // 0 ..< maxChunk: empty feeds too
        let end = min(bytes.count, i + n)
        chunks.append(bytes[i..<end])
        i = end
    }
    return chunks
}

/// A tiny deterministic generator (SplitMix64), so a failing chunking can be reproduced by seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    /// Creates a generator; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
