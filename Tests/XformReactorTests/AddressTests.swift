import Glibc
import Testing

@testable import XformCore
@testable import XformReactor

@Suite("Socket addresses as text")
struct AddressTests {
    @Test("An IPv4 address is written as inet_ntop writes it, for every octet width")
    func dottedQuadMatchesInetNtop() {
        let samples: [UInt32] = [0, 0x7F00_0001, 0xFFFF_FFFF, 0x0A00_0C03, 0xC0A8_6401, 0x6463_0A09, 0x0102_0304]
            + (0..<256).map { UInt32($0) &* 0x0101_0101 }
        for address in samples {
            var a = in_addr(s_addr: address.bigEndian)
            var buf = [CChar](repeating: 0, count: 16)
            inet_ntop(AF_INET, &a, &buf, 16)
            let expected = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(SocketAddress.dottedQuad(address) == expected)
            #expect(SocketAddress(ipv4: address, port: 7).host == expected)
            #expect(SocketAddress(ipv4: address, port: 7) == SocketAddress(host: expected, port: 7))
            #expect(SocketAddress(ipv4: address, port: 7).hashValue == SocketAddress(host: expected, port: 7).hashValue)
        }
    }
}
