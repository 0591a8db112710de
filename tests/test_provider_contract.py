"""The provider contract (server.providers.base.Provider), the same tests for every provider: the three the product
ships and a fourth, `EchoProvider`, that exists only here. It is added through create_app's `extra_providers`
without touching a generic module, so these tests fail if app.py or sessions.py decide anything by a provider's
name rather than by what the provider declares (its policy, routes, readiness and status)."""

from __future__ import annotations

import ast
import asyncio
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
import websockets
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from server.emulators.scripted import ScriptedRecognizer
from server.openapi import openapi_document
from server.providers.base import Grant, Provider, ProviderStatus, SessionPolicy, SessionRequest
from server.settings import Settings
from server.state import State
from server.wire import TagOptions, dump
from testkit.stack import APP_SECRET, PROVIDERS, Stack, stack

SERVER = Path(__file__).resolve().parent.parent / "server"
GRANT_KEYS = {
    "provider", "protocol", "ws_url", "token", "expires_at", "expires_in", "sample_rate", "frame_samples", "session_id",
}  # fmt: skip
PER_CLIENT = 2


class EchoProvider:
    """A test-only provider: it serves its own socket (which echoes audio back), its grants hold a place in a pool
    of their own, one per client, and it reports a readiness check of its own."""

    name = "echo"

    def __init__(self, http: httpx.AsyncClient, state: State) -> None:
        self.state = state
        self.tokens: dict[str, str] = {}

    def status(self) -> ProviderStatus:
        return ProviderStatus(self.name, "Echo (tests only)", configured=True, detail="Sends the audio back.")

    def policy(self) -> SessionPolicy:
        return SessionPolicy(pool="echo", per_client=1)

    def routes(self) -> Sequence[BaseRoute]:
        return [WebSocketRoute("/api/echo/stream", self.stream)]

    def readiness(self) -> Mapping[str, str]:
        return {"echo": "ok"}

    def connect_origins(self) -> list[str]:
        return []

    async def options(self) -> TagOptions:
        return TagOptions(["echo"], "echo")

    async def create_session(self, request: SessionRequest) -> Grant:
        token = secrets.token_urlsafe(16)
        self.tokens[token] = request.session_id
        # "echo": a protocol of its own (tests only; the OpenAPI document lists the page's clients).
        return Grant(
            provider=self.name,
            protocol="echo",  # type: ignore[arg-type]
            ws_url=f"{request.ws_origin}/api/echo/stream",
            token=token,
            expires_at=time.time() + 60,
            expires_in=60,
            sample_rate=16_000,
            frame_samples=320,
            session_id=request.session_id,
        )

    async def stream(self, websocket: WebSocket) -> None:
        if websocket.query_params.get("access_token") not in self.tokens:
            await websocket.close(1008)
            return
        await websocket.accept()
        await websocket.send_bytes(await websocket.receive_bytes())
        await websocket.close(1000)

    async def start(self) -> None:
        return None

    async def end_session(self, session_id: str) -> bool:
        return False

    async def aclose(self) -> None:
        return None


def _echo(http: httpx.AsyncClient, state: State) -> Provider:
    return EchoProvider(http, state)


ALL = (*PROVIDERS, "echo")


@pytest.fixture(scope="module")
def s() -> Iterator[Stack]:
    settings = Settings(secret_key=APP_SECRET, session_rate_per_min=10_000, max_sessions_per_client=PER_CLIENT)
    with stack(ScriptedRecognizer(), settings=settings, extra_providers=[_echo]) as running:
        yield running


def provider(s: Stack, name: str) -> Provider:
    found: Provider = s.app.state.providers[name]
    return found


def grant(s: Stack, name: str, client: httpx.Client) -> httpx.Response:
    return client.post(s.url + "/api/sessions", json={"provider": name}, headers={"Origin": s.url})


def end(s: Stack, name: str, session_id: str, client: httpx.Client) -> bool:
    r = client.post(f"{s.url}/api/sessions/{name}/{session_id}/end", headers={"Origin": s.url})
    assert r.status_code == 200, r.text
    ended: bool = r.json()["ended"]
    return ended


@pytest.mark.parametrize("name", ALL)
def test_listed_with_its_status(s: Stack, name: str) -> None:
    listing = httpx.get(s.url + "/api/providers").json()
    item = next(i for i in listing["providers"] if i["name"] == name)
    assert item == dump(provider(s, name).status())
    assert item["configured"] is True
    assert [i["name"] for i in listing["providers"]] == list(ALL)


@pytest.mark.parametrize("name", ALL)
def test_a_grant_has_the_contract_shape(s: Stack, name: str) -> None:
    with httpx.Client() as client:
        r = grant(s, name, client)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body.keys() >= GRANT_KEYS and body["provider"] == name
        assert r.headers["cache-control"] == "no-store"
        end(s, name, body["session_id"], client)


@pytest.mark.parametrize("name", ALL)
def test_a_grant_says_its_life_left_as_expires_at_does(s: Stack, name: str) -> None:
    """`expires_in` is what a browser goes by (its clock may be minutes off the server's): the life `expires_at`
    leaves on the provider's clock (here the real one) when the grant is handed out."""
    with httpx.Client() as client:
        before = time.time()
        r = grant(s, name, client)
        after = time.time()
        assert r.status_code == 200, r.text
        body = r.json()
        end(s, name, body["session_id"], client)
    left = body.get("expires_in")
    assert isinstance(left, int | float) and not isinstance(left, bool) and left > 0, body
    # Minted between `before` and `after`: the life left then is between these two (ms of float rounding aside).
    assert body["expires_at"] - after - 0.001 <= left <= body["expires_at"] - before + 0.001


