"""Audio frames on a schedule, for the protocol clients: as fast as the socket takes them, or paced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator


async def frames(pcm: bytes, frame_bytes: int, rate: int, speed: float | None = None) -> AsyncIterator[bytes]:
    """`pcm` (PCM16 mono at `rate`) in frames of `frame_bytes`: at once (`speed` None), or `speed` times faster
    than real time on absolute deadlines, so no drift."""
    start = time.monotonic()
    frame_s = frame_bytes / 2 / rate / speed if speed else 0.0
    for i, offset in enumerate(range(0, len(pcm), frame_bytes)):
        delay = start + i * frame_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield pcm[offset : offset + frame_bytes]
