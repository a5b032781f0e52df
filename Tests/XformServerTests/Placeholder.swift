import Testing

@Test("The XformServerTests target builds") func placeholder_XformServerTests() { #expect(Bool(true)) }
