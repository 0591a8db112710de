"""Pure protocol code (parse what a peer sends, build what we send; no sockets), shared by the engine's stream
server and the emulators."""
