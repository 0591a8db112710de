"""A scripted recognizer for protocol tests and the emulators: deterministic words paced by the amount of audio.

It is a fake (it ignores what the audio says), so it lives with the emulators; the product loads the real engine
through server.engine.loader.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from server.engine.outcomes import FALLBACK_WARNING
from server.engine.types import BYTES_PER_MS, Recognizer, RecognizerBusy
from server.transcript import Hypothesis, Word

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

    What the page must show for the real engine's slower moments, made on demand: `quiet_ms`, no words for the first
    stretch of audio (an engine warming up: the words start after it); `rough_finals`, each session's first finals
    come as the two-pass engine's fallback does (its WARNING, then the final); `finish_delay_s`, the last final
    waits that long after EOS (the accurate pass on a busy machine).
    """

    name = "scripted"

    def __init__(
        self,
        script: Sequence[str] = DEFAULT_SCRIPT,
        *,
        ms_per_word: int = 300,
        words_per_utterance: int = 5,
        max_sessions: int = 1000,
        quiet_ms: int = 0,
        rough_finals: int = 0,
        finish_delay_s: float = 0.0,
    ) -> None:
        if not script or ms_per_word <= 0 or words_per_utterance <= 0:
            raise ValueError("script must be non-empty and the pacing positive")
        if quiet_ms < 0 or rough_finals < 0 or finish_delay_s < 0:
            raise ValueError("quiet_ms, rough_finals and finish_delay_s cannot be negative")
        self.quiet_ms = quiet_ms
        self.rough_finals = rough_finals
        self.finish_delay_s = finish_delay_s
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
        self._finals = 0
        self._closed = False

    def _pending(self) -> list[Hypothesis]:
        o = self._owner
        out: list[Hypothesis] = []
        audio_ms = self._bytes // BYTES_PER_MS
        while o.quiet_ms + (self._emitted + 1) * o.ms_per_word <= audio_ms:
            start = o.quiet_ms + self._emitted * o.ms_per_word
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
        hyp = Hypothesis(words, final, words[0].start_ms, words[-1].end_ms)
        if final:
            self._finals += 1
            if self._finals <= self._owner.rough_finals:
                hyp = dataclasses.replace(hyp, warning=FALLBACK_WARNING)
        return hyp

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        self._bytes += len(pcm)
        return self._pending()

    async def finish(self) -> list[Hypothesis]:
        if self._owner.finish_delay_s:
            await asyncio.sleep(self._owner.finish_delay_s)
        out = self._pending()
        if self._current:
            out.append(self._hypothesis(True))
            self._current = []
        return out

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.active -= 1


def load_recognizer(name: str = "pocketsphinx") -> Recognizer:
    """The recognizer an emulator runs, by name: "pocketsphinx" (the embedded engine's fast pass, with its defaults:
    enough for a fake cloud service, and light), "two-pass" (the whole embedded engine, Whisper finals included) or
    "scripted"."""
    if name == "scripted":
        return ScriptedRecognizer()
    if name == "pocketsphinx":
        from server.engine.sphinx import PocketsphinxRecognizer

        return PocketsphinxRecognizer()
    if name == "two-pass":
        from server.engine.config import EngineConfig
        from server.engine.loader import load_engine

        return load_engine(EngineConfig())
    raise ValueError(f"unknown recognizer {name!r}: choose pocketsphinx, two-pass or scripted")
