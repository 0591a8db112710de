"""Stretches of sound a loose voice activity detector calls speech: where the two-pass engine looks for speech that
neither the fast pass nor Silero heard.

Both detectors the engine runs are tuned to voiced speech. A whispered sentence has none: the fast pass's endpointer
(webrtc's detector at its most aggressive mode, 3, chosen for the first interim's latency) called 90 ms of a 4.8 s
whispered sentence speech and opened no utterance, and Silero heard 128 ms of it, so the sentence reached no pass and
was lost without a word said (bench/README.md "Speech only a loose detector hears"). The same detector at its loosest
modes (0 and 1) calls 3.3 s of it speech, and so calls breaths, laughter and clicks: a run here is only a place for
Whisper to listen, and what it hears there is kept only when it is sure of it (server/engine/twopass.py
`UNHEARD_MIN_PROBABILITY`).

pocketsphinx's `Vad` is webrtc's detector, the one the fast pass's endpointer uses, already installed with it; the
runs around its frame decisions are what this module adds.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Protocol

from server.engine.types import BYTES_PER_MS

FRAME_MS = 30  # webrtc's detector decides on 10, 20 or 30 ms frames; 30 ms is the endpointer's frame too
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
# Webrtc's aggressiveness, 0 to 3: 1 calls as much of the whispered sentences speech as 0 (bench/README.md).
LOOSE_MODE = 1
# A run ends after this much audio the detector calls no speech (17 frames): the gaps inside a whispered sentence
# between its words are shorter.
RUN_PAUSE_MS = 510
# A run shorter than this is not taken: the clicks, breaths and laughs the loose detector calls speech are, and decoded
# alone Whisper wrote words there ("Thank you." for a 300 ms click; "I do not see him." for 330 ms of noisy talk).
RUN_MIN_MS = 800
# A stretch of a run longer than this with no word the fast pass heard is steady noise the detector calls speech
# throughout, not a sentence; it is not taken (server/engine/twopass.py; the run open at the end of a stream counts as
# ended there).
RUN_MAX_MS = 20_000
# Runs remembered for `run_start`, whatever their length: more than fit in the audio a session keeps (32 s), at
# least 540 ms apart (one speech frame and RUN_PAUSE_MS).
RECENT_RUNS = 128


@dataclass(frozen=True)
class VoiceRun:
    """A stretch of audio (session ms) that began and ended with at least RUN_PAUSE_MS the detector called no
    speech."""

    start_ms: int
    end_ms: int


class VoiceRunTrack(Protocol):
    def feed(self, pcm: bytes) -> None:
        """The session's next audio (16 kHz PCM16, any length)."""
        ...

    def ended(self, *, finishing: bool = False) -> list[VoiceRun]:
        """The runs that ended since the last call, at least RUN_MIN_MS long (a long one may hold the fast pass's
        speech and, after it, speech only this detector heard); `finishing`: the stream has ended, and a run still
        open ends where the audio does."""
        ...

    def run_start(self, at_ms: int) -> int | None:
        """Where the run that holds `at_ms` began (ended or still open, of any length): None when the detector called
        the audio there no speech."""
        ...


class VoiceRunDetector(Protocol):
    def open(self) -> VoiceRunTrack:
        """A track for one session."""
        ...


class FrameRuns:
    """The runs in a sequence of frame decisions (True: speech), as they come: pure, so the rules are tested apart
    from the detector. `ended` gives those at least `min_ms` long."""

    def __init__(self, *, min_ms: int = RUN_MIN_MS) -> None:
        self._min_ms = min_ms
        self._frames = 0  # decisions taken so far
        self._start: int | None = None  # the open run's first speech frame
        self._last_speech = 0  # the open run's last speech frame
        self._ended: list[VoiceRun] = []
        self._recent: collections.deque[VoiceRun] = collections.deque(maxlen=RECENT_RUNS)

    def add(self, speech: bool) -> None:
        frame = self._frames
        self._frames += 1
        if speech:
            if self._start is None:
                self._start = frame
            self._last_speech = frame
        elif self._start is not None and (frame - self._last_speech) * FRAME_MS >= RUN_PAUSE_MS:
            self._close()

    def _close(self) -> None:
        assert self._start is not None
        run = VoiceRun(self._start * FRAME_MS, (self._last_speech + 1) * FRAME_MS)
        self._start = None
        self._recent.append(run)
        if run.end_ms - run.start_ms >= self._min_ms:
            self._ended.append(run)

    def ended(self, *, finishing: bool = False) -> list[VoiceRun]:
        if finishing and self._start is not None:
            self._close()
        out, self._ended = self._ended, []
        return out

    def run_start(self, at_ms: int) -> int | None:
        if self._start is not None and self._start * FRAME_MS <= at_ms < (self._last_speech + 1) * FRAME_MS:
            return self._start * FRAME_MS
        return next((run.start_ms for run in self._recent if run.start_ms <= at_ms < run.end_ms), None)


class LooseVoiceTrack:
    def __init__(self, mode: int = LOOSE_MODE) -> None:
        from pocketsphinx import Vad

        self._vad = Vad(mode=mode, sample_rate=16_000, frame_length=FRAME_MS / 1000)
        if self._vad.frame_bytes != FRAME_BYTES:
            raise RuntimeError(f"webrtc's detector wants {self._vad.frame_bytes} bytes a frame, not {FRAME_BYTES}")
        self._runs = FrameRuns()
        self._rest = b""  # the start of a frame the client's frame cut off

    def feed(self, pcm: bytes) -> None:
        data = self._rest + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        for at in range(0, whole, FRAME_BYTES):
            self._runs.add(self._vad.is_speech(data[at : at + FRAME_BYTES]))
        self._rest = data[whole:]

    def ended(self, *, finishing: bool = False) -> list[VoiceRun]:
        return self._runs.ended(finishing=finishing)

    def run_start(self, at_ms: int) -> int | None:
        return self._runs.run_start(at_ms)


class LooseVoiceDetector:
    """webrtc's voice activity detector at LOOSE_MODE, a track per session."""

    def __init__(self, mode: int = LOOSE_MODE) -> None:
        self.mode = mode

    def open(self) -> LooseVoiceTrack:
        return LooseVoiceTrack(self.mode)
