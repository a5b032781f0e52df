import Testing

@Test("The XformCoreTests target builds") func placeholder_XformCoreTests() { #expect(Bool(true)) }
