// XformReactor: placeholder until the module lands.
