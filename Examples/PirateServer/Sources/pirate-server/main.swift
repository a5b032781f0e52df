// transform-server plus a `pirate` transform: `pirate-server --help` shows every option of
// transform-server, and `xform pirate` (netstring) or `pirate hello` (line port) use it.
import TransformServerKit

let log = Logger(system: "pirate", handler: StandardErrorLogHandler(minimumLevel: .notice))

TransformServerProgram.run(adding: [
    Transform(name: "pirate", summary: "Talk like a pirate.", body: .synchronous { text in
        if text.isEmpty { log.notice("an empty text: nothing to say, arr") }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        return "Arr! " + words.map { $0 == "my" ? "me" : String($0) }.joined(separator: " ")
    })
])
