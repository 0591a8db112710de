"""Helpers shared by the tests and the benchmarks: real servers on loopback, the app wired to the emulators, the
Truebar and Wiro clients, the load and word-error tools. Not shipped (only `server` is packaged); bench/ imports this,
never tests/."""
