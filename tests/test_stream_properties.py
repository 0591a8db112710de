"""Conservation of words, as properties of the embedded engine's stream server (issue 16).

Recorded human speech (tests/data/human, and made of it: five card clips with pauses between them, one short word of
about 0.2 s, 42 s of every clip's words and a 74 s reading, both with no pause over 300 ms;
tests/support/stream_clips.py) and a whispered sentence of
tests/data/varied go through the app's own socket (/api/local/stream, the real engine: pocketsphinx worker processes
and Whisper in its own process) in any frame size from 10 to 250 ms, after any lead silence (up to a minute), with
any tail of silence (up to 20 s), cut off at any moment (mid-word, mid-silence, straight after CONFIG) or not, with
noise or not, at any pace from as fast as possible to real time, with jitter, bursts and stalls of 0.2-2 s after
which the backlog goes at once. Whatever hypothesis draws:

- the stream ends FINISHED (close 1000), never with an ERROR, and the last thing on screen is a final;
- finals come in time order and do not overlap;
- nothing is lost: every word an interim showed, when it leaves the screen (at a final, or cleared by an empty
  interim), lies in the span of a later final that has words, or of one the WARNING sent right before it names (an
  accurate pass that stood aside, speech left out); and over the finals no warning names, of the words the interim
  showed rightly (those the speech has), at least COVERAGE are still in the final and the interim after it;
- nothing is repeated: a pair of words the finals hold k >= 2 times, the clip's words hold at least k times (only
  repeated pairs: a misheard pair is not a repeat), and a session that sent only silence gets no words;
- a clip sent whole is not lost: its finals hold most of its words (a whispered one: or a WARNING says it was left
  out);
- the explicit examples that should give several finals do (the checks above ran on them).

Hypothesis runs under the profile tests/conftest.py loads: "deterministic" by default (derandomized, the same
examples every run, no shrinking so a failure is reported in bounded time), or HYPOTHESIS_PROFILE=soak for local
runs with fresh random examples and shrinking:

    HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest tests/test_stream_properties.py -p no:cacheprovider

Examples are bounded (EXAMPLES, plus the explicit ones below; real-time pace only where a case's audio takes at most
PACED_S) so the suite fits the test budget; longer runs of the same properties belong in bench/.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.speech import READING, normalise, with_noise
from server.app import create_app
from server.engine.outcomes import UNHEARD_WARNING
from server.engine.types import BYTES_PER_MS
from server.providers.local import LOCAL_TAG
from server.settings import Settings
from testkit.live import running, wait_ready
from testkit.truebar_client import config_message, tokens_to_text
from tests.support.stream_clips import (
    CLIPS,
    DECK,
    JOINED,
    LONG_READING,
    WORD,
    duration_ms,
    kept_checked,
    quiet,
)
from tests.support.stream_clips import reference as clip_reference
from tests.support.stream_clips import speech as clip_speech

pytestmark = pytest.mark.slow

EXAMPLES = 12
# Measured: 0.83-1.0 over the examples below. Counted over all the interims' words, wrong ones included, a reading
# cut off mid-word came to 0.5, then 0.375 once the fast pass read each frame as it arrived: it showed "he was not
# until this blows she and" before "He was not an ill-sposed young man.". In noise most of its words are wrong.
COVERAGE = 0.75
REPEAT_ALLOWANCE = 1.25  # finals' words at most this many times the words sent, plus 3
WHISPERED = ("mfa-whisper2.wav",)  # clips with no voiced speech (tests/data/varied)
KEPT = 0.6  # a clip sent whole: at least this share of its words in the finals (Whisper base's own errors: ~5 %)
# An interim word's span and the final's that keeps it may differ by this much (token times round to 10 ms, and the
# two passes place a word's edges apart): well under the pause that ends an utterance (server/engine/config.py).
SPAN_SLACK_MS = 100
PACED_S = 4.0  # a case paced slower than fast takes at most this long to send (the suite's time is bounded)
STALLS_S = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Case:
    clip: str
    lead_ms: int  # silence before the speech
    cut_ms: int | None  # EOS after this much audio (None: the whole clip and its tail)
    frame_bytes: int
    speed: float | None  # None: as fast as possible; else times real time
    noise_db: float | None
    seed: int
    tail_ms: int = 700  # silence after the speech
    # (frame index, seconds): the sender stalls after that frame, then sends the backlog at once.
    stalls: tuple[tuple[int, float], ...] = ()
    # At least this many finals with words (an explicit example's, that the loss checks ran over several finals).
    min_finals: int = 0

    def audio(self) -> bytes:
        """The audio sent (the clip's words: `clip_reference`, all of them when not cut)."""
        speech = clip_speech(self.clip)
        if self.noise_db is not None:
            speech = with_noise(speech, self.noise_db, self.seed)
        pcm = quiet(self.lead_ms, self.seed) + speech + quiet(self.tail_ms, self.seed + 1)
        if self.cut_ms is not None:
            pcm = pcm[: self.cut_ms * BYTES_PER_MS]
        return pcm

    def silence_only(self) -> bool:
        """Only the quiet before the speech was sent."""
        return self.cut_ms is not None and self.cut_ms <= self.lead_ms


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
    stalls = dict(case.stalls)
    messages: list[dict[str, Any]] = []
    async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                messages.append(json.loads(raw))

        messages.append(json.loads(await ws.recv()))  # INITIALIZED
        receiver = asyncio.create_task(receive())
        await ws.send(config_message(LOCAL_TAG))
        started = time.monotonic()
        for n, i in enumerate(range(0, len(pcm), case.frame_bytes)):
            await ws.send(pcm[i : i + case.frame_bytes])
            if n in stalls:
                # A stall (a busy main thread, a network hiccup): what was due meanwhile then goes at once, as the
                # frames below are already late.
                await asyncio.sleep(stalls[n])
            elif case.speed is not None:
                # Paced with jitter (±20 ms) and, now and then, a burst (the browser's timer throttled).
                due = started + (i + case.frame_bytes) / BYTES_PER_MS / 1000 / case.speed
                if rng.random() > 0.1:
                    await asyncio.sleep(max(0.0, due - time.monotonic() + rng.uniform(-0.02, 0.02)))
        await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
        await asyncio.wait_for(receiver, 180)
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


@dataclass
class Segment:
    """A TEXT_SEGMENT as received, with the WARNING sent right before it (the final it concerns: server/transport.py
    `emit`)."""

    is_final: bool
    start_ms: int
    end_ms: int
    tokens: list[dict[str, Any]]
    warning: str | None = None
    text: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.text = words(tokens_to_text(self.tokens))

    def word_spans(self) -> list[tuple[str, int, int]]:
        """Each token with its span in the stream's time."""
        return [
            (t["text"], self.start_ms + t["startOffsetMs"], self.start_ms + t["endOffsetMs"])
            for t in self.tokens
            if words(t["text"])
        ]


def segments_of(session: Session) -> list[Segment]:
    out: list[Segment] = []
    warning: str | None = None
    for message in session.messages:
        kind = message.get("type")
        if kind == "TEXT_SEGMENT":
            s = message["textSegment"]
            out.append(Segment(s["isFinal"], s["startTimeMs"], s["endTimeMs"], s["tokens"]))
            if s["isFinal"]:
                out[-1].warning = warning
        warning = message["message"] if kind == "WARNING" else None
    return out


def pairs(text: list[str]) -> Counter[tuple[str, str]]:
    return Counter(itertools.pairwise(text))


@dataclass
class Checked:
    """What the checks ran over in one session."""

    finals: int = 0
    interim_words: int = 0  # words an interim showed that the loss check followed off the screen


def check(case: Case, session: Session, reference: str) -> Checked:
    kinds = [m.get("type") for m in session.messages]
    errors = [m for m in session.messages if m.get("type") == "ERROR"]
    assert not errors, errors
    assert session.messages[-1].get("status") == "FINISHED", session.messages[-3:]
    assert session.close_code == 1000
    segments = segments_of(session)
    warnings = [m["message"] for m in session.messages if m.get("type") == "WARNING"]
    if segments:
        last = segments[-1]
        # An interim left on screen at FINISHED is a lost utterance (an empty interim only clears the screen).
        assert last.is_final or not last.tokens, segments[-3:]
    finals = [s for s in segments if s.is_final and s.tokens]
    for before, after in itertools.pairwise(finals):
        assert before.start_ms <= after.start_ms, (before, after)
        assert before.end_ms <= after.start_ms + 50, (before, after)  # token ends round to 10 ms
    final_words = [w for f in finals for w in f.text]
    shown_text = [[(w, s.start_ms, s.end_ms) for w in s.text] for s in segments]
    checked = Checked(finals=len(finals))

    # Nothing lost. The screen shows the finals and one interim; a final replaces the interim (the interim sent with
    # it shows what is still to come), an empty interim clears it. Whatever it showed then must be in a later final's
    # span: one with words, or one a warning names (the fast text as the final, speech left out).
    ref = words(reference)
    shown = kept = 0
    interim: Segment | None = None
    for i, segment in enumerate(segments):
        if not segment.is_final and segment.tokens:
            interim = segment
            continue
        if interim is not None:
            kept_by = [f for f in segments[i:] if f.is_final and (f.tokens or f.warning)]
            for word, start, end in interim.word_spans():
                checked.interim_words += 1
                covered = any(f.start_ms - SPAN_SLACK_MS < end and start < f.end_ms + SPAN_SLACK_MS for f in kept_by)
                assert covered, ("lost", word, start, end, [(f.text, f.start_ms, f.end_ms) for f in kept_by], kinds)
        if segment.is_final and not segment.warning:
            # Of the words the interim showed rightly, most are in the final and the interim after it (the wrong
            # ones are the accurate pass's to correct). Only a final a warning names is left out of the count.
            following = segments[i + 1] if i + 1 < len(segments) and not segments[i + 1].is_final else None
            after = segment.text + (following.text if following else [])
            right = common(interim.text if interim else [], ref)
            shown += len(right)
            kept += len(common(right, after))
        interim = None
    if shown >= 6:
        assert kept / shown >= COVERAGE, (kept / shown, final_words, shown_text)

    # Nothing repeated.
    assert len(final_words) <= REPEAT_ALLOWANCE * len(ref) + 3, (final_words, ref)
    # A pair of the clip's own words is written at most as often as the clip says it. Only the clip's pairs: one
    # misheard the same way each time it is said ("of clothes" for each "of clubs" of the card clips) is no repeat.
    said = pairs(ref)
    repeated = {pair: k for pair, k in pairs(final_words).items() if said[pair] and k > said[pair]}
    assert not repeated, (repeated, [f.text for f in finals])
    if case.silence_only():
        assert not final_words, ("words in silence", final_words)

    if case.cut_ms is None and case.noise_db is None and kept_checked(case.clip):
        kept_share = len(common(ref, final_words)) / len(ref)
        # Or, for the whispered clip, whose words no pass but the accurate one hears, a warning names what was lost:
        # it could not be decoded in time (seen in CI on a machine whose cores another test run shared). Only there:
        # on a voiced clip the fast pass's words are the final when Whisper's are late, and a faint-speech warning
        # elsewhere in the session must not hide their loss.
        left_out = case.clip in WHISPERED and UNHEARD_WARNING in warnings
        assert kept_share >= KEPT or left_out, (kept_share, final_words, ref, kinds.count("WARNING"))
    assert checked.finals >= case.min_finals, ("fewer finals than the example is for", [f.text for f in finals])
    return checked


def run_case(url: str, case: Case) -> Checked:
    pcm = case.audio()
    session = asyncio.run(stream(url, case, pcm))
    return check(case, session, clip_reference(case.clip))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    clip = draw(st.sampled_from(CLIPS))
    lead_ms = draw(st.one_of(st.integers(0, 3000), st.just(60_000)))  # fed fast, a minute costs little
    tail_ms = draw(st.one_of(st.integers(0, 2000), st.just(20_000)))
    total = lead_ms + duration_ms(clip) + tail_ms
    cut = draw(st.one_of(st.none(), st.integers(0, total)))
    sent_s = (total if cut is None else cut) / 1000
    frame_bytes = 2 * draw(st.integers(160, 4000))  # 10-250 ms
    speed = draw(st.sampled_from([None, 8.0, 4.0, 2.0, 1.0]))
    if speed is not None and sent_s / speed > PACED_S:
        speed = None  # real time only for short audio: the suite's time is bounded
    frames = max(1, -(-int(sent_s * 1000 * BYTES_PER_MS) // frame_bytes))
    stalls = draw(
        st.lists(st.tuples(st.integers(0, frames - 1), st.sampled_from(STALLS_S)), max_size=2, unique_by=lambda s: s[0])
    )
    return Case(
        clip=clip,
        lead_ms=lead_ms,
        cut_ms=cut,
        frame_bytes=frame_bytes,
        speed=speed,
        noise_db=draw(st.sampled_from([None, None, 20.0, 10.0])),
        seed=draw(st.integers(0, 2**16)),
        tail_ms=tail_ms,
        stalls=tuple(sorted(stalls)),
    )


# derandomize, phases and the database come from the profile (tests/conftest.py).
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A sentence whose speech runs to its last sample (issue 16, 1), whole and cut mid-word, at real-time pace.
@example(Case("austen-0880.wav", 0, None, 3200, 1.0, None, 1))
@example(Case("austen-0880.wav", 0, 2400, 1600, None, None, 2))
# EOS straight after CONFIG; EOS after a minute of silence before and 30 s after the speech.
@example(Case("goforward.wav", 500, 0, 1600, None, None, 3))
@example(Case("cards-004.wav", 60_000, None, 8000, None, None, 4, tail_ms=30_000))
# Only silence, a minute of it, with a stall.
@example(Case("goforward.wav", 60_000, 59_000, 3200, None, None, 9, stalls=((100, 1.0),)))
# The 24.7 s reading in 10 ms frames, and 42 s of every clip's words with no pause over 300 ms fed fast: several
# finals each. (The reading said three times over, 74 s: the test after this one.)
@example(Case(READING, 300, None, 320, None, None, 5, min_finals=2))
@example(Case(JOINED, 300, None, 3200, None, None, 10, min_finals=4))
# Five short utterances apart (several finals, each of a few words), fast and at twice real time with stalls.
@example(Case(DECK, 200, None, 1600, None, None, 11, min_finals=4))
@example(Case(DECK, 0, None, 3200, 2.0, None, 12, stalls=((20, 2.0), (60, 0.5)), min_finals=4))
# An utterance of about 0.2 s, at real time and cut at its end.
@example(Case(WORD, 500, None, 640, 1.0, None, 13, min_finals=1))
@example(Case(WORD, 500, 760, 640, None, None, 14))
@example(Case("goforward.wav", 500, None, 1600, 1.0, None, 6))
# A whispered sentence only the loose voice detector hears (a window of its own, server/engine/voice_runs.py), whole
# at real-time pace, and cut off mid-way (the run still open at EOS goes then).
@example(Case("mfa-whisper2.wav", 500, None, 1600, 1.0, None, 7))
@example(Case("mfa-whisper2.wav", 500, 3500, 1600, None, None, 8))
@given(case=cases())
def test_every_utterance_gets_its_final_and_nothing_is_lost_or_repeated(app_url: str, case: Case) -> None:
    run_case(app_url, case)


@pytest.mark.xfail(
    strict=False,
    reason="an engine defect this suite found (2026-12-08, issue 16 left open): the reading said three times over "
    "(74 s, no pause over 300 ms) fed fast, while Whisper falls behind, came back in 2 of 3 runs with a phrase "
    "written once more than said and finals that keep only a few of the words their span covers, with no warning",
)
def test_a_reading_said_three_times_over_keeps_each_of_its_words_once_each_time(app_url: str) -> None:
    run_case(app_url, Case(LONG_READING, 300, None, 3200, None, None, 16, min_finals=4))
