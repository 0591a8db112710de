"""POST /api/sessions and its end (server/sessions.py) while the shared state fails, the same tests over both
stores: this process's memory (failures injected) and a real Redis (stopped with SIGSTOP, as a hung or slow Redis
is: a call times out, and a call that timed out may still run once Redis goes on). Also the per-client limits an
IPv6 client's wider networks share, and the offline engine's per-client cap with one worker or many."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import State as AppState
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from server.__main__ import app_factory
from server.app import LOGIN_RATE_PER_MIN, create_app
from server.emulators.scripted import ScriptedRecognizer
from server.pending_ends import ENDS_PER_SESSION, PendingEnd, PendingEnds, PendingUndo
from server.providers.base import SessionPolicy
from server.providers.local import LOCAL_TAG, LocalProvider
from server.settings import Settings, WiroSettings
from server.state import WIDER_FACTOR, MemoryState, RedisState, State, StateUnavailable, client_limits
from testkit.live import running
from testkit.redis_server import RedisServer
from testkit.truebar_client import transcribe_truebar
from tests.test_local import connect_status
from tests.test_provider_contract import EchoProvider
from tests.test_provider_wiro import KEY, SECRET, WiroMock

BASE = "http://127.0.0.1:8000"
CLIENT = "cloud:testclient"


class _Flaky:
    """A concern of the state whose methods fail as the state says: every one while `down` (memory's outage), the
    ones named in `failing` (a store that half works), once each one named in `late` (its call runs, but its
    answer is lost: a slow store), and once each one named in `stalled` (as `late`, and the store stays stalled
    after it: `stalled_from`)."""

    def __init__(self, inner: object, owner: Any) -> None:
        self._inner = inner
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        owner = self._owner

        async def call(*args: Any, **kwargs: Any) -> Any:
            if owner.down or name in owner.failing:
                raise StateUnavailable(f"{name} failed (injected)")
            if name in owner.late:
                owner.late.discard(name)
                await owner.run_late(lambda: attr(*args, **kwargs))
                raise StateUnavailable(f"{name} timed out (injected)")
            if name in owner.stalled:
                owner.stalled.discard(name)
                await owner.stall_after(lambda: attr(*args, **kwargs))
                raise StateUnavailable(f"{name} timed out (injected)")
            return await attr(*args, **kwargs)

        return call


class FlakyMixin:
    down = False

    def _flaky(self) -> None:
        self.failing: set[str] = set()
        self.late: set[str] = set()
        self.stalled: set[str] = set()

    def concern(self, name: str, build: Any) -> Any:
        return _Flaky(super().concern(name, build), self)  # type: ignore[misc]

    async def run_late(self, call: Callable[[], Awaitable[object]]) -> None:
        await call()

    async def stall_after(self, call: Callable[[], Awaitable[object]]) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def stalled_from(self, name: str) -> Iterator[None]:
        """A store that stalls at the call `name`, which still runs (late: its answer is lost), and stays stalled
        until the block ends: whatever undoes that call in the block times out too."""
        self.stalled.add(name)
        try:
            yield
        finally:
            self.stalled.discard(name)
            self.resume()


class FlakyMemory(FlakyMixin, MemoryState):
    def __init__(self) -> None:
        self._flaky()
        super().__init__()
        self.rate_limits = _Flaky(self.rate_limits, self)  # type: ignore[assignment]

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.down = True
        try:
            yield
        finally:
            self.down = False

    async def stall_after(self, call: Callable[[], Awaitable[object]]) -> None:
        await call()
        self.down = True

    def resume(self) -> None:
        self.down = False


class FlakyRedis(FlakyMixin, RedisState):
    def __init__(self, server: RedisServer) -> None:
        self._flaky()
        super().__init__(server.url, timeout_s=0.3)
        self.rate_limits = _Flaky(self.rate_limits, self)  # type: ignore[assignment]
        assert server.process is not None
        self.pid = server.process.pid
        self.stopped = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Redis hung: every call times out (and runs once it goes on, if still sent)."""
        os.kill(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGCONT)

    async def run_late(self, call: Callable[[], Awaitable[object]]) -> None:
        """The call is sent to a Redis that stalls past the timeout, then goes on and runs it (on a connection
        already made: a new one's handshake would time out before the call is sent)."""
        os.kill(self.pid, signal.SIGSTOP)
        try:
            with contextlib.suppress(StateUnavailable):
                await call()
        finally:
            os.kill(self.pid, signal.SIGCONT)
        await asyncio.sleep(0.2)  # Redis runs what it was sent

    async def stall_after(self, call: Callable[[], Awaitable[object]]) -> None:
        """The call is sent to a Redis that stalls (as `run_late`), and stays stalled until `resume`."""
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True
        with contextlib.suppress(StateUnavailable):
            await call()

    def resume(self) -> None:
        if self.stopped:
            os.kill(self.pid, signal.SIGCONT)
            self.stopped = False


Flaky = FlakyMemory | FlakyRedis


@pytest.fixture(params=["memory", "redis"])
def flaky(request: pytest.FixtureRequest) -> Flaky:
    if request.param == "memory":
        return FlakyMemory()
    return FlakyRedis(request.getfixturevalue("redis"))


def retrying_every(app: Starlette, seconds: float) -> None:
    """The app's kept ends and undos tried again every `seconds` (made before its lifespan would make its own)."""
    rate = app.state.settings.session_rate_per_min
    app.state.pending_ends = PendingEnds(app.state, ENDS_PER_SESSION * rate, retry_s=seconds)


def served(app: Any, state: Flaky) -> Any:
    """The app, closing the state it was given when its lifespan ends (in its own event loop, where the state's
    Redis connections were made), and seeing each request come from the address in its X-Test-Client header."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":

            async def closing(message: Message) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    await state.aclose()
                await send(message)

            await app(scope, receive, closing)
            return
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-client":
                    scope = {**scope, "client": (value.decode(), 5000)}
        await app(scope, receive, send)

    return asgi


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("outage", ["down", "half"])
def test_an_end_during_an_outage_reaches_the_provider_once_the_store_answers(flaky: Flaky, outage: str) -> None:
    """A Wiro task's end while the store is down (no rate limit stands in its way), or while it half works (the
    ledger answers, the task registry times out): answered 503 with Retry-After, and the end is kept and tried again
    until the store answers, so the billed task is killed and the client's place given back."""
    wiro = WiroMock()
    settings = Settings(wiro=WiroSettings(api_key=KEY, api_secret=SECRET))
    app = create_app(settings, transport=httpx.MockTransport(wiro.handle), state=flaky)
    retrying_every(app, 0.1)
    with TestClient(served(app, flaky), base_url=BASE) as client:
        minted = client.post("/api/sessions", json={"provider": "wiro"})
        assert minted.status_code == 200, minted.text
        session_id = minted.json()["session_id"]
        outage_ctx = flaky.outage() if outage == "down" else contextlib.nullcontext()
        if outage == "half":
            flaky.failing.add("by_handle")
        with outage_ctx:
            ended = client.post(f"/api/sessions/wiro/{session_id}/end")
            kills_meanwhile = list(wiro.kills)
        flaky.failing.clear()
        killed = until(lambda: wiro.kills == ["1"])
        held = client.portal.call(flaky.ledger.held, CLIENT)  # type: ignore[union-attr]
    assert ended.status_code == 503 and int(ended.headers["Retry-After"]) >= 1
    assert kills_meanwhile == []
    assert killed, f"the end was lost: kills {wiro.kills}"
    assert held == 0


