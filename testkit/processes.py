"""The app as separate OS processes (replicas) sharing one Redis, each on its own loopback port, for the multi-process
tests and benchmarks. Each runs `create_app` on the scripted recognizer (what testkit/load.py expects), so replicas
differ from `python -m server` only in the engine.

    python -m testkit.processes --port N --settings '{"redis_url": "...", "secret_key": "...", "wiro": {...}}'
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from server import UVICORN_HTTP
from testkit.redis_server import START_TRIES, PortTaken, free_port

if TYPE_CHECKING:
    from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# The exit status of a replica whose port was taken before it could bind it (EADDRINUSE's number on Linux).
PORT_TAKEN = 98


def build_settings(raw: dict[str, Any]) -> Settings:
    from server.settings import Settings, TruebarSettings, WiroSettings

    top = {k: v for k, v in raw.items() if k not in ("truebar", "wiro")}
    return Settings(
        **top,
        truebar=TruebarSettings(**raw.get("truebar", {})),
        wiro=WiroSettings(**raw.get("wiro", {})),
    )


# What a replica prints on standard output once it listens on its port (and nothing else there).
LISTENING = "testkit.processes: listening"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", default="{}", help="JSON: Settings fields; truebar and wiro as objects")
    args = parser.parse_args(argv)
    # The port is bound here, first, rather than by uvicorn: one taken since the parent found it free is an exit
    # with PORT_TAKEN, which start_app tells from any other failure (and tries again on another port).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
        # Listening at once: a socket bound but not yet listening (with SO_REUSEADDR, as uvicorn's and redis-server's
        # are) leaves the port to another process that binds it meanwhile.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"testkit.processes: port {args.port} is in use", file=sys.stderr)
        sys.exit(PORT_TAKEN)
    # Told to the parent: from here whatever answers on the port is this process (another server on it, the port
    # taken before, would have answered /healthz for it).
    print(LISTENING, flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    from server.app import create_app
    from server.emulators.scripted import ScriptedRecognizer
    from testkit.load import MS_PER_WORD

    settings = build_settings(json.loads(args.settings))
    app = create_app(settings, local_recognizer=ScriptedRecognizer(ms_per_word=MS_PER_WORD, words_per_utterance=4))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", http=UVICORN_HTTP, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:  # as uvicorn.run says a failed start
        sys.exit(3)


@dataclass
class AppProcess:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing released (what an OOM kill does)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_app(settings: dict[str, Any], timeout_s: float = 30.0) -> AppProcess:
    """A replica on a free port, once it answers /healthz. A port taken before the replica bound it is tried again
    on a new one (START_TRIES in all); a replica that exits or does not answer in time is stopped, and raises."""
    for tries_left in reversed(range(START_TRIES)):
        try:
            return _start_app(settings, free_port(), timeout_s)
        except PortTaken:
            if not tries_left:
                raise
    raise AssertionError("unreachable")


def _start_app(settings: dict[str, Any], port: int, timeout_s: float) -> AppProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "testkit.processes", "--port", str(port), "--settings", json.dumps(settings)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    app = AppProcess(port, process)
    try:
        deadline = time.monotonic() + timeout_s
        assert process.stdout is not None
        with process.stdout:
            # Its port first (it listens, or exits with PORT_TAKEN): only then is /healthz on it this process's.
            ready, _, _ = select.select([process.stdout], [], [], timeout_s)
            said = process.stdout.readline() if ready else b""
        if said.strip() != LISTENING.encode():
            process.wait(5)
            if process.returncode == PORT_TAKEN:
                raise PortTaken(f"port {port} was taken before the app process bound it")
            raise RuntimeError(f"the app process did not listen (exit {process.returncode})")
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if process.returncode == PORT_TAKEN:
                    raise PortTaken(f"port {port} was taken before the app process bound it")
                raise RuntimeError(f"the app process exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(app.url + "/healthz", timeout=1).status_code == 200:
                    return app
            time.sleep(0.05)
        raise TimeoutError("the app process did not start")
    except BaseException:
        app.stop()
        raise


@contextlib.contextmanager
def app_processes(count: int, settings: dict[str, Any]) -> Iterator[list[AppProcess]]:
    """`count` replicas with the same settings (so the same secret and Redis), stopped on exit."""
    apps: list[AppProcess] = []
    try:
        for _ in range(count):
            apps.append(start_app(settings))
        yield apps
    finally:
        for app in apps:
            app.stop()


if __name__ == "__main__":
    main()
