// XformDaemon: placeholder until the module lands.