class Billed(EchoProvider):
    """A provider whose sessions hold a place in the cloud pool, one per client (as a Wiro task does), and whose end
    needs nothing of the store."""

    def __init__(self, http: httpx.AsyncClient, state: State) -> None:
        super().__init__(http, state)
        self.ended: list[str] = []

    def policy(self) -> SessionPolicy:
        return SessionPolicy(pool="cloud", per_client=1)

    async def end_session(self, session_id: str) -> bool:
        self.ended.append(session_id)
        return True


def test_an_end_whose_place_could_not_be_given_back_frees_it_once_the_store_answers(flaky: Flaky) -> None:
    """With the store down, neither the place's look-up nor the rate limit stands between the client and the
    provider's end (which needs no store here: answered 200); the place it could not give back is given back once
    the store answers, before the client's next mint, which is not refused for it."""
    providers: list[Billed] = []

    def billed(http: httpx.AsyncClient, state: State) -> Billed:
        providers.append(Billed(http, state))
        return providers[-1]

    app = create_app(Settings(), state=flaky, extra_providers=[billed])
    with TestClient(served(app, flaky), base_url=BASE) as client:
        session_id = client.post("/api/sessions", json={"provider": "echo"}).json()["session_id"]
        with flaky.outage():
            ended = client.post(f"/api/sessions/echo/{session_id}/end")
        after = client.post("/api/sessions", json={"provider": "echo"})
    assert ended.status_code == 200 and ended.json()["ended"] is True
    assert providers[0].ended == [session_id]
    assert after.status_code == 200, after.text


