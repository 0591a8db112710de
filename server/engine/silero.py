"""Where a session's audio holds speech, by Silero's voice activity detector (the ONNX model faster-whisper ships,
so nothing more is downloaded): what the accurate pass's windows are cut by.

The fast pass's endpointer is tuned for early interims (a 0.12 s window, webrtcvad at its most aggressive): it cuts
a sentence at a breath and does not open an utterance on soft speech at all. Windows cut there lose words that
Whisper hears when its windows are cut where Silero hears a pause (measured on the held-out talks, clean: 68 of 317
words wrong through the engine; Whisper alone on windows cut at Silero's pauses of 500 ms 35, faster-whisper's own
long-form transcribe 26; bench/silero_windows.py, bench/README.md "Windows cut where the speaker paused"). It
costs about 6 ms of one core per second of audio for each of its two states (below), run on the event loop as audio
arrives (the page's frames are 50 ms: a fraction of a millisecond each).

Its LSTM state drifts over a long stream (a known trait: silero-vad issue 725, "never-ending streaming"): after a
minute of loud reading it heard 8 of the 53 chunks of a soft command that it hears alone, and on the held-out
recordings played as one session it heard 2.8 s of a 26 s talk with a cold after three louder ones (16.4 s alone),
so the engine's windows there were cut at every fast-pass endpoint again. A state started afresh after 2 s without
speech hears such speech (44 of 53; 19.7 s); but afresh in steady noise it is the deafer one (at 10 dB SNR the next
talk: 16.0 s carried, none afresh; bench/silero_drift.py). So both run over the same chunks, and a chunk is speech
where either hears it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
# Silero v6 reads 512 samples (32 ms) at a time, each with the 64 samples before it; its LSTM state (h, c) carries
# from one chunk to the next, so chunk by chunk it gives exactly what it gives for the whole recording at once.
CHUNK = 512
CHUNK_MS = CHUNK * 1000 // SAMPLE_RATE
CONTEXT = 64
# faster-whisper's defaults: speech starts at a chunk at or above THRESHOLD and goes on until one below
# NEG_THRESHOLD (hysteresis, so a syllable's dip does not end it).
THRESHOLD = 0.5
NEG_THRESHOLD = 0.35
# Chunks remembered: the two-pass session keeps 32 s of audio, so asking further back has no use.
KEEP_CHUNKS = 40_000 // CHUNK_MS
# The fresh state starts again once it has heard this many chunks (2 s) without speech.
RESTART_QUIET_CHUNKS = 2048 // CHUNK_MS

State = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


class SpeechModel(Protocol):
    def probabilities(self, chunks: npt.NDArray[np.float32], state: State) -> tuple[npt.NDArray[np.float32], State]:
        """Speech probability of each row of `chunks` (CONTEXT + CHUNK samples each), and the LSTM state after."""
        ...


class SpeechDetector(Protocol):
    def open(self) -> SpeechTrack:
        """A tracker for one session's audio, from its start."""
        ...


class SpeechTrack(Protocol):
    def feed(self, pcm: bytes) -> None:
        """The next audio (16 kHz PCM16 little-endian)."""
        ...

    def speech_start(self, from_ms: int, to_ms: int, *, min_ms: int = 0) -> int | None:
        """Where the first run of speech in [from_ms, to_ms) lasting at least `min_ms` begins (session ms, the start
        of its 32 ms chunk), or None. A run going on at `from_ms` counts from the chunk holding `from_ms`."""
        ...

    def run_end(self, at_ms: int, *, ongoing: bool = False) -> int | None:
        """Where the speech heard at `at_ms` ended, or None: none there, or it goes on still (`ongoing`: then the
        newest chunk's end; the stream has ended, say)."""
        ...

    def quiet_between(self, from_ms: int, to_ms: int) -> int:
        """The longest stretch without speech in [from_ms, to_ms) (ms)."""
        ...

    def quiet_ms(self) -> int:
        """How long the audio heard so far has been without speech, up to its newest chunk."""
        ...

    def heard_ms(self) -> int:
        """Where the audio heard so far ends: its newest whole chunk's end (session ms)."""
        ...


@dataclass
class Hysteresis:
    """One state's chunk probabilities in, whether each is speech out."""

    in_speech: bool = False
    quiet: int = 0  # chunks since the last speech chunk

    def step(self, probability: float) -> bool:
        self.in_speech = probability >= THRESHOLD or (self.in_speech and probability >= NEG_THRESHOLD)
        self.quiet = 0 if self.in_speech else self.quiet + 1
        return self.in_speech


