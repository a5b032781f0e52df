import Testing

@Test("The XformReactorTests target builds") func placeholder_XformReactorTests() { #expect(Bool(true)) }
