"""The accurate pass on a thread of this process, for the tests and the benchmarks that measure the model, not the
server (which runs it in a process of its own: server.engine.accurate.whisper_process)."""

from __future__ import annotations

import concurrent.futures
import functools

from server.engine.accurate import AccurateScheduler, timed
from server.engine.whisper import WhisperPass


def whisper_thread(whisper: WhisperPass) -> AccurateScheduler:
    """A loaded model behind the engine's own scheduler, its jobs run on one thread here."""
    return AccurateScheduler(
        lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper"),
        functools.partial(timed, whisper),
        whisper.options,
    )