def test_a_mint_whose_admission_ran_but_timed_out_holds_no_place(flaky: Flaky) -> None:
    """A slow store: the mint's reservation ran but its answer came too late, so the client is told 503. The place
    must not stay taken (for PENDING_TTL_S) by a client that was given nothing."""
    app = create_app(Settings(max_sessions_per_client=1), local_recognizer=ScriptedRecognizer(), state=flaky)
    with TestClient(served(app, flaky), base_url=BASE) as client:
        # A first session, made and ended: Redis knows the ledger's scripts (a stalled EVALSHA of an unknown script
        # would run as a NOSCRIPT error, not as the late admission this test is about).
        first = client.post("/api/sessions", json={"provider": "local"}).json()
        assert client.post(f"/api/sessions/local/{first['session_id']}/end").status_code == 200
        flaky.late.add("admit")
        refused = client.post("/api/sessions", json={"provider": "local"})
        again = client.post("/api/sessions", json={"provider": "local"})
    assert refused.status_code == 503
    assert again.status_code == 200, again.text


def test_a_socket_refused_when_its_spend_ran_late_keeps_its_grant_usable(flaky: Flaky) -> None:
    """A slow store: the socket's spend ran but its answer came too late, so the socket is refused 503. Its grant
    must stay usable (as refused sockets' grants do), so the page's retry with the same grant streams."""
    spend = "spend_by" if hasattr(flaky.spent, "spend_by") else "spend"
    app = create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500), state=flaky)
    with running(served(app, flaky)) as url:
        grant = httpx.post(url + "/api/sessions", json={"provider": "local"}).json()
        flaky.late.add(spend)
        refused = asyncio.run(connect_status(str(grant["ws_url"]), str(grant["token"])))
        pcm = bytes(16_000 * 2)
        result = asyncio.run(transcribe_truebar(str(grant["ws_url"]), str(grant["token"]), pcm, tag=LOCAL_TAG))
    assert refused == 503
    assert result.statuses and result.statuses[-1]["status"] == "FINISHED", result.errors


def test_a_mint_whose_admission_ran_late_while_the_store_stalled_through_its_undo_holds_no_place(flaky: Flaky) -> None:
    """A store that stalls: the mint's reservation runs once it goes on, after the place's give-back (sent while it
    stalled) timed out too. The give-back is kept and made once the store answers, so the place is not taken for
    PENDING_TTL_S by a client that was given nothing."""
    app = create_app(Settings(max_sessions_per_client=1), local_recognizer=ScriptedRecognizer(), state=flaky)
    retrying_every(app, 0.1)
    with TestClient(served(app, flaky), base_url=BASE) as client:
        # Redis knows the ledger's scripts (as in the test above).
        first = client.post("/api/sessions", json={"provider": "local"}).json()
        assert client.post(f"/api/sessions/local/{first['session_id']}/end").status_code == 200
        with flaky.stalled_from("admit"):
            refused = client.post("/api/sessions", json={"provider": "local"})
            kept = len(app.state.pending_ends)
        undone = until(lambda: len(app.state.pending_ends) == 0)
        held = client.portal.call(flaky.ledger.held, "local:testclient")  # type: ignore[union-attr]
    assert refused.status_code == 503
    assert held == 0
    assert kept == 1 and undone


