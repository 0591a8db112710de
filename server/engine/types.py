"""The streaming recognizer interface: what the embedded engine implements and its stream server and the emulators
speak to.

Audio in is always 16 kHz mono signed 16-bit little-endian PCM (bytes). Times are milliseconds from the start of
the session's audio. A session is fed in order by one task at a time; implementations do their CPU work off the
event loop so one session's decoding never stalls another's socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from server.transcript import Hypothesis, Word

SAMPLE_RATE = 16_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 32 bytes of PCM16 mono per millisecond


class RecognizerBusy(Exception):
    """Raised by Recognizer.open when every session slot is taken, or when the sessions it has already fall behind
    real time (the embedded engine's admission by measured capacity)."""


class RecognizerFailed(Exception):
    """The session cannot go on: its recognizer stopped under it (the worker process holding its decoder died). The
    stream ends with this error; a new session gets a fresh worker."""


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
class Sheds(Protocol):
    """A session that decodes more cheaply when it falls behind real time (the embedded engine's fast pass, which
    narrows its search rather than fall further behind for want of CPU). Its server calls behind() before each
    feed() with how long past its due time the oldest audio not yet decoded is: due when it arrived, or, from a
    client sending faster than real time, when real time reached it (server.transport.DueTimes)."""

    def behind(self, ms: float) -> None: ...


@runtime_checkable
class EndsAtPauses(Protocol):
    """A session whose utterance in progress can be ended from outside: a speech detector beside it heard the speaker
    pause where its own endpointer, in steady noise, hears speech going on (the embedded engine's fast pass beside
    Silero). Its caller calls end_at_pause() before the feed() that is to end the utterance."""

    def end_at_pause(self, quiet_from_ms: int) -> None:
        """The detector has heard no speech since `quiet_from_ms`: at the next whole frame fed, end the utterance in
        progress if it began before then (its final comes from that feed), and begin a new one where the endpointer
        is."""
        ...


@runtime_checkable
class ReportsShedding(Protocol):
    """A recognizer whose sessions shed (Sheds) and that says so: on_shed is called with how many utterances its
    sessions began with the cheaper decoding since the last call (for /metrics)."""

    on_shed: Callable[[int], None] | None


@runtime_checkable
class Bounded(Protocol):
    """A recognizer that says how many sessions it decodes at once (more raise RecognizerBusy)."""

    max_sessions: int


@runtime_checkable
class WarmsUp(Protocol):
    """A recognizer that can start its workers and build its decoders before the first session."""

    async def warm_up(self) -> None: ...


@runtime_checkable
class Closes(Protocol):
    """A recognizer that holds workers or processes to stop when it is no longer used."""

    async def aclose(self) -> None: ...


class Recognizer(Protocol):
    name: str

    async def open(self) -> RecognizerSession:
        """A new session. Raises RecognizerBusy when the concurrency bound is reached or the recognizer cannot
        carry another."""
        ...


# The accurate pass as the two-pass session (server/engine/twopass.py) speaks to it; server/engine/accurate.py's
# AccurateScheduler implements all four.


class AccuratePass(Protocol):
    def submit(
        self,
        pcm: bytes,
        offset_ms: int,
        *,
        limit_ms: int | None = None,
        prompt: str = "",
        prefix: str = "",
        budget_s: float | None = None,
    ) -> asyncio.Future[tuple[Word, ...]]:
        """Queue one utterance's audio (times start at `offset_ms`, `prompt` the text before it, `prefix` the text
        of the words already said that it begins with); the future has its words, those after `prefix`. Cancelling
        the future before the job starts frees its place. Raises an exception (AccurateBusy) when the queue is full
        or the job could not be done within `budget_s` seconds."""
        ...


@runtime_checkable
class Estimates(Protocol):
    def estimate_s(self, audio_ms: int) -> float:
        """Seconds the accurate pass expects to spend on this much audio, once it starts."""
        ...

    def best_estimate_s(self, audio_ms: int) -> float:
        """Seconds the accurate pass expects to spend on this much audio if the job started now: decoded with its
        beam search while it has time to spare (if it has one), else greedily."""
        ...


@runtime_checkable
class Spares(Protocol):
    def spare(self) -> bool:
        """The accurate pass has time to spare now (nothing running or waiting, busy little of late): what a job
        costs beyond its own utterance (twopass.py SAID_REACH_MS) is taken only then."""
        ...


@runtime_checkable
class Places(Protocol):
    def free_places(self) -> int:
        """How many more jobs the accurate pass's queue takes now (its bound less those waiting or running)."""
        ...
