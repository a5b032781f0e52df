import XformCore
import XformFraming
import XformTesting

/// The UTF-8 bytes of `s`.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Decodes everything `decoder` yields for `input` fed in one piece.
func decodeAll<D: FrameDecoder>(_ decoder: inout D, _ input: [UInt8]) throws -> [D.Frame] {
    decoder.feed(input)
    var out: [D.Frame] = []
    while let f = try decoder.next() { out.append(f) }
    return out
}

/// Splits `input` into chunks of `size` bytes (the last may be shorter).
func chunks(_ input: [UInt8], size: Int) -> [[UInt8]] {
    stride(from: 0, to: input.count, by: size).map { Array(input[$0..<min(input.count, $0 + size)]) }
}

/// Splits `input` into random chunks of 1...max bytes, reproducibly.
func randomChunks(_ input: [UInt8], seed: UInt64, max: Int = 40) -> [[UInt8]] {
    var rng = SplitMix64(seed: seed)
    var out: [[UInt8]] = []
    var i = 0
    while i < input.count {
        let n = 1 + Int(rng.next() % UInt64(max))
        out.append(Array(input[i..<min(input.count, i + n)]))
        i += n
    }
    return out
}
