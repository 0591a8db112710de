"""Where the accurate pass runs, and which of its jobs it takes: the engine's real-time rule.

The socket loop and the fast pass must never wait for Whisper. So by default Whisper runs in its own process at a
lower OS priority (`nice`): the kernel gives the fast pass's processes and the event loop the CPU first, and Whisper
the rest, however many threads it uses (in the app's process its Python parts also held the GIL the event loop
needs: 8 sessions on 2 cores had sockets closed by keepalive timeouts). One job runs at a time; the others wait in
this process, where a job whose final has already fallen back can still be withdrawn.

A job is admitted only if it can finish before its deadline, from the measured cost of the jobs before it (seconds
of compute per second of encoder window, a moving average) and what is queued ahead; otherwise AccurateBusy is
raised at once and the caller keeps the fast text. A result that comes later than the caller's own deadline is the
caller's to drop (the two-pass recognizer does).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.engine.config import RESERVE_MARGIN
from server.engine.types import SAMPLE_RATE
from server.engine.whisper import AccurateBusy, TooLate, WhisperOptions, WhisperPass, encoder_window_s
from server.transcript import Word

logger = logging.getLogger(__name__)

# Prior for the cost model until jobs have been measured: 10 s of encoder window took 0.15-0.25 s here.
PRIOR_S_PER_WINDOW_S = 0.03
# Weight of the newest job in the moving average of the cost.
EWMA_WEIGHT = 0.2
# A job gets the options' full beam (LOCAL_WHISPER_BEAM, 5 by default) only when no other job waits and the
# worker was busy for less than this share of the last BUSY_WINDOW_S seconds; otherwise it is decoded greedily.
# Measured on 2 cores (bench/README.md "Beam search for the accurate pass"): beam 5 on every job (or whenever no
# other job waited) for one session of the held-out talks, 40 -> 29-31 words wrong of 317; but for eight sessions
# of the human clips, beam 5 whenever no other job waited gave 13.1 % wrong against 8.8 % greedy, as more finals
# fell back to the fast text.
BEAM_BELOW_SHARE = 0.3
BUSY_WINDOW_S = 10.0
# ... and only when it can still be back by the job's deadline at BEAM_MARGIN times the beam's own cost, measured
# apart from greedy jobs' (a beam of 5 took 1.6x greedy's time on the human clips' jobs); and the jobs that come
# while a beam job runs are admitted by its beam cost. The margin: the cost is learnt per second of encoder window,
# and a window dense with words costs up to about twice what that predicts (the held-out talks' jobs timed one by
# one: the worst 1.8-2x, beam or greedy), while the jobs start with little to spare (at real time 1.5 s before
# their deadline when released at the detector's pause; those held to their deadline went 0.8 s before it then).
# Traced at real time with the estimate alone (bench/README.md "Beam search for the accurate pass"), two windows
# of dense talk took 0.85 and 0.95 s with 0.80 s left, missed their deadline by 50 and 150 ms, and their finals
# were the fast text (64 words wrong of 317 against 40-42 greedy); the margin the recognizer releases held windows
# by (twice the estimate) stopped that.
BEAM_MARGIN = RESERVE_MARGIN
# The beam's cost is never taken as less than greedy's, and until a beam job has been measured as at least this
# many times greedy's (greedy's is measured as the jobs come; a slow host or a bigger model raises it).
PRIOR_BEAM_FACTOR = 2.0


# A job of at least WIDE_WINDOW_MS of audio that gets the beam is decoded in a wide encoder window, at least 20 s
# (whisper.py `wide_window`, `WhisperOptions.wide_window_s`), when WIDE_MARGIN times that decode's own measured cost
# still meets its deadline. The job's own window (its audio plus 2 s, at least 10 s) is cheaper, as the encoder's
# cost grows with its window, and as good on short clips, but not on unscripted talk: one real-time run's windows of
# the held-out recordings decoded again offline with beam 5 (bench/window_replay.py) came to 40 words wrong of 317
# in their own windows, 31 in windows of at least 20 s, 33 in Whisper's whole 30 s, and at 10 dB SNR 144, 137 and
# 135 (bench/README.md "Whisper's whole window for long windows"). Only with the beam (greedy: 45-49 either way) and
# only for long jobs: short utterances, the latency goal's, do not pay for it. At real time, one session each alone:
# 30 and 30 in 30 s against 34 the same hour; 29, 30 and 32 in 20 s, its finals sooner (p95 about 1.1 s against
# 1.4-1.6 s), so 20 s it is.
WIDE_WINDOW_MS = 5000
# The wide window's cost: a fixed part (the 20 s encoder) and a part that grows with the speech (the decoder's
# words). Measured at real time on the held-out talks' jobs (the fast pass and the client on the same 2 cores, so
# dearer than one job timed alone): about 0.3 s + 0.06 s per second of audio (0.56-0.59 s for 5-6 s, 0.93-1.10 s
# for 10-12 s; in Whisper's 30 s window it was 0.6 s + 0.06 s), so it is learnt per second of WIDE_FIXED_S plus
# the job's audio.
WIDE_FIXED_S = 5.0
PRIOR_WIDE_S_PER_S = 0.06  # until one such job was measured (the first measured replaces it)
# Its margin is smaller than the beam's (BEAM_MARGIN): with twice its cost no job released at a pause would fit its
# deadline. Measured at real time: with 1.2 and a cost that did not grow with the audio, an 11.4 s window took
# 1.55 s against 1.15 s estimated and missed its deadline (its final the fast text, 13 words wrong); with 1.25, the
# first such job of a fresh worker took 1.65 s for 6.6 s of speech (1.03-1.18 s in three other runs) and missed it.
# (Both in Whisper's 30 s window, the wide window then; at 20 s no job has missed its deadline at 1.35 yet.)
WIDE_MARGIN = 1.35


def _audio_ms(pcm: bytes) -> int:
    return len(pcm) * 1000 // (2 * SAMPLE_RATE)  # PCM16 at SAMPLE_RATE


@dataclass
class _Job:
    args: tuple[Any, ...]
    estimate_s: float  # decoded greedily
    deadline: float | None = None  # clock time by which it must be back
    future: concurrent.futures.Future[tuple[Word, ...]] = field(default_factory=concurrent.futures.Future)
    started: float = 0.0
    beam: int = 1
    wide_window: bool = False  # decoded in the wide window (WIDE_WINDOW_MS)
    learn: bool = True  # its cost goes into the cost model (not the warm-up's: silence says nothing of speech)


@dataclass
class QueueStats:
    """What the scheduler did, for /metrics and the benchmark."""

    jobs: int = 0  # jobs that ran to the end (or raised)
    busy_s: float = 0.0  # seconds of compute they took
    refused_late: int = 0  # refused: they could not have finished before their deadline
    refused_full: int = 0  # refused: max_queue jobs were already waiting or running
    withdrawn: int = 0  # cancelled by their caller before they started
    worker_restarts: int = 0  # the worker process died and was started again


class AccurateScheduler:
    """One worker (an executor with one process or thread) behind a deadline-aware queue. `run` is the function
    the executor calls with a job's arguments and its beam width; it returns (words, seconds of compute)."""

    def __init__(
        self,
        start: Callable[[], concurrent.futures.Executor],
        run: Callable[..., tuple[tuple[Word, ...], float]],
        options: WhisperOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start = start
        self._run = run
        self.options = options
        self.clock = clock
        self.stats = QueueStats()
        self.s_per_window_s = PRIOR_S_PER_WINDOW_S  # greedy jobs: what admission and estimate_s go by
        self.beam_s_per_window_s = PRIOR_S_PER_WINDOW_S * PRIOR_BEAM_FACTOR  # jobs decoded with the full beam
        self._beam_measured = False
        self.wide_s_per_s = PRIOR_WIDE_S_PER_S  # jobs decoded with the beam in the wide window (WIDE_FIXED_S)
        self._wide_measured = False
        # Re-entrant: a job that is already done when its callback is added finishes (and dispatches) at once.
        self._lock = threading.RLock()
        self._waiting: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._worked: collections.deque[tuple[float, float]] = collections.deque()  # (start, end) of recent jobs
        self._executor: concurrent.futures.Executor | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        """Jobs waiting or running."""
        with self._lock:
            self._prune()
            return len(self._waiting) + (self._running is not None)

    def free_places(self) -> int:
        """types.Places: how many more jobs the queue takes now (`max_queue` less those waiting or running)."""
        return max(0, self.options.max_queue - self.depth)

    def _prune(self) -> None:
        """Forget waiting jobs their callers withdrew: they hold no place. Called with the lock held."""
        kept = collections.deque(job for job in self._waiting if not job.future.cancelled())
        self.stats.withdrawn += len(self._waiting) - len(kept)
        self._waiting = kept

    def estimate_s(self, audio_ms: int) -> float:
        """Seconds of compute a job of this length takes, decoded greedily (as it is whenever time is short)."""
        return self.s_per_window_s * encoder_window_s(audio_ms / 1000, self.options)

    def best_estimate_s(self, audio_ms: int) -> float:
        """Seconds of compute a job of this length would take if it started now: with the full beam while the
        worker has time to spare (no job running, busy under BEAM_BELOW_SHARE), greedily otherwise. What the two-pass
        recognizer sends a held window early enough for (twice over), so the window can have the beam; under load
        it is greedy's, and the windows are not sent sooner for a beam they would not get."""
        if self.options.beam_size == 1:
            return self.estimate_s(audio_ms)
        with self._lock:  # called on every frame: kept light (jobs wait only while one runs)
            if self._running is not None or not self._time_to_spare():
                return self.estimate_s(audio_ms)
            return self.beam_estimate_s(audio_ms)

    def spare(self) -> bool:
        """types.Spares: no job running or waiting, and the worker busy under BEAM_BELOW_SHARE of late (when a job
        starting now would get the beam)."""
        with self._lock:
            return self._running is None and self._time_to_spare()

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
        """Queue one utterance; the future has its words. `budget_s`: seconds from now by which they must be
        back. Raises AccurateBusy when the queue is full or the job could not finish within its budget.
        Cancelling the future before the job starts withdraws it."""
        return asyncio.wrap_future(self._enqueue((pcm, offset_ms, limit_ms, prompt, prefix), budget_s))

    def warm_up(self) -> None:
        """Start the worker and run one short job, so the first session does not wait for the model (blocking).
        Greedy, and its cost is not learnt: half a second of silence says nothing of what speech costs."""
        self._enqueue((bytes(SAMPLE_RATE), 0, None, "", ""), None, learn=False).result()

    def _enqueue(
        self, args: tuple[Any, ...], budget_s: float | None, *, learn: bool = True
    ) -> concurrent.futures.Future[tuple[Word, ...]]:
        pcm: bytes = args[0]
        estimate = self.estimate_s(_audio_ms(pcm))
        with self._lock:
            if self._closed:
                raise RuntimeError("the accurate pass is closed")
            self._prune()
            depth = len(self._waiting) + (self._running is not None)
            if depth >= self.options.max_queue:
                self.stats.refused_full += 1
                raise AccurateBusy(f"{depth} utterances are already waiting for the accurate pass")
            if budget_s is not None:
                ahead = self._ahead_s()
                if ahead + estimate > budget_s:
                    self.stats.refused_late += 1
                    raise AccurateBusy(
                        f"it would finish in about {ahead + estimate:.2f} s, past its deadline ({budget_s:.2f} s)"
                    )
            job = _Job(args, estimate, None if budget_s is None else self.clock() + budget_s, learn=learn)
            self._waiting.append(job)
            self._dispatch()
        return job.future

    def _ahead_s(self) -> float:
        """Seconds until the worker is free for a new job: the running job's remaining estimate and the queue's."""
        ahead = sum(job.estimate_s for job in self._waiting if not job.future.cancelled())
        if self._running is not None:
            ahead += max(0.0, self._running.estimate_s - (self.clock() - self._running.started))
        return ahead

    def _dispatch(self) -> None:
        """Start the next job the caller still wants, if none runs. Called with the lock held."""
        while self._running is None and self._waiting:
            job = self._waiting.popleft()
            if job.deadline is not None and self.clock() >= job.deadline:
                # Its caller withdraws it at the deadline, but only when it next looks (its session's next feed,
                # which may itself wait for the fast pass or a client slow to read): run meanwhile, it would take
                # the worker from jobs of other sessions that can still be back in time, and be dropped. (Only once
                # the deadline has passed: the estimates are cautious, and a job started just before may be back.)
                try:
                    job.future.set_exception(TooLate("it waited past its deadline"))
                    self.stats.refused_late += 1
                except concurrent.futures.InvalidStateError:  # withdrawn by its caller meanwhile
                    self.stats.withdrawn += 1
                continue
            if not job.future.set_running_or_notify_cancel():
                self.stats.withdrawn += 1
                continue
            job.started = self.clock()
            self._running = job
            job.beam = beam = self._beam(job)
            job.wide_window = wide = beam > 1 and self._wide_window(job)
            if beam > 1:
                # What the jobs that come while it runs are admitted by (_ahead_s): its own cost, not greedy's. Its
                # estimate, not BEAM_MARGIN times it: a job refused is the fast text for certain, one admitted is
                # late only if the beam runs well past its estimate.
                audio_ms = _audio_ms(job.args[0])
                own_s = self.wide_estimate_s(audio_ms) if wide else self.beam_estimate_s(audio_ms)
                job.estimate_s = max(job.estimate_s, own_s)
            try:
                inner = self._submit(job, beam, wide)
            except Exception as exc:
                # No worker could take it: one could not be started (a fork that failed for want of memory or
                # processes, as the OOM killer that took the last one left the machine), or the executor was shut
                # down under us (close). This job fails (its final the fast text); the next one tries a new worker,
                # rather than every job after it waiting behind this one for good.
                logger.error("the accurate pass could not start a job: %r", exc)
                self._running = None
                broken, self._executor = self._executor, None
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
                job.future.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(self._finished, job))

    def _submit(self, job: _Job, beam: int, wide: bool) -> concurrent.futures.Future[tuple[tuple[Word, ...], float]]:
        """Hand `job` to the worker, starting one if there is none. Called with the lock held."""
        if self._executor is None:
            self._executor = self._start()
        try:
            return self._executor.submit(self._run, *job.args, beam, wide)
        except concurrent.futures.BrokenExecutor as exc:
            # The worker died while idle (the OOM killer): a new one takes this job.
            logger.error("the accurate pass's worker died: %r; starting a new one", exc)
            self.stats.worker_restarts += 1
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            return self._executor.submit(self._run, *job.args, beam, wide)

    def _beam(self, job: _Job) -> int:
        """The beam width for `job`, starting now: the full one only with time to spare. Called with the lock held."""
        if self.options.beam_size == 1 or not job.learn or not self._time_to_spare():
            return 1
        needed_s = BEAM_MARGIN * self.beam_estimate_s(_audio_ms(job.args[0]))
        if job.deadline is not None and job.started + needed_s > job.deadline:
            return 1
        return self.options.beam_size

    def _wide_window(self, job: _Job) -> bool:
        """`job`, given the beam, is decoded in the wide window: it is at least WIDE_WINDOW_MS long and
        WIDE_MARGIN times that decode's estimate still meets its deadline. Called with the lock held."""
        audio_ms = _audio_ms(job.args[0])
        if audio_ms < WIDE_WINDOW_MS:
            return False
        return job.deadline is None or job.started + WIDE_MARGIN * self.wide_estimate_s(audio_ms) <= job.deadline

    def wide_estimate_s(self, audio_ms: int) -> float:
        """Seconds of compute a job of this length takes with the beam in the wide window: as such jobs
        measured (WIDE_FIXED_S), never less than the job would take in its own window."""
        return max(self.wide_s_per_s * (WIDE_FIXED_S + audio_ms / 1000), self.beam_estimate_s(audio_ms))

    def _time_to_spare(self) -> bool:
        """No job waits and the worker was busy under BEAM_BELOW_SHARE of late: a job starting now gets the beam
        (if it also meets its deadline with the margin). Called with the lock held."""
        if any(not other.future.cancelled() for other in self._waiting):  # withdrawn ones wait for nothing
            return False
        return self._busy_share() < BEAM_BELOW_SHARE

    def beam_estimate_s(self, audio_ms: int) -> float:
        """Seconds of compute a job of this length takes with the full beam: as beam jobs measured, never less than
        greedy's (and PRIOR_BEAM_FACTOR times greedy's at least until one was measured)."""
        floor = self.s_per_window_s * (1.0 if self._beam_measured else PRIOR_BEAM_FACTOR)
        return max(self.beam_s_per_window_s, floor) * encoder_window_s(audio_ms / 1000, self.options)

    def _busy_share(self) -> float:
        """The share of the last BUSY_WINDOW_S seconds the worker spent on jobs. Called with the lock held."""
        since = self.clock() - BUSY_WINDOW_S
        while self._worked and self._worked[0][1] <= since:
            self._worked.popleft()
        return sum(end - max(start, since) for start, end in self._worked) / BUSY_WINDOW_S

    def _finished(self, job: _Job, done: concurrent.futures.Future[tuple[tuple[Word, ...], float]]) -> None:
        with self._lock:
            self._running = None
            if job.learn:  # the warm-up (in a new process: its start and the model's load too) is no session's load
                self._worked.append((job.started, self.clock()))
            self._busy_share()  # forgets the jobs that left the window, also while jobs keep waiting
            self.stats.jobs += 1
            try:
                words, busy_s = done.result()
            except concurrent.futures.BrokenExecutor as exc:
                # The worker died (the OOM killer, a crash): this job is lost, the next ones get a fresh worker.
                logger.error("the accurate pass's worker died: %r; starting a new one", exc)
                self.stats.worker_restarts += 1
                broken, self._executor = self._executor, None
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
                job.future.set_exception(exc)
            except BaseException as exc:
                self.stats.busy_s += self.clock() - job.started
                job.future.set_exception(exc)
            else:
                self.stats.busy_s += busy_s
                window = encoder_window_s(_audio_ms(job.args[0]) / 1000, self.options, wide_window=job.wide_window)
                if logger.isEnabledFor(logging.DEBUG):
                    # Which decode a job got, and what it cost: what makes two runs of one build differ.
                    logger.debug(
                        "job at %d ms: %.1f s of audio, %d words given, beam %d, %.0f s window, %.2f s of compute,"
                        " busy %.0f %%",
                        job.args[1],
                        _audio_ms(job.args[0]) / 1000,
                        len(job.args[4].split()),
                        job.beam,
                        window,
                        busy_s,
                        100 * self._busy_share(),
                    )
                if job.learn and job.wide_window:
                    per_s = busy_s / (WIDE_FIXED_S + _audio_ms(job.args[0]) / 1000)
                    # The first one measured replaces the prior outright: the prior is this host's figure, and on a
                    # slower host (or with a bigger model) moving it a fifth of the way would leave the next jobs
                    # admitted at well under their cost. (A prior scaled by greedy's measured cost was tried: after
                    # a busy spell greedy's is dear, and the first wide-window job then never fitted, so its cost
                    # was never measured.)
                    weight = EWMA_WEIGHT if self._wide_measured else 1.0
                    self.wide_s_per_s += weight * (per_s - self.wide_s_per_s)
                    self._wide_measured = True
                elif job.learn and job.beam > 1:
                    self.beam_s_per_window_s += EWMA_WEIGHT * (busy_s / window - self.beam_s_per_window_s)
                    self._beam_measured = True
                elif job.learn:
                    self.s_per_window_s += EWMA_WEIGHT * (busy_s / window - self.s_per_window_s)
                job.future.set_result(words)
            if not self._closed:
                self._dispatch()

    def close(self) -> None:
        """Withdraw the waiting jobs and stop the worker, waiting for the running job (blocking)."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            executor, self._executor = self._executor, None
        for job in waiting:
            job.future.cancel()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_CHILD: WhisperPass | None = None


def _child_init(model: str, options: WhisperOptions, download_root: str | None, nice: int) -> None:
    global _CHILD
    if nice:
        os.nice(nice)
    _CHILD = WhisperPass(model, options, download_root=download_root)
    _CHILD.warm_up()


def _child_run(
    pcm: bytes, offset_ms: int, limit_ms: int | None, prompt: str, prefix: str, beam_size: int, wide_window: bool
) -> tuple[tuple[Word, ...], float]:
    assert _CHILD is not None, "the accurate pass's process was not initialised"
    return timed(_CHILD, pcm, offset_ms, limit_ms, prompt, prefix, beam_size, wide_window)


def timed(
    whisper: WhisperPass,
    pcm: bytes,
    offset_ms: int,
    limit_ms: int | None,
    prompt: str,
    prefix: str,
    beam_size: int,
    wide_window: bool,
) -> tuple[tuple[Word, ...], float]:
    """One job's words and the seconds of compute they took (what a scheduler's worker runs, in any executor)."""
    started = time.perf_counter()
    words = whisper.transcribe(
        pcm, offset_ms, limit_ms=limit_ms, prompt=prompt, prefix=prefix, beam_size=beam_size, wide_window=wide_window
    )
    return words, time.perf_counter() - started


def whisper_process(
    model: str, options: WhisperOptions, *, download_root: str | None = None, nice: int = 10
) -> AccurateScheduler:
    """Whisper in its own process, `nice` steps below this one, loaded and warmed when the first job (or
    warm_up_process) starts it."""

    def start() -> concurrent.futures.Executor:
        # spawn, not fork: the parent runs an event loop and threads, which a forked child would inherit broken.
        return concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(model, options, download_root, nice),
        )

    return AccurateScheduler(start, _child_run, options)
