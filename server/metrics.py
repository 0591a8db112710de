"""GET /metrics in the Prometheus text format (prometheus-client): what an operator watches.

One registry per app (tests build many apps in one process, and two registries never mix), served as it is when
the app is the only process. Under `python -m server --workers N` each worker counts only what it served, and a
scrape reaches one of them: the entry point sets PROMETHEUS_MULTIPROC_DIR (and Settings.metrics_dir) to one folder
before the workers start, prometheus-client then keeps each worker's values in files there, and /metrics serves
their sum (MultiProcessCollector), so a counter never goes back when another worker answers and a dead worker's
counts stay in it. Gauges of what is open now add up the living workers only ("livesum"): a worker's go at its
lifespan's end (mark_process_dead), and a killed worker's are taken out by the supervisor (server/__main__.py).
What is exported:

- stt_grants_total{provider}: session grants minted. The browser streams to Truebar and Wiro directly, so for them
  this is what the server can count; the embedded engine's streams are counted while open.
- stt_engine_streams_open: the embedded engine's open streams; stt_engine_streams_ended_total{outcome,code}: how
  they ended (FINISHED, CANCELED, DISCONNECTED, ERROR with the server's close code: 1013 the engine was full or
  behind real time, 1011 it failed, 1008 the client broke the protocol or went idle; "client" when the client
  closed first, whatever code it chose).
- stt_engine_queue_depth: utterances waiting for or in the accurate pass.
- stt_engine_fallbacks_total{reason}: finals that are the fast pass's text (slow, busy, failed, unreliable, empty),
  or are in part (skipped: a stretch of speech Whisper left out).
- stt_engine_first_interim_seconds, stt_engine_final_seconds{source}: speech start → first interim, end of speech
  → final (source accurate or fallback), as the engine sees them (from when the audio arrived).
- stt_engine_unheard_total{outcome}: runs of speech only the engine's loose voice detector heard (a whisper) that the
  accurate pass was given: final (its words went out), dropped (no speech Whisper was sure of, or a loop: a breath,
  a laugh) or lost (refused, too late or failed: the client got a WARNING instead of the words).
- stt_engine_shed_utterances_total: utterances the fast pass decoded with its narrower search because their session
  had fallen behind real time (the machine was short of CPU).
- stt_event_loop_lag_seconds: how late the event loop wakes a 100 ms sleep: every socket waits that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_PERIOD_S = 0.1


class Metrics:
    """This process's metrics. `shared_dir` (Settings.metrics_dir): the workers' common folder, whose sum is served;
    prometheus-client must have been imported with PROMETHEUS_MULTIPROC_DIR naming it (it chooses where values are
    kept at import), which the entry point sees to for its workers. None: this process's registry alone."""

    def __init__(self, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        # Multiprocess mode cannot call a function at a scrape in another process: the queue's depth is read by the
        # loop watcher instead (watch_queue).
        self._queue_depth: Callable[[], int] | None = None
        self.registry = CollectorRegistry()
        r = self.registry
        self.grants = Counter("stt_grants", "Session grants minted.", ["provider"], registry=r)
        # "livesum" (used only with a shared folder): the living workers' sum, so a dead worker's streams, closed with
        # it, are not counted as open.
        self.streams_open = Gauge(
            "stt_engine_streams_open", "The embedded engine's open streams.", multiprocess_mode="livesum", registry=r
        )
        self.streams_ended = Counter(
            "stt_engine_streams_ended", "How the embedded engine's streams ended.", ["outcome", "code"], registry=r
        )
        self.queue_depth = Gauge(
            "stt_engine_queue_depth",
            "Utterances waiting for or in the accurate pass.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.fallbacks = Counter(
            "stt_engine_fallbacks",
            "Finals that are the fast pass's text (reason skipped: in part), by reason.",
            ["reason"],
            registry=r,
        )
        self.decoded_again_total = Counter(
            "stt_engine_decoded_again",
            "Windows given the words said before them that came back of no use and went to Whisper again without them.",
            registry=r,
        )
        self.unheard_total = Counter(
            "stt_engine_unheard",
            "Runs of speech only the loose voice detector heard, by what the accurate pass made of them.",
            ["outcome"],
            registry=r,
        )
        self.shed = Counter(
            "stt_engine_shed_utterances",
            "Utterances the fast pass decoded with its narrower search: their session had fallen behind real time.",
            registry=r,
        )
        self.first_interim = Histogram(
            "stt_engine_first_interim_seconds",
            "Speech start (the audio's arrival) to the first interim of an utterance.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.final = Histogram(
            "stt_engine_final_seconds",
            "End of speech to the utterance's final, by where its text came from.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "stt_event_loop_lag_seconds",
            f"How late the event loop woke a {LAG_PERIOD_S:g} s sleep.",
            buckets=LAG_BUCKETS,
            registry=r,
        )

    # The engine's observer (server.engine.outcomes.TwoPassObserver).

    def first_interim_after(self, seconds: float) -> None:
        self.first_interim.observe(seconds)

    def final_after(self, seconds: float, reason: str, *, accurate: bool) -> None:
        # An accurate final may still carry a reason ("skipped": a stretch Whisper left out is the fast text): its
        # latency is an accurate final's, and the reason is counted, a sign of noise rather than of load.
        self.final.labels("accurate" if accurate else "fallback").observe(seconds)
        if reason:
            self.fallbacks.labels(reason).inc()

    def decoded_again(self) -> None:
        self.decoded_again_total.inc()

    def unheard(self, outcome: str) -> None:
        self.unheard_total.labels(outcome).inc()

    def utterances_shed(self, count: int) -> None:
        self.shed.inc(count)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        if self.shared_dir is None:
            # Read at each scrape: exact.
            self.queue_depth.set_function(depth)
        else:
            # Gauge.set_function has no multiprocess form: the loop watcher writes the depth every LAG_PERIOD_S.
            self._queue_depth = depth

    @contextlib.asynccontextmanager
    async def watching_loop(self) -> AsyncIterator[None]:
        """Measures the event loop's lag while the body runs (the app's lifespan)."""

        async def watch() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(LAG_PERIOD_S)
                self.loop_lag.observe(max(0.0, time.perf_counter() - started - LAG_PERIOD_S))
                if self._queue_depth is not None:
                    self.queue_depth.set(self._queue_depth())

        task = asyncio.create_task(watch(), name="event-loop-lag")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def retire(self) -> None:
        """The end of this process's serving (its app's lifespan): with a shared folder, its live gauges (open
        streams, queue) leave the sum now, not when the supervisor stops; its counters stay in it."""
        if self.shared_dir is not None:
            # prometheus-client leaves its multiprocess module unannotated.
            mark_process_dead(os.getpid(), str(self.shared_dir))  # type: ignore[no-untyped-call]

    def exposition(self) -> bytes:
        """What GET /metrics serves: this process's registry, or every worker's sum read from the shared folder (a
        registry of its own each time, as prometheus-client's multiprocess mode asks: its collector reads the files
        at each collect)."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.shared_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
