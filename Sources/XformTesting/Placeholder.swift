// XformTesting: placeholder until the module lands.
