import Testing

@Test("The XformDaemonTests target builds") func placeholder_XformDaemonTests() { #expect(Bool(true)) }
