"""A clock the test moves: an injected `clock` seam (a callable of Unix seconds) without waiting in real time."""

from __future__ import annotations

import time


class Clock:
    """Unix seconds, from `start`: the real time by default, for whatever keeps real times beside it (Redis expires
    keys by its own clock, an emulator's tokens carry real times), so a start far from it would expire them at once
    or never."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
