import CXformShims
import Glibc
import XformCore

/// The current thread's `errno`.
@inline(__always) func lastErrno() -> Int32 { Glibc.errno }

/// Nanoseconds on `CLOCK_MONOTONIC`.
@inline(__always) func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
}

extension Duration {
    /// Whole nanoseconds, clamped to `0...Int64.max`.
    var clampedNanoseconds: Int64 {
        let c = components
        if c.seconds < 0 || (c.seconds == 0 && c.attoseconds <= 0) { return 0 }
        if c.seconds >= Int64.max / 1_000_000_000 - 1 { return Int64.max / 2 }
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}

/// Closes `fd`, ignoring errors (EINTR on close must not be retried on Linux).
@inline(__always) func closeFD(_ fd: Int32) {
    _ = Glibc.close(fd)
}

/// Sets an integer socket option.
@discardableResult
func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
    var v = value
    return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
}

/// Turns off Nagle's algorithm: replies go out at once.
@inline(__always) func setNoDelay(_ fd: Int32) {
    setIntOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
}

/// Makes close() send a reset and drop unsent data (for abortConnection).
func setLingerZero(_ fd: Int32) {
    var l = linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
}

/// Reads and clears a socket's pending error.
func socketError(_ fd: Int32) -> Int32 {
    var err: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return lastErrno() }
    return err
}

/// A socket address as the kernel sees it.
struct RawAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)

    var family: Int32 { Int32(storage.ss_family) }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// The text host and numeric port.
    var socketAddress: SocketAddress {
        var s = storage
        switch family {
        case AF_INET:
            return withUnsafePointer(to: &s) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    SocketAddress(
                        ipv4: UInt32(bigEndian: sin.pointee.sin_addr.s_addr),
                        port: Int(UInt16(bigEndian: sin.pointee.sin_port)))
                }
            }
        case AF_INET6:
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            return withUnsafePointer(to: &s) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var a = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    return SocketAddress(
                        host: Self.text(buf), port: Int(UInt16(bigEndian: sin6.pointee.sin6_port)))
                }
            }
        default:
            return SocketAddress(host: "?", port: 0)
        }
    }

    /// The text in a NUL-terminated buffer.
    static func text(_ buf: [CChar]) -> String {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The local address of a socket.
    static func local(of fd: Int32) -> RawAddress? {
        var a = RawAddress()
        let rc = withUnsafeMutablePointer(to: &a.storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &a.length) }
        }
        return rc == 0 ? a : nil
    }

    /// The remote address of a connected socket.
    static func remote(of fd: Int32) -> RawAddress? {
        var a = RawAddress()
        let rc = withUnsafeMutablePointer(to: &a.storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &a.length) }
        }
        return rc == 0 ? a : nil
    }

    /// Resolves `host:port` for TCP with getaddrinfo (literals resolve without DNS).
    ///
    /// - Returns: the addresses in getaddrinfo's order, or nil when the host cannot be resolved.
    static func resolve(host: String, port: Int, passive: Bool) -> [RawAddress]? {
        guard (0...65535).contains(port) else { return nil }
        var hints = addrinfo()
        hints.ai_socktype = CXF_SOCK_STREAM
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var numeric = hints
        numeric.ai_flags |= AI_NUMERICHOST
        var res: UnsafeMutablePointer<addrinfo>?
        let node: String? = host.isEmpty ? nil : host
        var rc = getaddrinfo(node, String(port), &numeric, &res)
        if rc != 0 {
            res = nil
            rc = getaddrinfo(node, String(port), &hints, &res)
        }
        guard rc == 0, let first = res else { return nil }
        defer { freeaddrinfo(first) }
        var out: [RawAddress] = []
        var cur: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cur {
            if let sa = ai.pointee.ai_addr,
                ai.pointee.ai_family == AF_INET || ai.pointee.ai_family == AF_INET6
            {
                var a = RawAddress()
                a.length = ai.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &a.storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(ai.pointee.ai_addrlen)))
                }
                out.append(a)
            }
            cur = ai.pointee.ai_next
        }
        return out.isEmpty ? nil : out
    }
}
