"""Silero's voice activity detector as the two-pass engine runs it: the hysteresis over its probabilities, and the
real model on recorded speech, fed in any frame sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.speech import HUMAN_CLIPS, load_human, speech_end_ms, speech_onset_ms
from server.engine.silero import (
    CHUNK,
    CHUNK_MS,
    CONTEXT,
    RESTART_QUIET_CHUNKS,
    Hysteresis,
    Listener,
    SileroDetector,
    SileroTrack,
    SpeechSpans,
    State,
)

SILENCE_1S = bytes(32_000)


def spans(*probabilities: float, keep: int = 1000) -> SpeechSpans:
    hysteresis = Hysteresis()
    out = SpeechSpans(keep=keep)
    out.add([hysteresis.step(p) for p in probabilities])
    return out


def test_speech_starts_at_the_threshold_and_goes_on_until_below_the_lower_one() -> None:
    # chunks:        0    1    2    3    4    5    6
    track = spans(0.1, 0.6, 0.4, 0.3, 0.4, 0.6, 0.2)  # speech: 1-2 (0.4 keeps it), 5 (0.4 after quiet does not)
    assert track.speech_start(0, 7 * CHUNK_MS) == 1 * CHUNK_MS
    assert track.speech_start(3 * CHUNK_MS, 7 * CHUNK_MS) == 5 * CHUNK_MS
    assert track.speech_start(3 * CHUNK_MS, 5 * CHUNK_MS) is None
    assert track.run_end(1 * CHUNK_MS + 5) == 3 * CHUNK_MS
    assert track.run_end(3 * CHUNK_MS) is None
    assert track.quiet_between(0, 7 * CHUNK_MS) == 2 * CHUNK_MS
    assert track.quiet_ms() == CHUNK_MS
    # Where the quiet began: the end of the last speech chunk, whatever audio waits to make the next chunk.
    assert track.heard_ms() - track.quiet_ms() == 6 * CHUNK_MS


def test_a_run_still_going_ends_at_the_newest_chunk_and_quiet_counts_from_the_last_speech() -> None:
    track = spans(0.9, 0.9)
    assert track.run_end(0) is None  # it has not ended
    assert track.run_end(0, ongoing=True) == 2 * CHUNK_MS
    assert track.quiet_ms() == 0
    assert spans(0.1, 0.1, 0.1).quiet_ms() == 3 * CHUNK_MS


def test_only_the_newest_chunks_are_kept_and_older_times_have_no_answer() -> None:
    track = spans(0.9, 0.1, 0.1, 0.9, keep=2)
    assert track.speech_start(0, 4 * CHUNK_MS) == 3 * CHUNK_MS  # chunk 0 is forgotten
    assert track.run_end(0) is None
    assert track.quiet_between(0, 4 * CHUNK_MS) == CHUNK_MS


@pytest.fixture(scope="module")
def detector() -> SileroDetector:
    return SileroDetector()


def test_speech_is_found_where_the_recording_has_it(detector: SileroDetector) -> None:
    for name in HUMAN_CLIPS[:4]:
        speech = load_human(name)
        track = detector.open()
        track.feed(SILENCE_1S + speech + SILENCE_1S)
        total_ms = 2000 + len(speech) // 32
        # Silero is sure of speech a little after it starts and stops being sure a little before it ends (on these
        # clips 0-350 ms and 0-300 ms): the two-pass session pads what it hears by SPEECH_PAD_MS.
        onset, end = 1000 + speech_onset_ms(speech), 1000 + speech_end_ms(speech)
        start = track.speech_start(0, total_ms)
        assert start is not None and onset - 50 <= start <= onset + 400, (name, onset, start)
        assert track.speech_start(0, 900) is None
        assert track.speech_start(end - 400, end) is not None, name
        assert track.speech_start(end + 100, total_ms) is None, name
        assert track.quiet_ms() >= 700


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(1, 4000), min_size=1, max_size=40))
def test_any_frame_sizes_give_what_one_feed_gives(detector: SileroDetector, sizes: list[int]) -> None:
    pcm = SILENCE_1S[:16_000] + load_human(HUMAN_CLIPS[0]) + SILENCE_1S[:16_000]
    whole = detector.open()
    whole.feed(pcm)
    framed = detector.open()
    at = 0
    for size in sizes * (len(pcm) // (2 * sum(sizes)) + 1):
        framed.feed(pcm[at : at + 2 * size])  # whole samples: PCM16
        at += 2 * size
        if at >= len(pcm):
            break
    total_ms = len(pcm) // 32
    for ms in range(0, total_ms, 16):
        assert framed.run_end(ms) == whole.run_end(ms)
    assert framed.speech_start(0, total_ms) == whole.speech_start(0, total_ms)
    assert framed.quiet_ms() == whole.quiet_ms()
    assert framed.heard_ms() == whole.heard_ms() == len(pcm) // 32 // CHUNK_MS * CHUNK_MS


def test_a_run_shorter_than_asked_for_is_passed_over() -> None:
    # chunks: 0 speech alone (a click), 1-2 quiet, 3-6 speech
    track = spans(0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9)
    assert track.speech_start(0, 7 * CHUNK_MS) == 0
    assert track.speech_start(0, 7 * CHUNK_MS, min_ms=2 * CHUNK_MS) == 3 * CHUNK_MS
    assert track.speech_start(0, 3 * CHUNK_MS, min_ms=2 * CHUNK_MS) is None
    assert track.speech_start(0, 7 * CHUNK_MS, min_ms=5 * CHUNK_MS) is None


class DriftingModel:
    """A scripted model with Silero's drift: each chunk's probability is its samples' mean, but once its state has
    heard a chunk at or above 0.9 it is deaf (a tenth of that) from the next chunk on, until the state starts
    afresh. `deaf_afresh`: the other way round, deaf until it has heard such a chunk (afresh in steady noise)."""

    def __init__(self, *, deaf_afresh: bool = False) -> None:
        self.deaf_afresh = deaf_afresh

    def probabilities(self, chunks: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        h, c = state[0].copy(), state[1].copy()
        out = []
        for row in chunks:
            p = float(row[CONTEXT:].mean())
            heard_loud = h[0, 0, 0] > 0
            out.append(p * 0.1 if heard_loud != self.deaf_afresh else p)
            if p >= 0.9:
                h[0, 0, 0] = 1.0
        return np.array(out, np.float32), (h, c)


def chunks_of(*levels: tuple[float, int]) -> bytes:
    """PCM16 whose 32 ms chunks have these sample values ((level in [0, 1), how many chunks), ...)."""
    return b"".join(np.full(CHUNK * n, round(level * 32768), "<i2").tobytes() for level, n in levels)


def test_speech_a_drifted_state_is_deaf_to_is_heard_once_a_fresh_state_restarts_after_quiet() -> None:
    quiet = RESTART_QUIET_CHUNKS
    track = SileroTrack(DriftingModel())
    track.feed(chunks_of((0.95, 1), (0.0, quiet), (0.6, 5), (0.0, 3), (0.95, 1), (0.0, 5), (0.6, 5)))
    soft = 1 + quiet
    assert track.speech_start(0, 1000 * CHUNK_MS) == 0
    # The soft run right after a quiet stretch as long as the restart's: the fresh state hears all of it.
    assert track.speech_start(CHUNK_MS, 1000 * CHUNK_MS) == soft * CHUNK_MS
    assert track.run_end(soft * CHUNK_MS) == (soft + 5) * CHUNK_MS
    # The loud chunk after it deafens the fresh state too; 5 quiet chunks later neither has started afresh, so the
    # soft run after them is not heard.
    loud = soft + 8
    assert track.speech_start((soft + 5) * CHUNK_MS, 1000 * CHUNK_MS) == loud * CHUNK_MS
    assert track.speech_start((loud + 1) * CHUNK_MS, 1000 * CHUNK_MS) is None
    assert track.quiet_ms() == 10 * CHUNK_MS


def test_the_fresh_state_restarts_at_the_chunk_that_ends_its_quiet_stretch() -> None:
    # One quiet chunk short: the restart comes on the soft run's first chunk (heard deaf), the rest are heard.
    track = SileroTrack(DriftingModel())
    track.feed(chunks_of((0.95, 1), (0.0, RESTART_QUIET_CHUNKS - 1), (0.6, 5)))
    assert track.speech_start(CHUNK_MS, 1000 * CHUNK_MS) == (RESTART_QUIET_CHUNKS + 1) * CHUNK_MS


class StartsModel:
    """Loud (0.95) where a row's samples are at or above 0.5, quiet otherwise; it notes the chunk index (written in
    the quiet rows' samples, and in the loud rows' less 0.5) of the first row of every call made with the initial
    state: where a state started."""

    def __init__(self) -> None:
        self.starts: list[int] = []

    def probabilities(self, chunks: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        if not state[0].any():
            self.starts.append(round(float(chunks[0, CONTEXT]) % 0.5 * 10_000))
        h = state[0].copy()
        h[0, 0, 0] = 1.0
        return np.where(chunks[:, CONTEXT] >= 0.5, 0.95, 0.0).astype(np.float32), (h, state[1].copy())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 120), min_size=1, max_size=10))
def test_the_fresh_state_starts_afresh_once_per_quiet_stretch_in_any_batches(sizes: list[int]) -> None:
    loud_at = {0, 201}
    rows = np.array([[(0.5 if i in loud_at else 0.0) + i / 10_000] * (CONTEXT + CHUNK) for i in range(302)], np.float32)
    model, listener = StartsModel(), Listener(restarts=True)
    at = 0
    while at < len(rows):
        for size in sizes:
            listener.hear(model, rows[at : at + size])
            at += size
    # Chunk 0 is speech; the 64th quiet chunk after it is chunk 64, so the state starts afresh at 65, and not
    # again in the same stretch; then after the speech at 201, at 201 + 64 + 1.
    assert model.starts == [0, 1 + RESTART_QUIET_CHUNKS, 202 + RESTART_QUIET_CHUNKS]


def test_speech_a_fresh_state_is_deaf_to_is_heard_by_the_carried_one() -> None:
    track = SileroTrack(DriftingModel(deaf_afresh=True))
    quiet = RESTART_QUIET_CHUNKS
    track.feed(chunks_of((0.95, 4), (0.0, quiet + 1), (0.6, 5)))
    assert track.speech_start(4 * CHUNK_MS, 1000 * CHUNK_MS) == (4 + quiet + 1) * CHUNK_MS


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=20))
def test_the_restart_gives_the_same_speech_in_any_frame_sizes(sizes: list[int]) -> None:
    quiet = RESTART_QUIET_CHUNKS
    pcm = chunks_of((0.95, 7), (0.0, quiet), (0.6, 4), (0.0, quiet + 3), (0.7, 6), (0.95, 3), (0.0, 2 * quiet))
    whole = SileroTrack(DriftingModel())
    whole.feed(pcm)
    framed = SileroTrack(DriftingModel())
    at = 0
    while at < len(pcm):
        for size in sizes:
            framed.feed(pcm[at : at + 2 * size])
            at += 2 * size
    total_ms = len(pcm) // 32
    assert [framed.run_end(ms) for ms in range(0, total_ms, CHUNK_MS)] == [
        whole.run_end(ms) for ms in range(0, total_ms, CHUNK_MS)
    ]
    assert framed.quiet_ms() == whole.quiet_ms()


def test_soft_speech_after_a_minute_of_loud_reading_is_heard(detector: SileroDetector) -> None:
    # Measured with the real model: the state carried over the reading (the five Austen clips twice, 80 s) heard 8
    # of the 53 chunks this command at -20 dB has speech in when heard alone; with the fresh state as well, 44.
    reading = b"".join(load_human(name) for name in HUMAN_CLIPS[:5]) * 2
    soft = (np.frombuffer(load_human("goforward.wav"), "<i2") * 0.1).astype("<i2").tobytes()
    alone, after = detector.open(), detector.open()
    alone.feed(SILENCE_1S + soft)
    after.feed(reading + SILENCE_1S + soft)

    def speech_chunks(track: SileroTrack, from_ms: int) -> int:
        to_ms = from_ms + len(soft) // 32
        return sum(track.run_end(ms) is not None for ms in range(from_ms, to_ms, CHUNK_MS))

    heard_alone = speech_chunks(alone, 1000)
    assert heard_alone >= 40
    assert speech_chunks(after, len(reading) // 32 + 1000) >= 0.75 * heard_alone