def test_a_socket_whose_spend_ran_late_while_the_store_stalled_through_its_undo_keeps_its_grant_usable(
    flaky: Flaky,
) -> None:
    """A store that stalls: the socket's spend runs once it goes on, after the un-spend (sent while it stalled)
    timed out too. The un-spend and the lease's give-back are kept and made once the store answers, so the grant is
    usable again then (not spent for its whole lifetime)."""
    spend = "spend_by" if hasattr(flaky.spent, "spend_by") else "spend"
    app = create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500), state=flaky)
    retrying_every(app, 3600.0)  # no pass of the retries' own before the socket below
    with running(served(app, flaky)) as url:
        grant = httpx.post(url + "/api/sessions", json={"provider": "local"}).json()
        with flaky.stalled_from(spend):
            refused = asyncio.run(connect_status(str(grant["ws_url"]), str(grant["token"])))
            kept = len(app.state.pending_ends)
        # At once, before the retries' next pass: the socket makes its client's kept undos first.
        pcm = bytes(16_000 * 2)
        result = asyncio.run(transcribe_truebar(str(grant["ws_url"]), str(grant["token"]), pcm, tag=LOCAL_TAG))
        left = len(app.state.pending_ends)
    assert refused == 503
    assert result.statuses and result.statuses[-1]["status"] == "FINISHED", result.errors
    assert kept == 2 and left == 0


def test_kept_ends_are_bounded_per_network_and_keeping_one_costs_the_same_however_many_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each client keeps at most the ends it may send a minute, its /56 and /48 WIDER_FACTOR times that; a full
    list refuses without a look at what it holds, and the refusals are logged once until the store answers."""
    looked_up: list[str] = []

    def counted(client: str, per_minute: int) -> list[tuple[str, int]]:
        looked_up.append(client)
        return client_limits(client, per_minute)

    def end(client: str, n: int) -> PendingEnd:
        return PendingEnd("echo", f"{client}-{n}", client, None, located=True)

    async def keep_them() -> list[object]:
        app_state = AppState()
        app_state.shared, app_state.providers = MemoryState(), {}
        pending = PendingEnds(app_state, per_client_per_min=2, retry_s=3600.0, max_entries=40, limits=counted)
        seen: list[object] = []
        for n in range(5):
            pending.keep(end("10.0.0.1", n))
        seen.append(len(pending))  # 2
        for n in range(3):
            pending.keep(end("2001:db8::/64", n))
        seen.append(len(pending))  # 4
        # Three more /64s, each in its own /56 of that /48 (6 in all), then four in one /56 (6).
        for client in ["2001:db8:0:100::/64", "2001:db8:0:200::/64", "2001:db8:0:300::/64"]:
            for n in range(3):
                pending.keep(end(client, n))
        seen.append(len(pending))  # 8
        for client in ["2001:db8:1:1::/64", "2001:db8:1:2::/64", "2001:db8:1:3::/64", "2001:db8:1:4::/64"]:
            for n in range(3):
                pending.keep(end(client, n))
        seen.append(len(pending))  # 14
        looked_up.clear()
        pending.keep(end("10.0.0.2", 0))
        seen.append(list(looked_up))  # one look-up, whatever is kept
        for n in range(100):
            pending.keep(end(f"10.0.1.{n // 2}", n))
        seen.append(len(pending))  # full: 40
        looked_up.clear()
        for n in range(100):
            pending.keep(end(f"10.0.2.{n}", n))
        pending.keep(end("10.0.0.1", 0))  # an end already kept, sent again: still kept
        seen.append((len(pending), list(looked_up)))
        seen.append(sum("neither completed nor kept" in r.getMessage() for r in caplog.records))
        await pending.retry()  # the store answers
        pending.keep(end("10.0.0.3", 0))
        for n in range(3):
            pending.keep(end("10.0.0.3", n))
        seen.append(sum("neither completed nor kept" in r.getMessage() for r in caplog.records))
        await pending.stop()
        return seen

    with caplog.at_level(logging.WARNING, logger="server.pending_ends"):
        seen = asyncio.run(keep_them())
    assert seen[:4] == [2, 4, 8, 14]
    assert seen[4] == ["10.0.0.2"]
    assert seen[5] == 40
    assert seen[6] == (40, [])
    # Once for the outage, once for what it refused when the store answered, once for the next outage.
    assert seen[7:] == [1, 3]


def test_kept_undos_leave_the_ends_their_room_and_a_pass_stops_at_the_first_the_store_fails() -> None:
    """Refused sockets (no rate limit bounds them) keep undos: they must not fill the room an end needs (a Wiro task
    would run billed). A pass of retries ends at the first entry the store fails, not after each one's timeout."""
    tried: list[str] = []

    async def down(_state: State) -> object:
        tried.append("undo")
        raise StateUnavailable("down")

    async def scenario() -> tuple[int, int, list[str]]:
        app_state = AppState()
        app_state.shared, app_state.providers = MemoryState(), {}
        pending = PendingEnds(app_state, per_client_per_min=100, retry_s=3600.0, max_entries=3)
        for n in range(5):
            pending.keep(PendingUndo(f"unspend {n}", f"10.0.0.{n}", down))
        undos = len(pending)
        pending.keep(PendingEnd("echo", "s1", "10.0.1.1", None, located=True))
        await pending.retry()
        await pending.stop()
        return undos, len(pending), tried

    undos, kept, tried_ = asyncio.run(scenario())
    assert undos == 3 and kept == 4, "the end kept beside a full list of undos"
    assert tried_ == ["undo"], "one timeout a pass, not one an entry"


