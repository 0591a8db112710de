"""Misbehaving upstreams, through the whole app on real sockets: every grant, options listing and end call answers
in bounded time with a clear JSON error (502 or 504), never a 500 and never a hang.

Each fault server plays Truebar's token and stage endpoints and Wiro's REST API on one port. "Did not hang" is the
test client's own read timeout, far above the app's upstream timeout: a hanging app fails the test with ReadTimeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.providers.wiro_tasks import task_registry
from server.settings import Settings, TruebarSettings, WiroSettings
from server.state import MemoryState, State
from server.upstream import MAX_BODY_BYTES
from testkit.live import running

UPSTREAM_TIMEOUT_S = 0.3
# Far above anything the app may legitimately take (a few upstream timeouts), far below a hang.
CLIENT_TIMEOUT_S = 8.0

TOKEN = {"access_token": "a.b.c", "expires_in": 300, "refresh_token": "r.s.t", "refresh_expires_in": 600}
STAGES = [{"task": "ASR", "configOptions": [{"tag": "KALDI:en-US:*:*", "features": ["onlineAsr"]}]}]
RUN = {"result": True, "errors": [], "taskid": "7", "socketaccesstoken": "abc123"}


def healthy(path: str) -> Response:
    if path.endswith("/token"):
        return JSONResponse(TOKEN)
    if path.endswith("/stages"):
        return JSONResponse(STAGES)
    if path.startswith("/v1/Run/"):
        return JSONResponse(RUN)
    return JSONResponse({"result": True, "errors": []})


class FaultyUpstream:
    """An HTTP upstream whose answers to `where` (a path fragment; "" is every path) show `fault`."""

    def __init__(self, fault: str, where: str = "") -> None:
        self.fault = fault
        self.where = where
        self.released = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def wait_released(self, seconds: float) -> None:
        for _ in range(int(seconds / 0.05)):
            if self.released.is_set():
                return
            await asyncio.sleep(0.05)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        await request.body()
        if self.where not in path:
            return healthy(path)
        if self.fault == "stall":
            await self.wait_released(60)
            return healthy(path)
        if self.fault == "trickle":
            return StreamingResponse(self.trickle(), media_type="application/json")
        if self.fault == "http_500":
            return Response("<html>Internal Server Error</html>", 500, media_type="text/html")
        if self.fault == "http_503_json":
            return JSONResponse({"error": "unavailable", "message": "maintenance"}, 503)
        if self.fault == "not_json":
            return Response("<html>hello</html>", 200, media_type="text/html")
        if self.fault == "json_list":
            return JSONResponse([1, 2, 3])
        if self.fault == "empty_object":
            return JSONResponse({"result": True})
        if self.fault == "huge_expiry":
            # 1e999 parses as an infinite float: the upstream's number must not reach the browser as Infinity.
            body = b'{"access_token": "a.b.c", "expires_in": 1e999, "result": true, "taskid": "7"}'
            return Response(body, 200, media_type="application/json")
        raise AssertionError(self.fault)

    async def trickle(self) -> AsyncIterator[bytes]:
        """A body that never ends while each byte comes well within the per-read timeout."""
        yield b" "
        for _ in range(600):
            if self.released.is_set():
                break
            await asyncio.sleep(UPSTREAM_TIMEOUT_S / 3)
            yield b" "
        yield b"{}"


class RawUpstream:
    """A TCP listener that misbehaves below HTTP: `blackhole` never accepts (the kernel completes the handshake),
    `silent` accepts and reads but never answers, `reset` hangs up at once, `truncated` cuts its answer short."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while not self.stop.is_set():
            if self.fault == "blackhole":
                self.stop.wait(0.05)
                continue
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.fault == "reset":
                conn.close()
                continue
            self.held.append(conn)
            if self.fault == "truncated":
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                    conn.sendall(head + b'{"access_tok')
                conn.close()

    def __enter__(self) -> RawUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        # Still serving, it would hold its socket and connections past the test that started it.
        assert not self.thread.is_alive(), "the raw upstream did not stop"
        for conn in self.held:
            conn.close()
        self.sock.close()