@pytest.mark.parametrize("name", ALL)
def test_sessions_count_as_the_policy_says(s: Stack, name: str) -> None:
    """A provider whose sessions hold a place is capped per client at its own figure, in its own pool, and an
    ended session gives its place back; one whose sessions hold nothing is never capped."""
    policy = provider(s, name).policy()
    with httpx.Client() as client:
        cap = policy.per_client if policy.pool is not None else PER_CLIENT + 1
        granted = []
        for _ in range(cap):
            r = grant(s, name, client)
            assert r.status_code == 200, r.text
            granted.append(r.json()["session_id"])
        over = grant(s, name, client)
        if policy.pool is None:
            assert over.status_code == 200, over.text
            granted.append(over.json()["session_id"])
        else:
            assert over.status_code == 429 and over.json()["error"]["code"] == "too_many_sessions", over.text
            assert int(over.headers["retry-after"]) >= 1
            # Another pool is not full: the cap is per pool, not one for every provider.
            other = "truebar" if name != "truebar" else "local"
            assert grant(s, other, client).status_code == 200
            # Ended from another address than it was started from (a phone that moved from Wi-Fi to mobile
            # data): the place its start took is given back all the same.
            with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as moved:
                assert end(s, name, granted.pop(), moved) is True
            again = grant(s, name, client)
            assert again.status_code == 200, again.text
            granted.append(again.json()["session_id"])
        ends = [end(s, name, sid, client) for sid in granted]
        assert ends == [policy.pool is not None] * len(granted)


def test_the_policies_shipped() -> None:
    """What the shipped providers declare (the README's caps): Truebar grants hold nothing, Wiro tasks count in
    the cloud pool, the engine's streams in their own pool, kept below the engine's size."""
    settings = Settings(secret_key=APP_SECRET, session_rate_per_min=10_000, max_sessions_per_client=8)
    with stack(ScriptedRecognizer(max_sessions=3), settings=settings) as st:
        assert provider(st, "truebar").policy() == SessionPolicy()
        assert provider(st, "wiro").policy() == SessionPolicy(pool="cloud", per_client=8)
        assert provider(st, "local").policy() == SessionPolicy(pool="local", per_client=2)


@pytest.mark.parametrize("name", ALL)
def test_its_routes_are_served_by_the_app(s: Stack, name: str) -> None:
    routes = provider(s, name).routes()
    for route in routes:
        assert isinstance(route, WebSocketRoute)

        async def refused(path: str) -> int | None:
            try:
                async with websockets.connect(s.ws_url + path + "?access_token=forged"):
                    return None
            except websockets.exceptions.InvalidStatus as exc:
                return exc.response.status_code
            except websockets.exceptions.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

        # Served (a forged token is refused by the provider), not unknown to the app (which would say 403 before
        # any provider code ran, as for a path nobody serves).
        assert asyncio.run(refused(route.path)) in (401, 403, 1008)
    assert {r.path for r in routes if isinstance(r, WebSocketRoute)} == {
        "local": {"/api/local/stream"},
        "echo": {"/api/echo/stream"},
    }.get(name, set())


def test_the_test_only_provider_streams_through_its_own_route(s: Stack) -> None:
    with httpx.Client() as client:
        body = grant(s, "echo", client).json()

        async def echo() -> bytes:
            async with websockets.connect(f"{body['ws_url']}?access_token={body['token']}") as ws:
                await ws.send(b"\x01\x02")
                reply = await ws.recv()
                assert isinstance(reply, bytes)
                return reply

        assert asyncio.run(echo()) == b"\x01\x02"
        end(s, "echo", body["session_id"], client)


def test_readyz_gathers_every_providers_checks(s: Stack) -> None:
    r = httpx.get(s.url + "/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    expected: dict[str, str] = {"state": "ok"}
    for name in ALL:
        expected.update(provider(s, name).readiness())
    assert checks == expected and checks["echo"] == "ok" and checks["engine"] == "ok"


@pytest.mark.parametrize("module", ["app.py", "sessions.py"])
def test_the_generic_modules_never_name_a_provider(module: str) -> None:
    tree = ast.parse((SERVER / module).read_text(encoding="utf-8"))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    named = [v for v in strings if v in ALL]
    imports = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    specific = [m for m in imports if m.startswith("server.providers.") and m != "server.providers.base"]
    # Nor reach past the contract: an attribute only one provider has, or a call the type checker cannot follow.
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not named and not specific, (named, specific)
    assert not attrs & {"engine_size", "serve_stream", "max_sessions"}
    assert "type: ignore" not in (SERVER / module).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_grant_and_the_options_conform_to_the_generated_openapi_schemas(s: Stack, name: str) -> None:
    """The document's schemas come from the wire types: a real grant and real options validate against them, and a
    grant missing a field the type requires does not."""
    document = openapi_document(list(s.app.state.providers))
    schemas = document["components"]["schemas"]

    def valid(body: object, component: str) -> bool:
        schema = {"$ref": f"#/components/schemas/{component}", "components": {"schemas": schemas}}
        ok: bool = jsonschema_rs.validator_for(schema).is_valid(body)
        return ok

    with httpx.Client() as client:
        body = grant(s, name, client).json()
        assert valid(body, "Grant"), body
        options = httpx.get(f"{s.url}/api/providers/{name}/options").json()
        assert valid(options, "Options"), options
        end(s, name, body["session_id"], client)
    assert not valid({k: v for k, v in body.items() if k != "sample_rate"}, "Grant")
    assert not valid({**body, "protocol": "smoke-signals"}, "Grant")
    assert document["paths"]["/api/sessions/{name}/{session_id}/end"]["post"]["parameters"][0]["schema"]["enum"] == [
        *ALL
    ]
