import Testing

@Test("The XformCommands target builds") func placeholder_commands() { #expect(Bool(true)) }
