import Testing
import TransformServerKit

@Suite("TransformServerKit (issue 11)")
struct ServerKitTests {
    @Test("An extra transform whose name a built-in has stops the start-up with 78, before binding")
    func duplicateTransformRefused() {
        let status = TransformServerProgram.main(
            arguments: ["pirate-server", "--netstring-port", "0", "--line-port", "0", "--log-level", "critical"],
            adding: [Transform(name: "upper", summary: "again", body: .synchronous { $0 })])
        #expect(status == 78)
    }

    @Test("--help of an embedding server is transform-server's")
    func help() {
        #expect(TransformServerProgram.main(arguments: ["pirate-server", "--version"]) == 0)
    }

    @Test("StandardErrorLogHandler drops records below its minimum level")
    func logHandler() {
        let handler = StandardErrorLogHandler(minimumLevel: .warning, environment: [:])
        #expect(handler.minimumLevel == .warning)
        #expect(!Logger(system: "t", handler: handler).isEnabled(.info))
        #expect(Logger(system: "t", handler: handler).isEnabled(.error))
    }
}