def test_kept_ends_stop_with_the_lifespan_and_the_next_one_retries_them() -> None:
    """The retries of what the store kept from being done end with the lifespan (none runs on a closed state), and
    a lifespan started again (a restarted app) retries what was left without waiting for a new end to be kept."""
    flaky = FlakyMemory()
    app = create_app(Settings(), state=flaky, local_recognizer=ScriptedRecognizer(), extra_providers=[Billed])
    retrying_every(app, 0.05)

    async def first() -> tuple[int, int, bool]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                session_id = (await client.post("/api/sessions", json={"provider": "echo"})).json()["session_id"]
                flaky.failing.add("release")
                ended = await client.post(f"/api/sessions/echo/{session_id}/end")
            task = app.state.pending_ends._task
            await asyncio.sleep(0.2)
        return ended.status_code, len(app.state.pending_ends), task is not None and task.done()

    async def second() -> bool:
        async with app.router.lifespan_context(app):
            for _ in range(100):
                if len(app.state.pending_ends) == 0:
                    return True
                await asyncio.sleep(0.02)
        return False

    ended, left, stopped = asyncio.run(first())
    flaky.failing.clear()
    retried = asyncio.run(second())
    assert ended == 200 and left == 1
    assert stopped, "the retries outlived the lifespan"
    assert retried, "what the last lifespan left was not retried"
    assert asyncio.run(flaky.ledger.held("cloud:127.0.0.1")) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_engine_s_per_client_cap_is_the_same_with_one_worker_or_many(workers: int) -> None:
    """The cap counts in a ledger every worker shares: it follows the machine's engine, not one worker's share of
    it (which gave 4 places with one worker, 2 with two, 1 with four). Each worker's engine still refuses what it
    cannot decode ("busy")."""
    env = {
        "APP_WORKERS": str(workers),
        "APP_REDIS_URL": "redis://127.0.0.1:1/0",
        "APP_SECRET_KEY": "cap-test-secret-5b1e0c9d7a3f2468",
        "LOCAL_MAX_SESSIONS": "6",
        "APP_MAX_SESSIONS_PER_CLIENT": "4",
    }
    settings = app_factory(env).state.settings
    share = settings.local.engine.max_sessions
    configured = LocalProvider(settings).policy()
    loaded = LocalProvider(settings, recognizer=ScriptedRecognizer(max_sessions=share)).policy()
    assert (configured.per_client, loaded.per_client) == (4, 4)


