"""The tests' import path for testkit.live (the code lives in testkit/, so bench/ can use it without importing
tests/)."""

from testkit.live import (
    running,
)

__all__ = ["running"]
