import Testing
import XformCore
import XformTesting
@testable import XformTransforms

@Suite("Each built-in transform does what transforms.md says")
struct TransformBehaviourTests {
    struct Example: Sendable, CustomTestStringConvertible {
        let name: String
        let input: String
        let output: String
        var testDescription: String { "\(name)(\(input.debugDescription.prefix(30)))" }
    }

    static let examples: [Example] = [
        // cummingsify
        .init(name: "cummingsify", input: "HERE IS MY POEM", output: "here is my poem"),
        .init(name: "cummingsify", input: "", output: ""),
        .init(name: "cummingsify", input: "First LINE\n\nSECOND line\n", output: "first line\n\nsecond line\n"),
        .init(name: "cummingsify", input: "ΟΔΟΣ ΟΔΟΣ. Σ", output: "οδος οδος. σ"),
        .init(name: "cummingsify", input: "İSTANBUL", output: "i\u{307}stanbul"),
        .init(name: "cummingsify", input: "ПРИВЕТ ԱԲԳ 😀 É", output: "привет աբգ 😀 é"),
        .init(name: "cummingsify", input: "CRLF\r\nLINES\r\n", output: "crlf\r\nlines\r\n"),
        // upper
        .init(name: "upper", input: "here is my poem", output: "HERE IS MY POEM"),
        .init(name: "upper", input: "", output: ""),
        .init(name: "upper", input: "straße ﬁx ŉ", output: "STRASSE FIX ʼN"),
        .init(name: "upper", input: "a\n\nb\n", output: "A\n\nB\n"),
        .init(name: "upper", input: "ǆ ς", output: "Ǆ Σ"),
        // title
        .init(name: "title", input: "they're bill's friends", output: "They'Re Bill'S Friends"),
        .init(name: "title", input: "", output: ""),
        .init(name: "title", input: "ΟΔΟΣ ǆungla ßa", output: "Οδος ǅungla Ssa"),
        .init(name: "title", input: "one\n\ntwo THREE\n", output: "One\n\nTwo Three\n"),
        .init(name: "title", input: "a1b2 3c", output: "A1B2 3C"),
        // rot13
        .init(name: "rot13", input: "Hello, World!", output: "Uryyb, Jbeyq!"),
        .init(name: "rot13", input: "", output: ""),
        .init(name: "rot13", input: "Über ÅNGSTRÖM ßz 😀", output: "Üore ÅATFGEÖZ ßm 😀"),
        .init(name: "rot13", input: "abc\n\nXYZ\n", output: "nop\n\nKLM\n"),
        // reverse
        .init(name: "reverse", input: "abc", output: "cba"),
        .init(name: "reverse", input: "", output: ""),
        .init(name: "reverse", input: "🇫🇷🇩🇪", output: "🇩🇪🇫🇷"),
        .init(name: "reverse", input: "e\u{301}a", output: "ae\u{301}"),
        .init(name: "reverse", input: "👨‍👩‍👧x👍🏽", output: "👍🏽x👨‍👩‍👧"),
        .init(name: "reverse", input: "one\n\ntwo\n", output: "\nowt\n\neno"),
        .init(name: "reverse", input: "a\r\nb", output: "b\r\na"),
        .init(name: "reverse", input: "a\n\rb", output: "b\r\na"),
        .init(name: "reverse", input: "한국어", output: "어국한"),
        // wordcount
        .init(name: "wordcount", input: "one two  three", output: "3"),
        .init(name: "wordcount", input: "", output: "0"),
        .init(name: "wordcount", input: "\n\n \t", output: "0"),
        .init(name: "wordcount", input: "one\n\ntwo three\n", output: "3"),
        .init(name: "wordcount", input: "a\u{00A0}b\u{3000}c\u{2028}d", output: "4"),
        .init(name: "wordcount", input: "naïve café 😀 x\u{200B}y", output: "4"),
    ]

    @Test("The String API gives the documented text", arguments: examples)
    func stringAPI(example: Example) throws {
        let service = TransformService()
        let result = try #require(transformNow(service, example.name, example.input))
        #expect(try result.get() == example.output)
    }

    @Test("The byte API gives the same text as UTF-8", arguments: examples)
    func byteAPI(example: Example) throws {
        let handle = try #require(TransformService().lookup(example.name))
        let outcome = apply(handle, Array(example.input.utf8), TransformContext(clock: ManualClock()))
        #expect(doneBytes(outcome) == Array(example.output.utf8))
    }

    @Test("A transform that throws fails with failed(reason); a thrown TransformError passes as it is")
    func failingTransforms() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let service = TransformService(builtins: false)
        try service.register(Transform(name: "boom", summary: "fails", body: .synchronous { _ in throw Boom() }))
        try service.register(
            Transform(name: "picky", summary: "fails", body: .synchronous { _ in throw TransformError.tooLarge }))
        #expect(throws: TransformError.failed("boom")) { try transformNow(service, "boom", "x")?.get() }
        #expect(throws: TransformError.tooLarge) { try transformNow(service, "picky", "x")?.get() }
        let context = TransformContext(clock: ManualClock())
        #expect(failedError(apply(service.lookup("boom")!, [0x78], context)) == .failed("boom"))
        #expect(failedError(apply(service.lookup("picky")!, [0x78], context)) == .tooLarge)
    }
}
