import Testing

@Test("The XformClientTests target builds") func placeholder_XformClientTests() { #expect(Bool(true)) }
