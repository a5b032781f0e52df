// XformServer: placeholder until the module lands.
