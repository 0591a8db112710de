"""Load tooling shared by tests/test_load.py and bench/load.py: many concurrent sessions through the app's grants
against both emulators and the offline engine (all on the scripted recognizer); each session's transcript is a
function of its audio length alone, so any lost frame or mixed-up session shows as a missing or wrong word."""


from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from testkit import audio
from testkit.stack import PROVIDERS, WIRO_KEY, WIRO_SECRET, stack

MS_PER_WORD = 250
TRANSCRIPT_PREFIX = "TRANSCRIPT_USER:"


@dataclass
class Outcome:
    provider: str
    expected: list[str]
    received: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def lost_words(self) -> int:
        return len(self.expected) - sum(1 for a, b in zip(self.expected, self.received, strict=False) if a == b)

    @property
    def complete(self) -> bool:
        return not self.error and self.received == self.expected


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    wall_seconds: float
    audio_seconds: float

    @property
    def errors(self) -> list[str]:
        return [f"{o.provider}: {o.error}" for o in self.outcomes if o.error]

    @property
    def lost_words(self) -> int:
        return sum(o.lost_words for o in self.outcomes)

    @property
    def expected_words(self) -> int:
        return sum(len(o.expected) for o in self.outcomes)


def expected_words(audio_s: float) -> list[str]:
    count = int(audio_s * 1000) // MS_PER_WORD
    return [DEFAULT_SCRIPT[i % len(DEFAULT_SCRIPT)] for i in range(count)]


def pcm_at(rate: int, audio_s: float) -> bytes:
    return audio.float_to_pcm16(audio.tone(440.0, rate, int(audio_s * rate), 0.3)).astype("<i2").tobytes()


async def paced_frames(pcm: bytes, frame_bytes: int, rate: int, speed: float) -> Any:
    """Yields frames on a schedule `speed` times faster than real time (absolute deadlines, so no drift)."""
    start = time.monotonic()
    frame_s = frame_bytes / 2 / rate / speed
    for i, offset in enumerate(range(0, len(pcm), frame_bytes)):
        delay = start + i * frame_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield pcm[offset : offset + frame_bytes]


async def truebar_session(grant: dict[str, Any], pcm: bytes, speed: float) -> list[str]:
    url = f"{grant['ws_url']}?access_token={grant['token']}"
    frame_bytes = int(grant["frame_samples"]) * 2
    stage = {"task": "ASR", "exceptionHandlingPolicy": "THROW", "config": {"tag": grant["tag"]}}
    stage["config"]["parameters"] = {"enableInterims": True}
    finals: list[str] = []
    async with websockets.connect(url, max_size=None) as ws:
        first = json.loads(await ws.recv())
        if first.get("status") != "INITIALIZED":
            raise RuntimeError(f"unexpected first message {first}")
        await ws.send(json.dumps({"type": "CONFIG", "pipeline": [stage]}))

        async def send() -> None:
            async for frame in paced_frames(pcm, frame_bytes, int(grant["sample_rate"]), speed):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "ERROR":
                    raise RuntimeError(f"ERROR {msg.get('error')}")
                if msg.get("type") == "TEXT_SEGMENT" and msg["textSegment"]["isFinal"]:
                    finals += [t["text"] for t in msg["textSegment"]["tokens"] if t.get("text")]
                if msg.get("status") == "FINISHED":
                    break
            else:
                raise RuntimeError(f"closed before FINISHED ({ws.close_code})")
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    return finals


async def wiro_session(grant: dict[str, Any], pcm: bytes, speed: float) -> list[str]:
    token = str(grant["token"])
    frame_bytes = int(grant["frame_samples"]) * 2
    text: list[str] = []
    async with websockets.connect(str(grant["ws_url"]), max_size=None) as ws:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        ready = asyncio.Event()

        async def send() -> None:
            await ready.wait()
            async for frame in paced_frames(pcm, frame_bytes, int(grant["sample_rate"]), speed):
                await ws.send(token.encode() + b"|" + frame)
            await ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "task_stream_ready":
                    ready.set()
                elif kind == "task_error":
                    raise RuntimeError(f"task_error {msg.get('message')}")
                elif kind == "task_output" and str(msg.get("message", "")).startswith(TRANSCRIPT_PREFIX):
                    text.append(msg["message"][len(TRANSCRIPT_PREFIX) :])
                elif kind == "task_postprocess_end":
                    break
            else:
                raise RuntimeError(f"closed before task_postprocess_end ({ws.close_code})")
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    return " ".join(text).split()


async def one_session(
    client: httpx.AsyncClient, provider: str, pcm: dict[int, bytes], audio_s: float, speed: float
) -> Outcome:
    outcome = Outcome(provider, expected_words(audio_s))
    started = time.monotonic()
    try:
        r = await client.post("/api/sessions", json={"provider": provider})
        if r.status_code != 200:
            raise RuntimeError(f"grant {r.status_code} {r.text[:200]}")
        grant = r.json()
        rate = int(grant["sample_rate"])
        run = truebar_session if grant["protocol"] == "truebar" else wiro_session
        outcome.received = await asyncio.wait_for(run(grant, pcm[rate], speed), 10 + 2 * audio_s / speed)
        end = await client.post(f"/api/sessions/{provider}/{grant['session_id']}/end")
        if end.status_code != 200:
            raise RuntimeError(f"end {end.status_code} {end.text[:200]}")
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.monotonic() - started
    return outcome


async def run_load(url: str, per_provider: int, duration_s: float, audio_s: float, speed: float) -> LoadResult:
    """`per_provider` workers per provider, each running sessions back to back until `duration_s` has passed."""
    pcm = {rate: pcm_at(rate, audio_s) for rate in (16_000, 24_000)}
    outcomes: list[Outcome] = []
    started = time.monotonic()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker(provider: str) -> None:
            while True:
                outcomes.append(await one_session(client, provider, pcm, audio_s, speed))
                if time.monotonic() - started >= duration_s:
                    return

        await asyncio.gather(*(worker(p) for p in PROVIDERS for _ in range(per_provider)))
    wall = time.monotonic() - started
    return LoadResult(outcomes, wall, audio_s * len(outcomes))


def load_stack() -> Any:
    """The stack for load: Wiro slots and the app's per-client limits far above the number of workers."""
    wiro = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
    return stack(ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4), wiro_options=wiro)


