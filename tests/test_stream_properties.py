"""Conservation of words, as properties of the embedded engine's stream server (issue 16).

Recorded human speech (tests/data/human; a whispered sentence of tests/data/varied in explicit examples) goes
through the app's own socket (/api/local/stream, the real engine:
pocketsphinx worker processes and Whisper in its own process) in any frame size from 10 to 250 ms, with any lead
silence (up to a minute), cut off at any moment (mid-word, mid-silence, straight after CONFIG) or not, with noise
or not, sent as fast as possible or at real-time pace with jitter and bursts. Whatever hypothesis draws:

- the stream ends FINISHED (close 1000), never with an ERROR;
- the last thing on the client's screen is a final: every utterance whose interims were shown got a final;
- finals come in time order and do not overlap;
- a final keeps what its interims showed, allowing for the accurate pass's corrections: over the session, of the
  words the last interim before each final showed rightly (its longest common subsequence with the speech's
  words), at least COVERAGE are still in that final and the interim after it, unless a WARNING said the accurate
  pass stood aside (then the fast text is the final);
- nothing is repeated: the finals hold no more words than the speech sent had, plus a small allowance;
- a clip sent whole is not lost: its finals hold most of its words (a whispered one: or a WARNING says it was left
  out).

Examples are bounded (EXAMPLES, plus the explicit ones below) so the suite fits the test budget; longer runs of
the same properties belong in bench/.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.speech import HUMAN_CLIPS, READING, human_reference, load_human, normalise, with_noise
from server.app import create_app
from server.engine.outcomes import UNHEARD_WARNING
from server.engine.types import BYTES_PER_MS
from server.providers.local import LOCAL_TAG
from server.settings import Settings
from testkit.live import running, wait_ready
from testkit.truebar_client import config_message, tokens_to_text

pytestmark = pytest.mark.slow

EXAMPLES = 12
# Measured: 0.83-1.0 over the examples below. Counted over all the interims' words, wrong ones included, a reading
# cut off mid-word came to 0.5, then 0.375 once the fast pass read each frame as it arrived: it showed "he was not
# until this blows she and" before "He was not an ill-sposed young man.". In noise most of its words are wrong.
COVERAGE = 0.75
REPEAT_ALLOWANCE = 1.25  # finals' words at most this many times the words sent, plus 3
WHISPERED = ("mfa-whisper2.wav",)  # clips with no voiced speech (tests/data/varied)
KEPT = 0.6  # a clip sent whole: at least this share of its words in the finals (Whisper base's own errors: ~5 %)
LOW_NOISE = 3  # PCM16 amplitude of the "silence": a real microphone never sends digital zeros


@dataclass(frozen=True)
class Case:
    clip: str
    lead_ms: int  # silence before the speech
    cut_ms: int | None  # EOS after this much audio (None: the whole clip and its trailing silence)
    frame_bytes: int
    speed: float | None  # None: as fast as possible; else times real time
    noise_db: float | None
    seed: int

    def audio(self) -> tuple[bytes, str]:
        """The audio sent and the words it holds (all of the clip's when not cut)."""
        rng = random.Random(self.seed)
        speech = load_human(self.clip)
        if self.noise_db is not None:
            speech = with_noise(speech, self.noise_db, self.seed)
        lead = bytes(quiet(self.lead_ms, rng))
        pcm = lead + speech + bytes(quiet(700, rng))
        if self.cut_ms is not None:
            pcm = pcm[: self.cut_ms * BYTES_PER_MS]
        return pcm, human_reference(self.clip)


def quiet(ms: int, rng: random.Random) -> bytearray:
    out = bytearray()
    for _ in range(ms * BYTES_PER_MS // 2):
        out += rng.randint(-LOW_NOISE, LOW_NOISE).to_bytes(2, "little", signed=True)
    return out


@dataclass
class Session:
    messages: list[dict[str, Any]]
    close_code: int | None


@pytest.fixture(scope="module")
def app_url(whisper_model_cache: Path) -> Iterator[str]:
    # Sessions are started as fast as examples run (more of them when hypothesis shrinks a failure, or EXAMPLES is
    # raised for a longer run): the mint's rate limit, tested elsewhere, would answer 429 and hide the failure.
    env = {
        "LOCAL_MODEL_CACHE": str(whisper_model_cache),
        "LOCAL_IDLE_TIMEOUT_S": "120",
        "APP_SESSION_RATE_PER_MIN": "100000",
    }
    settings = Settings.from_env(env)
    with running(create_app(settings)) as url:
        wait_ready(url)
        yield url


async def stream(url: str, case: Case, pcm: bytes) -> Session:
    async with httpx.AsyncClient() as client:
        response = await client.post(url + "/api/sessions", json={"provider": "local"})
        assert response.status_code == 200, response.text
        grant = response.json()
    rng = random.Random(case.seed)
    messages: list[dict[str, Any]] = []
    async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                messages.append(json.loads(raw))

        messages.append(json.loads(await ws.recv()))  # INITIALIZED
        receiver = asyncio.create_task(receive())
        await ws.send(config_message(LOCAL_TAG))
        started = time.monotonic()
        for i in range(0, len(pcm), case.frame_bytes):
            await ws.send(pcm[i : i + case.frame_bytes])
            if case.speed is not None:
                # Real-time pace with jitter (±20 ms) and, now and then, a burst (the browser's timer throttled).
                due = started + (i + case.frame_bytes) / BYTES_PER_MS / 1000 / case.speed
                if rng.random() > 0.1:
                    await asyncio.sleep(max(0.0, due - time.monotonic() + rng.uniform(-0.02, 0.02)))
        await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
        await asyncio.wait_for(receiver, 120)
    return Session(messages, ws.close_code)


def words(text: str) -> list[str]:
    return normalise(text).split()


def common(a: list[str], b: list[str]) -> list[str]:
    """A longest common subsequence of `a` and `b`: the words of `a` that `b` has, in order."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    out: list[str] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def check(case: Case, session: Session, sent: bytes, reference: str) -> None:
    kinds = [m.get("type") for m in session.messages]
    errors = [m for m in session.messages if m.get("type") == "ERROR"]
    assert not errors, errors
    assert session.messages[-1].get("status") == "FINISHED", session.messages[-3:]
    assert session.close_code == 1000
    segments = [m["textSegment"] for m in session.messages if m.get("type") == "TEXT_SEGMENT"]
    warnings = [m for m in session.messages if m.get("type") == "WARNING"]
    if segments:
        last = segments[-1]
        # An interim left on screen at FINISHED is a lost utterance (an empty interim only clears the screen).
        assert last["isFinal"] or not last["tokens"], segments[-3:]
    finals = [s for s in segments if s["isFinal"] and s["tokens"]]
    for before, after in itertools.pairwise(finals):
        assert before["startTimeMs"] <= after["startTimeMs"], (before, after)
        assert before["endTimeMs"] <= after["startTimeMs"] + 50, (before, after)  # token ends round to 10 ms
    final_words = words(" ".join(tokens_to_text(f["tokens"]) for f in finals))
    # At each final, the interim on screen (the fast text of this utterance and of what follows) is replaced by the
    # final and the interim sent with it: the words the screen showed rightly (those the speech has) should still be
    # there. The words it showed wrongly are the accurate pass's to correct.
    ref = words(reference)
    shown = kept = 0
    interim: list[str] = []
    for i, segment in enumerate(segments):
        text = words(tokens_to_text(segment["tokens"]))
        if not segment["isFinal"]:
            interim = text
            continue
        following = segments[i + 1] if i + 1 < len(segments) and not segments[i + 1]["isFinal"] else None
        after = text + (words(tokens_to_text(following["tokens"])) if following else [])
        right = common(interim, ref)
        shown += len(right)
        kept += len(common(right, after))
        interim = []
    if shown >= 6 and not warnings:
        assert kept / shown >= COVERAGE, (kept / shown, final_words)
    assert len(final_words) <= REPEAT_ALLOWANCE * len(ref) + 3, (final_words, ref)
    if case.cut_ms is None and case.noise_db is None:
        kept = len(common(ref, final_words)) / len(ref)
        # Or, for the whispered clip, whose words no pass but the accurate one hears, a warning names what was lost:
        # it could not be decoded in time (seen in CI on a machine whose cores another test run shared). Only there:
        # on a voiced clip the fast pass's words are the final when Whisper's are late, and a faint-speech warning
        # elsewhere in the session must not hide their loss.
        left_out = case.clip in WHISPERED and any(m["message"] == UNHEARD_WARNING for m in warnings)
        assert kept >= KEPT or left_out, (kept, final_words, ref, kinds.count("WARNING"))


def run_case(url: str, case: Case) -> None:
    pcm, reference = case.audio()
    session = asyncio.run(stream(url, case, pcm))
    check(case, session, pcm, reference)


CLIPS = [*HUMAN_CLIPS, READING]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    clip = draw(st.sampled_from(CLIPS))
    duration_ms = len(load_human(clip)) // BYTES_PER_MS
    lead_ms = draw(st.integers(0, 3000))  # a minute of silence is an explicit example: it costs 6000 frames
    total = lead_ms + duration_ms + 700
    cut = draw(st.one_of(st.none(), st.integers(0, total)))
    # Real time only for short audio: the suite's time is bounded.
    fast = total > 6000 or draw(st.booleans())
    return Case(
        clip=clip,
        lead_ms=lead_ms,
        cut_ms=cut,
        frame_bytes=2 * draw(st.integers(160, 4000)),  # 10-250 ms
        speed=None if fast else draw(st.sampled_from([1.0, 2.0])),
        noise_db=draw(st.sampled_from([None, None, 20.0, 10.0])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A sentence whose speech runs to its last sample (issue 16, 1), whole and cut mid-word, at real-time pace.
@example(Case("austen-0880.wav", 0, None, 3200, 1.0, None, 1))
@example(Case("austen-0880.wav", 0, 2400, 1600, None, None, 2))
# EOS straight after CONFIG; EOS after a minute of silence; the 24.7 s reading in 10 ms frames.
@example(Case("goforward.wav", 500, 0, 1600, None, None, 3))
@example(Case("cards-004.wav", 60_000, None, 8000, None, None, 4))
@example(Case(READING, 300, None, 320, None, None, 5))
@example(Case("goforward.wav", 500, None, 1600, 1.0, None, 6))
# A whispered sentence only the loose voice detector hears (a window of its own, server/engine/voice_runs.py), whole
# at real-time pace, and cut off mid-way (the run still open at EOS goes then).
@example(Case("mfa-whisper2.wav", 500, None, 1600, 1.0, None, 7))
@example(Case("mfa-whisper2.wav", 500, 3500, 1600, None, None, 8))
@given(case=cases())
def test_every_utterance_gets_its_final_and_nothing_is_lost_or_repeated(app_url: str, case: Case) -> None:
    run_case(app_url, case)
