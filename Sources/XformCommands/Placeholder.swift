// XformCommands: placeholder until the commands land.