def test_login_tries_from_the_64s_of_one_48_share_a_limit(flaky: Flaky) -> None:
    """One user given a /48 has 65,536 /64s: each gets the login's own limit, but all of them together only
    WIDER_FACTOR times it (the /56's and /48's)."""
    app = create_app(Settings(app_password="right-password-1"), state=flaky)
    answers = []
    with TestClient(served(app, flaky), base_url=BASE, follow_redirects=False) as client:
        for n in range(WIDER_FACTOR * LOGIN_RATE_PER_MIN + 20):
            address = f"2001:db8:7:{n // 4:x}::{n % 4 + 1:x}"  # 4 tries from each /64, all in one /56
            r = client.post("/login", data={"password": "wrong"}, headers={"X-Test-Client": address})
            answers.append(r.status_code)
        other = client.post("/login", data={"password": "wrong"}, headers={"X-Test-Client": "2001:db8:8::1"})
    assert answers.count(401) == WIDER_FACTOR * LOGIN_RATE_PER_MIN
    assert set(answers[WIDER_FACTOR * LOGIN_RATE_PER_MIN :]) == {429}
    assert other.status_code == 401, "another /48 has its own limits"


def test_mints_and_open_sessions_from_the_64s_of_one_48_share_higher_limits(flaky: Flaky) -> None:
    """Mints: each /64 its own rate, its network WIDER_FACTOR times it. Open sessions: each /64 its own cap, its
    /56 and /48 together WIDER_FACTOR times it; an end frees the place in all of them."""
    app = create_app(
        Settings(session_rate_per_min=2),
        state=flaky,
        local_recognizer=ScriptedRecognizer(),
        extra_providers=[lambda http, state: Billed(http, state)],
    )
    with TestClient(served(app, flaky), base_url=BASE) as client:

        def mint(address: str, provider: str = "echo") -> httpx.Response:
            return client.post("/api/sessions", json={"provider": provider}, headers={"X-Test-Client": address})

        # Rate: 2 a minute per /64, 6 per /48 (counted before the provider is chosen: an unknown one is a 400).
        rated = [mint(f"2001:db8:5:{n}::1", "none").status_code for n in range(1, 5) for _ in range(2)]
        # Open sessions: one per /64, 3 per /56.
        opened = [mint(f"2001:db8:6:{n}::1") for n in range(1, 5)]
        freed = client.post(
            f"/api/sessions/echo/{opened[0].json()['session_id']}/end", headers={"X-Test-Client": "2001:db8:6:1::1"}
        )
        after = mint("2001:db8:6:4::1")
    assert rated == [400] * 6 + [429] * 2
    assert [r.status_code for r in opened] == [200, 200, 200, 429]
    assert opened[3].json()["error"]["code"] == "too_many_sessions"
    assert "network" in opened[3].json()["error"]["message"]
    assert freed.status_code == 200 and after.status_code == 200, after.text


def test_captions_links_from_the_64s_of_one_48_share_a_higher_cap(flaky: Flaky) -> None:
    """Open captions links: each /64 its own cap, its /56 and /48 together WIDER_FACTOR times it."""
    app = create_app(Settings(captions_max_shares_per_client=1), state=flaky, local_recognizer=ScriptedRecognizer())
    with TestClient(served(app, flaky), base_url=BASE) as client:

        def share(address: str) -> httpx.Response:
            return client.post("/api/captions", json={}, headers={"X-Test-Client": address})

        made = [share(f"2001:db8:7:{n}::1") for n in range(1, 5)]
        same_64 = share("2001:db8:7:1::2")
        stopped = client.delete(
            f"/api/captions/{made[0].json()['share_id']}",
            headers={"Authorization": f"Bearer {made[0].json()['publish_token']}", "X-Test-Client": "2001:db8:7:1::1"},
        )
        after = share("2001:db8:7:4::1")
    assert [r.status_code for r in made] == [200, 200, 200, 429] and same_64.status_code == 429
    assert made[3].json()["error"]["code"] == "too_many_shares"
    assert stopped.json() == {"revoked": True} and after.status_code == 200, after.text
