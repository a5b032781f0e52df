import Foundation
import Testing
import XformCore
import XformFraming
import XformServer
import XformTesting
import XformTransforms

/// One server's shared state on a manual clock, and helpers to connect protocols in memory.
final class Harness {
    let clock = ManualClock()
    let service: TransformService
    let state: ServerState
    let log = InMemoryLogHandler(minimumLevel: .debug)

    init(limits: ServerLimits = ServerLimits(), service: TransformService = TransformService(), maxConcurrentAsync: Int? = nil) {
        self.service = service
        state = ServerState(
            backend: service, clock: clock, limits: limits, logger: Logger(system: "test", handler: log),
            maxConcurrentAsync: maxConcurrentAsync)
    }

    /// The ports' factories, behind their connection limits as in ``TransformServer``.
    lazy var netstringPort = state.limited(NetstringTransformFactory(state: state), port: .netstring)
    lazy var linePort = state.limited(LineTransformFactory(state: state), port: .line)

    /// A netstring protocol connected to a fresh string transport.
    func netstring() -> (NetstringTransformProtocol, StringTransport) {
        let t = StringTransport(deliversConnectionLost: true)
        let c = netstringPort.buildProtocol(peer: t.peer)!
        t.connect(c)
        return (c as! NetstringTransformProtocol, t)
    }

    /// A line protocol connected to a fresh string transport.
    func line() -> (LineTransformProtocol, StringTransport) {
        let t = StringTransport(deliversConnectionLost: true)
        let c = linePort.buildProtocol(peer: t.peer)!
        t.connect(c)
        return (c as! LineTransformProtocol, t)
    }
}

/// Frames a payload as a netstring.
func ns(_ payload: String) -> [UInt8] { ns(Array(payload.utf8)) }

func ns(_ payload: [UInt8]) -> [UInt8] { Array("\(payload.count):".utf8) + payload + [UInt8(ascii: ",")] }

/// One conversation from protocol-spec/examples (format in examples/README.md).
struct SpecExample: CustomTestStringConvertible, Sendable {
    var title: String
    var send: [UInt8] = []
    var reply: [UInt8] = []
    var eof = false
    var closed = false
    var testDescription: String { title }

    static func load(_ file: String) -> [SpecExample] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../protocol-spec/examples/\(file)").standardized
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var examples: [SpecExample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("=== ") {
                examples.append(SpecExample(title: String(line.dropFirst(4))))
            } else if line.hasPrefix("> ") {
                examples[examples.count - 1].send += unescape(line.dropFirst(2))
            } else if line.hasPrefix("< ") {
                examples[examples.count - 1].reply += unescape(line.dropFirst(2))
            } else if line == "~ eof" {
                examples[examples.count - 1].eof = true
            } else if line.hasPrefix("! ") {
                examples[examples.count - 1].closed = line.dropFirst(2) == "closed"
            }
        }
        return examples
    }

    static func unescape(_ s: Substring) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count {
                switch bytes[i + 1] {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "\\"): out.append(92)
                case UInt8(ascii: "x"):
                    out.append(UInt8(String(decoding: bytes[(i + 2)..<(i + 4)], as: UTF8.self), radix: 16)!)
                    i += 2
                default: out.append(bytes[i + 1])
                }
                i += 2
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
