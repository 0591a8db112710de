"""A small asyncio Wiro realtime client for the tests and the load tool: register, stream `token|pcm` frames, end,
collect events. It shares no code with the server (its protocols, providers or emulators), so that a bug there shows
against it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

from testkit.pacing import frames

TRANSCRIPT_PREFIX = "TRANSCRIPT_USER:"
SAMPLE_RATE = 24_000


@dataclass
class WiroResult:
    increments: list[str] = field(default_factory=list)
    # Event types in arrival order (including "connected").
    events: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    cost: float | None = None
    close_code: int | None = None
    frames_sent: int = 0
    # True when `timeout` passed with neither task_postprocess_end nor the socket's close.
    timed_out: bool = False

    @property
    def text(self) -> str:
        """The full transcript: increments joined, whitespace normalised (a leading space is unknown)."""
        return " ".join(" ".join(self.increments).split())

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]


async def transcribe_wiro(
    ws_url: str,
    token: str,
    pcm24k: bytes,
    *,
    frame_samples: int = 4800,
    timeout: float = 30,  # noqa: ASYNC109 - one bound for connect, stream and ending, in seconds
    end_session: bool = True,
    expect_timeout: bool = False,
    speed: float | None = None,
) -> WiroResult:
    """Stream `pcm24k` (s16le, 24 kHz mono) once the server is ready; end the session; wait for the final event
    (task_postprocess_end) or the socket's close. Reaching `timeout` first raises TimeoutError: what arrived until
    then may be a cut-off transcript, which must never pass for a whole one. A test of a server that is meant to
    stall passes `expect_timeout=True` and gets the partial result, with `timed_out` set. The audio goes as fast as
    the socket takes it, or with `speed` that many times faster than real time."""
    result = WiroResult()
    ready = asyncio.Event()
    frame_bytes = frame_samples * 2
    deadline = time.monotonic() + timeout

    async with websockets.connect(ws_url, max_size=None, open_timeout=timeout) as ws:

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                result.messages.append(msg)
                kind = msg.get("type")
                result.events.append(str(kind))
                if kind == "task_stream_ready":
                    ready.set()
                elif kind == "task_output":
                    message = msg.get("message")
                    if isinstance(message, str) and message.startswith(TRANSCRIPT_PREFIX):
                        result.increments.append(message[len(TRANSCRIPT_PREFIX) :])
                elif kind == "task_cost":
                    result.cost = float(msg["cumulativeCost"])
                elif kind == "task_postprocess_end":
                    return

        async def send() -> None:
            await ready.wait()
            async for frame in frames(pcm24k, frame_bytes, SAMPLE_RATE, speed):
                await ws.send(token.encode() + b"|" + frame)
                result.frames_sent += 1
                await asyncio.sleep(0)
            if end_session:
                await ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))

        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        receiver = asyncio.create_task(receive())
        sender = asyncio.create_task(send())
        try:
            await asyncio.wait_for(asyncio.shield(receiver), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            result.timed_out = True
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
        await ws.close()
        result.close_code = ws.close_code
    if result.timed_out and not expect_timeout:
        raise TimeoutError(
            f"no task_postprocess_end within {timeout:g} s; got {len(result.increments)} increments, events "
            f"{result.events[-5:]}"
        )
    return result
