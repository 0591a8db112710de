"""The streaming recognizer interface the emulators and the local engine share, and a scripted recognizer.

Audio in is always 16 kHz mono signed 16-bit little-endian PCM (bytes). Times are milliseconds from the start of
the session's audio. A session is fed in order by one task at a time; implementations do their CPU work off the
event loop so one session's decoding never stalls another's socket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE = 16_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 32 bytes of PCM16 mono per millisecond


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Hypothesis:
    """One utterance's words. A partial (is_final False) replaces the previous partial of the same utterance; a
    final commits the utterance and the next hypothesis starts a new one."""

    words: tuple[Word, ...]
    is_final: bool
    start_ms: int
    end_ms: int

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class RecognizerBusy(Exception):
    """Raised by Recognizer.open when every session slot is taken."""


class RecognizerSession(Protocol):
    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        """Decode more audio (any even byte count); return the hypotheses it produced, oldest first."""
        ...

    async def finish(self) -> list[Hypothesis]:
        """End of stream: return the remaining hypotheses; the last utterance, if any, as a final."""
        ...

    async def aclose(self) -> None:
        """Release the session's slot and decoder. Safe to call twice and after finish()."""
        ...


class Recognizer(Protocol):
    name: str

    async def open(self) -> RecognizerSession:
        """A new session. Raises RecognizerBusy when the concurrency bound is reached."""
        ...


DEFAULT_SCRIPT = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "she",
    "sells",
    "sea",
    "shells",
    "by",
    "the",
    "sea",
    "shore",
    "peter",
    "piper",
    "picked",
    "a",
    "peck",
    "of",
    "pickled",
    "peppers",
]


class ScriptedRecognizer:
    """Deterministic words paced by the amount of audio received, whatever it contains: protocol tests.

    Every `ms_per_word` of audio appends the next word of `script` (cycling) to the current utterance and yields a
    partial; an utterance of `words_per_utterance` words becomes final. finish() finalises a pending utterance.
    """

    name = "scripted"

    def __init__(
        self,
        script: Sequence[str] = DEFAULT_SCRIPT,
        *,
        ms_per_word: int = 300,
        words_per_utterance: int = 5,
        max_sessions: int = 1000,
    ) -> None:
        if not script or ms_per_word <= 0 or words_per_utterance <= 0:
            raise ValueError("script must be non-empty and the pacing positive")
        self.script = tuple(script)
        self.ms_per_word = ms_per_word
        self.words_per_utterance = words_per_utterance
        self.max_sessions = max_sessions
        self.active = 0

    async def open(self) -> ScriptedSession:
        if self.active >= self.max_sessions:
            raise RecognizerBusy(f"all {self.max_sessions} recognizer sessions are busy")
        self.active += 1
        return ScriptedSession(self)


class ScriptedSession:
    def __init__(self, owner: ScriptedRecognizer) -> None:
        self._owner = owner
        self._bytes = 0
        self._emitted = 0  # words produced so far, over the whole session
        self._current: list[Word] = []
        self._closed = False

    def _pending(self) -> list[Hypothesis]:
        o = self._owner
        out: list[Hypothesis] = []
        audio_ms = self._bytes // BYTES_PER_MS
        while (self._emitted + 1) * o.ms_per_word <= audio_ms:
            start = self._emitted * o.ms_per_word
            word = Word(o.script[self._emitted % len(o.script)], start, start + o.ms_per_word)
            self._emitted += 1
            self._current.append(word)
            final = len(self._current) >= o.words_per_utterance
            out.append(self._hypothesis(final))
            if final:
                self._current = []
        return out

    def _hypothesis(self, final: bool) -> Hypothesis:
        words = tuple(self._current)
        return Hypothesis(words, final, words[0].start_ms, words[-1].end_ms)

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        self._bytes += len(pcm)
        return self._pending()

    async def finish(self) -> list[Hypothesis]:
        out = self._pending()
        if self._current:
            out.append(self._hypothesis(True))
            self._current = []
        return out

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.active -= 1


def load_recognizer(name: str = "pocketsphinx", **options: object) -> Recognizer:
    """The recognizer called `name`: "pocketsphinx" (the embedded engine, the default) or "scripted"."""
    if name == "scripted":
        return ScriptedRecognizer()
    if name == "pocketsphinx":
        from server.emulators.sphinx import PocketsphinxRecognizer

        return PocketsphinxRecognizer(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown recognizer {name!r}: choose pocketsphinx or scripted")
