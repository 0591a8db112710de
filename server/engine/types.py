"""The streaming recognizer interface: what the embedded engine implements and its stream server and the emulators
speak to.

Audio in is always 16 kHz mono signed 16-bit little-endian PCM (bytes). Times are milliseconds from the start of
the session's audio. A session is fed in order by one task at a time; implementations do their CPU work off the
event loop so one session's decoding never stalls another's socket.
"""

from __future__ import annotations

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
