"""The streaming recognizer interface: what the embedded engine implements and its stream server and the emulators
speak to.

Audio in is always 16 kHz mono signed 16-bit little-endian PCM (bytes). Times are milliseconds from the start of
the session's audio. A session is fed in order by one task at a time; implementations do their CPU work off the
event loop so one session's decoding never stalls another's socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

SAMPLE_RATE = 16_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 32 bytes of PCM16 mono per millisecond


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int
    end_ms: int
    # Written without a space before it (",", ".", "?", "'s"): Truebar's isLeftHanded.
    joins_previous: bool = False
    # Written without a space after it (an opening quote or bracket): Truebar's isRightHanded.
    joins_next: bool = False


@dataclass(frozen=True)
class Hypothesis:
    """One utterance's words. A partial (is_final False) replaces the previous partial of the same utterance; a
    final commits the utterance and the next hypothesis starts a new one."""

    words: tuple[Word, ...]
    is_final: bool
    start_ms: int
    end_ms: int
    # Set on a final that is not what the session normally delivers (the fast pass's text standing in for the
    # accurate pass's): the stream server sends it to the client as a WARNING before the final.
    warning: str = ""

    @property
    def text(self) -> str:
        """The words as written: a space between two words unless the first joins the next or the second joins
        the previous one (the rule Truebar's tokensToText applies to isRightHanded/isLeftHanded tokens)."""
        out: list[str] = []
        glue = True
        for w in self.words:
            if not w.text:
                continue
            if not glue and not w.joins_previous:
                out.append(" ")
            out.append(w.text)
            glue = w.joins_next
        return "".join(out)


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


@runtime_checkable
class PushesFinals(Protocol):
    """A session whose finals become ready between feeds (the two-pass engine's accurate pass): a server awaits
    wait_ready() alongside its receive loop and sends what collect() gives, so a final never waits for more audio."""

    async def wait_ready(self) -> bool:
        """Return True once collect() has something to give, False once the session is closed."""
        ...

    def collect(self) -> list[Hypothesis]:
        """The hypotheses ready now (possibly none), oldest first; never called during feed() or finish()."""
        ...


@runtime_checkable
class Bounded(Protocol):
    """A recognizer that says how many sessions it decodes at once (more raise RecognizerBusy)."""

    max_sessions: int


class Recognizer(Protocol):
    name: str

    async def open(self) -> RecognizerSession:
        """A new session. Raises RecognizerBusy when the concurrency bound is reached."""
        ...
