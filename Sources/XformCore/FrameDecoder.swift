/// A pure framing decoder: bytes in, whole frames out (NIO's single-step decoder shape).
///
/// Decoders do no I/O and know nothing of connections, so they are tested by feeding bytes in
/// every possible chunking (see `XformTesting.DecoderVerifier`). Receivers wrap them.
public protocol FrameDecoder {
    /// What one complete frame decodes to.
    associatedtype Frame: Equatable

    /// Appends bytes to the decoder's input. The bytes are copied if they must be kept.
    mutating func feed(_ bytes: UnsafeRawBufferPointer)

    /// Returns the next complete frame, or nil when more bytes are needed.
    ///
    /// - Throws: a decoder-specific error on malformed input; the decoder is then broken and
    ///   the connection should be closed.
    mutating func next() throws -> Frame?

    /// Called at end of input.
    ///
    /// - Throws: a decoder-specific error when a partial frame is left over.
    mutating func finish() throws
}

extension FrameDecoder {
    /// Appends bytes from an array.
    public mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }
}
