"""Helpers shared by tests/ and playwright/: real servers on loopback, free ports, test audio."""
