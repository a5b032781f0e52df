import Testing
import XformCore
import XformTesting
@testable import XformTransforms

@Suite("Only registered transforms are reachable")
struct GuardedDispatchTests {
    static let unreachable: [(String, TransformError)] = [
        ("transform", .unknownTransform("transform")),
        ("__init__", .invalidName),
        ("xform_cummingsify", .unknownTransform("xform_cummingsify")),
        ("cummingsify ", .invalidName),
        (" cummingsify", .invalidName),
        ("../cummingsify", .invalidName),
        ("", .invalidName),
        (String(repeating: "a", count: 10_000), .invalidName),
        ("CUMMINGSIFY", .invalidName),
        ("Cummingsify", .invalidName),
        ("\u{0441}ummingsify", .invalidName),  // Cyrillic es
        ("ｃｕｍｍｉｎｇｓｉｆｙ", .invalidName),  // fullwidth
        ("cummingsify\u{200B}", .invalidName),  // zero-width space
        ("cumm\u{0131}ngsify", .invalidName),  // dotless i
        ("cummingsify\0", .invalidName),
        ("cummingsify\n", .invalidName),
        ("cummingsify.", .invalidName),
        ("cummingsify.HERE", .invalidName),
        ("names", .unknownTransform("names")),
        ("register", .unknownTransform("register")),
        ("lookup", .unknownTransform("lookup")),
    ]

    @Test("The built-in transforms are registered under their documented names")
    func builtinNames() {
        let service = TransformService()
        #expect(service.names == ["cummingsify", "reverse", "rot13", "slowcummingsify", "title", "upper", "wordcount"])
        for entry in service.catalog {
            #expect(!entry.summary.isEmpty && !entry.summary.contains("\n"), "\(entry.name)")
        }
        #expect(TransformService(builtins: false).names.isEmpty)
    }

    @Test("Names that are not registered exactly reach nothing", arguments: unreachable)
    func unreachableNames(name: String, expected: TransformError) {
        let service = TransformService()
        #expect(service.lookup(name) == nil)
        var bytes = Array(name.utf8)
        #expect(bytes.withUnsafeBytes { service.lookup(name: $0) } == nil)
        bytes = Array(name.utf8)
        let resolved = bytes.withUnsafeBytes { service.resolve(name: $0) }
        guard case .failure(let error) = resolved else {
            Issue.record("\(name.prefix(40)) resolved to a transform")
            return
        }
        #expect(error == expected)
        let d = service.transform(name, "HERE IS MY POEM", context: TransformContext(clock: ManualClock()))
        #expect(failureResult(of: d, as: TransformError.self) == expected)
    }

    @Test("A name outside the grammar is never echoed back in an error")
    func invalidNameNotEchoed() {
        let service = TransformService()
        let hostile = String(repeating: "X", count: 10_000)
        guard case .failure(let error) = service.resolve(hostile) else {
            Issue.record("resolved")
            return
        }
        #expect(error == .invalidName)
        #expect(error.description.count < 100)
    }

    @Test("Name bytes that are not UTF-8 reach nothing")
    func nonUTF8Name() {
        let service = TransformService()
        let bytes: [UInt8] = [0x63, 0x75, 0xFF, 0x6D]
        #expect(bytes.withUnsafeBytes { service.lookup(name: $0) } == nil)
        let resolved = bytes.withUnsafeBytes { service.resolve(name: $0) }
        #expect(resolved.failureValue == .invalidName)
    }

    @Test("Every registered name is found by its exact bytes")
    func exactLookup() {
        let service = TransformService()
        for name in service.names {
            #expect(service.lookup(name)?.name == name)
            let bytes = Array(name.utf8)
            #expect(bytes.withUnsafeBytes { service.lookup(name: $0) }?.name == name)
            // A prefix or an extension of a registered name is another name.
            #expect(service.lookup(String(name.dropLast())) == nil)
            #expect(service.lookup(name + "x") == nil)
        }
    }

    @Test("The name grammar accepts 1 to 64 characters of a-z, 0-9, _ and -, starting with a letter")
    func grammar() {
        #expect(TransformName.isValid("a"))
        #expect(TransformName.isValid("a0_-z"))
        #expect(TransformName.isValid(String(repeating: "a", count: 64)))
        #expect(!TransformName.isValid(String(repeating: "a", count: 65)))
        #expect(!TransformName.isValid("0abc"))
        #expect(!TransformName.isValid("-abc"))
        #expect(!TransformName.isValid("_abc"))
        #expect(!TransformName.isValid("a.b"))
        #expect(!TransformName.isValid("a/b"))
        #expect(!TransformName.isValid("aB"))
        #expect(!TransformName.isValid("é"))
    }

    @Test("Registering a name outside the grammar or a second time is refused")
    func registrationRules() {
        let service = TransformService(builtins: false)
        let ok = Transform(name: "shout", summary: "s", body: .synchronous { $0 + "!" })
        #expect(throws: Never.self) { try service.register(ok) }
        #expect(throws: TransformRegistrationError.duplicateName("shout")) { try service.register(ok) }
        for bad in ["Shout", "shout!", "", "__init__", String(repeating: "s", count: 65), "ѕhout"] {
            let t = Transform(name: bad, summary: "s", body: .synchronous { $0 })
            #expect(throws: TransformRegistrationError.invalidName(bad)) { try service.register(t) }
        }
        #expect(service.names == ["shout"])
    }

    @Test("A registered transform is reachable until it is unregistered")
    func registerAndUnregister() throws {
        let service = TransformService()
        try service.register(Transform(name: "shout", summary: "add a bang", body: .synchronous { $0 + "!" }))
        #expect(try transformNow(service, "shout", "hi")?.get() == "hi!")
        #expect(service.names.contains("shout"))
        #expect(service.unregister("shout"))
        #expect(!service.unregister("shout"))
        #expect(service.lookup("shout") == nil)
        #expect(throws: TransformError.unknownTransform("shout")) { try transformNow(service, "shout", "hi")?.get() }
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
