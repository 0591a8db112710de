"""Run an ASGI app in a real uvicorn server on a free loopback port, in a thread that stops itself."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from server import UVICORN_HTTP


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", timeout_s: float = 20.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of `app` served by uvicorn; stop it on exit."""
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", lifespan="on", http=UVICORN_HTTP, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
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
