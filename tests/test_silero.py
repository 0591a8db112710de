"""Silero's voice activity detector as the two-pass engine runs it: the hysteresis over its probabilities, and the
real model on recorded speech, fed in any frame sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.speech import HUMAN_CLIPS, load_human, speech_end_ms, speech_onset_ms
from server.engine.silero import CHUNK_MS, SileroDetector, SpeechSpans

SILENCE_1S = bytes(32_000)


def spans(*probabilities: float, keep: int = 1000) -> SpeechSpans:
    out = SpeechSpans(keep=keep)
    out.add(np.array(probabilities, np.float32))
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


def test_a_run_shorter_than_asked_for_is_passed_over() -> None:
    # chunks: 0 speech alone (a click), 1-2 quiet, 3-6 speech
    track = spans(0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9)
    assert track.speech_start(0, 7 * CHUNK_MS) == 0
    assert track.speech_start(0, 7 * CHUNK_MS, min_ms=2 * CHUNK_MS) == 3 * CHUNK_MS
    assert track.speech_start(0, 3 * CHUNK_MS, min_ms=2 * CHUNK_MS) is None
    assert track.speech_start(0, 7 * CHUNK_MS, min_ms=5 * CHUNK_MS) is None
