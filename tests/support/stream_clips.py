"""The speech the stream properties (tests/test_stream_properties.py) send: the recorded human clips and the
reading (bench/speech.py), and four made of them for dimensions no single clip has: several short utterances with
pauses between them (several finals), one short word (an utterance of about 0.2 s), every clip's distinct words
joined into 41 s of speech with no pause longer than 300 ms, and a reading of over a minute with none either."""

from __future__ import annotations

from functools import cache

import numpy as np

from bench.speech import (
    HUMAN_CLIPS,
    READING,
    READING_PARTS,
    human_reference,
    load_human,
    speech_end_ms,
    speech_onset_ms,
)
from server.engine.types import BYTES_PER_MS

LOW_NOISE = 3  # PCM16 amplitude of the "silence": a real microphone never sends digital zeros

# The five card clips one after another, a second of quiet between them: five utterances, five finals of 1-8 words.
DECK = "cards-deck"
DECK_PARTS = ("cards-001.wav", "cards-002.wav", "cards-003.wav", "cards-004.wav", "cards-005.wav")
DECK_PAUSE_MS = 1000
# "ten" of cards-001.wav: 260 ms of audio, its word about 0.2 s of it.
WORD = "short-word"
WORD_FROM = ("cards-001.wav", 160, 420)
# The reading three times over, 74 s: its parts join with at most about 0.2 s of quiet (bench/speech.py), and each
# reading's end and the next one's start with 120 ms (speech ends at 24.66 s of 24.73, the next starts at 50 ms).
LONG_READING = "austen-reading-x3"
LONG_READING_TIMES = 3
# Every clip's distinct words, the reading first: each cut to its speech (bench/speech.py's 35 dB rule, EDGE_MS more
# either side) and joined with JOIN_MS of quiet, 41 s of eight voices with no pause over 300 ms (the longest inside a
# clip is the reading's 300 ms; a join is at most 2 x EDGE_MS + JOIN_MS of quiet).
JOINED = "human-joined"
JOINED_PARTS = (READING, *(clip for clip in HUMAN_CLIPS if clip not in READING_PARTS))
EDGE_MS = 60
JOIN_MS = 60
MADE = (DECK, WORD, LONG_READING, JOINED)
CLIPS = (*HUMAN_CLIPS, READING, DECK, WORD)  # drawn; LONG_READING is an explicit example (it costs ~20 s)


def quiet(ms: int, seed: int) -> bytes:
    """`ms` of a microphone's quiet: seeded noise of amplitude LOW_NOISE."""
    rng = np.random.default_rng(seed)
    return bytes(rng.integers(-LOW_NOISE, LOW_NOISE + 1, ms * BYTES_PER_MS // 2).astype("<i2").tobytes())


@cache
def speech(name: str) -> bytes:
    if name == DECK:
        pause = quiet(DECK_PAUSE_MS, 0)
        return pause.join(load_human(part) for part in DECK_PARTS)
    if name == WORD:
        clip, start_ms, end_ms = WORD_FROM
        return load_human(clip)[start_ms * BYTES_PER_MS : end_ms * BYTES_PER_MS]
    if name == LONG_READING:
        return load_human(READING) * LONG_READING_TIMES
    if name == JOINED:
        return quiet(JOIN_MS, 1).join(_speech_of(part) for part in JOINED_PARTS)
    return load_human(name)


def _speech_of(name: str) -> bytes:
    pcm = load_human(name)
    start = max(0, speech_onset_ms(pcm) - EDGE_MS)
    end = min(len(pcm) // BYTES_PER_MS, speech_end_ms(pcm) + EDGE_MS)
    return pcm[start * BYTES_PER_MS : end * BYTES_PER_MS]


@cache
def reference(name: str) -> str:
    if name == DECK:
        return " ".join(human_reference(part) for part in DECK_PARTS)
    if name == WORD:
        return "ten"
    if name == LONG_READING:
        return " ".join([human_reference(READING)] * LONG_READING_TIMES)
    if name == JOINED:
        return " ".join(human_reference(part) for part in JOINED_PARTS)
    return human_reference(name)


def kept_checked(name: str) -> bool:
    """Whether a clip sent whole must keep most of its words: not the short word, whose one word Whisper may hear
    otherwise (a loss there is the loss check's to find)."""
    return name != WORD


def duration_ms(name: str) -> int:
    return len(speech(name)) // BYTES_PER_MS
