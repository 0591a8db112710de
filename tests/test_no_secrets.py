"""The leak test: drive every path with known secrets while capturing everything the app and its servers say (log
records at every level, uvicorn's access and error lines included, every HTTP response's status, headers and body,
every WebSocket message), then search it all for the secrets and for the refresh tokens the Truebar emulator
issued. No password, API key, API secret, app secret or refresh token may appear anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import websockets
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.app import create_app
from server.emulators import truebar as truebar_emulator
from server.emulators import wiro as wiro_emulator
from server.emulators.scripted import ScriptedRecognizer
from server.openapi import openapi_route
from server.providers import ProviderFactory
from server.providers.truebar import TruebarProvider
from server.security import COOKIE_NAME
from server.settings import Settings, TruebarSettings, WiroSettings
from testkit import audio
from testkit.live import running
from testkit.stack import (
    APP_SECRET,
    SECRETS,
    TRUEBAR_PASSWORD,
    TRUEBAR_USER,
    WIRO_KEY,
    WIRO_SECRET,
)
from testkit.truebar_client import transcribe_truebar
from testkit.wiro_client import transcribe_wiro
from tests.support.clock import Clock

# Wrong credentials are secrets too: a rejected password must not be echoed either.
WRONG_TRUEBAR_PASSWORD = "wrong-tb-pass-51c0"
WRONG_WIRO_KEY = "wrongWiroKey77a1"
WRONG_WIRO_SECRET = "wrong-wiro-secret-0d3e"
APP_PASSWORD = "gate-password-6a2f"
KNOWN = (*SECRETS, WRONG_TRUEBAR_PASSWORD, WRONG_WIRO_KEY, WRONG_WIRO_SECRET, APP_PASSWORD)
TRACE = 5  # uvicorn's level below DEBUG


@dataclass
class Capture:
    logs: list[str] = field(default_factory=list)
    http: list[str] = field(default_factory=list)
    ws: list[str] = field(default_factory=list)
    refresh_tokens: set[str] = field(default_factory=set)
    statuses: list[tuple[str, int, str]] = field(default_factory=list)
    local_tokens: list[str] = field(default_factory=list)
    token_grants: Counter[str] = field(default_factory=Counter)  # the Truebar emulator's sign-ins, by grant type
    # The gated app's login cookie and the bearer token its stream was opened with: the socket's handshake headers.
    handshake_secrets: list[str] = field(default_factory=list)


class Everything(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.NOTSET)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # format() appends the traceback of exc_info, and the exception text can carry a secret as easily.
        self.sink.append(self.format(record))


@contextlib.contextmanager
def capturing_logs(sink: list[str]) -> Iterator[None]:
    """Every record from every logger: the root, plus each logger that does not propagate (uvicorn's own)."""
    handler = Everything(sink)
    manager = logging.root.manager
    loggers = [logging.getLogger()] + [
        logging.getLogger(name)
        for name, logger in list(manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    levels = {logger: logger.level for logger in loggers}
    uvicorn_levels = {n: logging.getLogger(n).level for n in ("uvicorn.error", "uvicorn.access", "uvicorn.asgi")}
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(TRACE)
    for name in uvicorn_levels:
        logging.getLogger(name).setLevel(TRACE)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.setLevel(levels[logger])
        for name, level in uvicorn_levels.items():
            logging.getLogger(name).setLevel(level)


class TokenRecorder:
    """ASGI wrapper around the Truebar emulator keeping every refresh token its token endpoint hands out."""

    def __init__(self, app: ASGIApp, sink: set[str]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/token"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    with contextlib.suppress(ValueError):
                        token = json.loads(bytes(body)).get("refresh_token")
                        if isinstance(token, str):
                            self.sink.add(token)
            await send(message)

        await self.app(scope, receive, keep)


def http_client(base_url: str, capture: Capture, **kwargs: Any) -> httpx.Client:
    def record(response: httpx.Response) -> None:
        response.read()
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        capture.http.append(f"{response.status_code} {response.request.url}\n{head}\n\n{response.text}")
        code = ""
        with contextlib.suppress(ValueError, LookupError, AttributeError, TypeError):
            code = response.json()["error"]["code"]
        capture.statuses.append((f"{response.request.method} {response.request.url.path}", response.status_code, code))

    return httpx.Client(base_url=base_url, event_hooks={"response": [record]}, timeout=20, **kwargs)


def tone(rate: int, seconds: float = 1.1) -> bytes:
    return audio.float_to_pcm16(audio.tone(440.0, rate, int(seconds * rate), 0.3)).astype("<i2").tobytes()


def stream(grant: dict[str, Any], capture: Capture) -> None:
    if grant["protocol"] == "truebar":
        tb = asyncio.run(transcribe_truebar(grant["ws_url"], grant["token"], tone(16_000), tag=grant["tag"]))
        assert not tb.errors and tb.finals, tb.errors
        capture.ws += [json.dumps(m) for m in tb.messages]
    else:
        wiro = asyncio.run(transcribe_wiro(grant["ws_url"], grant["token"], tone(24_000)))
        assert wiro.increments
        capture.ws += [json.dumps(m) for m in wiro.messages]


async def first_message(url: str, headers: dict[str, str] | None = None) -> str:
    async with websockets.connect(url, additional_headers=headers) as ws:
        return str(await ws.recv())


async def refused_stream(url: str, capture: Capture) -> None:
    with contextlib.suppress(websockets.InvalidStatus, websockets.ConnectionClosed, OSError):
        async with websockets.connect(url) as ws:
            capture.ws.append(str(await ws.recv()))


def app_settings(tb_url: str, wiro_url: str, **overrides: Any) -> Settings:
    base = Settings(
        secret_key=APP_SECRET,
        session_rate_per_min=10_000,
        max_sessions_per_client=1_000,
        upstream_timeout_s=2.0,
        truebar=TruebarSettings(
            username=TRUEBAR_USER,
            password=TRUEBAR_PASSWORD,
            auth_url=f"{tb_url}/realms/truebar/protocol/openid-connect/token",
            api_base_url=tb_url,
            stt_ws_url="ws" + tb_url.removeprefix("http") + "/api/pipelines/stream",
        ),
        wiro=WiroSettings(
            api_key=WIRO_KEY,
            api_secret=WIRO_SECRET,
            api_base_url=f"{wiro_url}/v1",
            socket_url="ws" + wiro_url.removeprefix("http") + "/v1",
        ),
    )
    return replace(base, **overrides)


def served(settings: Settings, truebar_clock: Callable[[], float] | None = None) -> Any:
    """The app; with `truebar_clock`, its Truebar provider runs on that clock (a provider built by `extra_providers`
    under a built-in's name takes its place)."""
    extra: list[ProviderFactory] = []
    if truebar_clock is not None:
        clock = truebar_clock
        extra.append(lambda http, _state: TruebarProvider(settings.truebar, http, clock=clock))
    app = create_app(
        settings,
        local_recognizer=ScriptedRecognizer(ms_per_word=250, words_per_utterance=4),
        extra_providers=extra,
    )
    if not any(getattr(r, "path", None) == "/openapi.json" for r in app.routes):
        app.router.routes.insert(0, openapi_route())
    return running(app)


def drive_good_app(url: str, capture: Capture, truebar_clock: Clock) -> None:
    with http_client(url, capture) as c:
        for path in ("/", "/login", "/healthz", "/openapi.json", "/api/providers", "/static/app.js", "/nope"):
            c.get(path)
        for name in ("local", "truebar", "wiro", "nope"):
            c.get(f"/api/providers/{name}/options")
        for provider in ("local", "truebar", "wiro"):
            grant = c.post("/api/sessions", json={"provider": provider, "tag": "KALDI:sl-SI:COL:20221208-0800"}).json()
            if provider == "local":
                capture.local_tokens.append(grant["token"])
            stream(grant, capture)
            c.post(f"/api/sessions/{provider}/{grant['session_id']}/end")
        # The same grant parameter with its name percent-encoded: the app decodes the name and accepts the grant.
        grant = c.post("/api/sessions", json={"provider": "local"}).json()
        capture.local_tokens.append(grant["token"])
        accepted = asyncio.run(first_message(f"{grant['ws_url']}?access%5Ftoken={grant['token']}"))
        assert "INITIALIZED" in accepted, accepted
        capture.ws.append(accepted)
        c.get(f"/?access%5Ftoken={grant['token']}")
        c.post(f"/api/sessions/local/{grant['session_id']}/end")
        # The emulator's tokens live 2 s and are refreshed 1 s before expiry: this grant uses the refresh token.
        truebar_clock.advance(1.2)
        c.post("/api/sessions", json={"provider": "truebar"})
        c.get("/api/providers/truebar/options")
        # 4xx: bad JSON, unknown provider, form posts, a foreign origin, a wrong method, an unknown session.
        c.post("/api/sessions", content=b"{nope", headers={"Content-Type": "application/json"})
        c.post("/api/sessions", json={"provider": "nope"})
        c.post("/api/sessions", content=b"provider=local", headers={"Content-Type": "text/plain"})
        c.post("/api/sessions", json={"provider": "wiro"}, headers={"Origin": "https://evil.example"})
        c.get("/api/sessions")
        c.post("/api/sessions/wiro/no-such-handle/end")
        c.post("/api/sessions/nope/x/end")
    ws = "ws" + url.removeprefix("http")
    asyncio.run(refused_stream(f"{ws}/api/local/stream?access_token=forged.token", capture))


def drive_failing_app(url: str, capture: Capture) -> None:
    with http_client(url, capture) as c:
        c.get("/api/providers")
        c.get("/api/providers/truebar/options")
        for provider in ("truebar", "wiro"):
            c.post("/api/sessions", json={"provider": provider})


def drive_gated_app(url: str, capture: Capture) -> None:
    with http_client(url, capture) as c:
        c.get("/", headers={"Accept": "text/html"})
        c.get("/api/providers")
        c.post("/login", data={"password": WRONG_TRUEBAR_PASSWORD})
        c.post("/login", data={"password": APP_PASSWORD})
        grant = c.post("/api/sessions", json={"provider": "local"}).json()
        cookie = c.cookies[COOKIE_NAME]
    asyncio.run(refused_stream("ws" + url.removeprefix("http") + "/api/local/stream?access_token=x", capture))
    # A backend's way in behind the password: the cookie and the grant as a bearer token, both in the handshake's
    # headers, which websockets logs one by one at debug.
    capture.handshake_secrets += [cookie, grant["token"]]
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}", "Authorization": f"Bearer {grant['token']}"}
    accepted = asyncio.run(first_message(grant["ws_url"], headers))
    assert "INITIALIZED" in accepted, accepted
    capture.ws.append(accepted)


def closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def capture() -> Capture:
    cap = Capture()
    recognizer = ScriptedRecognizer(ms_per_word=250, words_per_utterance=4)
    tb_options = truebar_emulator.TruebarEmulatorOptions(
        username=TRUEBAR_USER, password=TRUEBAR_PASSWORD, token_ttl_s=2, refresh_ttl_s=60
    )
    tb_emulator = truebar_emulator.create_emulator(tb_options, recognizer)
    tb_app = TokenRecorder(tb_emulator, cap.refresh_tokens)
    truebar_clock = Clock()
    wiro_options = wiro_emulator.WiroEmulatorOptions(api_key=WIRO_KEY, api_secret=WIRO_SECRET)
    with contextlib.ExitStack() as stack:
        tb_url = stack.enter_context(running(tb_app))
        wiro_url = stack.enter_context(running(wiro_emulator.create_emulator(wiro_options, recognizer)))
        good = stack.enter_context(served(app_settings(tb_url, wiro_url), truebar_clock))
        wrong_secrets = stack.enter_context(
            served(
                app_settings(
                    tb_url,
                    wiro_url,
                    truebar=replace(app_settings(tb_url, wiro_url).truebar, password=WRONG_TRUEBAR_PASSWORD),
                    wiro=replace(app_settings(tb_url, wiro_url).wiro, api_secret=WRONG_WIRO_SECRET),
                )
            )
        )
        good_wiro = app_settings(tb_url, wiro_url).wiro
        wrong_key = stack.enter_context(
            served(app_settings(tb_url, wiro_url, wiro=replace(good_wiro, api_key=WRONG_WIRO_KEY)))
        )
        down = closed_port()
        upstream_down = stack.enter_context(served(app_settings(down, down)))
        gated = stack.enter_context(served(app_settings(tb_url, wiro_url, app_password=APP_PASSWORD)))
        # After every server started: uvicorn's configuration resets its loggers' levels and handlers.
        with capturing_logs(cap.logs):
            drive_good_app(good, cap, truebar_clock)
            for url in (wrong_secrets, wrong_key, upstream_down):
                drive_failing_app(url, cap)
            drive_gated_app(gated, cap)
        cap.token_grants.update(tb_emulator.state.token_requests)
    return cap


def leaks(texts: list[str], secrets: set[str]) -> list[tuple[str, str]]:
    return [(secret, text[:300]) for text in texts for secret in secrets if secret in text]


def test_the_scenario_reached_every_path(capture: Capture) -> None:
    """Guards the leak checks below: they mean something only if these paths really ran."""
    seen = {(what, status, code) for what, status, code in capture.statuses}
    assert ("POST /api/sessions", 200, "") in seen
    assert {code for _, status, code in seen if status == 502} >= {"upstream_auth", "wiro_auth", "upstream_unreachable"}
    assert {status for _, status, _ in seen} >= {200, 303, 400, 401, 403, 404, 405, 415, 502}
    assert len(capture.refresh_tokens) >= 2  # the sign-in's and the refresh's
    assert capture.token_grants["refresh_token"] >= 1, capture.token_grants  # a refresh token went through the app
    assert any("TEXT_SEGMENT" in m for m in capture.ws) and any("task_output" in m for m in capture.ws)
    assert any("HTTP Request" in line for line in capture.logs)  # httpx's lines: the capture saw DEBUG/INFO
    assert any('"WebSocket /api/local/stream' in line for line in capture.logs)
    # The handshake's headers were logged (uvicorn's websockets at debug), so the check below has something to check.
    assert any("< authorization: Bearer ***" in line for line in capture.logs), capture.logs
    assert any(f"< cookie: {COOKIE_NAME}=***" in line for line in capture.logs)


def test_no_secret_in_any_http_response(capture: Capture) -> None:
    assert not leaks(capture.http, set(KNOWN) | capture.refresh_tokens)


def test_no_secret_in_any_websocket_message(capture: Capture) -> None:
    assert not leaks(capture.ws, set(KNOWN) | capture.refresh_tokens)


def test_no_secret_in_any_log_line(capture: Capture) -> None:
    assert capture.logs
    assert not leaks(capture.logs, set(KNOWN) | capture.refresh_tokens)


def test_access_log_redacts_the_local_stream_token(capture: Capture) -> None:
    access = [line for line in capture.logs if line.startswith("uvicorn") and "/api/local/stream?" in line]
    assert access and all(re.search(r"access(_|%5F)token=\*\*\*", line) for line in access), access
    assert any("access%5Ftoken=***" in line for line in access), access
    # Every server-side line; the test's own WebSocket clients log the URL they were handed, as a browser would.
    server_side = [line for line in capture.logs if not line.startswith("websockets.client")]
    assert capture.local_tokens and not leaks(server_side, set(capture.local_tokens))


def test_logs_redact_the_login_cookie_and_a_bearer_token(capture: Capture) -> None:
    server_side = [line for line in capture.logs if not line.startswith("websockets.client")]
    assert len(capture.handshake_secrets) == 2 and not leaks(server_side, set(capture.handshake_secrets))