@dataclass
class SpeechSpans:
    """The pure part: whether each chunk is speech, kept for the last KEEP_CHUNKS chunks. Times are session ms at
    chunk boundaries."""

    keep: int = KEEP_CHUNKS
    _speech: list[bool] = field(default_factory=list)
    _first: int = 0  # the index, from the session's start, of _speech[0]
    _last_speech: int = -1  # index of the newest speech chunk

    def add(self, speech: Sequence[bool]) -> None:
        for is_speech in speech:
            self._speech.append(is_speech)
            if is_speech:
                self._last_speech = self._first + len(self._speech) - 1
        excess = len(self._speech) - self.keep
        if excess > 0:
            del self._speech[:excess]
            self._first += excess

    def _range(self, from_ms: int, to_ms: int) -> range:
        lo = max(from_ms // CHUNK_MS, self._first)  # the chunk holding from_ms
        hi = min(-(-to_ms // CHUNK_MS), self._first + len(self._speech))  # up to the chunk holding to_ms - 1
        return range(lo, hi)

    def _run_stop(self, i: int) -> int:
        """The index after the run of speech chunks that holds chunk `i`."""
        newest = self._first + len(self._speech)
        while i < newest and self._speech[i - self._first]:
            i += 1
        return i

    def speech_start(self, from_ms: int, to_ms: int, *, min_ms: int = 0) -> int | None:
        chunks = self._range(from_ms, to_ms)
        i = chunks.start
        while i < chunks.stop:
            if not self._speech[i - self._first]:
                i += 1
                continue
            end = self._run_stop(i)
            if (end - i) * CHUNK_MS >= min_ms:
                return i * CHUNK_MS
            i = end
        return None

    def run_end(self, at_ms: int, *, ongoing: bool = False) -> int | None:
        i = at_ms // CHUNK_MS
        if i not in self._range(at_ms, at_ms + 1) or not self._speech[i - self._first]:
            return None
        end = self._run_stop(i)
        if end == self._first + len(self._speech) and not ongoing:
            return None  # the newest chunk is speech: it goes on
        return end * CHUNK_MS

    def quiet_between(self, from_ms: int, to_ms: int) -> int:
        longest = run = 0
        for i in self._range(from_ms, to_ms):
            run = 0 if self._speech[i - self._first] else run + 1
            longest = max(longest, run)
        return longest * CHUNK_MS

    def quiet_ms(self) -> int:
        return (self._first + len(self._speech) - 1 - self._last_speech) * CHUNK_MS

    def heard_ms(self) -> int:
        return (self._first + len(self._speech)) * CHUNK_MS


class SileroDetector:
    """The model, loaded once and shared by every session's tracker (onnxruntime's run() is thread-safe)."""

    def __init__(self) -> None:
        import onnxruntime
        from faster_whisper.utils import get_assets_path

        options = onnxruntime.SessionOptions()
        # One thread, as faster-whisper runs it: a few ms per second of audio, beside the passes' own threads.
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        options.enable_cpu_mem_arena = False  # as faster-whisper: no arena kept at the largest batch's size
        self._model = onnxruntime.InferenceSession(
            os.path.join(get_assets_path(), "silero_vad_v6.onnx"),
            providers=["CPUExecutionProvider"],
            sess_options=options,
        )

    def open(self) -> SileroTrack:
        return SileroTrack(self)

    def probabilities(self, chunks: npt.NDArray[np.float32], state: State) -> tuple[npt.NDArray[np.float32], State]:
        """Speech probability of each row of `chunks` (CONTEXT + CHUNK samples each), and the LSTM state after."""
        out, h, c = self._model.run(None, {"input": chunks, "h": state[0], "c": state[1]})
        return np.asarray(out, np.float32).reshape(-1), (h, c)


def _initial_state() -> State:
    return np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)


@dataclass
class Listener:
    """One LSTM state over the session's chunks and its hysteresis; `restarts`: it starts afresh after
    RESTART_QUIET_CHUNKS without speech (once per quiet stretch)."""

    restarts: bool
    state: State = field(default_factory=_initial_state)
    hysteresis: Hysteresis = field(default_factory=Hysteresis)

    def hear(self, model: SpeechModel, rows: npt.NDArray[np.float32]) -> list[bool]:
        heard: list[bool] = []
        while len(heard) < len(rows):
            batch = rows[len(heard) :]
            if self.restarts:
                # A restart comes this many chunks on at the earliest, so it can only fall on a batch's last chunk
                # and nothing computed from the old state is thrown away.
                quiet = self.hysteresis.quiet
                batch = batch[
                    : RESTART_QUIET_CHUNKS - quiet if quiet < RESTART_QUIET_CHUNKS else RESTART_QUIET_CHUNKS + 1
                ]
            probabilities, self.state = model.probabilities(batch, self.state)
            for p in probabilities.tolist():
                heard.append(self.hysteresis.step(p))
                if self.restarts and self.hysteresis.quiet == RESTART_QUIET_CHUNKS:
                    self.state = _initial_state()
        return heard


def chunk_rows(chunks: npt.NDArray[np.float32], before: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The model's input for whole chunks (one per row): each with the CONTEXT samples before it, `before` for the
    first."""
    contexts = np.concatenate([before[None], chunks[:-1, -CONTEXT:]])
    return np.concatenate([contexts, chunks], 1)


class SileroTrack:
    def __init__(self, model: SpeechModel) -> None:
        self._model = model
        self._spans = SpeechSpans()
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole chunk
        self._context = np.zeros(CONTEXT, np.float32)  # the end of the previous chunk
        self._carried = Listener(restarts=False)
        self._fresh = Listener(restarts=True)

    def feed(self, pcm: bytes) -> None:
        # PCM16 little-endian, scaled to [-1, 1) as faster-whisper feeds it.
        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        self._pending = np.concatenate([self._pending, samples])
        whole = len(self._pending) // CHUNK * CHUNK
        if not whole:
            return
        chunks = self._pending[:whole].reshape(-1, CHUNK)
        self._pending = self._pending[whole:]
        rows = chunk_rows(chunks, self._context)
        self._context = chunks[-1, -CONTEXT:].copy()
        carried, fresh = self._carried.hear(self._model, rows), self._fresh.hear(self._model, rows)
        self._spans.add([a or b for a, b in zip(carried, fresh, strict=True)])

    def speech_start(self, from_ms: int, to_ms: int, *, min_ms: int = 0) -> int | None:
        return self._spans.speech_start(from_ms, to_ms, min_ms=min_ms)

    def run_end(self, at_ms: int, *, ongoing: bool = False) -> int | None:
        return self._spans.run_end(at_ms, ongoing=ongoing)

    def quiet_between(self, from_ms: int, to_ms: int) -> int:
        return self._spans.quiet_between(from_ms, to_ms)

    def quiet_ms(self) -> int:
        return self._spans.quiet_ms()

    def heard_ms(self) -> int:
        return self._spans.heard_ms()
