"""The Truebar provider against the emulator (and a few broken upstreams) over real loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.emulators.truebar import TruebarEmulatorOptions, create_emulator, decode_jwt
from server.errors import ApiError
from server.providers.base import SessionRequest
from server.providers.truebar import TruebarProvider, online_asr_tags
from server.settings import Settings, TruebarSettings
from server.wire import SessionBody, dump
from testkit.live import running
from testkit.truebar_client import transcribe_truebar
from tests.support.clock import Clock
from tests.support.grants import created

KEY = "provider-test-key"
PASSWORD = "correct-horse-battery"
TOKEN_PATH = "/realms/truebar/protocol/openid-connect/token"


def new_request() -> SessionRequest:
    """A fresh request each call: the session id is the app's, one per minted session."""
    return SessionRequest(ws_origin="ws://127.0.0.1:1")


def settings_for(base: str, *, password: str = PASSWORD, auth_url: str | None = None) -> TruebarSettings:
    return TruebarSettings(
        username="alice",
        password=password,
        auth_url=auth_url or base + TOKEN_PATH,
        api_base_url=base,
        stt_ws_url=base.replace("http://", "ws://") + "/api/pipelines/stream",
    )


@contextlib.contextmanager
def emulator(**options: Any) -> Iterator[tuple[Starlette, str]]:
    opts = TruebarEmulatorOptions(username="alice", password=PASSWORD, signing_key=KEY, **options)
    app = create_emulator(opts, ScriptedRecognizer())
    with running(app) as url:
        yield app, url


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP underneath; remembers each request's path and grant, and can answer refresh grants itself."""

    def __init__(self, *, reject_refresh: bool = False) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.reject_refresh = reject_refresh
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read().decode()
        grant = dict(part.split("=", 1) for part in body.split("&") if "=" in part).get("grant_type", "")
        self.calls.append(f"{request.url.path}:{grant}" if grant else request.url.path)
        if grant == "refresh_token" and self.reject_refresh:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "Session not active"})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_provider(
    settings: TruebarSettings,
    body: Callable[[TruebarProvider], Awaitable[Any]],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
            provider = TruebarProvider(settings, http, clock=clock)
            try:
                return await body(provider)
            finally:
                await provider.aclose()

    return asyncio.run(go())


def provider_error(settings: TruebarSettings, *, timeout: float = 5.0) -> ApiError:
    async def body(provider: TruebarProvider) -> None:
        await created(provider, new_request())

    with pytest.raises(ApiError) as info:
        with_provider(settings, body, timeout=timeout)
    return info.value


def test_grant_has_the_contract_shape_and_no_secret() -> None:
    with emulator() as (_, url):
        settings = settings_for(url)
        grants = with_provider(settings, lambda p: asyncio.gather(created(p, new_request()), created(p, new_request())))
    grant = grants[0]
    assert set(grant) == {
        "provider", "protocol", "ws_url", "token", "expires_at", "expires_in", "sample_rate", "frame_samples", "tag",
        "session_id",
    }  # fmt: skip
    assert (grant["provider"], grant["protocol"], grant["sample_rate"], grant["frame_samples"]) == (
        "truebar", "truebar", 16000, 1600,
    )  # fmt: skip
    assert grant["ws_url"] == settings.stt_ws_url and grant["tag"] == "KALDI:en-US:*:*"
    claims = decode_jwt(grant["token"], KEY.encode(), now=time.time())
    assert claims is not None and claims["typ"] == "Bearer"
    assert abs(grant["expires_at"] - claims["exp"]) < 5
    assert grants[0]["session_id"] != grants[1]["session_id"]
    dumped = json.dumps(grants)
    assert PASSWORD not in dumped and "alice" not in dumped and "refresh" not in dumped


def test_token_is_cached_across_sessions() -> None:
    transport = Recording()

    async def body(provider: TruebarProvider) -> list[str]:
        return [(await created(provider, new_request()))["token"] for _ in range(5)]

    with emulator() as (app, url):
        tokens = with_provider(settings_for(url), body, transport=transport)
        assert app.state.token_requests == {"password": 1}
    assert len(set(tokens)) == 1
    assert transport.calls == [TOKEN_PATH + ":password"]


def test_concurrent_sessions_share_one_upstream_call() -> None:
    async def body(provider: TruebarProvider) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(created(provider, new_request()) for _ in range(10))))

    with emulator() as (app, url):
        grants = with_provider(settings_for(url), body)
        assert app.state.token_requests == {"password": 1}
    assert len({g["token"] for g in grants}) == 1


def test_concurrent_failures_share_one_upstream_call_too() -> None:
    async def body(provider: TruebarProvider) -> list[Any]:
        calls = (created(provider, new_request()) for _ in range(5))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    with emulator() as (app, url):
        results = with_provider(settings_for(url, password="wrong"), body)
        assert app.state.token_requests == {"password": 1}
    assert all(isinstance(r, ApiError) and r.status_code == 502 for r in results)


