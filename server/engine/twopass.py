"""The two-pass recognizer: live interims from the fast streaming pass, finals from the accurate pass.

    fast pass (pocketsphinx) ── partials ───────────────────────────────► interims
                             └─ endpoint: its text ─────────────────────► an interim at once
                                 the utterance's audio (with preroll) ──► accurate pass (Whisper) ──► the final

While an utterance waits for its accurate final, the interims show its fast text followed by whatever the next
utterance has so far, so nothing disappears from the page; finals go out in utterance order.

No session lags without bound: when an utterance's accurate final is not there `fallback_after_s` after its end of
speech, or the accurate pass's queue is full, or it fails, the fast pass's text becomes the final, marked with a
warning (sent to the client) and counted in `stats`. Finals are collected on each feed(); so at real-time pace
they go out at most one frame after they are ready.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from server.engine.config import EngineConfig
from server.engine.types import BYTES_PER_MS, Hypothesis, Recognizer, RecognizerSession, Word

logger = logging.getLogger(__name__)
_DEFAULTS = EngineConfig()

FALLBACK_WARNING = "The accurate pass was too slow; this final is the fast pass's text."
FAILED_WARNING = "The accurate pass failed; this final is the fast pass's text."


class AccuratePass(Protocol):
    def submit(self, pcm: bytes, offset_ms: int, *, limit_ms: int | None = None) -> asyncio.Future[tuple[Word, ...]]:
        """Queue one utterance's audio (times start at `offset_ms`); the future has its words. Cancelling the
        future before the job starts frees its place. Raises an exception (AccurateBusy) when the queue is full."""
        ...


@dataclass
class TwoPassStats:
    """Counted over every session of one recognizer: what the benchmark and the logs report."""

    accurate: int = 0  # finals from the accurate pass
    fallback_slow: int = 0  # fast text as the final: the accurate final came too late
    fallback_busy: int = 0  # fast text as the final: the accurate pass's queue was full
    fallback_failed: int = 0  # fast text as the final: the accurate pass raised
    # End of speech → accurate final ready (seconds), for the benchmark: the latest few thousand, so a server that
    # runs for months does not grow with every final.
    waits_s: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=4096))

    @property
    def fallbacks(self) -> int:
        return self.fallback_slow + self.fallback_busy + self.fallback_failed


@dataclass
class _Pending:
    fast: Hypothesis  # the fast pass's final: the stand-in, and the utterance's span
    future: asyncio.Future[tuple[Word, ...]] | None  # None: not submitted (queue full)
    speech_end: float  # clock time of the end of speech
    deadline: float
    error: str = ""


class TwoPassRecognizer:
    """Options: `fallback_after_s` (end of speech → the latest an accurate final may come), `preroll_ms` (audio
    before the fast pass's first word that the accurate pass also hears), `tail_ms` (audio after its last word),
    `max_lag_s` (how much of the audio after the end of speech is taken to have been real time: the endpointer's
    delay), `merge_ms` (audio to wait after an endpoint for the speech to go on: utterances the fast pass split at
    a shorter pause go to the accurate pass as one), `clock` (seconds, monotonic)."""

    name = "two-pass"

    def __init__(
        self,
        fast: Recognizer,
        accurate: AccuratePass,
        *,
        fallback_after_s: float = _DEFAULTS.fallback_after_s,
        preroll_ms: int = 400,
        tail_ms: int = 300,
        max_lag_s: float = 1.0,
        merge_ms: int = _DEFAULTS.merge_pause_ms,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fallback_after_s <= 0:
            raise ValueError("fallback_after_s must be positive")
        self.fast = fast
        self.accurate = accurate
        self.fallback_after_s = fallback_after_s
        self.preroll_ms = preroll_ms
        self.tail_ms = tail_ms
        self.max_lag_s = max_lag_s
        self.merge_ms = merge_ms
        self.clock = clock
        self.stats = TwoPassStats()

    async def open(self) -> TwoPassSession:
        return TwoPassSession(self, await self.fast.open())

    async def warm_up(self) -> None:
        warm_up = getattr(self.fast, "warm_up", None)
        if warm_up is not None:
            await warm_up()

    async def aclose(self) -> None:
        """Stop both passes. Sessions still open fail on their next call."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """aclose() for callers without an event loop (fixtures, atexit)."""
        for part in (self.fast, self.accurate):
            stop = getattr(part, "shutdown", None) or getattr(part, "close", None)
            if stop is not None:
                stop()


class TwoPassSession:
    # Audio kept for the accurate pass: Whisper sees at most 30 s, plus the preroll. Older audio is dropped.
    KEEP_MS = 32_000

    def __init__(self, owner: TwoPassRecognizer, fast: RecognizerSession) -> None:
        self._owner = owner
        self._fast = fast
        self._audio = bytearray()
        self._audio_start_ms = 0  # session time of the first byte in _audio
        self._fed_ms = 0.0
        self._pending: collections.deque[_Pending] = collections.deque()
        self._partial: Hypothesis | None = None  # the fast pass's latest partial of the utterance in progress
        self._shown = False  # an interim is on the client's screen
        self._last_end_ms = 0  # where the previous utterance ended: the next one's audio never reaches before it
        # Fast finals not yet sent to the accurate pass: the fast pass's endpointer ends an utterance at a short
        # pause (so its endpoint interim comes early), but Whisper does much better on whole sentences than on the
        # pieces (measured: "She wrote a long letter." / "to her mother last week" and words lost between pieces
        # in noise), so pieces closer than `merge_ms` go to it as one utterance.
        self._held: list[Hypothesis] = []
        self._hold_until_ms = 0.0
        self._closed = False

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must be an even number of bytes")
        self._keep(pcm)
        out = self._handle(await self._fast.feed(pcm))
        self._release_held(force=False)
        return out + self._ready()

    async def finish(self) -> list[Hypothesis]:
        out = self._handle(await self._fast.finish())
        self._release_held(force=True)
        out += await self._drain()
        return out

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pending in self._pending:
            if pending.future is not None:
                pending.future.cancel()
        self._pending.clear()
        self._held.clear()
        self._audio.clear()
        await self._fast.aclose()

    def _keep(self, pcm: bytes) -> None:
        self._audio += pcm
        self._fed_ms += len(pcm) / BYTES_PER_MS
        excess = len(self._audio) - self.KEEP_MS * BYTES_PER_MS
        if excess > 0:
            excess -= excess % 2
            del self._audio[:excess]
            self._audio_start_ms += excess // BYTES_PER_MS

    def _handle(self, hyps: list[Hypothesis]) -> list[Hypothesis]:
        out: list[Hypothesis] = []
        for hyp in hyps:
            if not hyp.is_final:
                self._partial = hyp
                out += self._interim()
                continue
            self._partial = None
            if hyp.words:
                self._held.append(hyp)
                self._hold_until_ms = self._fed_ms + self._owner.merge_ms
            out += self._interim()
        return out

    def _release_held(self, *, force: bool) -> None:
        """Send the held pieces to the accurate pass as one utterance once no speech followed them for `merge_ms`
        (or they approach Whisper's 30 s window, or the stream ends)."""
        if not self._held:
            return
        first, last = self._held[0], self._held[-1]
        quiet = self._partial is None and self._fed_ms >= self._hold_until_ms
        if not (force or quiet or last.end_ms - first.start_ms > 20_000):
            return
        words = tuple(w for h in self._held for w in h.words)
        self._held = []
        self._submit(Hypothesis(words, True, first.start_ms, last.end_ms))

    def _submit(self, fast: Hypothesis) -> None:
        owner = self._owner
        now = owner.clock()
        # At real-time pace, the audio that followed the end of speech took as long to arrive as it lasts.
        lag_s = min(max(0.0, (self._fed_ms - fast.end_ms) / 1000), owner.max_lag_s)
        speech_end = now - lag_s
        start_ms = max(fast.start_ms - owner.preroll_ms, self._last_end_ms, self._audio_start_ms)
        end_ms = min(int(self._fed_ms), fast.end_ms + owner.tail_ms)
        self._last_end_ms = fast.end_ms
        first, last = (start_ms - self._audio_start_ms) * BYTES_PER_MS, (end_ms - self._audio_start_ms) * BYTES_PER_MS
        pcm = bytes(self._audio[first:last])
        pending = _Pending(fast, None, speech_end, speech_end + owner.fallback_after_s)
        try:
            pending.future = owner.accurate.submit(pcm, start_ms, limit_ms=fast.end_ms + owner.tail_ms)
        except Exception as exc:
            pending.error = f"{type(exc).__name__}: {exc}"
        self._pending.append(pending)

    def _interim(self) -> list[Hypothesis]:
        """What the client should show now: the fast text of the utterances waiting for their finals, then the
        utterance in progress. An empty interim only when it clears one on screen."""
        parts = [p.fast for p in self._pending] + self._held
        if self._partial is not None:
            parts.append(self._partial)
        words = tuple(w for part in parts for w in part.words)
        if not words:
            if not self._shown:
                return []
            self._shown = False
            last = self._partial
            span = (last.start_ms, last.end_ms) if last is not None else (self._last_end_ms, self._last_end_ms)
            return [Hypothesis((), False, *span)]
        self._shown = True
        return [Hypothesis(words, False, parts[0].start_ms, parts[-1].end_ms)]

    def _ready(self) -> list[Hypothesis]:
        """The finals that can go out now, in utterance order, each followed by the interim that remains."""
        out: list[Hypothesis] = []
        now = self._owner.clock()
        while self._pending:
            head = self._pending[0]
            if head.future is not None and not head.future.done() and now < head.deadline:
                break
            out += self._deliver_head()
        return out

    def _deliver_head(self) -> list[Hypothesis]:
        final = self._final(self._pending.popleft())
        self._shown = False  # the final replaced the interim on the client's screen
        return [final, *self._interim()]

    def _final(self, pending: _Pending) -> Hypothesis:
        stats = self._owner.stats
        fast = pending.fast
        future = pending.future
        if future is None:
            stats.fallback_busy += 1
            logger.info("accurate pass busy (%s): the fast text is the final", pending.error)
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FALLBACK_WARNING)
        if not future.done():
            future.cancel()
            stats.fallback_slow += 1
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FALLBACK_WARNING)
        if future.cancelled() or future.exception() is not None:
            stats.fallback_failed += 1
            if not future.cancelled():
                logger.warning("accurate pass failed: %r", future.exception())
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FAILED_WARNING)
        words = future.result()
        stats.accurate += 1
        stats.waits_s.append(max(0.0, self._owner.clock() - pending.speech_end))
        if not words:
            # Whisper heard no speech where the fast pass heard some (noise, a cough): trust the accurate pass.
            return Hypothesis((), True, fast.start_ms, fast.end_ms)
        first = words[0]
        if first.start_ms < fast.start_ms < first.end_ms:
            # Whisper's alignment lets the first word start in the silence before it (measured: 300 ms early);
            # pocketsphinx's Viterbi alignment finds the onset, so where they overlap its start is taken.
            words = (dataclasses.replace(first, start_ms=fast.start_ms), *words[1:])
        return Hypothesis(words, True, words[0].start_ms, words[-1].end_ms)

    async def _drain(self) -> list[Hypothesis]:
        """End of stream: wait for each pending final in turn, each until its own deadline at most."""
        out: list[Hypothesis] = []
        while self._pending:
            head = self._pending[0]
            if head.future is not None and not head.future.done():
                remaining = head.deadline - self._owner.clock()
                if remaining > 0:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(head.future), remaining)
            out += self._deliver_head()
        return out
