"""A small asyncio client of the Truebar stream protocol, for the tests and the load tool: one session from CONFIG
to FINISHED. It shares no code with the server (its protocols, providers or emulators), so that a bug there shows
against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import websockets
from websockets.exceptions import ConnectionClosed

from testkit.pacing import frames

SAMPLE_RATE = 16_000


def tokens_to_text(tokens: Sequence[Mapping[str, Any]]) -> str:
    """The vendor's spacing rule: a space between two tokens unless the first is right- or the second
    left-handed. Written again here so the client never shares code with the server or the emulator."""
    out: list[str] = []
    prev_right = False
    for token in tokens:
        text = token.get("text") or ""
        if not text:
            continue
        if out and not prev_right and not token.get("isLeftHanded"):
            out.append(" ")
        out.append(text)
        prev_right = bool(token.get("isRightHanded"))
    return "".join(out)


@dataclass
class TruebarResult:
    finals: list[str] = field(default_factory=list)
    interims: list[str] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def status_names(self) -> list[str]:
        return [str(s.get("status")) for s in self.statuses]

    @property
    def text(self) -> str:
        return " ".join(f for f in self.finals if f)


def config_message(tag: str, *, interims: bool = True, key: str = "type") -> str:
    stage = {
        "task": "ASR",
        "exceptionHandlingPolicy": "THROW",
        "config": {"tag": tag, "parameters": {"enableInterims": interims}},
    }
    return json.dumps({key: "CONFIG", "pipeline": [stage]})


def record_message(result: TruebarResult, raw: str) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(raw)
    result.messages.append(msg)
    kind = msg.get("type", msg.get("messageType"))
    if kind == "STATUS":
        result.statuses.append(msg)
    elif kind == "TEXT_SEGMENT":
        segment = msg["textSegment"]
        result.segments.append(segment)
        text = tokens_to_text(segment.get("tokens", []))
        (result.finals if segment.get("isFinal") else result.interims).append(text)
    elif kind == "WARNING":
        result.warnings.append(str(msg.get("message", "")))
    elif kind == "ERROR":
        error = msg.get("error")
        result.errors.append(str(error.get("message") if isinstance(error, dict) else msg.get("message")))
    return msg


async def transcribe_truebar(
    ws_url: str,
    token: str,
    pcm16k: bytes,
    *,
    tag: str,
    frame_bytes: int = 3200,
    interims: bool = True,
    timeout: float = 30,  # noqa: ASYNC109 - the signature other tests share
    token_via: Literal["query", "header"] = "query",
    speed: float | None = None,
) -> TruebarResult:
    """Stream `pcm16k` (16 kHz s16le mono) as one session: wait for INITIALIZED, CONFIG, audio, EOS, FINISHED.
    The audio goes as fast as the socket takes it, or with `speed` that many times faster than real time."""
    result = TruebarResult()
    headers: dict[str, str] = {}
    url = ws_url
    if token_via == "header":
        headers["Authorization"] = f"Bearer {token}"
    else:
        url += ("&" if "?" in ws_url else "?") + f"access_token={token}"

    async def session() -> None:
        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            initialized = asyncio.Event()
            finished = asyncio.Event()

            async def sender() -> None:
                await initialized.wait()
                await ws.send(config_message(tag, interims=interims))
                async for frame in frames(pcm16k, frame_bytes, SAMPLE_RATE, speed):
                    await ws.send(frame)
                await ws.send(json.dumps({"type": "EOS", "lockSession": False}))

            async def receiver() -> None:
                try:
                    async for raw in ws:
                        if isinstance(raw, bytes):
                            continue
                        msg = record_message(result, raw)
                        status = msg.get("status")
                        if status == "INITIALIZED":
                            initialized.set()
                        elif status == "FINISHED":
                            finished.set()
                            return
                        if result.errors:
                            return
                except ConnectionClosed:
                    pass

            send_task = asyncio.create_task(sender())
            try:
                await receiver()
            finally:
                send_task.cancel()
                await asyncio.gather(send_task, return_exceptions=True)
            if not finished.is_set() and not result.errors:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), 5)
        result.close_code = ws.close_code

    await asyncio.wait_for(session(), timeout)
    return result