def test_token_is_refreshed_before_it_expires() -> None:
    clock = Clock()

    async def body(provider: TruebarProvider) -> tuple[str, str, str]:
        first = (await created(provider, new_request()))["token"]
        # A 2 s token is refreshed once half its lifetime is gone, not before.
        clock.advance(0.9)
        kept = (await created(provider, new_request()))["token"]
        clock.advance(0.2)
        second = (await created(provider, new_request()))["token"]
        return first, kept, second

    with emulator(token_ttl_s=2) as (app, url):
        first, kept, second = with_provider(settings_for(url), body, clock=clock)
        assert app.state.token_requests == {"password": 1, "refresh_token": 1}
    assert kept == first and second != first
    claims = decode_jwt(second, KEY.encode(), now=time.time())
    assert claims is not None


def test_a_cached_tokens_grant_says_the_life_it_has_left() -> None:
    """`expires_in` is read on the provider's clock when the grant is handed out: a 2 s token cached for 0.9 s has
    1.1 s left, the same moment its `expires_at` names on that clock."""
    clock = Clock()

    async def body(provider: TruebarProvider) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await created(provider, new_request())
        clock.advance(0.9)
        return first, await created(provider, new_request())

    with emulator(token_ttl_s=2) as (_, url):
        first, kept = with_provider(settings_for(url), body, clock=clock)
    assert kept["token"] == first["token"] and kept["expires_at"] == first["expires_at"] == clock.now - 0.9 + 2
    assert first["expires_in"] == pytest.approx(2) and kept["expires_in"] == pytest.approx(1.1)


def test_failed_refresh_falls_back_to_the_password_grant() -> None:
    transport = Recording(reject_refresh=True)
    clock = Clock()

    async def body(provider: TruebarProvider) -> str:
        await created(provider, new_request())
        clock.advance(1.2)  # past half the 2 s token's lifetime: it is refreshed
        token: str = (await created(provider, new_request()))["token"]
        return token

    with emulator(token_ttl_s=2) as (app, url):
        token = with_provider(settings_for(url), body, transport=transport, clock=clock)
        assert app.state.token_requests == {"password": 2}
    assert transport.calls == [f"{TOKEN_PATH}:password", f"{TOKEN_PATH}:refresh_token", f"{TOKEN_PATH}:password"]
    assert decode_jwt(token, KEY.encode(), now=time.time()) is not None


def test_bad_credentials_are_a_clear_502_without_the_password() -> None:
    with emulator() as (_, url):
        err = provider_error(settings_for(url, password="not-the-password-xyz"))
    assert (err.status_code, err.code) == (502, "upstream_auth")
    assert "rejected the configured credentials" in err.message
    assert "not-the-password-xyz" not in err.message and "Invalid user credentials" not in err.message


def test_bad_credentials_through_the_app() -> None:
    with emulator() as (_, upstream):
        app = create_app(Settings(truebar=settings_for(upstream, password="not-the-password-xyz")))
        with running(app) as url:
            r = httpx.post(url + "/api/sessions", json={"provider": "truebar"})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_auth"
    assert "not-the-password-xyz" not in r.text and "alice" not in r.text


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_upstream_down_is_502() -> None:
    err = provider_error(settings_for(closed_port_url()))
    assert (err.status_code, err.code) == (502, "upstream_unreachable")


def upstream(handler: Callable[[Request], Awaitable[Response]]) -> Starlette:
    return Starlette(routes=[Route(TOKEN_PATH, handler, methods=["POST"])])


def test_slow_upstream_is_504() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(1.0)
        return PlainTextResponse("late")

    with running(upstream(slow)) as url:
        err = provider_error(settings_for(url), timeout=0.2)
    assert (err.status_code, err.code) == (504, "upstream_timeout")


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, "<html>upstream-secret-body</html>", "upstream_bad_response"),
        (200, '{"token_type": "Bearer"}', "upstream_bad_response"),
        (200, "[1, 2, 3]", "upstream_bad_response"),
        (503, "upstream-secret-body", "upstream_error"),
        (500, '{"error": "upstream-secret-body"}', "upstream_error"),
        (401, '{"error": "invalid_client", "error_description": "upstream-secret-body"}', "upstream_auth"),
    ],
)
def test_broken_upstream_answers_are_502_without_their_body(status: int, body: str, code: str) -> None:
    async def broken(request: Request) -> Response:
        return Response(body, status_code=status, media_type="application/json")

    with running(upstream(broken)) as url:
        err = provider_error(settings_for(url))
    assert (err.status_code, err.code) == (502, code)
    assert "upstream-secret-body" not in err.message


def test_rate_limited_upstream_is_503_with_retry_after() -> None:
    async def limited(request: Request) -> Response:
        return Response("{}", status_code=429, headers={"Retry-After": "7"})

    with running(upstream(limited)) as url:
        err = provider_error(settings_for(url))
    assert (err.status_code, err.code, err.retry_after) == (503, "upstream_busy", 7.0)


def test_a_rate_limit_of_a_number_past_any_float_is_a_503_of_at_most_an_hour() -> None:
    async def limited(request: Request) -> Response:
        return Response("{}", status_code=429, headers={"Retry-After": "9" * 400})

    with running(upstream(limited)) as url:
        err = provider_error(settings_for(url))
    assert (err.status_code, err.code, err.retry_after) == (503, "upstream_busy", 3600.0)
    assert err.headers is not None and err.headers["Retry-After"] == "3600"