def closed_port_url() -> str:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def settings_for(base: str) -> Settings:
    return Settings(
        truebar=TruebarSettings(
            username="fault-user",
            password="fault-pass",
            auth_url=f"{base}/realms/truebar/protocol/openid-connect/token",
            api_base_url=base,
            stt_ws_url="ws://127.0.0.1:9/api/pipelines/stream",
        ),
        wiro=WiroSettings(api_key="fault-key", api_secret="fault-secret", api_base_url=f"{base}/v1"),
        upstream_timeout_s=UPSTREAM_TIMEOUT_S,
        session_rate_per_min=10_000,
        max_sessions_per_client=10_000,
    )


@contextlib.contextmanager
def app_against(fault: str, where: str = "", state: State | None = None) -> Iterator[httpx.Client]:
    with contextlib.ExitStack() as stack:
        if fault == "closed":
            base = closed_port_url()
        elif fault in {"blackhole", "silent", "reset", "truncated"}:
            base = stack.enter_context(RawUpstream(fault)).url
        else:
            upstream = FaultyUpstream(fault, where)
            base = stack.enter_context(running(upstream.app))
        app = create_app(settings_for(base), local_recognizer=ScriptedRecognizer(), state=state)
        url = stack.enter_context(running(app))
        if fault not in {"closed", "blackhole", "silent", "reset", "truncated"}:
            # Unwinds first: the app's shutdown must not wait on a stalled upstream request.
            stack.callback(upstream.released.set)
        yield stack.enter_context(httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S))


TIMEOUT = ({504}, {"upstream_timeout"})
BROKEN = ({502}, {"upstream_unreachable", "upstream_error", "upstream_bad_response", "wiro_refused"})
FAULTS: dict[str, tuple[set[int], set[str]]] = {
    "stall": TIMEOUT,
    "trickle": TIMEOUT,
    "blackhole": TIMEOUT,
    "silent": TIMEOUT,
    "closed": BROKEN,
    "reset": BROKEN,
    "truncated": BROKEN,
    "http_500": BROKEN,
    "http_503_json": BROKEN,
    "not_json": BROKEN,
    "json_list": BROKEN,
    "empty_object": BROKEN,
}


# What the fault servers put in their bodies, and the configured secrets: none of it may reach the browser.
NEVER_SHOWN = ("Internal Server Error", "maintenance", "hello", "fault-pass", "fault-secret", "fault-key", "a.b.c")


def check_error(r: httpx.Response, statuses: set[int], codes: set[str]) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] in codes and error["message"]
    assert set(r.json()) == {"error"} and set(error) == {"code", "message"}
    for text in NEVER_SHOWN:
        assert text not in r.text, (text, r.text)


def nothing_held(state: MemoryState) -> None:
    """A failed grant leaves nothing behind: no place in the client's ledger, no Wiro task registered."""
    assert asyncio.run(state.ledger.held("cloud:127.0.0.1")) == 0
    assert asyncio.run(task_registry(state).due(float("inf"))) == []


def calls(client: httpx.Client) -> dict[str, httpx.Response]:
    return {
        "truebar grant": client.post("/api/sessions", json={"provider": "truebar"}),
        "truebar grant with a tag": client.post("/api/sessions", json={"provider": "truebar", "tag": "X:y:z:w"}),
        "truebar options": client.get("/api/providers/truebar/options"),
        "wiro grant": client.post("/api/sessions", json={"provider": "wiro"}),
    }


@pytest.mark.parametrize("fault", FAULTS)
def test_upstream_fault_answers_a_clear_error_in_bounded_time(fault: str) -> None:
    statuses, codes = FAULTS[fault]
    state = MemoryState()
    with app_against(fault, state=state) as client:
        for name, r in calls(client).items():
            if name == "truebar grant with a tag" and r.status_code == 200:
                continue  # a broken stage listing falls back to the default tag by design
            check_error(r, statuses, codes)
        nothing_held(state)
        # The app itself is unaffected: the offline engine still grants, the listing still answers.
        assert client.post("/api/sessions", json={"provider": "local"}).status_code == 200
        assert client.get("/api/providers").status_code == 200


