import Glibc
import Synchronization

/// A fresh directory under /tmp, removed (with its files) by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/xform-daemon-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() {
        guard let dir = opendir(path) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { unlink(file(name)) }
        }
        closedir(dir)
        rmdir(path)
    }
}

/// Reads a whole file as a string, or `nil` when it does not exist.
func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// Creates (or truncates) `path` with `text`; false if it cannot.
@discardableResult
func writeFile(_ path: String, _ text: String) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var text = text
    return text.withUTF8 { write(fd, $0.baseAddress, $0.count) == $0.count }
}

/// Collects reported messages (thread-safe).
final class MessageRecorder: Sendable {
    private let messages = Mutex<[String]>([])
    func record(_ m: String) { messages.withLock { $0.append(m) } }
    var all: [String] { messages.withLock { $0 } }
}
