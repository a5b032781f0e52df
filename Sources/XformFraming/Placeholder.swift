// XformFraming: placeholder until the module lands.