def test_infinite_token_lifetime_is_not_sent_to_the_browser() -> None:
    with app_against("huge_expiry", "/token") as client:
        before = time.time()
        r = client.post("/api/sessions", json={"provider": "truebar"})
        # An unusable lifetime is replaced by the default one, not passed on and not a failure.
        assert r.status_code == 200, (r.status_code, r.text[:300])
        expires_at = r.json()["expires_at"]
        assert math.isfinite(expires_at) and before < expires_at < time.time() + 3600


@pytest.mark.parametrize("fault", ["stall", "trickle", "http_500"])
def test_stage_listing_fault_is_bounded_and_the_default_tag_still_works(fault: str) -> None:
    statuses, codes = FAULTS[fault]
    with app_against(fault, "/stages") as client:
        check_error(client.get("/api/providers/truebar/options"), statuses, codes)
        r = client.post("/api/sessions", json={"provider": "truebar"})
        assert r.status_code == 200 and r.json()["tag"] == "KALDI:en-US:*:*"


@pytest.mark.parametrize("fault", ["stall", "trickle", "http_500", "not_json"])
def test_end_call_with_a_failing_kill_is_bounded(fault: str) -> None:
    """Run works, Task/Kill misbehaves: ending the session still answers promptly, gives the client its place back
    (which is what "ended" then reports), and keeps the task registered (it may still be running and billed) for a
    later kill."""
    state = MemoryState()
    with app_against(fault, "/Task/Kill", state=state) as client:
        grant: dict[str, Any] = client.post("/api/sessions", json={"provider": "wiro"}).json()
        r = client.post(f"/api/sessions/wiro/{grant['session_id']}/end")
        assert r.status_code == 200 and r.json() == {"ended": True}, (r.status_code, r.text[:300])
        assert asyncio.run(state.ledger.held("cloud:127.0.0.1")) == 0
        left = asyncio.run(task_registry(state).due(float("inf")))
        assert [t.task_id for t in left] == [grant["task_id"]] and left[0].attempts == 1


class EndlessBody(httpx.AsyncByteStream):
    """A body of `total` bytes in 64 KiB chunks, made as it is read, counting what was taken."""

    def __init__(self, total: int, chunk: bytes = b" " * 65536) -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += len(self.chunk)
            yield self.chunk


def gzip_bomb() -> bytes:
    """64 MiB of spaces, compressed to about 64 KiB: small on the wire, huge once decoded."""
    return gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)


@pytest.mark.parametrize("shape", ["streamed", "declared", "gzip-bomb"])
@pytest.mark.parametrize("where", ["/token", "/stages", "/Run/"])
def test_a_huge_upstream_body_is_cut_off_at_the_limit_and_answered_502(where: str, shape: str) -> None:
    bodies: list[EndlessBody] = []
    bomb = gzip_bomb() if shape == "gzip-bomb" else b""

    def handler(request: httpx.Request) -> httpx.Response:
        if where not in request.url.path:
            return httpx.Response(200, json=STAGES if request.url.path.endswith("/stages") else TOKEN | RUN)
        if shape == "gzip-bomb":
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            return httpx.Response(200, headers=headers, content=bomb)
        body = EndlessBody(1024 * 1024 * 1024)  # 1 GiB, never made whole
        bodies.append(body)
        headers = {"Content-Length": str(body.total)} if shape == "declared" else {}
        return httpx.Response(200, headers=headers, stream=body)

    state = MemoryState()
    app = create_app(settings_for("https://upstream.test"), transport=httpx.MockTransport(handler), state=state)
    with running(app) as url, httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as client:
        if where == "/stages":
            r = client.get("/api/providers/truebar/options")
        else:
            r = client.post("/api/sessions", json={"provider": "wiro" if where == "/Run/" else "truebar"})
        check_error(r, {502}, {"upstream_too_large"})
        nothing_held(state)
    for body in bodies:
        # Read up to the limit (plus the chunk that passed it), or not at all when the length said so at once.
        assert body.sent <= MAX_BODY_BYTES + 65536 if shape == "streamed" else body.sent == 0, body.sent
