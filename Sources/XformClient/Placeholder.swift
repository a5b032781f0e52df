// XformClient: placeholder until the module lands.
