#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import XformCore

/// Why a line could not be accepted.
public enum LineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A line, or the unfinished line buffered so far, is longer than the maximum. `length` is
    /// how many bytes of it (without the terminator) had been seen when this was noticed.
    case lineTooLong(length: Int)
    /// The input ended after `length` bytes of a line that has no `\n`.
    case unterminatedLine(length: Int)

    public var description: String {
        switch self {
        case .lineTooLong(let n): return "line too long (\(n) bytes so far)"
        case .unterminatedLine(let n): return "input ended inside a line (\(n) bytes)"
        }
    }
}

/// Twisted's `LineReceiver.MAX_LENGTH`: the default longest line, in bytes, without terminator.
public let defaultMaxLineLength = 16_384

private let newline = UInt8(ascii: "\n")
private let carriageReturn = UInt8(ascii: "\r")

/// Finds the first `\n` in `input[from..<input.count]`.
@inline(__always)
func findNewline(_ input: UnsafeRawBufferPointer, from: Int) -> Int? {
    let n = input.count - from
    guard n > 0, let base = input.baseAddress else { return nil }
    guard let p = memchr(base + from, Int32(newline), n) else { return nil }
    return base.distance(to: UnsafeRawPointer(p))
}

/// The line state machine: lines end at `\n`, and one `\r` before it is dropped.
struct LineParser: InPlaceFrameParser {
    let maxLength: Int
    /// How many bytes after the current line's start are known to hold no `\n`.
    private var scanned = 0
    /// Skipping the rest of an over-long line.
    private(set) var discarding = false

    init(maxLength: Int) {
        precondition(maxLength >= 0, "maxLineLength must not be negative")
        self.maxLength = maxLength
    }

    var isMidFrame: Bool { false }

    mutating func resync() {
        discarding = true
    }

    mutating func step(_ input: UnsafeRawBufferPointer, from start: Int) -> ParseStep<LineError> {
        var lineStart = start
        let end = input.count
        while true {
            if let nl = findNewline(input, from: lineStart + scanned) {
                scanned = 0
                if discarding {
                    discarding = false
                    lineStart = nl + 1
                    continue
                }
                var lineEnd = nl
                if lineEnd > lineStart && input[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
                if lineEnd - lineStart > maxLength {
                    return .failed(.lineTooLong(length: lineEnd - lineStart), at: lineStart)
                }
                return .frame(lineStart..<lineEnd, next: nl + 1)
            }
            if discarding {
                scanned = 0
                return .needMore(keepFrom: end)
            }
            scanned = end - lineStart
            // A trailing `\r` may yet be the start of `\r\n`, so it does not count.
            var length = scanned
            if length > 0 && input[end - 1] == carriageReturn { length -= 1 }
            if length > maxLength {
                return .failed(.lineTooLong(length: length), at: lineStart)
            }
            return .needMore(keepFrom: lineStart)
        }
    }
}

/// A pure line decoder: splits input at `\n`, dropping one `\r` before it, so both `\n` and
/// `\r\n` end a line (NIO's `LineBasedFrameDecoder`, with Twisted's `MAX_LENGTH`).
///
/// A line longer than ``maxLineLength`` (terminator excluded) makes ``next()`` throw
/// ``LineError/lineTooLong(length:)`` as soon as the buffered part of it is over the limit,
/// without waiting for its `\n`. The decoder is then stuck on that error until the caller either
/// gives up or calls ``discardUntilNextLine()`` to skip the rest of that line and go on.
///
/// The position scanned so far is remembered, so input fed a byte at a time is never rescanned.
/// ``finish()`` is strict: an unterminated last line is an error here (a `LineReceiver` can
/// deliver it instead); ``takeUnterminatedLine()`` returns it for callers that want it.
public struct LineDecoder: FrameDecoder {
    /// One line, without its terminator.
    public typealias Frame = [UInt8]

    /// The longest line accepted, in bytes, without its terminator.
    public var maxLineLength: Int { input.parser.maxLength }

    private var input: BufferedParser<LineParser>
    private var error: LineError?

    /// Creates a decoder accepting lines up to `maxLineLength` bytes (16,384 by default).
    public init(maxLineLength: Int = defaultMaxLineLength) {
        input = BufferedParser(LineParser(maxLength: maxLineLength))
    }

    /// Appends bytes to the input.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        input.feed(bytes)
    }

    /// Returns the next line, or nil when more bytes are needed.
    ///
    /// - Throws: ``LineError/lineTooLong(length:)``, and the same error again on every call
    ///   until ``discardUntilNextLine()`` is called.
    public mutating func next() throws -> [UInt8]? {
        if let error { throw error }
        switch input.next() {
        case .frame(let line): return line
        case .needMore: return nil
        case .failed(let e, let at):
            input.readIndex = at
            error = e
            throw e
        }
    }

    /// Recovers from ``LineError/lineTooLong(length:)``: the over-long line is dropped, up to and
    /// including its `\n` (which may not have arrived yet), and decoding goes on after it.
    public mutating func discardUntilNextLine() {
        error = nil
        input.parser.resync()
    }

    /// Returns and removes the bytes of an unterminated last line (without a trailing `\r`), or
    /// nil if there are none. Meant for end of input, after ``next()`` returned nil.
    public mutating func takeUnterminatedLine() -> [UInt8]? {
        guard error == nil, !input.parser.discarding, input.leftover > 0 else { return nil }
        var end = input.buffer.count
        if input.buffer[end - 1] == carriageReturn { end -= 1 }
        let line = Array(input.buffer[input.readIndex..<end])
        input = BufferedParser(LineParser(maxLength: input.parser.maxLength))
        return line
    }

    /// Checks that the input ended at a line boundary. Call after ``next()`` returned nil.
    ///
    /// - Throws: ``LineError/unterminatedLine(length:)`` when a partial line is left over, or
    ///   the pending ``LineError/lineTooLong(length:)``.
    public mutating func finish() throws {
        if let error { throw error }
        if input.parser.discarding { return }
        if input.leftover > 0 { throw LineError.unterminatedLine(length: input.leftover) }
    }
}

/// Builds lines for sending.
public enum LineEncoder {
    /// Appends `line` and `\n` to `output`.
    public static func append(_ line: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        output.append(contentsOf: line)
        output.append(newline)
    }

    /// Writes `line` and `\n` to `transport`, without an intermediate copy.
    public static func write(_ line: UnsafeRawBufferPointer, to transport: any Transport) {
        transport.write(line)
        withUnsafeBytes(of: newline) { transport.write($0) }
    }
}
