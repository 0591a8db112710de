"""Run an ASGI app in a real uvicorn server on a free loopback port, in a thread that stops itself."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from server import UVICORN_HTTP


class Served:
    """A running server: its base URL, and whether any request or socket of it is still being handled."""

    def __init__(self, url: str, server: uvicorn.Server) -> None:
        self.url = url
        self._server = server

    def handling(self) -> int:
        """Requests and sockets whose handling has not ended: uvicorn's task for each, which ends after the app's
        handler returned and uvicorn logged whatever it had to say about it (an exception, a missing handshake)."""
        return len(self._server.server_state.tasks)

    def wait_handling(self, timeout_s: float = 10.0) -> None:
        """Return once a request or socket is being handled (uvicorn has handed it to the app), polled as wait_idle
        is; none after `timeout_s` is a TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while not self.handling():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}: nothing handled after {timeout_s} s")
            time.sleep(0.01)

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Return once nothing is being handled; a handler still running after `timeout_s` is a hang (TimeoutError).
        Polled: uvicorn offers nothing to wait on from another thread."""
        deadline = time.monotonic() + timeout_s
        while self.handling():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}: {self.handling()} handlers still running after {timeout_s} s")
            time.sleep(0.01)


class _Runner:
    """uvicorn's Server.run for a thread, with its task reachable from another thread to be cancelled."""

    def __init__(self, server: uvicorn.Server) -> None:
        self._server = server
        self._cancelled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def run(self) -> None:
        loop_factory = self._server.config.get_loop_factory()
        with contextlib.suppress(asyncio.CancelledError), asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if not self._cancelled:  # else cancel() came before the task existed
            await self._server.serve()

    def cancel(self) -> None:
        self._cancelled = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing is left to cancel
                loop.call_soon_threadsafe(task.cancel)


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", timeout_s: float = 20.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of `app` served by uvicorn; stop it on exit."""
    with serving(app, host, timeout_s) as served:
        yield served.url


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1", timeout_s: float = 20.0) -> Iterator[Served]:
    """`running`, yielding the Served (its URL, and whether it is still handling anything)."""
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", lifespan="on", http=UVICORN_HTTP, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    runner = _Runner(server)
    thread = threading.Thread(target=runner.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)
    except BaseException:
        # Not left running behind the error: a start that hangs (the app's lifespan startup never returns) pays no
        # heed to should_exit, so its task is cancelled.
        server.should_exit = True
        runner.cancel()
        thread.join(timeout_s)
        raise
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://{host}:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        # A server still running would hold its port and its app past the test that started it.
        assert not thread.is_alive(), "uvicorn did not stop"


def wait_ready(url: str, timeout_s: float = 120.0) -> None:
    """Wait until the app at `url` says it can serve sessions (/readyz 200), as a load balancer would: its first
    grant waits for the offline engine to load (Whisper's process spawned and warmed up), which on a busy machine
    outlasts an HTTP client's timeout (httpx's is 5 s). A check that says "failed" ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            response = httpx.get(url + "/readyz")
            if response.status_code == 200:
                return
            last = response.text
            if any(str(v).startswith("failed") for v in response.json().get("checks", {}).values()):
                raise RuntimeError(f"{url} cannot become ready: {last}")
        except httpx.TransportError as exc:  # a slow answer on a busy machine: ask again
            last = repr(exc)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} was not ready within {timeout_s} s: {last}")
        time.sleep(0.1)
