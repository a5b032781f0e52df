import Testing

@Test("The XformFramingTests target builds") func placeholder_XformFramingTests() { #expect(Bool(true)) }
