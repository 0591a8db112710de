"""The two-pass recognizer: live interims from the fast streaming pass, finals from the accurate pass.

    fast pass (pocketsphinx) ── partials ───────────────────────────────► interims
                             └─ endpoint: its text ─────────────────────► an interim at once
                                 the utterance's audio (with preroll) ──► accurate pass (Whisper) ──► the final
    speech detector (Silero) ── where the speaker paused ──┘ (when the pieces go, and what their window holds)
    loose voice detector ── sound neither heard (whispered) ──► accurate pass ──► a final, if Whisper is sure of it

While an utterance waits for its accurate final, the interims show its fast text followed by whatever the next
utterance has so far, so nothing disappears from the page; finals go out in utterance order.

No session lags without bound: when an utterance's accurate final is not there `fallback_after_s` after its end of
speech, or the accurate pass's queue is full, or it fails, the fast pass's text becomes the final, marked with a
warning (sent to the client) and counted in `stats`. Finals are collected on each feed(), and a server can also
await wait_ready() and send what collect() gives (types.PushesFinals), so a final, or its fallback, goes out when
it is ready even while no audio arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from server.engine.config import DEFAULT_RESERVE_S, RESERVE_MARGIN, EngineConfig, pause_leaves_time
from server.engine.delivered import PROMPT_CHARS, Delivered
from server.engine.interims import Screen, SteadyPartial
from server.engine.outcomes import (
    ACCURATE_IN_PART,
    BUSY_WARNING,
    EMPTY_WARNING,
    FAILED_WARNING,
    FALLBACK_WARNING,
    REASONS,
    SKIPPED_WARNING,
    UNHEARD_WARNING,
    UNRELIABLE_WARNING,
    TwoPassObserver,
    TwoPassStats,
)
from server.engine.pending import PendingFinal, PlainWindow
from server.engine.silero import SpeechDetector, SpeechTrack
from server.engine.types import (
    BYTES_PER_MS,
    AccuratePass,
    EndsAtPauses,
    Estimates,
    Places,
    Recognizer,
    RecognizerSession,
    Sheds,
    Spares,
)
from server.engine.voice_runs import RUN_MAX_MS, RUN_MIN_MS, VoiceRun, VoiceRunDetector
from server.engine.whisper import TooLate, Unreliable
from server.engine.word_match import (
    paired,
    skipped_runs,
    spliced,
    spoken_form,
)
from server.transcript import Hypothesis, Word

logger = logging.getLogger(__name__)
_DEFAULTS = EngineConfig()

# How far before an utterance the accurate pass's window reaches (into the previous one, for context).
REACH_BACK_MS = 4000
# ... only across a pause shorter than this: a longer one ends a sentence (the prompt carries its text), and over a
# long silence Whisper's alignment misplaces the first word of the next one (measured: 1.6 s early after 1.5 s).
REACH_GAP_MS = 1000
# A pause of at most this long between the previous job's audio and this one's preroll may be heard by this job too
# (`fill_gap_ms`), so that nothing between two close utterances goes unheard by the accurate pass. Off: measured
# (bench/README.md, the cutting levers), it righted one sentence of the Austen reading at 10 dB SNR (24 → 19 words
# wrong of 184) but not the word lost between the two jobs, and on the clips joined into sessions it was a wash
# (34 / 39 / 73 → 37 / 44 / 70 of 452, clean, 20 and 10 dB, with every earlier final in the prompt; reruns of one
# setting moved a cell by up to 8). Measured again with the held-out recordings, the filled pause now a quiet span
# for without_echoes: a little better fed as fast as possible (clean 110 → 98 words wrong over three sets), worse
# at real-time pace (7 → 11 of 113 on the 13 clips: the 1 s between them is filled and each job hears the quiet).
FILL_GAP_MS = 0
# Silero is sure of speech a little after it starts and stops being sure a little before it ends (up to 350 ms on
# the recorded clips, tests/test_silero.py): speech it heard outside the fast pass's words is taken with this much
# audio either side.
SPEECH_PAD_MS = 200
# A shorter run of what it calls speech (a cough, a door, a click) does not make a window reach for it.
SPEECH_MIN_MS = 250
# ... after the fast pass's last word, at most this far: speech that goes on past it is the next window's (it
# starts where this one ends when the detector hears speech there).
SPEECH_REACH_MS = 3000
# A window's audio stays inside what Whisper reads (30 s): speech the detector heard before the fast pass's first
# word is taken only that far back from the window's end.
WINDOW_MS = 29_000
# Pieces held while the speaker goes on without a pause (server/engine/silero.py) go to the accurate pass once they
# span this much all the same: a window this long still decodes well (bench/README.md), and the interims show the
# fast text meanwhile.
HOLD_MAX_MS = 8000
# A window also reaches back over a pause the detector heard when Whisper's text before it ends with a word no
# sentence ends with: the speaker paused mid-sentence, and the window that begins mid-way garbles it ("than the |
# acoustic corpus", 0.67 s of quiet in a gap of 1.2 s between the fast pass's words, came back "a constraint for
# this" from the 1 s after it alone). Only over a quiet of at most REACH_GAP_MS (after a longer silence Whisper may
# place the next word inside it, where it would be taken for the previous final's) and a gap of at most this long
# (a blip the detector took for speech does not make a long gap short). Not on any text without a full stop:
# Whisper leaves it off short phrases too, and a card read after "4, Queen of Clothes" came back "7 of Cloves" when
# its window heard that again. Only once the previous job is back (under load it may not be; the window goes as
# before).
SENTENCE_GAP_MS = 1500
# Articles, conjunctions, possessives and "of", "than": words English speech does not end a sentence with.
NEVER_LAST = frozenset(["a", "an", "the", "and", "or", "but", "nor", "than", "of", "my", "your", "our", "their", "its"])
# A window hears up to this much of the words already said before its speech again, given to Whisper as the head of
# its answer (`prefix`), with the text before them as its prompt: Whisper goes on from them as its long-form decoder
# goes on from a window's first words, so a sentence the speaker paused in is decoded with its start, and only the
# new words come back (no split of the words heard twice to make). Only when every earlier final is out (their words
# are what is given) and Whisper's, when the longer window is still back in time (twice the accurate pass's
# estimate before the deadline), while the accurate pass has time to spare (`Spares`: under load every window is its
# own utterance), and after a silence of at most REACH_GAP_MS. Doubtful finals (PROMPT_MIN_PROBABILITY) are given
# too: they are what the speaker just said as the screen shows it, and the gain below was measured with them (not
# without). Measured at real time (bench/README.md "One speaker per session"): the held-out recordings each in a
# session of its own, 42-45 words wrong of 317 before, 33-39 with it (long-form: 20).
SAID_REACH_MS = 4000
FULL_STOPS = frozenset({".", "!", "?"})  # the marks kept at the end of the words given, after a pause
TRAILING_MARKS = " .,;:!?\u2026"  # the others are left off them (… is an ellipsis)
SAID_PAD_MS = 200  # audio before the first word heard again (the alignment's starts err early or late by this much)
# A window sent while the speaker goes on (HOLD_MAX_MS, or its deadline) ends mid-phrase, and Whisper garbles or drops
# what it hears cut off: "I think I'm probably | gonna cough here" came back "...different words. I'm probably" in
# every run (bench/README.md "The next lever"). Its final keeps the words that end at least this long before its
# last fast word; the rest go to the next window, which hears them as its own, given the words kept before them
# (SAID_REACH_MS), as faster-whisper's long-form decoder starts each window at the last whole segment of the one
# before. Measured at real time, each held-out recording alone (bench/README.md, "...go to the next window"): the
# talk where the engine was furthest behind long-form 6-12 words wrong of 57 in eleven runs against 13; in total
# (26-36 of 317 against 32 and 39) within a run's spread. 2 s instead: longer next windows, decoded greedily, one lost.
CARRY_MS = 1000
# ... unless Whisper ended its answer with a mark: it heard the phrase end there (the speaker paused under `pause_ms`
# at a line's end), and the next window only wrote again what it had right ("the gaudy spring." came back "the god
# he spring" from the window it went to).
PHRASE_END = frozenset(TRAILING_MARKS.strip())
# ... one it was at least this sure of: a mark it guessed is no phrase end. "here's some more word word word word
# word", cut at 5.0 s while the man went on, came back "Here's some more words!" (0.01 for the "!", 0.02 for
# "words"; the same decoded again offline, beam 5 or greedy), and the three words after it were in no final. The
# marks ending the held-out recordings' windows of one real-time run, decoded again offline, were 0.35-0.98
# (bench/README.md "Repeated words at a cut").
PHRASE_END_PROBABILITY = 0.1
# Speech neither the fast pass nor Silero heard, where a loose voice detector heard a run of it (a whispered sentence:
# server/engine/voice_runs.py), goes to the accurate pass as a window of its own, with this much audio either side
# (its first and last sounds are soft) ...
UNHEARD_PAD_MS = 300
# ... and what Whisper writes there is a final only when its spoken words' mean probability is at least this: the
# loose detector also hears breaths and laughter, where Whisper may make words up. Measured offline on every such run
# of the recorded sets, clean and at 20 and 10 dB SNR (bench/README.md "Speech only a loose detector hears"): the
# whispered sentences 0.69-0.94; the words Whisper made up over clicks, laughs and stretches of noise 0.02-0.62, all in
# runs shorter than RUN_MIN_MS.
UNHEARD_MIN_PROBABILITY = 0.6


def _ends_phrase(final: Hypothesis) -> bool:
    """Whisper ended `final` with a mark it was sure of (PHRASE_END, PHRASE_END_PROBABILITY): it heard the phrase
    end there. Only a mark that is a word of its own has a probability of its own: one written onto a word ("the...",
    "words!": faster-whisper splits off single marks only) and a recognizer that gives none are taken at their word."""
    if not final.words or final.text.rstrip()[-1:] not in PHRASE_END:
        return False
    last = final.words[-1]
    bare_mark = last.joins_previous and not any(c.isalnum() for c in last.text)
    return not bare_mark or last.probability is None or last.probability >= PHRASE_END_PROBABILITY


class TwoPassRecognizer:
    """Options: `fallback_after_s` (end of speech → the latest an accurate final may come), `preroll_ms` (audio
    before the fast pass's first word that the accurate pass also hears), `tail_ms` (audio after its last word),
    `fill_gap_ms` (a pause after the previous utterance's audio, at most this long, that the accurate pass hears
    with the next one), `max_lag_s` (how much of the audio after the end of speech is taken to have been real
    time: the endpointer's delay), `merge_ms` (audio to wait after an endpoint for the speech to go on: utterances
    the fast pass split at a shorter pause go to the accurate pass as one), `speech` (a voice activity detector,
    server/engine/silero.py: the pieces go once it has heard a pause of `pause_ms` after them, a window also holds
    speech it heard that the fast pass opened no utterance on, and one reaches back into the previous utterance only
    where no such pause came between them or Whisper's text before it stopped mid-sentence; None: the fast pass's
    endpoints alone), `said_reach_ms` (how much of the words already said a window hears again, given to Whisper as
    its answer's head: SAID_REACH_MS; 0: none), `voice` (a loose voice detector, server/engine/voice_runs.py: a run
    of sound it calls speech where the fast pass heard no word goes to the accurate pass on its own, UNHEARD_PAD_MS;
    None: none), `clock` (seconds, monotonic)."""

    name = "two-pass"

    def __init__(
        self,
        fast: Recognizer,
        accurate: AccuratePass,
        *,
        fallback_after_s: float = _DEFAULTS.fallback_after_s,
        preroll_ms: int = 400,
        tail_ms: int = 300,
        fill_gap_ms: int = FILL_GAP_MS,
        max_lag_s: float = 1.0,
        merge_ms: int = _DEFAULTS.merge_pause_ms,
        speech: SpeechDetector | None = None,
        pause_ms: int = _DEFAULTS.speech_pause_ms,
        said_reach_ms: int = SAID_REACH_MS,
        voice: VoiceRunDetector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fallback_after_s <= 0:
            raise ValueError("fallback_after_s must be positive")
        if speech is not None and not pause_leaves_time(pause_ms, fallback_after_s):
            raise ValueError("pause_ms must leave the accurate pass time before fallback_after_s")
        self.fast = fast
        self.accurate = accurate
        self.fallback_after_s = fallback_after_s
        self.preroll_ms = preroll_ms
        self.tail_ms = tail_ms
        self.fill_gap_ms = fill_gap_ms
        self.max_lag_s = max_lag_s
        self.merge_ms = merge_ms
        self.speech = speech
        self.pause_ms = pause_ms
        self.said_reach_ms = said_reach_ms
        self.voice = voice
        self.clock = clock
        self.stats = TwoPassStats()
        self.observer: TwoPassObserver | None = None

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
    # The longest span of merged pieces sent as one utterance: with the preroll and tail, well inside 30 s.
    MERGE_SPAN_MS = 20_000

    def __init__(self, owner: TwoPassRecognizer, fast: RecognizerSession) -> None:
        self._owner = owner
        self._fast = fast
        self._sheds = fast if isinstance(fast, Sheds) else None  # checked once: behind() comes before every feed
        self._speech: SpeechTrack | None = owner.speech.open() if owner.speech is not None else None
        self._voice = owner.voice.open() if owner.voice is not None else None
        self._runs: list[VoiceRun] = []  # runs the loose detector heard, waiting for the held pieces to go first
        self._fast_until_ms = 0  # where the fast pass's last final ends: a run that begins before it is its speech
        # Speech Silero heard in a run after the last window, left to the next utterance's window (`_unheard_part`);
        # sent as its own if no utterance comes for it (`_send_deferred`).
        self._deferred: VoiceRun | None = None
        # In steady noise the fast pass's endpointer can hear speech go on through the speaker's pauses (for up to
        # its 10 s cut, sphinx.py `max_utterance_ms`): with the detector, its utterance ends where the detector has
        # heard a pause of `pause_ms`, once per pause (`_pause_told`).
        self._ends = fast if isinstance(fast, EndsAtPauses) and self._speech is not None else None
        # Where the pause the fast pass was told of begins (`_end_at_pause`), while the detector's pause lasts.
        self._pause_told: int | None = None
        self._audio = bytearray()
        self._audio_start_ms = 0  # session time of the first byte in _audio
        self._fed_ms = 0.0
        self._pending: collections.deque[PendingFinal] = collections.deque()
        self._steady = SteadyPartial()  # the fast pass's partial of the utterance in progress, as the interims show it
        self._screen = Screen()  # the interim on the client's screen
        self._last_end_ms = 0  # where the previous utterance ended: the next one's audio never reaches before it
        # Fast finals not yet sent to the accurate pass: the fast pass's endpointer ends an utterance at a short
        # pause (so its endpoint interim comes early), but Whisper does much better on whole sentences than on the
        # pieces (measured: "She wrote a long letter." / "to her mother last week" and words lost between pieces
        # in noise), so pieces closer than `merge_ms` go to it as one utterance.
        self._held: list[Hypothesis] = []
        self._hold_until_ms = 0.0
        # The fallback deadline binds from the first held piece's end of speech (clock seconds): the pieces go to
        # the accurate pass early enough for it to answer before then, merged or not.
        self._held_deadline = 0.0
        self._held_postponed = False  # held past the first piece's deadline while the detector heard speech go on
        self._carried_piece: Hypothesis | None = None  # the fast words a final left to the next window (CARRY_MS)
        self._finishing = False  # finish() was called
        # (session ms fed, clock) after each feed, for when a moment of the audio arrived: the latency figures.
        self._arrivals: collections.deque[tuple[float, float]] = collections.deque(maxlen=1024)
        self._new_utterance = True  # the next partial with words is an utterance's first interim
        self._delivered = Delivered()  # what the finals have said so far, and the accurate pass's prompt
        self._last_job_start_ms: int | None = None  # where the previous accurate job's own audio began
        self._last_prompt = ""  # the text before it
        self._last_job_end_ms: int | None = None  # where the previous accurate job's audio ended
        self._last_job: PendingFinal | None = None  # that job
        self._closed = False
        self._feeding = False  # feed() waits for the fast pass (`wait_ready` leaves what is due to it meanwhile)
        self._submitted = asyncio.Event()  # set when an utterance joins _pending: wakes wait_ready()

    def behind(self, ms: float) -> None:
        """types.Sheds: the fast pass hears how far behind real time it is; the accurate pass has its deadlines."""
        if self._sheds is not None:
            self._sheds.behind(ms)

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must be an even number of bytes")
        self._keep(pcm)
        if self._speech is not None:
            self._speech.feed(pcm)
            self._end_at_pause(self._speech)
        if self._voice is not None:
            self._voice.feed(pcm)
        self._arrivals.append((self._fed_ms, self._owner.clock()))
        self._feeding = True
        try:
            fast = await self._fast.feed(pcm)
        finally:
            self._feeding = False
            self._submitted.set()  # wakes wait_ready(), which leaves what is due to feed() while one is under way
        out = self._handle(fast)
        if all(h.is_final for h in fast):
            out += self._settle()
        self._release_held(force=False)
        self._send_unheard(finishing=False)
        return out + self._ready()

    def _end_at_pause(self, speech: SpeechTrack) -> None:
        """Tell the fast pass to end its utterance once the detector has heard a pause of `pause_ms` after speech the
        utterance holds (its first word began before the pause): once per pause of the detector's. Where the fast
        pass heard the utterance's last word end inside that pause, the pause counts from the word's end, by at most
        `pause_ms` more: Silero is deaf to some voices, and on a held-out talk with a cold it heard a pause of 576
        ms in "so this is the sick | corpus" where the fast pass heard words; told of it, the fast pass ended its
        utterance there, and the window cut there came back "So this is these." and the next "thick corpus"
        (bench/README.md "A pause the fast pass heard words in"). The bound keeps steady noise, which the fast pass
        may go on decoding into words, from putting the pause off for more than that."""
        if self._ends is None:
            return
        pause_ms = self._owner.pause_ms
        quiet_ms = speech.quiet_ms()
        if quiet_ms < pause_ms:
            self._pause_told = None
            return
        partial = self._steady.raw
        if self._pause_told is not None or partial is None or not partial.words:
            return
        quiet_from_ms = speech.heard_ms() - quiet_ms
        if partial.start_ms >= quiet_from_ms:
            return
        told_at = max(quiet_from_ms, min(partial.words[-1].end_ms, quiet_from_ms + pause_ms))
        if speech.heard_ms() - told_at >= pause_ms:
            self._pause_told = told_at
            self._ends.end_at_pause(told_at)

    async def finish(self) -> list[Hypothesis]:
        self._finishing = True  # no audio comes after: speech the detector hears going on has ended
        out = self._handle(await self._fast.finish())
        self._release_held(force=True)
        self._send_unheard(finishing=True)
        out += await self._drain()
        return out

    async def wait_ready(self) -> bool:
        """Return True once the oldest pending final can go out (its accurate words are there, it failed or its
        deadline passed), so collect() has it; False once the session is closed."""
        while not self._closed:
            if not self._pending:
                self._submitted.clear()
                if self._feeding:
                    # While feed() waits for the fast pass its state is half the new frame's (below): feed() sends
                    # what is due itself, and wakes this loop when it is done.
                    await self._submitted.wait()
                    continue
                if not self._held:
                    due_in = self._deferred_due_in()
                    if due_in is None:
                        await self._submitted.wait()
                    elif due_in > 0:
                        # No audio may come (a paused client): speech left to the next window still goes when due.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(due_in):
                                await self._submitted.wait()
                    else:
                        self._send_unheard(finishing=False)
                    continue
                # No audio may come (a paused client): the held pieces still leave by their deadline.
                release_in = self._release_at() - self._owner.clock()
                if release_in > 0:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that comes
                    # as the event is set, and the stream server's EOS then waits forever for this task to stop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(release_in):
                            await self._submitted.wait()
                    continue
                if self._postponed():  # the speaker goes on: _release_at() moved past now
                    continue
                self._release_held(force=True)
                self._send_unheard(finishing=False)  # runs that waited for the held pieces go after them
                continue
            head, now = self._pending[0], self._owner.clock()
            remaining = self._pending_deadline() - now
            if head.future is None or head.future.done() or remaining <= 0:
                return True
            # No audio may come (a paused client) while the first final waits: the held pieces and the speech left
            # to the next window still go when due, as feed() sends them (a review: they waited for that final).
            # Not while feed() waits for the fast pass: the detectors have the new audio and the fast pass's state
            # not yet, and feed() sends what is due itself once it has the fast pass's answer.
            due_in = None if self._feeding else self._work_due_in(now)
            wait_s = remaining if due_in is None else min(remaining, due_in)
            self._submitted.clear()
            woken = asyncio.ensure_future(self._submitted.wait())
            waiting: list[asyncio.Future[Any]] = [head.future, woken]
            try:
                await asyncio.wait(waiting, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            if self._closed or self._feeding:
                continue
            self._release_held(force=False)
            self._send_unheard(finishing=False)
        return False

    def _work_due_in(self, now: float) -> float | None:
        """Seconds until the held pieces must go (`_release_at`) or, with none held, the speech left to the next
        window goes alone (`_deferred_due_in`); None: neither waits for a time."""
        if self._held:
            return max(0.0, self._release_at() - now)
        due_in = self._deferred_due_in()
        return None if due_in is None else max(0.0, due_in)

    def _queue(self, pending: PendingFinal) -> None:
        # A final whose deadline had passed when it was queued (a window with no time left to decode it) gains
        # nothing from sending the finals before it sooner, and they would lose Whisper's answers for it.
        pending.binds = pending.deadline > self._owner.clock()
        self._pending.append(pending)

    def _pending_deadline(self) -> float:
        """When the first pending final must go: by its own deadline, and by that of any after it, which can only go
        after it (a window held while the speaker went on has its deadline moved to the detector's end of speech,
        past that of a later window counted from the fast pass's end)."""
        head, *rest = self._pending
        return min([head.deadline, *(p.deadline for p in rest if p.binds)])

    def collect(self) -> list[Hypothesis]:
        """The finals ready now, each followed by the interim that remains: what feed() would add to its output."""
        return [] if self._closed else self._ready()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._submitted.set()
        for pending in self._pending:
            if pending.future is not None:
                pending.future.cancel()
        self._pending.clear()
        self._held.clear()
        self._runs.clear()
        self._deferred = None
        self._carried_piece = None
        self._audio.clear()
        await self._fast.aclose()

    def _keep(self, pcm: bytes) -> None:
        self._audio += pcm
        self._fed_ms += len(pcm) / BYTES_PER_MS
        excess = len(self._audio) - self.KEEP_MS * BYTES_PER_MS
        if excess > 0:
            # Whole milliseconds only, so `_audio_start_ms` stays exact however the client sizes its frames.
            excess += -excess % BYTES_PER_MS
            del self._audio[:excess]
            self._audio_start_ms += excess // BYTES_PER_MS

    def _handle(self, hyps: list[Hypothesis]) -> list[Hypothesis]:
        out: list[Hypothesis] = []
        for hyp in hyps:
            if not hyp.is_final:
                self._steady.update(hyp, self._fed_ms)
                if self._new_utterance and hyp.words and self._owner.observer is not None:
                    self._new_utterance = False
                    self._owner.observer.first_interim_after(self._owner.clock() - self._arrived(hyp.start_ms))
                out += self._interim()
                continue
            self._steady.end()
            if self._deferred is not None:
                self._submitted.set()  # wakes wait_ready(): no utterance in progress hears it now
            self._new_utterance = True
            if hyp.words:
                self._fast_until_ms = max(self._fast_until_ms, hyp.end_ms)
                if self._held and hyp.end_ms - self._held[0].start_ms > self.MERGE_SPAN_MS:
                    # Together they would not fit Whisper's window (it ignores audio past 30 s, and the kept
                    # audio ends 32 s back): what is held goes on its own.
                    self._release_held(force=True)
                if not self._held:
                    self._held_deadline = self._speech_end(hyp) + self._owner.fallback_after_s
                    self._submitted.set()  # wakes wait_ready(): the held piece has a deadline of its own
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
        quiet = self._steady.shown is None and self._fed_ms >= self._hold_until_ms
        if self._speech is not None:
            # The fast pass was told of this pause and ended its utterance at it: what it hears since is noise or
            # the next utterance, and the pause that ends these pieces has been heard already. (Pieces begun in the
            # pause wait as any do: a detector gone deaf hears one pause through a whole talk.)
            told_at = self._pause_told
            told = (
                told_at is not None
                and last.start_ms < told_at
                and (self._steady.shown is None or self._steady.shown.start_ms >= told_at)
            )
            quiet = (quiet or told) and self._speech.quiet_ms() >= self._owner.pause_ms
        due = self._owner.clock() >= self._release_at() and not self._postponed()
        if not (force or quiet or due or last.end_ms - first.start_ms > self.MERGE_SPAN_MS):
            return
        if quiet and self._held_postponed and self._speech is not None:
            # Held past the fast pass's endpoint while the speaker went on: the end of speech is the detector's.
            spoken_end = self._arrived(self._fed_ms - self._speech.quiet_ms())
            self._held_deadline = max(self._held_deadline, spoken_end + self._owner.fallback_after_s)
        self._held_postponed = False
        words = tuple(w for h in self._held for w in h.words)
        self._held = []
        carried, self._carried_piece = first is self._carried_piece, None
        self._submit(Hypothesis(words, True, first.start_ms, last.end_ms), self._held_deadline, carried=carried)

    def _postponed(self) -> bool:
        """The held pieces are due, but the detector hears the speaker going on (no pause of `pause_ms` yet, audio
        still arriving, less than HOLD_MAX_MS of audio since the first piece began): their end of speech has not
        come, so their deadline counts from the detector's end of speech instead, and they wait. False, the
        deadline as it was, when they must go now. Measured at real-time pace on the held-out talks: sent by the
        first piece's deadline, the talk went to Whisper a second or two at a time."""
        if self._speech is None or not self._held or not self._goes_on():
            return False
        owner, now = self._owner, self._owner.clock()
        quiet_ms = self._speech.quiet_ms()
        if self._fed_ms - self._held[0].start_ms >= HOLD_MAX_MS:
            return False
        before = self._held_deadline
        self._held_deadline = max(before, self._arrived(self._fed_ms - quiet_ms) + owner.fallback_after_s)
        if self._release_at() <= now:  # the accurate pass would not be back in time all the same
            self._held_deadline = before
            return False
        self._held_postponed = True
        return True

    def _goes_on(self) -> bool:
        """The detector hears the speaker going on: no pause of `pause_ms` yet, and audio still arriving (a client
        that stopped sending says nothing)."""
        if self._speech is None or not self._arrivals:
            return False
        owner = self._owner
        arriving = owner.clock() - self._arrivals[-1][1] < owner.pause_ms / 1000
        return arriving and self._speech.quiet_ms() < owner.pause_ms

    def _release_at(self) -> float:
        """Clock time by which the held pieces must go to the accurate pass to be back by their deadline."""
        held_ms = self._held[-1].end_ms - self._held[0].start_ms + self._owner.preroll_ms + self._owner.tail_ms
        owner, accurate = self._owner, self._owner.accurate
        if not isinstance(accurate, Estimates):
            return self._held_deadline - min(DEFAULT_RESERVE_S, owner.fallback_after_s)
        # Time for the job as it would be decoded now (its beam, with time to spare), twice over: released by
        # greedy's estimate, a window held to its deadline never had the time the beam needs (accurate.py
        # BEAM_MARGIN), and such windows, long and dense, are where the beam gains most (bench/README.md "Beam
        # search for the accurate pass").
        reserve = RESERVE_MARGIN * accurate.best_estimate_s(held_ms) + 0.2
        wait_s = (owner.pause_ms if self._speech is not None else owner.merge_ms) / 1000
        if reserve > owner.fallback_after_s - wait_s:
            # The beam's time would send the pieces before the pause that ends them (past the fallback, at once),
            # cut mid-sentence, and leave the job no room for the beam all the same: greedy's time, as before.
            reserve = RESERVE_MARGIN * accurate.estimate_s(held_ms) + 0.2
        return self._held_deadline - min(reserve, owner.fallback_after_s)

    def _sentence_goes_on(self) -> bool:
        """The previous job is back and Whisper's text ends with a word no sentence ends with, and no mark after it:
        the speaker paused mid-sentence ("I probably sound quite different than the | acoustic corpus"). Whisper's
        answer as it came, not the final as delivered: that is often not out yet when the next window goes, and the
        two differ only where the final was trimmed or fell back."""
        job = self._last_job
        future = job.future if job is not None else None
        if future is None or not future.done() or future.cancelled() or future.exception() is not None:
            return False
        words = future.result()
        return bool(words) and words[-1].text.strip().lower() in NEVER_LAST

    def _arrived(self, ms: float) -> float:
        """Clock time at which the audio at session time `ms` had arrived."""
        for fed_ms, at in self._arrivals:
            if fed_ms >= ms:
                return at
        return self._owner.clock()

    def _speech_end(self, fast: Hypothesis) -> float:
        """Clock time of `fast`'s end of speech: at real-time pace, the audio that followed it took as long to
        arrive as it lasts (at most `max_lag_s`, the endpointer's delay, so a fast sender is not credited)."""
        lag_s = min(max(0.0, (self._fed_ms - fast.end_ms) / 1000), self._owner.max_lag_s)
        return self._owner.clock() - lag_s

    def _submit(self, fast: Hypothesis, deadline: float, *, carried: bool = False) -> None:
        owner = self._owner
        # The earliest speech Silero heard that this window reaches back for (below): inside Whisper's 30 s.
        speech_earliest_ms = fast.end_ms + SPEECH_REACH_MS + SPEECH_PAD_MS - WINDOW_MS
        deferred, self._deferred = self._deferred, None
        if deferred is not None and deferred.start_ms < speech_earliest_ms:
            # Too far back for this window to reach: it goes first, as its own.
            self._submit_unheard(deferred, None, tail=True)
            deferred = None
        now = owner.clock()
        speech_end = deadline - owner.fallback_after_s
        own_start_ms = max(fast.start_ms - owner.preroll_ms, self._last_end_ms, self._audio_start_ms)
        filled_from_ms = 0
        if self._last_job_end_ms is not None and 0 < own_start_ms - self._last_job_end_ms <= owner.fill_gap_ms:
            own_start_ms = filled_from_ms = max(self._last_job_end_ms, self._audio_start_ms)
        speech_from_ms = fast.start_ms  # where the speech this window is for begins
        if self._speech is not None and not filled_from_ms:
            # Speech the fast pass opened no utterance on (soft, or in noise) is heard with the next utterance. (The
            # previous job heard none of it, so no word there can be an echo of its: not a quiet span.)
            since = max(self._last_job_end_ms or 0, self._audio_start_ms)
            heard = self._speech.speech_start(max(since, speech_earliest_ms), own_start_ms, min_ms=SPEECH_MIN_MS)
            if heard is not None and heard < speech_from_ms:
                speech_from_ms = heard
                own_start_ms = max(since, min(own_start_ms, heard - SPEECH_PAD_MS))
        if self._voice is not None and not filled_from_ms:
            # A whispered start the fast pass did not hear ("this is | all very whispered": it heard the last three
            # words): the loose detector's run that holds the first word began there. Only a lead of at least
            # RUN_MIN_MS (a breath before the speech is shorter) and at most SPEECH_REACH_MS (a run that began
            # further back is steady sound, not a sentence's start).
            since = max(self._last_job_end_ms or 0, self._audio_start_ms)
            earliest = speech_earliest_ms + UNHEARD_PAD_MS  # inside 30 s
            lead = self._voice.run_start(fast.start_ms)
            if (
                lead is not None
                and lead >= max(since, earliest)
                and RUN_MIN_MS <= speech_from_ms - lead <= SPEECH_REACH_MS
            ):
                speech_from_ms = lead
                own_start_ms = max(since, min(own_start_ms, lead - UNHEARD_PAD_MS))
            elif lead is not None and fast.start_ms - lead <= RUN_MAX_MS:
                window_ms = fast.end_ms + owner.tail_ms - own_start_ms  # about the utterance's own window
                self._send_lead(VoiceRun(max(lead, since), own_start_ms), lead < since, deadline, window_ms)
        start_ms, keep_from_ms, prompt = own_start_ms, 0, self._delivered.prompt
        if self._speech is None:
            reach = fast.start_ms - self._last_end_ms <= REACH_GAP_MS
        else:
            # The previous window was sent before a pause came (HOLD_MAX_MS, the deadline, or the cut of a long
            # utterance), or Whisper's text says the pause came mid-sentence (NEVER_LAST): only then was a sentence
            # cut, and the words before the cut are worth hearing again. Measured (bench/README.md): reaching back on
            # the fast pass's gaps instead cost 12 words of 317 on the held-out talks, clean.
            quiet_ms = self._speech.quiet_between(self._last_end_ms, speech_from_ms)
            reach = quiet_ms < owner.pause_ms or (
                quiet_ms <= REACH_GAP_MS
                and speech_from_ms - self._last_end_ms <= SENTENCE_GAP_MS
                and self._sentence_goes_on()
            )
        if self._last_job_start_ms is not None and reach:
            # A window that reaches back: Whisper hears the previous utterance again (up to REACH_BACK_MS), so a
            # sentence the endpointer cut at a pause is decoded with the words before the cut, as it was spoken
            # (measured on "he was not | an ill disposed young man": "and he'll dispose young man" alone, "an
            # ill-disposed young man" heard whole). The prompt is then the text before that utterance: with its
            # own text in the prompt Whisper leaves it out and stretches the new words over its audio. Its words
            # are taken out of this final again (context_words).
            context_ms = max(self._last_job_start_ms, fast.start_ms - owner.preroll_ms - REACH_BACK_MS)
            if context_ms < own_start_ms:
                start_ms, keep_from_ms, prompt = (
                    max(context_ms, self._audio_start_ms),
                    self._last_end_ms,
                    self._last_prompt,
                )
        self._last_job_start_ms, self._last_prompt = own_start_ms, self._delivered.prompt
        end_ms = min(int(self._fed_ms), fast.end_ms + owner.tail_ms)
        speech_end_ms = fast.end_ms
        if self._speech is not None:
            # Speech the detector heard go on after the fast pass's last word (a soft ending) is this utterance's,
            # once it has ended (or the stream has): sent while the speaker goes on (HOLD_MAX_MS, a deadline), the
            # run holds the next utterance's first words, which its own window hears, reaching back into this one.
            heard = self._speech.run_end(fast.end_ms, ongoing=self._finishing)
            if heard is not None:
                speech_end_ms = min(heard, fast.end_ms + SPEECH_REACH_MS, int(self._fed_ms))
                end_ms = min(int(self._fed_ms), max(end_ms, speech_end_ms + SPEECH_PAD_MS))
        if self._steady.shown is not None and self._steady.shown.words:
            # The next utterance has begun: the tail stops where it starts, so no word is heard by two jobs.
            end_ms = max(fast.end_ms, min(end_ms, self._steady.shown.start_ms))
        # The next job's preroll reaches back no further than this one's speech: the pause between them may be
        # heard twice (Whisper writes nothing for it), a word never is. Nor past this job's audio: words after it
        # are the next job's to keep.
        previous_end_ms, self._last_end_ms = self._last_end_ms, min(speech_end_ms, end_ms)
        self._last_job_end_ms = end_ms
        if deferred is not None and deferred.end_ms > end_ms:
            # The window ends before the speech left to it does (the fast pass gave this utterance late, or the
            # window is cut while the speaker goes on): the rest waits for the next window.
            self._defer(VoiceRun(max(end_ms, deferred.start_ms), deferred.end_ms))
        said = self._said_before(own_start_ms, speech_from_ms, end_ms, deadline - now, carried=carried)
        prefix, plain = "", None
        if said is not None:
            plain = PlainWindow(start_ms, end_ms, prompt, keep_from_ms)
            start_ms, prompt, prefix, _ = said
            # Where the previous utterance ended: the pause from there to this one's speech is where Whisper may
            # write the last word given again, an echo (`_final`'s quiet spans; no split of words to make).
            keep_from_ms = previous_end_ms
        pcm = self._pcm(start_ms, end_ms)
        pending = PendingFinal(
            fast,
            None,
            speech_end,
            deadline,
            keep_from_ms=keep_from_ms,
            filled_from_ms=filled_from_ms,
            start_ms=start_ms,
            speech_from_ms=speech_from_ms,
            given=said[3] if said is not None else (),
            plain=plain,
            going_on=not self._finishing and self._goes_on(),
        )
        try:
            pending.future = owner.accurate.submit(
                pcm, start_ms, limit_ms=end_ms, prompt=prompt, prefix=prefix, budget_s=deadline - now
            )
        except Exception as exc:
            # Refused (the queue is full, or the longer window would finish late): the window without the words said
            # is shorter, and may still fit.
            if plain is None or not self._submit_plain(pending, plain):
                pending.error = f"{type(exc).__name__}: {exc}"
        self._queue(pending)
        self._last_job = pending
        self._submitted.set()

    def _send_unheard(self, *, finishing: bool) -> None:
        """Send the speech only the loose voice detector heard to the accurate pass, each stretch as a window of its
        own: a run, or the part of one past the end of the fast pass's last final and of the last window's speech (a
        whisper straight after voiced speech is one run with it), from RUN_MIN_MS to RUN_MAX_MS long. A run the
        utterance the fast pass is in began before the end of waits for that utterance to end: with words, its window
        reaches back to a run that leads it (`_submit`), and the run is left only what comes after that window. Runs
        wait for held pieces to go too: windows go in time order,
        and where the held pieces' window ends is not known before. `finishing`: the stream ended, and a run still
        open ends with it."""
        if self._voice is None:
            return
        self._runs += self._voice.ended(finishing=finishing)
        while self._runs or self._deferred is not None:
            if self._deferred is not None:
                if not self._send_deferred(finishing=finishing):
                    return  # later runs go after it
                continue
            run = self._runs[0]
            partial = self._steady.shown
            if partial is not None and partial.start_ms < run.end_ms:
                # It may end with no words (pocketsphinx takes shown words back): then no window goes, and the run
                # goes as its own.
                return
            if self._held:
                return
            self._runs.pop(0)
            part = self._unheard_part(run, finishing=finishing)
            if part is not None:
                self._submit_unheard(part, partial, tail=part.start_ms > run.start_ms, run_end_ms=run.end_ms)

    def _send_lead(self, lead: VoiceRun, tail: bool, deadline: float, window_ms: int) -> None:
        """Send the part of the loose detector's run that holds an utterance's first word which lies before that
        utterance's window (`lead`, ending where the window begins) as a window of its own, first: a whisper
        between two voiced phrases with no pause of RUN_PAUSE_MS on either side (`tail`: the run began in the last
        window's audio), or one longer than SPEECH_REACH_MS leading into speech. The run is reported only after
        the utterance, and then only what comes after its window is sent (`_unheard_part`): this part was heard by
        no pass and said by nothing (a whispered sentence between two of JFK's, `tests/test_voice_runs.py`). Silero
        heard no speech in it (the window reaches back to any it heard); Whisper's words there are a final only
        when it is sure of them (`_unheard_final`), as for any run no pass heard.

        In steady noise the loose detector hears one run without end (a review: JFK three times, 3 s apart, at 10
        dB SNR, one run of 43 s), and every pause of the speaker's would be such a part. So it goes only while the
        run is not steady sound (the caller: begun at most RUN_MAX_MS before the utterance), with two places free
        in the accurate pass's queue, and when, with the estimate of the utterance's window (`window_ms`) kept back,
        it would be back by that window's `deadline` at twice greedy's estimate and the accurate pass admits it
        (the work queued ahead): a window of what may be a breath or noise must not cost the utterance its final.
        Otherwise nothing is sent or said. Its deadline is the utterance's: it goes with that window, and its final
        before that one's."""
        if not RUN_MIN_MS <= lead.end_ms - lead.start_ms <= RUN_MAX_MS:
            return
        accurate = self._owner.accurate
        if isinstance(accurate, Places) and accurate.free_places() < 2:
            # A review: it took the queue's last place, and the utterance's own window was refused (its final the
            # fast text, "too busy").
            logger.info("speech only the loose detector heard before an utterance was not sent: the queue is full")
            return
        # The utterance's window keeps its estimate back (greedy's, as under load): measured estimates run at about
        # twice the compute a window takes here (0.3 s for a 10 s encoder window, 0.11-0.18 s taken), and with the
        # twofold margin for it too a part before it never went at real time (2 s to the deadline, of which the
        # pause the window waits for takes 0.5-0.7 s). The accurate pass then admits it only if the work queued
        # ahead leaves that time too.
        kept_s = accurate.estimate_s(window_ms) if isinstance(accurate, Estimates) else 0.0
        # Padded back to the window's start by `_submit_unheard`; no pad before a tail (the last window's end).
        part = VoiceRun(lead.start_ms, lead.end_ms - UNHEARD_PAD_MS)
        self._submit_unheard(part, None, tail=tail, deadline=deadline, kept_s=kept_s, quiet=True)

    def _deferred_due_in(self) -> float | None:
        """Seconds until the speech left to the next window goes alone (`_send_deferred`), if it waits for time alone
        (None: there is none, or an utterance in progress will hear it)."""
        if self._deferred is None or self._steady.shown is not None:
            return None
        return self._arrived(self._deferred.end_ms) + self._owner.fallback_after_s / 2 - self._owner.clock()

    def _send_deferred(self, *, finishing: bool) -> bool:
        """Send the speech left to the next utterance's window (`_deferred`) as a window of its own, and return True,
        when no such window will come in time: the stream ended, or no utterance is in progress half the fallback
        time after that speech ended (its final still has the other half). False: it waits."""
        deferred = self._deferred
        if deferred is None:
            return True
        if self._held:
            return False
        due_in = self._deferred_due_in()
        if not finishing and (due_in is None or due_in > 0):
            return False
        self._deferred = None
        if not SPEECH_MIN_MS <= deferred.end_ms - deferred.start_ms <= RUN_MAX_MS:
            return True  # less than Silero counts as speech, or steady sound (as a part of a run, `_unheard_part`)
        logger.debug("speech Silero heard after the last window had no utterance of its own: it goes alone")
        self._submit_unheard(deferred, self._steady.shown, tail=True)
        return True

    def _unheard_part(self, run: VoiceRun, *, finishing: bool) -> VoiceRun | None:
        """The part of `run` no pass heard, to send (None: none, or not from RUN_MIN_MS to RUN_MAX_MS long). All of
        it when it began after the end of the fast pass's last final and of the last window's speech; else what comes
        after the last window's audio (a whisper straight after voiced speech is one run with it), up to where Silero
        heard speech: the next utterance's window hears that (`_submit`) with the words around it, where Whisper,
        given it alone, may not be sure of it and it would be dropped unsaid (fed as fast as possible at 20 dB SNR, one
        such part was 7 s of a held-out talk's noisy speech). A whisper between two voiced phrases within one run is
        heard by neither window: sent after the second, its final would come out of time order. `finishing`: the
        stream ended, and no window comes after: all that comes after the last window's audio goes."""
        from_ms = max(run.start_ms, self._fast_until_ms, self._last_end_ms)
        end_ms = run.end_ms
        if from_ms > run.start_ms:
            from_ms = max(from_ms, self._last_job_end_ms or 0)
            if self._speech is not None and not finishing:
                going_on = self._speech.run_end(from_ms, ongoing=True)
                if going_on is not None and going_on - from_ms >= SPEECH_MIN_MS:
                    # Silero's speech goes on past the last window: the next window's.
                    self._defer(VoiceRun(from_ms, end_ms))
                    return None
                from_ms = max(from_ms, going_on or 0)
                # (Also speech begun in the pad after the run, which the window would hear.)
                reach_ms = end_ms + UNHEARD_PAD_MS + SPEECH_PAD_MS
                heard = self._speech.speech_start(from_ms, reach_ms, min_ms=SPEECH_MIN_MS)
                if heard is not None:
                    # Its window, padded, ends where the next window's reach for that speech begins.
                    self._defer(VoiceRun(heard - SPEECH_PAD_MS, end_ms))
                    end_ms = min(end_ms, heard - SPEECH_PAD_MS - UNHEARD_PAD_MS)
        if not RUN_MIN_MS <= end_ms - from_ms <= RUN_MAX_MS:
            return None
        return VoiceRun(from_ms, end_ms)

    def _defer(self, span: VoiceRun) -> None:
        previous = self._deferred
        self._deferred = span if previous is None else VoiceRun(previous.start_ms, max(previous.end_ms, span.end_ms))
        self._submitted.set()  # wakes wait_ready(): it has a due time of its own (a paused client sends no audio)

    def _submit_unheard(
        self,
        run: VoiceRun,
        partial: Hypothesis | None,
        *,
        tail: bool,
        run_end_ms: int | None = None,
        deadline: float | None = None,
        kept_s: float = 0.0,
        quiet: bool = False,
    ) -> None:
        """`tail`: `run` is the part of a longer one after the last window's audio, and its window begins there: with
        its pad it heard the end of that window's last word again, and wrote it as a word of its own ("whisper",
        0.57, after "...all very whispered", fed as fast as possible), which the echo check (`Delivered.own_words`)
        takes only when it is written the same. `run_end_ms`: where the whole run `run` is a part of ended. The
        detector says a run ended only a pause after it, so the deadline counts from there: a part cut short before
        Silero's speech (`_unheard_part`) ends seconds earlier, and its deadline, counted from its own end, had passed
        when the run was reported (a review: no time to decode it, only a warning). `deadline`: given, it is the
        window's, of which `kept_s` is kept back (`_send_lead`: the utterance's after it, for that window). `quiet`: a
        window the accurate pass would not take is not sent at all: nothing is queued, warned or changed
        (`_send_lead`: it may be a breath or noise, and nothing was shown for it)."""
        owner = self._owner
        floor_ms = max(self._last_end_ms, self._last_job_end_ms or 0) if tail else self._last_end_ms
        start_ms = max(run.start_ms - UNHEARD_PAD_MS, floor_ms, self._audio_start_ms)
        end_ms = min(run.end_ms + UNHEARD_PAD_MS, int(self._fed_ms))
        if partial is not None:
            end_ms = min(end_ms, partial.start_ms)  # the utterance in progress is its own window's
        speech_end = self._arrived(max(run.end_ms, run_end_ms or 0))
        if deadline is None:
            deadline = speech_end + owner.fallback_after_s
        pending = PendingFinal(
            Hypothesis((), True, run.start_ms, run.end_ms),
            None,
            speech_end,
            deadline,
            start_ms=start_ms,
            speech_from_ms=run.start_ms,
            unheard=True,
        )
        budget_s = deadline - owner.clock() - kept_s
        if end_ms - start_ms < min(RUN_MIN_MS, run.end_ms - run.start_ms):
            pending.error = "its audio is no longer kept"  # it waited behind held pieces past KEEP_MS
        elif not self._twice_in_time(end_ms - start_ms, budget_s, beam=False):
            # A window that would not be back in time would only hold back the finals after it (as `_submit_plain`).
            pending.error = f"no time to decode it ({budget_s:.2f} s left)"
        else:
            try:
                pending.future = owner.accurate.submit(
                    self._pcm(start_ms, end_ms),
                    start_ms,
                    limit_ms=end_ms,
                    prompt=self._delivered.prompt,
                    budget_s=budget_s,
                )
            except Exception as exc:
                pending.error = f"{type(exc).__name__}: {exc}"
        if quiet and pending.error:
            logger.info("speech only the loose detector heard before an utterance was not sent: %s", pending.error)
            return
        # No later window reaches back into this one (REACH_BACK_MS, `_sentence_goes_on`): what Whisper heard here
        # may be no speech, dropped unsaid, and heard again it would come back in the next final.
        self._last_job_start_ms, self._last_job = None, None
        self._last_end_ms, self._last_job_end_ms = max(self._last_end_ms, run.end_ms), max(start_ms, end_ms)
        owner.stats.unheard_sent += 1
        logger.debug(
            "speech only the loose detector heard (%d-%d ms%s) goes to Whisper",
            run.start_ms,
            run.end_ms,
            ", after speech the fast pass heard" if tail else "",
        )
        self._queue(pending)
        self._submitted.set()

    def _said_before(
        self, own_start_ms: int, speech_from_ms: int, end_ms: int, budget_s: float, *, carried: bool = False
    ) -> tuple[int, str, str, tuple[Word, ...]] | None:
        """Where a window for the speech from `own_start_ms` to `end_ms` starts to hear the words said before it
        again (SAID_REACH_MS), its prompt, the text of those words and the words: None when it does not. `carried`:
        the window begins with words a final left to it (CARRY_MS)."""
        if self._pending or not self._delivered.said or not self._owner.said_reach_ms:
            return None  # an earlier final is not out: what it says is not known yet
        accurate = self._owner.accurate
        if isinstance(accurate, Spares) and not accurate.spare():
            return None  # under load the accurate pass yields: each window its own utterance, as short as it can be
        reach_ms = max(self._audio_start_ms, own_start_ms - self._owner.said_reach_ms, end_ms - WINDOW_MS)
        kept = self._delivered.said
        split = next((i for i, w in enumerate(kept) if w.start_ms >= reach_ms), len(kept))
        while split < len(kept) and kept[split].joins_previous:
            split += 1  # a mark or the rest of a word ("-disposed") goes with the word told before it
        told, again = kept[:split], kept[split:]
        if not again or again[0].start_ms >= own_start_ms:
            return None
        # A sentence's end Whisper wrote at a cut where the speaker did not pause is the cut's ("I'm probably going
        # to cough. | Here"): given with it, Whisper took the next words for a new sentence and left "here" out.
        gap_ms = speech_from_ms - again[-1].end_ms
        quiet_ms = self._speech.quiet_between(again[-1].end_ms, speech_from_ms) if self._speech is not None else gap_ms
        if quiet_ms > REACH_GAP_MS or gap_ms > SENTENCE_GAP_MS:
            # After a longer silence the speaker is saying something else: given a card read before it ("Four
            # Queen of Clothes."), Whisper wrote the next card twice ("Seven of clubs. Seven of clubs."). The gap
            # is bounded too, as for the reach after a word no sentence ends with: a blip the detector took for
            # speech does not make a long gap short.
            return None
        # An ellipsis or a comma goes too, whether Whisper wrote it as a word of its own or onto the last one (given
        # "So this is the...", Whisper wrote "so this is the" over again, or went on with the ellipsis).
        said = Hypothesis(tuple(again), True, 0, 0).text
        bare = said.rstrip(TRAILING_MARKS)
        if not bare:
            return None
        if quiet_ms < self._owner.pause_ms or said[len(bare) :] not in FULL_STOPS:
            said = bare
        start_ms = max(reach_ms, again[0].start_ms - SAID_PAD_MS, told[-1].end_ms if told else 0)
        audio_ms = end_ms - start_ms
        if not self._twice_in_time(audio_ms, budget_s, beam=True) and not (
            # A window that begins with carried words is decoded greedily where the beam does not fit, given the
            # words kept or not; without them it would reach back over the same audio and take them out again by
            # their text and time (`context_words`), the split that wrote words twice. Traced at real time: every
            # carried window, 11-12 s long with the words given, went that way. (If its answer given them is of no
            # use, the time left may not allow the second decode without them: its final is then the fast text.)
            carried and self._twice_in_time(audio_ms, budget_s, beam=False)
        ):
            return None  # the longer window would not be back in time
        return start_ms, Hypothesis(tuple(told), True, 0, 0).text[-PROMPT_CHARS:], said, tuple(again)

    def _twice_in_time(self, audio_ms: int, budget_s: float, *, beam: bool) -> bool:
        """A window of `audio_ms` would be back within `budget_s` seconds at twice the accurate pass's estimate (the
        beam's while it has time to spare, with `beam`; greedy's otherwise). True when the pass gives no estimates."""
        accurate = self._owner.accurate
        if not isinstance(accurate, Estimates):
            return True
        estimate_s = accurate.best_estimate_s(audio_ms) if beam else accurate.estimate_s(audio_ms)
        return RESERVE_MARGIN * estimate_s <= budget_s

    def _pcm(self, start_ms: int, end_ms: int) -> bytes:
        """The session's kept audio from `start_ms` to `end_ms` (session ms)."""
        first, last = (start_ms - self._audio_start_ms) * BYTES_PER_MS, (end_ms - self._audio_start_ms) * BYTES_PER_MS
        return bytes(self._audio[first:last])

    def _settle(self) -> list[Hypothesis]:
        """The interim a change the fast pass has held SETTLE_MS shows, though no partial came since."""
        return self._interim() if self._steady.settle(self._fed_ms) else []

    def _interim(self) -> list[Hypothesis]:
        """What the client should show now: the fast text of the utterances waiting for their finals, then the
        utterance in progress. An empty interim only when it clears one on screen."""
        parts = [p.fast for p in self._pending if p.fast.words] + self._held
        partial = self._steady.shown
        if partial is not None:
            parts.append(partial)
        span = (partial.start_ms, partial.end_ms) if partial is not None else (self._last_end_ms, self._last_end_ms)
        return self._screen.show(parts, span)

    def _ready(self) -> list[Hypothesis]:
        """The finals that can go out now, in utterance order, each followed by the interim that remains."""
        out: list[Hypothesis] = []
        now = self._owner.clock()
        while self._pending:
            head = self._pending[0]
            if head.future is not None and not head.future.done() and now < self._pending_deadline():
                break
            if self._retried(head):
                break
            out += self._deliver_head()
        return out

    def _retried(self, pending: PendingFinal) -> bool:
        """Send `pending`'s window again without the words said before it, once, when its answer given them is of no
        use: a loop, or no word where the fast pass heard some (Whisper may end its answer with the words given).
        True if it went: the final waits for that answer, by the same deadline. Seen at real time on the held-out
        talks: a loop in two runs of an earlier form of SAID_REACH_MS, no words once with a wider encoder window; each
        such final, the fast text, had about half its words wrong."""
        plain, future = pending.plain, pending.future
        if plain is None or future is None or not future.done() or future.cancelled():
            return False
        failed = future.exception()
        if failed is None:
            if any(spoken_form(w) for w in self._delivered.own_words(pending, future.result())):
                return False
        elif not isinstance(failed, Unreliable):
            return False
        pending.plain = None  # once
        if not self._submit_plain(pending, plain):
            return False
        logger.info("decoding a window again without the words said (%s)", failed or "no words")
        self._owner.stats.retried += 1
        if self._owner.observer is not None:
            self._owner.observer.decoded_again()
        return True

    def _submit_plain(self, pending: PendingFinal, plain: PlainWindow) -> bool:
        """Send `pending`'s window as it goes without the words said before it, in place of the one given them: True
        if it went. Only with time for it twice over before the deadline, as the window given them had: sent with less,
        it would hold the session's later finals back to the deadline and be the fast text all the same."""
        owner, now = self._owner, self._owner.clock()
        # Sent again as the first pending final, it goes by the deadline of those after it too.
        first = bool(self._pending) and self._pending[0] is pending
        budget_s = (self._pending_deadline() if first else pending.deadline) - now
        accurate = owner.accurate
        if plain.start_ms < self._audio_start_ms or budget_s <= 0:
            return False
        if not self._twice_in_time(plain.end_ms - plain.start_ms, budget_s, beam=False):
            logger.info("no time to decode a window without the words said before it (%.2f s left)", budget_s)
            return False
        try:
            future = accurate.submit(
                self._pcm(plain.start_ms, plain.end_ms),
                plain.start_ms,
                limit_ms=plain.end_ms,
                prompt=plain.prompt,
                budget_s=budget_s,
            )
        except Exception as exc:
            logger.info("no time to decode a window without the words said before it: %s", exc)
            return False
        pending.future, pending.given, pending.plain = future, (), None
        pending.keep_from_ms, pending.start_ms = plain.keep_from_ms, plain.start_ms
        return True

    def _deliver_head(self) -> list[Hypothesis]:
        pending = self._pending.popleft()
        if pending.unheard:
            final = self._unheard_final(pending)
            if not final.words:
                # Nothing of the run is said: no later window is given the words before it (SAID_REACH_MS), which
                # would reach back over its audio, and Whisper would write there again what was left out.
                self._delivered.forget_said()
            if not final.words and not final.warning:
                return []  # no speech after all: nothing was shown for it, and nothing goes out
        else:
            final = self._final(pending)
            if not final.warning and not self._delivered.after_previous(final).words:
                # Whisper wrote only the previous final's last words again (heard in its window's tail): it heard
                # none of this utterance's own speech, and the fast text stays, as when it heard no speech at all.
                fast = pending.fast
                final = Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=EMPTY_WARNING)
            final = self._delivered.after_previous(self._carried(pending, final))
            if not final.words:
                return self._interim()  # every word was the previous final's again: the interim shown goes
            self._owner.stats.delivered(final.warning)
            if not final.warning or final.warning in ACCURATE_IN_PART:
                self._owner.stats.waits_s.append(max(0.0, self._owner.clock() - pending.speech_end))
        observer = self._owner.observer
        if observer is not None and final.words:
            observer.final_after(
                max(0.0, self._owner.clock() - pending.speech_end),
                REASONS.get(final.warning, ""),
                accurate=not final.warning or final.warning in ACCURATE_IN_PART,
            )
        self._screen.replaced()
        if self._delivered.record(pending.fast, final) and self._pending:
            # Jobs sent before this final came: the text before the newest of them (what a job that reaches back
            # into it is prompted with) lacks this final just as well (`Delivered.record`: a doubtful final).
            self._last_prompt = ""
        return [final, *self._interim()]

    def _carried(self, pending: PendingFinal, final: Hypothesis) -> Hypothesis:
        """`final` without its last words when they go to the next window (CARRY_MS): `pending` was sent while the
        speaker went on and they still go on, `final` is all Whisper's and ends with no mark (PHRASE_END), no later
        window has gone, the session goes on and the accurate pass has time to spare (the next window is then given
        the words kept before them). The fast pass's words over the stretch carried join the held pieces, so they
        show as the interim and are the next final's if Whisper fails it: nothing carried can be lost."""
        owner, accurate = self._owner, self._owner.accurate
        if (
            not pending.going_on
            or not self._goes_on()
            or final.warning
            or self._pending
            or self._finishing
            or self._closed
            or _ends_phrase(final)
            or (isinstance(accurate, Spares) and not accurate.spare())
        ):
            return final
        words = final.words
        limit_ms = pending.fast.end_ms - CARRY_MS
        split = next((i for i, w in enumerate(words) if w.end_ms > limit_ms and not w.joins_previous), len(words))
        kept = words[:split]
        if not any(spoken_form(w) for w in kept) or not any(spoken_form(w) for w in words[split:]):
            return final
        split_ms = kept[-1].end_ms
        # Every fast word that reaches past the split goes, its start moved to the split so the finals keep their
        # time order: Whisper may stretch its last word kept over the words it dropped, and a fast word left out
        # here would be in neither final. But not one that Whisper wrote among the words kept: paired with one as
        # `paired` pairs words, and overlapping it in time (a word said twice may pair with the other saying). The
        # two passes' ends of one word differ by tens of ms either way, and a margin in time alone both sent such a
        # word to the next final too and kept back one Whisper dropped. A word Whisper spelled otherwise (beyond
        # `spoken_form`'s numbers and spellings) is not paired and goes: in two finals only if the next window's
        # final is the fast text, where keeping it back could lose a word said.
        said = pending.fast.words
        written = {
            i
            for i, j in paired(said, kept).items()
            if kept[j].start_ms < said[i].end_ms and kept[j].end_ms > said[i].start_ms
        }
        fast = tuple(
            dataclasses.replace(w, start_ms=max(w.start_ms, split_ms))
            for i, w in enumerate(said)
            if w.end_ms > split_ms and i not in written
        )
        if not fast:
            return final  # no fast words over the stretch: nothing would make the next window go
        carried = Hypothesis(fast, True, fast[0].start_ms, fast[-1].end_ms)
        # Their deadline counts from their end of speech, as a held piece's does; while the speaker goes on it moves
        # to the detector's end of speech (`_postponed`).
        deadline = self._speech_end(carried) + owner.fallback_after_s
        if not self._held:
            self._hold_until_ms = self._fed_ms + owner.merge_ms
            self._submitted.set()  # wakes wait_ready(): the held piece has a deadline
        self._held_deadline = min(self._held_deadline, deadline) if self._held else deadline
        self._held.insert(0, carried)
        self._carried_piece = carried
        self._last_end_ms = min(self._last_end_ms, split_ms)
        owner.stats.carried += 1
        logger.debug("%d words of a window cut while the speaker went on go to the next window", len(words) - split)
        return Hypothesis(kept, True, kept[0].start_ms, split_ms)

    def _final(self, pending: PendingFinal) -> Hypothesis:
        fast = pending.fast
        future = pending.future
        if future is None:
            logger.info("accurate pass busy (%s): the fast text is the final", pending.error)
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=BUSY_WARNING)
        if not future.done():
            future.cancel()
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FALLBACK_WARNING)
        if not future.cancelled() and isinstance(future.exception(), Unreliable):
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=UNRELIABLE_WARNING)
        if not future.cancelled() and isinstance(future.exception(), TooLate):
            # Never ran: it could no longer be back by its deadline when the worker was free (a slow fallback, as
            # if the deadline had come).
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FALLBACK_WARNING)
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                logger.warning("accurate pass failed: %r", future.exception())
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=FAILED_WARNING)
        words = self._delivered.own_words(pending, future.result())
        if not any(spoken_form(w) for w in words):
            # Whisper heard no speech where the fast pass heard some: a cough the fast pass took for a word, or
            # words Whisper missed. Which it was cannot be told here, and a word is never dropped unsaid: the
            # fast text stays, marked as the rough one.
            return Hypothesis(fast.words, True, fast.start_ms, fast.end_ms, warning=EMPTY_WARNING)
        warning = ""
        skipped = skipped_runs(fast.words, words)
        if skipped:
            # Never a word dropped unsaid: the stretch Whisper left out keeps the fast pass's words, and the final
            # says that part of it is the rough text. (Logged without the words: the log never holds speech.)
            logger.info("the accurate pass skipped %s", [(run[0].start_ms, run[-1].end_ms) for run in skipped])
            words = spliced(words, skipped)
            warning = SKIPPED_WARNING
        first = words[0]
        if first.start_ms < fast.start_ms < first.end_ms:
            # Whisper's alignment lets the first word start in the silence before it (measured: 300 ms early);
            # pocketsphinx's Viterbi alignment finds the onset, so where they overlap its start is taken.
            words = (dataclasses.replace(first, start_ms=fast.start_ms), *words[1:])
        return Hypothesis(words, True, words[0].start_ms, words[-1].end_ms, warning=warning)

    def _unheard_final(self, pending: PendingFinal) -> Hypothesis:
        """The final of a run only the loose voice detector heard: Whisper's words when it is sure of them, none when
        it heard no speech there (or made words up, or looped: no speech either), and none with UNHEARD_WARNING when
        it could not decode the run (refused, late or failed): no pass has the words then, and the warning says so."""
        future, run = pending.future, pending.fast
        if future is not None and not future.done():
            future.cancel()
        elif future is not None and not future.cancelled() and isinstance(future.exception(), Unreliable):
            self._count_unheard("dropped")
            return Hypothesis((), True, run.start_ms, run.end_ms)
        if future is None or future.cancelled() or future.exception() is not None:
            self._count_unheard("lost")
            logger.info("speech only the loose detector heard was not decoded (%s)", pending.error or "late or failed")
            # Dated no earlier than the last final ends, as every final: the run may begin in that window's tail.
            start_ms = max(run.start_ms, self._delivered.end_ms)
            return Hypothesis((), True, start_ms, max(start_ms, run.end_ms), warning=UNHEARD_WARNING)
        words = self._delivered.own_words(pending, future.result())
        if words:
            # The run may begin in the last window's tail, which heard the words there too (`repeated_head`): they
            # are that final's, and Whisper's sureness is of the rest.
            words = self._delivered.after_previous(Hypothesis(words, True, words[0].start_ms, words[-1].end_ms)).words
        said = [w.probability for w in words if spoken_form(w) and w.probability is not None]
        if not any(spoken_form(w) for w in words) or (said and sum(said) / len(said) < UNHEARD_MIN_PROBABILITY):
            self._count_unheard("dropped")
            logger.debug(
                "the accurate pass heard no new speech it was sure of where only the loose detector heard some"
            )
            return Hypothesis((), True, run.start_ms, run.end_ms)
        self._count_unheard("final")
        return Hypothesis(words, True, words[0].start_ms, words[-1].end_ms)

    def _count_unheard(self, outcome: str) -> None:
        stats = self._owner.stats
        if outcome == "final":
            stats.unheard_finals += 1
        elif outcome == "dropped":
            stats.unheard_dropped += 1
        else:
            stats.unheard_lost += 1
        if self._owner.observer is not None:
            self._owner.observer.unheard(outcome)

    async def _drain(self) -> list[Hypothesis]:
        """End of stream: wait for each pending final in turn, each until its own deadline at most (and those after
        it, `_pending_deadline`)."""
        out: list[Hypothesis] = []
        while self._pending:
            head = self._pending[0]
            if head.future is not None and not head.future.done():
                remaining = self._pending_deadline() - self._owner.clock()
                if remaining > 0:
                    # asyncio.wait neither raises what the job ended with (an error, or CancelledError when the
                    # scheduler withdrew it at shutdown: _final makes those the fast text) nor cancels it on timeout.
                    await asyncio.wait({head.future}, timeout=remaining)
            if self._retried(head):
                continue
            out += self._deliver_head()
        return out
