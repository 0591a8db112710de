"""A loopback TCP proxy whose open connections a test can cut (a viewer's Wi-Fi dropping) or silence (a server's
host losing power), and whose link can be slow (what the client sends arrives `delay_s` late), in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    # Silenced: nothing more goes either way, and the client's side is left open (it is never told).
    silent: bool = False


class CuttableProxy:
    def __init__(self, target_port: int, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[_Link] = []
        self._silenced: list[_Link] = []
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self._open.append(link)
                self.accepted += 1
            for a, b, delay_s in ((client, upstream, self.delay_s), (upstream, client, 0.0)):
                args = (link, a, b, delay_s)
                threading.Thread(target=self._pipe, args=args, daemon=True, name="proxy-pipe").start()

    @staticmethod
    def _pipe(link: _Link, source: socket.socket, sink: socket.socket, delay_s: float) -> None:
        try:
            while data := source.recv(65536):
                # A slow link, not a wait for anything: each request (a client sends the next after the answer)
                # reaches the server this much later. Data sent meanwhile waits behind it in the socket's buffer.
                if delay_s:
                    time.sleep(delay_s)
                if link.silent:
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if not link.silent:
                for s in (source, sink):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Close every connection open now (new ones go through); how many were cut."""
        with self._lock:
            links, self._open = self._open, []
        for link in links:
            for s in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        return len(links)

    def silence(self) -> int:
        """Every connection open now goes silent, as when the server's host loses power: the server's side is closed
        (the server forgets the client), the client's side stays open and hears nothing more, no FIN, no RST, and
        what the client sends goes nowhere. New connections go through. How many were silenced."""
        with self._lock:
            links, self._open = self._open, []
            self._silenced += links
        for link in links:
            link.silent = True
            with contextlib.suppress(OSError):
                link.upstream.shutdown(socket.SHUT_RDWR)
            link.upstream.close()
        return len(links)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.cut()
        with self._lock:
            silenced, self._silenced = self._silenced, []
        for link in silenced:
            link.client.close()


@contextlib.contextmanager
def cuttable_proxy(target_port: int, delay_s: float = 0.0) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(target_port, delay_s)
    try:
        yield proxy
    finally:
        proxy.close()
