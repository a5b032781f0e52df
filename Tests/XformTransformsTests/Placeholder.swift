import Testing

@Test("The XformTransformsTests target builds") func placeholder_XformTransformsTests() { #expect(Bool(true)) }
