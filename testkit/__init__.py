"""Helpers shared by the tests and the benchmarks: real servers on loopback, the app wired to the emulators, the
load and word-error tools. Not shipped (only `server` is packaged); bench/ imports this, never tests/."""
