"""Load tooling shared by tests/test_load.py and bench/load.py: many concurrent sessions through the app's grants
against both emulators and the offline engine (all on the scripted recognizer); each session's transcript is a
function of its audio length alone, so any lost frame or mixed-up session shows as a missing or wrong word."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import httpx

from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.emulators.wiro import WiroEmulatorOptions
from server.wire import Grant
from testkit import audio
from testkit.stack import PROVIDERS, WIRO_KEY, WIRO_SECRET, Stack, stack
from testkit.truebar_client import transcribe_truebar
from testkit.wiro_client import transcribe_wiro

MS_PER_WORD = 250


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


def parse_grant(data: object) -> Grant:
    """The app's answer to POST /api/sessions as its wire model: a missing or unknown field raises TypeError."""
    if not isinstance(data, dict):
        raise TypeError(f"a grant is a JSON object, not {data!r}")
    return Grant(**data)


async def truebar_session(
    grant: Grant,
    pcm: bytes,
    speed: float,
    timeout: float,  # noqa: ASYNC109 - the client's own bound (connect, stream and end), passed on
) -> list[str]:
    """One Truebar session through the app's grant: the final words."""
    if grant.tag is None:
        raise RuntimeError("a Truebar grant without a tag")
    result = await transcribe_truebar(
        grant.ws_url,
        grant.token,
        pcm,
        tag=grant.tag,
        frame_bytes=grant.frame_samples * 2,
        timeout=timeout,
        speed=speed,
    )
    if result.errors:
        raise RuntimeError(f"ERROR {result.errors[0]}")
    if "FINISHED" not in result.status_names:
        raise RuntimeError(f"closed before FINISHED ({result.close_code})")
    return result.text.split()


async def wiro_session(
    grant: Grant,
    pcm: bytes,
    speed: float,
    timeout: float,  # noqa: ASYNC109 - the client's own bound (connect, stream and end), passed on
) -> list[str]:
    """One Wiro session through the app's grant: the transcript's words."""
    result = await transcribe_wiro(
        grant.ws_url, grant.token, pcm, frame_samples=grant.frame_samples, timeout=timeout, speed=speed
    )
    errors = result.of_type("task_error")
    if errors:
        raise RuntimeError(f"task_error {errors[0].get('message')}")
    if "task_postprocess_end" not in result.events:
        raise RuntimeError(f"closed before task_postprocess_end ({result.close_code})")
    return result.text.split()


async def one_session(
    client: httpx.AsyncClient, provider: str, pcm: dict[int, bytes], audio_s: float, speed: float
) -> Outcome:
    outcome = Outcome(provider, expected_words(audio_s))
    started = time.monotonic()
    try:
        r = await client.post("/api/sessions", json={"provider": provider})
        if r.status_code != 200:
            raise RuntimeError(f"grant {r.status_code} {r.text[:200]}")
        grant = parse_grant(r.json())
        run = truebar_session if grant.protocol == "truebar" else wiro_session
        outcome.received = await run(grant, pcm[grant.sample_rate], speed, 10 + 2 * audio_s / speed)
        end = await client.post(f"/api/sessions/{provider}/{grant.session_id}/end")
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


def load_stack() -> contextlib.AbstractContextManager[Stack]:
    """The stack for load: Wiro slots and the app's per-client limits far above the number of workers."""
    wiro = WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET, max_concurrent_tasks=10_000)
    return stack(ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4), wiro_options=wiro)