class HugeLifetimes(httpx.AsyncBaseTransport):
    """Real HTTP to the emulator, with the sign-in answer's lifetimes made integers past any float (JSON numbers
    have no bound; Python's json reads them whole)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != TOKEN_PATH:
            return response
        data = json.loads(await response.aread())
        data.update(expires_in=10**400, refresh_expires_in=-(10**400))
        return httpx.Response(response.status_code, json=data)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_sign_in_lifetime_past_any_float_is_read_as_none_given() -> None:
    """Review: `expires_in` of 10**400 raised OverflowError (a 500) instead of being read as absent."""
    with emulator() as (_, url):
        grant = with_provider(settings_for(url), lambda p: created(p, new_request()), transport=HugeLifetimes())
    assert grant["provider"] == "truebar" and math.isfinite(grant["expires_at"])
    claims = decode_jwt(grant["token"], KEY.encode(), now=time.time())
    assert claims is not None


def test_options_list_online_asr_tags_and_are_cached() -> None:
    transport = Recording()

    async def body(provider: TruebarProvider) -> tuple[dict[str, Any], dict[str, Any]]:
        return dump(await provider.options()), dump(await provider.options())

    with emulator() as (_, url):
        first, second = with_provider(settings_for(url), body, transport=transport)
    expected = {
        "tags": ["KALDI:en-US:*:*", "KALDI:sl-SI:COL:20221208-0800", "RIVA:en-US:*:*"],
        "default_tag": "KALDI:en-US:*:*",
    }
    assert first == expected and second == expected
    assert transport.calls == [f"{TOKEN_PATH}:password", "/api/pipelines/stages"]


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [
        ("RIVA:en-US:*:*", "RIVA:en-US:*:*"),
        ("NEMO_ASR:en-US:*:*", "KALDI:en-US:*:*"),
        ("KALDI:xx-XX:*:*", "KALDI:en-US:*:*"),
        ("not a tag", "KALDI:en-US:*:*"),
        (42, "KALDI:en-US:*:*"),
    ],
)
def test_session_tag_is_the_requested_one_only_when_it_can_stream(requested: object, chosen: str) -> None:
    # Through the body's parser, as the app does: a tag that is no string reaches the provider as none.
    body = SessionBody.parse({"provider": "truebar", "tag": requested})
    request = SessionRequest(ws_origin="ws://x", tag=body.tag)
    with emulator() as (_, url):
        grant = with_provider(settings_for(url), lambda p: created(p, request))
    assert grant["tag"] == chosen


def test_online_asr_tags_reads_every_spelling() -> None:
    stages = [
        {"task": "ASR", "configOptions": [{"tag": "A:en:*:*", "features": ["onlineAsr"]}, {"tag": "B:en:*:*"}]},
        {"task": "ASR", "features": ["onlineAsr"], "config": [{"tag": "C:en:*:*"}, "junk", {"tag": 5}]},
        {"task": "NLP_pc", "features": ["onlineAsr"], "configOptions": [{"tag": "P:en:*:*"}]},
        {"configOptions": [{"tag": "D:en:*:*", "features": ["onlineAsr", 3]}]},
        "junk",
    ]
    assert online_asr_tags(stages) == ["A:en:*:*", "C:en:*:*", "D:en:*:*"]
    with pytest.raises(ValueError):
        online_asr_tags({"stages": []})


def test_status_and_connect_origins() -> None:
    async def body(provider: TruebarProvider) -> None:
        status = provider.status()
        assert not status.configured and status.missing == ("TRUEBAR_USERNAME", "TRUEBAR_PASSWORD")
        assert provider.connect_origins() == ["wss://api.true-bar.si"]
        with pytest.raises(ApiError) as info:
            await created(provider, new_request())
        assert info.value.status_code == 409

    with_provider(TruebarSettings(), body)
    configured = settings_for("http://127.0.0.1:9")
    assert with_provider(configured, lambda p: asyncio.sleep(0, p.connect_origins())) == ["ws://127.0.0.1:9"]


def test_grant_from_the_app_opens_the_emulator_stream() -> None:
    """The browser's path: POST /api/sessions on the app, then the stream with ?access_token=."""
    with emulator() as (upstream_app, upstream_url):
        app = create_app(Settings(truebar=settings_for(upstream_url)))
        with running(app) as url:
            listing = httpx.get(url + "/api/providers/truebar/options").json()
            grant = httpx.post(url + "/api/sessions", json={"provider": "truebar", "tag": listing["tags"][0]}).json()
        result = asyncio.run(transcribe_truebar(grant["ws_url"], grant["token"], bytes(64000), tag=grant["tag"]))
        record = upstream_app.state.sessions[-1]
        assert record.ended.wait(5)
    assert result.errors == [] and result.status_names[-1] == "FINISHED"
    assert result.text == "the quick brown fox jumps over"
    assert record.token_source == "query"
