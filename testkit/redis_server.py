"""A real Redis for tests: Debian's redis-server on a free loopback port, no persistence, stopped by its pid."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "redis-server is not installed: run `make setup-test` as root, or `sudo apt-get install -y redis-server`"
# A free port is found by binding port 0 and closing it, so another process can take it before the server binds it.
START_TRIES = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PortTaken(RuntimeError):
    """The server could not bind its port: something else took it after free_port() found it free."""


@dataclass
class RedisServer:
    port: int
    folder: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The same server through its Unix socket (in its own folder, for its owner only)."""
        return f"unix://{self.folder}/redis.sock"

    @property
    def log(self) -> Path:
        """What the server said (its log goes to standard output), from its latest start."""
        return Path(self.folder) / "redis.log"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start on `port` and wait until it answers PING. A server that exits or stays silent is stopped, and
        raises: PortTaken if it said its port was in use, else RuntimeError."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": self.folder,
            "daemonize": "no",
            "loglevel": "warning",
            "unixsocket": f"{self.folder}/redis.sock",
            "unixsocketperm": "700",
        }
        argv = [binary, *(word for name, value in options.items() for word in (f"--{name}", value))]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_started(self.process, timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_started(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                said = self.log.read_text(errors="replace")
                if "Address already in use" in said:
                    raise PortTaken(f"redis-server could not bind port {self.port}: it is in use")
                raise RuntimeError(f"redis-server exited with {process.returncode}: {said.strip()[-1000:]}")
            if self.answers():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start within {timeout_s} s")

    def answers(self) -> bool:
        """This server answers PING: through its own Unix socket (in its own folder), so another server that holds
        the port (a test worker's beside this one) is not taken for it while this one fails its bind."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(f"{self.folder}/redis.sock")
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM by pid (SIGKILL after 5 s); the same port can be started again."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def redis_server(timeout_s: float = 10.0) -> Iterator[RedisServer]:
    """A started server, stopped on exit. A port taken between free_port() and the start is tried again on a new
    one (START_TRIES in all). A restart (stop(), start()) keeps its port: its clients know that one."""
    with tempfile.TemporaryDirectory(prefix="redis-test-") as folder:
        server = RedisServer(free_port(), folder)
        for tries_left in reversed(range(START_TRIES)):
            try:
                server.start(timeout_s)
                break
            except PortTaken:
                if not tries_left:
                    raise
                server.port = free_port()
        try:
            yield server
        finally:
            server.stop()
