"""The offline engine's own side: the app mints and checks its tokens and serves the Truebar protocol itself."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from server.app import create_app
from server.emulators.scripted import DEFAULT_SCRIPT, ScriptedRecognizer
from server.engine.types import Hypothesis, Recognizer, RecognizerFailed, RecognizerSession
from server.providers.base import SessionRequest
from server.providers.local import LOCAL_TAG, LocalClaims, LocalProvider, LocalTokens
from server.security import signed
from server.settings import LocalSettings, Settings
from server.state import MemoryLedger, MemorySpentGrants, MemoryState, MemoryStore, State, StateUnavailable
from server.transcript import Word
from server.transport import MAX_BEHIND_MS, DueTimes, ReceiveLimit, TruebarStream
from testkit.live import running
from testkit.truebar_client import config_message, transcribe_truebar
from tests.support.clock import Clock


def grant(url: str) -> dict[str, object]:
    r = httpx.post(url + "/api/sessions", json={"provider": "local"})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_tokens_sign_expire_and_bind_to_the_secret() -> None:
    clock = Clock(1000)
    tokens = LocalTokens("secret", ttl_s=60, clock=clock)
    token, expires_at = tokens.mint("abc")
    assert expires_at == 1060
    clock.advance(59)
    assert tokens.verify(token) == LocalClaims("abc", 1060.0, "")
    assert LocalTokens("other", ttl_s=60, clock=clock).verify(token) is None
    payload, _, mac = token.partition(".")
    assert tokens.verify(payload + "." + mac[::-1]) is None
    assert tokens.verify("garbage") is None
    assert tokens.verify(".") is None
    clock.advance(2)
    assert tokens.verify(token) is None


# Claims no token minted here carries, signed with the app's own key (so only their content can refuse them).
MALFORMED_CLAIMS: dict[str, object] = {
    "session-id-not-a-string": {"sid": 5, "exp": 9_999_999_999, "cid": ""},
    "no-session-id": {"exp": 9_999_999_999, "cid": ""},
    "no-client": {"sid": "abc", "exp": 9_999_999_999},
    "client-not-a-string": {"sid": "abc", "exp": 9_999_999_999, "cid": None},
    "infinite-expiry": {"sid": "abc", "exp": float("inf"), "cid": ""},
    "expiry-a-string": {"sid": "abc", "exp": "9999999999", "cid": ""},
    "not-an-object": ["abc", 9_999_999_999, ""],
}


@pytest.mark.parametrize("claims", MALFORMED_CLAIMS.values(), ids=list(MALFORMED_CLAIMS))
def test_a_token_signed_here_with_malformed_claims_is_refused_as_a_bad_token(claims: object) -> None:
    settings = Settings(secret_key="local-claims-test-key-5b8e2f0d19c4")
    token = signed(settings.secret_key, "local-stream").dumps(claims)
    assert LocalTokens(settings.secret_key, ttl_s=60, clock=Clock(1000)).verify(token) is None
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        ws_url = "ws" + url.removeprefix("http") + "/api/local/stream"
        assert asyncio.run(connect_status(ws_url, token)) == 401


def test_grant_has_the_truebar_shape_and_says_it_is_offline() -> None:
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        g = grant(url)
        listing = httpx.get(url + "/api/providers").json()
    assert g["protocol"] == "truebar" and g["sample_rate"] == 16_000 and g["frame_samples"] == 800
    assert g["tag"] == LOCAL_TAG and g["offline"] is True
    assert str(g["ws_url"]).endswith("/api/local/stream")
    local = next(p for p in listing["providers"] if p["name"] == "local")
    assert local["configured"] and local["offline"] and listing["default"] == "local"


@pytest.mark.parametrize("token", ["", "not-a-token", "eyJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.forged"])
def test_stream_refuses_bad_tokens_with_401(token: str) -> None:
    async def connect(ws_url: str) -> int:
        try:
            async with websockets.connect(f"{ws_url}?access_token={token}"):
                return 101
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        ws_url = "ws" + url.removeprefix("http") + "/api/local/stream"
        assert asyncio.run(connect(ws_url)) == 401


def test_the_shared_states_clock_drives_a_grants_expiry() -> None:
    """The app's state clock is the engine's too: a token is minted, that clock moves past the token's life, and
    the socket is refused as for any expired token (the token's life and the spent grants' were two clocks)."""
    clock = Clock()
    settings = Settings(local_token_ttl_s=60)
    with running(create_app(settings, local_recognizer=ScriptedRecognizer(), state=MemoryState(clock))) as url:
        g = grant(url)
        assert g["expires_at"] == clock.now + 60 and g["expires_in"] == 60
        clock.advance(61)
        assert asyncio.run(connect_status(str(g["ws_url"]), str(g["token"]))) == 401
        # Before its end, the same kind of grant opens its stream.
        g = grant(url)
        clock.advance(59)
        assert asyncio.run(connect_status(str(g["ws_url"]), str(g["token"]))) == 101


def test_a_clock_given_to_the_provider_drives_its_tokens_and_the_state_it_builds() -> None:
    clock = Clock(1000)
    provider = LocalProvider(Settings(local_token_ttl_s=60), clock=clock, recognizer=ScriptedRecognizer())
    minted = asyncio.run(provider.create_session(SessionRequest("ws://app")))
    assert minted.expires_at == 1060 and minted.expires_in == 60 and provider.state.clock is clock
    assert provider.tokens.verify(minted.token) is not None
    clock.advance(61)
    assert provider.tokens.verify(minted.token) is None


def test_expired_token_is_refused() -> None:
    settings = Settings(local_token_ttl_s=-1)
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        g = grant(url)
        result = asyncio.run(connect_status(str(g["ws_url"]), str(g["token"])))
    assert result == 401


async def connect_status(ws_url: str, token: str) -> int:
    try:
        async with websockets.connect(f"{ws_url}?access_token={token}"):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


def test_a_server_client_may_send_its_token_as_a_bearer_header() -> None:
    """The spec's rule for the stream: `Authorization: Bearer` from a client that can set headers (a server, as the
    vendor's Python and Java quickstarts do), the `access_token` query parameter from a browser."""

    async def first_status(ws_url: str, token: str) -> str:
        async with websockets.connect(ws_url, additional_headers={"Authorization": "Bearer " + token}) as ws:
            return str(json.loads(await ws.recv())["status"])

    async def refused(ws_url: str, token: str) -> int:
        try:
            async with websockets.connect(ws_url, additional_headers={"Authorization": "Bearer " + token}):
                return 101
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer())) as url:
        g = grant(url)
        assert asyncio.run(first_status(str(g["ws_url"]), str(g["token"]))) == "INITIALIZED"
        # Refused as a wrong token in the query is, whatever form the wrong one takes.
        assert asyncio.run(refused(str(grant(url)["ws_url"]), "not-a-token")) == 401
        assert asyncio.run(connect_status(str(grant(url)["ws_url"]), "not-a-token")) == 401


def test_a_session_streams_and_finishes() -> None:
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500))) as url:
        g = grant(url)
        pcm = bytes(16_000 * 2 * 2)  # 2 s of silence: the scripted engine paces words by audio alone
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), pcm, tag=LOCAL_TAG))
    assert [s["status"] for s in result.statuses][:2] == ["INITIALIZED", "CONFIGURED"]
    assert result.statuses[-1]["status"] == "FINISHED"
    assert " ".join(result.finals).split() == ["the", "quick", "brown", "fox"]


def test_busy_engine_gets_a_clear_error() -> None:
    recognizer = ScriptedRecognizer(max_sessions=0)
    with running(create_app(Settings(), local_recognizer=recognizer)) as url:
        g = grant(url)
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), bytes(3200), tag=LOCAL_TAG))
    assert result.errors and "busy" in result.errors[0].lower()


def test_switched_off_engine_is_not_offered() -> None:
    settings = Settings(local=LocalSettings(enabled=False))
    with running(create_app(settings, local_recognizer=ScriptedRecognizer())) as url:
        r = httpx.post(url + "/api/sessions", json={"provider": "local"})
        listing = httpx.get(url + "/api/providers").json()
    assert r.status_code == 409
    assert listing["default"] is None


class _Ledger(MemoryLedger):
    def __init__(self, store: MemoryStore, failing: set[str]) -> None:
        super().__init__(store)
        self.failing = failing

    async def release(self, scope: str, key: str) -> bool:
        if "release:grant" in self.failing and "/stream/" not in key:
            raise StateUnavailable("release failed (injected)")
        return await super().release(scope, key)

    async def hold(self, scope: str, key: str, ttl_s: float) -> None:
        if "hold" in self.failing:
            raise StateUnavailable("hold failed (injected)")
        await super().hold(scope, key, ttl_s)


class _Spent(MemorySpentGrants):
    def __init__(self, store: MemoryStore, failing: set[str]) -> None:
        super().__init__(store)
        self.failing = failing

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        if "spend" in self.failing:
            raise StateUnavailable("spend failed (injected)")
        return await super().spend(grant_id, expires_at)


class FailingLedger(State):
    """The in-memory state with switchable failures: `release:grant` (giving back a used grant's reservation),
    `hold` (taking the stream's lease), `spend` (marking the grant used)."""

    def __init__(self) -> None:
        store = MemoryStore()
        self.failing: set[str] = set()
        self.table = _Ledger(store, self.failing)
        super().__init__(store, ledger=self.table, spent=_Spent(store, self.failing))

    def streams_held(self) -> list[str]:
        now = self.clock()
        return [k for held in self.table._scopes.values() for k, exp in held.items() if "/stream/" in k and exp > now]


def test_a_grant_key_that_cannot_be_released_does_not_cost_the_stream_nor_leave_its_lease_held() -> None:
    """The stream's lease is taken and the grant spent: failing to give back the grant's reservation (it lapses by
    itself) must neither deny the socket nor leave the lease held."""
    state = FailingLedger()
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500), state=state)) as url:
        g = grant(url)
        state.failing.add("release:grant")
        pcm = bytes(16_000 * 2)
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), pcm, tag=LOCAL_TAG))
        left = state.streams_held()
    assert result.statuses and result.statuses[-1]["status"] == "FINISHED", result.errors
    assert left == [], "the denied socket's lease stays held until it lapses"


@pytest.mark.parametrize("failing", ["hold", "spend"])
def test_a_socket_refused_for_a_state_failure_keeps_its_grant_and_holds_nothing(failing: str) -> None:
    """503 while the store fails; the grant is not spent by a socket that never streamed, so the same grant opens
    its stream once the store is back."""
    state = FailingLedger()
    with running(create_app(Settings(), local_recognizer=ScriptedRecognizer(ms_per_word=500), state=state)) as url:
        g = grant(url)
        state.failing.add(failing)
        refused = asyncio.run(connect_status(str(g["ws_url"]), str(g["token"])))
        left = state.streams_held()
        state.failing.clear()
        pcm = bytes(16_000 * 2)
        result = asyncio.run(transcribe_truebar(str(g["ws_url"]), str(g["token"]), pcm, tag=LOCAL_TAG))
    assert refused == 503 and left == []
    assert result.statuses and result.statuses[-1]["status"] == "FINISHED", result.errors


class _GatedRecognizer:
    """The scripted recognizer whose decoding waits until `gate` opens: an engine that has fallen behind."""

    name = "gated"

    def __init__(self, gate: threading.Event, max_sessions: int = 1000) -> None:
        self.inner = ScriptedRecognizer(ms_per_word=500, max_sessions=max_sessions)
        self.gate = gate
        self.fed = 0
        self.behind: list[float] = []  # before each feed: how far behind real time the server said the audio was

    async def open(self) -> RecognizerSession:
        return _GatedSession(self, await self.inner.open())


class _GatedSession:
    def __init__(self, owner: _GatedRecognizer, inner: RecognizerSession) -> None:
        self.owner, self.inner = owner, inner
        self.said: float | None = None

    def behind(self, ms: float) -> None:  # types.Sheds
        self.said = ms

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        assert self.said is not None, "fed without a word on how far behind the audio is"
        self.owner.behind.append(self.said)
        self.said = None
        await asyncio.to_thread(self.owner.gate.wait)  # the gate opens from the test's thread
        self.owner.fed += len(pcm)
        return await self.inner.feed(pcm)

    async def finish(self) -> list[Hypothesis]:
        return await self.inner.finish()

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_socket_is_read_while_the_engine_is_behind_so_pings_are_answered_and_no_audio_is_lost() -> None:
    """Issue 16: with decoding behind, the handler stopped reading (uvicorn reads a connection's next message only
    when the app asks for it), pongs queued behind audio, and keepalive closed 3 of 8 sessions. Now the client's
    ping is answered while not one frame has been decoded, and once the engine catches up every byte is decoded,
    in order, and the session finishes."""
    gate = threading.Event()
    recognizer = _GatedRecognizer(gate)
    pcm = bytes(16_000 * 2 * 10)  # 10 s in 100 ms frames: 100 messages, far more than uvicorn queues

    async def session(ws_url: str, token: str) -> tuple[list[str], list[dict[str, object]]]:
        finals: list[str] = []
        statuses: list[dict[str, object]] = []
        async with websockets.connect(f"{ws_url}?access_token={token}", max_size=None, ping_interval=None) as ws:
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG, interims=False))
            await ws.recv()  # CONFIGURED
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
            pong = await ws.ping()
            await asyncio.wait_for(pong, 10)  # answered although the engine has not decoded a frame
            assert recognizer.fed == 0
            await asyncio.sleep(1.5)  # the engine stays stuck a while: the audio falls behind real time
            gate.set()
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "TEXT_SEGMENT" and message["textSegment"]["isFinal"]:
                    finals.append(" ".join(t["text"] for t in message["textSegment"]["tokens"]))
                elif message["type"] == "STATUS":
                    statuses.append(message)
        return finals, statuses

    with running(create_app(Settings(), local_recognizer=recognizer)) as url:
        g = grant(url)
        finals, statuses = asyncio.run(session(str(g["ws_url"]), str(g["token"])))
    assert statuses[-1]["status"] == "FINISHED" and statuses[-1]["lengthMs"] == 10_000
    assert recognizer.fed == len(pcm)
    # Before each feed the session heard how far behind real time its audio was (what lets the embedded engine's
    # fast pass shed its search). The client sent the 10 s at once, so the audio was due at real-time pace from its
    # first frame; the engine, stuck 1.5 s and more, then decoded it far faster than it plays: well behind at
    # first, less as it went (each 250 ms feed brings the oldest due time 250 ms on; allow for the test machine's
    # pauses), and not behind at all long before the end.
    said = recognizer.behind
    assert said[1] >= 1_000, said
    assert all(b <= a + 200 for a, b in itertools.pairwise(said[1:])), said
    assert said[len(said) // 2] < said[1] and said[-1] == 0, said
    # 10 s at 500 ms a word: 20 words of the script, in its order, each once.
    assert " ".join(finals).split() == (DEFAULT_SCRIPT * 2)[:20]


def stream_app(recognizer: Recognizer, max_behind_ms: int, limit: ReceiveLimit | None = None) -> Starlette:
    """The engine's stream server alone on a socket, with `max_behind_ms` (and an idle `limit`) for a test's
    patience."""

    async def endpoint(websocket: WebSocket) -> None:
        stream = TruebarStream(websocket, recognizer, tags=[LOCAL_TAG], max_behind_ms=max_behind_ms, limit=limit)
        await stream.run()

    return Starlette(routes=[WebSocketRoute("/s", endpoint)])


@pytest.mark.parametrize("eos", [False, True])
def test_an_engine_that_falls_behind_ends_the_session_with_a_clear_error(eos: bool) -> None:
    """A recognizer that stopped is stuck, not slow: the client hears why (1013: try again) instead of the server
    holding audio without end. A review: this was found only by the bytes held, so a file sent at once was refused
    though decoded faster than it plays (below), and a stuck engine was found only while audio came. Now by the
    audio's due time, also while the client waits for results, or for FINISHED after EOS (here 2 s instead of
    60 s)."""
    gate = threading.Event()
    pcm = bytes(16_000 * 2 * 5)

    async def session(ws_url: str) -> tuple[list[str], int | None, list[str]]:
        errors: list[str] = []
        statuses: list[str] = []
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG, interims=False))
            await ws.recv()  # CONFIGURED
            try:
                for i in range(0, len(pcm), 32_000):
                    await ws.send(pcm[i : i + 32_000])
                if eos:
                    await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
                async with asyncio.timeout(20):
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["type"] == "ERROR":
                            errors.append(message["error"]["message"])
                        elif message["type"] == "STATUS":
                            statuses.append(message["status"])
            except websockets.ConnectionClosed:
                pass
            finally:
                gate.set()
        return errors, ws.close_code, statuses

    with running(stream_app(_GatedRecognizer(gate), 2000)) as url:
        errors, code, statuses = asyncio.run(session("ws" + url.removeprefix("http") + "/s"))
    assert code == 1013 and len(errors) == 1 and "2 s behind" in errors[0], (code, errors)
    assert "FINISHED" not in statuses


def test_cancel_drops_the_audio_not_decoded_yet_instead_of_decoding_it_first() -> None:
    """A review: CANCEL decoded every frame received before it (up to MAX_BACKLOG_MS, ten minutes) for a client that
    had let the session go, and answered CANCELED only then. Now, with the engine stuck and not one frame decoded,
    CANCELED comes at once and the frames are dropped, as when a client closes the socket; the next session on the
    same socket (on an engine of one place: the cancelled session freed it) is decoded from its own first frame."""
    gate = threading.Event()
    recognizer = _GatedRecognizer(gate, max_sessions=1)

    async def session(ws_url: str) -> tuple[list[str], list[dict[str, object]], int]:
        statuses: list[dict[str, object]] = []
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG, interims=False))
            await ws.recv()  # CONFIGURED
            for _ in range(10):
                await ws.send(bytes(32_000))  # 10 s the stuck engine holds
            await ws.send(json.dumps({"type": "CANCEL"}))
            async with asyncio.timeout(20):
                canceled = json.loads(await ws.recv())
            fed_when_canceled = recognizer.fed
            gate.set()
            await ws.send(config_message(LOCAL_TAG, interims=False))
            await ws.send(bytes(32_000))
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
            finals: list[str] = []
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "TEXT_SEGMENT":
                    finals.append(" ".join(t["text"] for t in message["textSegment"]["tokens"]))
                elif message["type"] == "STATUS":
                    statuses.append(message)
        return finals, [canceled, *statuses], fed_when_canceled

    try:
        with running(stream_app(recognizer, MAX_BEHIND_MS)) as url:
            finals, statuses, fed_when_canceled = asyncio.run(session("ws" + url.removeprefix("http") + "/s"))
    finally:
        gate.set()
    assert [s.get("status") for s in statuses] == ["CANCELED", "CONFIGURED", "FINISHED"], statuses
    assert fed_when_canceled == 0
    assert statuses[-1]["lengthMs"] == 1000 and recognizer.fed == 32_000
    assert " ".join(finals).split() == DEFAULT_SCRIPT[:2]  # 1 s at 500 ms a word, from the script's start


class _AnsweringSession:
    """A session that answers every feed with a final (and a warning before it) and an interim."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def behind(self, ms: float) -> None:  # types.Sheds
        pass

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        final = Hypothesis((Word("hello", 0, 500),), True, 0, 500, warning="marked")
        return [final, Hypothesis((Word("next", 600, 800),), False, 600, 800)]

    async def finish(self) -> list[Hypothesis]:
        return []

    async def aclose(self) -> None:
        self.closed.set()


class _Answering:
    name = "answering"

    def __init__(self) -> None:
        self.sessions: list[_AnsweringSession] = []

    async def open(self) -> RecognizerSession:
        self.sessions.append(_AnsweringSession())
        return self.sessions[-1]


class _StalledReader:
    """The handler's side of a socket to a client that has stopped reading: a text message other than a STATUS goes
    only once `reading` is set (the send waits, as it does when the socket's buffers are full)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.warned = asyncio.Event()  # a feed's results are on their way
        self.reading = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def receive(self) -> dict[str, object]:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        message = json.loads(text)
        self.sent.append(message)
        if message["type"] == "WARNING":
            self.warned.set()
        if message["type"] != "STATUS":
            await self.reading.wait()

    async def close(self, code: int = 1000) -> None:
        pass


def test_nothing_of_a_cancelled_session_follows_canceled_to_a_client_slow_to_read() -> None:
    """Review: CANCEL stops the feeder, whose send of a feed's results (a warning, its final, the interim) is
    shielded so that it is never cut between a final and its interim; that send went on by itself, and the final
    reached the client after STATUS CANCELED (and could follow the next session's CONFIGURED). CANCEL now waits for
    it, and (a second review) frees the engine's place first: a client that has stopped reading holds only its own
    send."""

    async def session() -> tuple[list[str], list[str]]:
        ws, recognizer = _StalledReader(), _Answering()
        stream = TruebarStream(ws, recognizer, tags=[LOCAL_TAG])  # type: ignore[arg-type]
        handler = asyncio.create_task(stream.run())
        await ws.inbox.put({"type": "websocket.receive", "text": config_message(LOCAL_TAG, interims=True)})
        await ws.inbox.put({"type": "websocket.receive", "bytes": bytes(3200)})
        await asyncio.wait_for(ws.warned.wait(), 10)
        await ws.inbox.put({"type": "websocket.receive", "text": json.dumps({"type": "CANCEL"})})
        await asyncio.wait_for(recognizer.sessions[0].closed.wait(), 10)  # while the send still waits
        while_stalled = [str(m.get("status") or m["type"]) for m in ws.sent]
        ws.reading.set()
        await ws.inbox.put({"type": "websocket.receive", "text": config_message(LOCAL_TAG, interims=True)})
        await asyncio.sleep(0.3)
        await ws.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(handler, 10)
        return while_stalled, [str(m.get("status") or m["type"]) for m in ws.sent]

    while_stalled, sent = asyncio.run(session())
    assert while_stalled == ["INITIALIZED", "CONFIGURED", "WARNING"]
    assert sent == ["INITIALIZED", "CONFIGURED", "WARNING", "TEXT_SEGMENT", "TEXT_SEGMENT", "CANCELED", "CONFIGURED"]


class _SlowFeeds:
    """ScriptedRecognizer's sessions, each feed taking `feed_s` of real time: faster than real time, slower than a
    socket on loopback delivers a file."""

    name = "slow-feeds"

    def __init__(self, feed_s: float) -> None:
        self.inner, self.feed_s = ScriptedRecognizer(), feed_s

    async def open(self) -> RecognizerSession:
        return _SlowSession(await self.inner.open(), self.feed_s)


class _SlowSession:
    def __init__(self, inner: RecognizerSession, feed_s: float) -> None:
        self.inner, self.feed_s = inner, feed_s

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        await asyncio.sleep(self.feed_s)
        return await self.inner.feed(pcm)

    async def finish(self) -> list[Hypothesis]:
        return await self.inner.finish()

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_long_file_sent_at_once_is_decoded_not_refused() -> None:
    """Review: a client may send a file as fast as the socket allows (a Truebar client sending a recording, the
    page's file upload once it holds no more back). Audio received but not decoded past 60 s was taken for an engine
    60 s behind, and the session ended in ERROR 1013, though the engine decoded it 25 times faster than it plays.
    120 s sent at once now comes back FINISHED, with every frame decoded."""
    seconds = 120
    recognizer = _SlowFeeds(0.01)
    with running(stream_app(recognizer, MAX_BEHIND_MS)) as url:
        result = asyncio.run(
            transcribe_truebar(
                "ws" + url.removeprefix("http") + "/s", "t", bytes(seconds * 32_000), tag=LOCAL_TAG, timeout=60
            )
        )
    assert result.errors == [] and result.status_names[-1] == "FINISHED", (result.errors, result.status_names)
    assert result.statuses[-1]["lengthMs"] == seconds * 1000


def test_audio_is_due_when_it_arrives_or_when_real_time_reaches_it() -> None:
    """How far behind real time a recognizer is: the oldest audio not yet decoded, past when it was due. A frame
    sent faster than real time is due when real time reaches it, so a file sent at once is not behind while it is
    decoded faster than it plays; a pause resets the schedule to arrival."""
    due = DueTimes()
    assert due.behind_ms(5.0) == 0
    for _ in range(10):  # 1 s of audio in 100 ms frames, all at t=10
        due.arrived(10.0, 3200)
    assert due.behind_ms(9.99) == 0
    assert round(due.behind_ms(10.3)) == 300  # the first frame was due at 10.0, the rest 100 ms apart after it
    due.taken(4800)  # 150 ms decoded: the oldest byte left is due at 10.15
    assert round(due.behind_ms(10.3)) == 150
    due.taken(3200 * 8 + 1600)  # all of it
    assert due.behind_ms(99.0) == 0
    due.arrived(20.0, 3200)  # after a pause: due on arrival, not at the old schedule's 11.0
    assert round(due.behind_ms(20.5)) == 500
    due.clear()
    due.arrived(1.0, 3200)  # a new session's schedule starts afresh
    assert round(due.behind_ms(1.2)) == 200
    for _ in range(16_000):  # a client that cuts 1 s into two-byte messages, to an engine that is stuck
        due.arrived(1.0, 2)
    assert len(due._frames) == 1  # held as one stretch on the schedule, not one entry a message
    due.taken(3200 + 32_000 - 2)  # all but the last message: its two bytes were due 1.1 s after the first
    assert round(due.behind_ms(2.6)) == 500
    due.taken(2)
    due.arrived(3.0, 0)  # an empty frame holds nothing to decode, so nothing waits
    assert due.oldest() is None and due.behind_ms(60.0) == 0


def test_time_the_client_kept_the_recognizer_waiting_is_no_part_of_the_audio_s_lateness() -> None:
    due = DueTimes()
    due.arrived(10.0, 3200)  # due at 10.0
    due.arrived(10.0, 3200)  # due at 10.1, on the schedule
    due.taken(3200)
    due.waited(10.05, 10.55)  # the send of the first frame's results took half a second
    assert round(due.behind_ms(10.55)) == 0  # due within the wait: due when the wait ended
    due.arrived(10.6, 3200)  # after the wait: due on arrival
    due.taken(3200)
    assert round(due.behind_ms(10.75)) == 150
    due.arrived(11.0, 3200)
    due.waited(10.9, 11.4)  # the frame due at 10.6 waited all of it, the one due at 11.0 until 11.4
    due.waited(11.5, 11.5)  # no wait
    assert round(due.behind_ms(11.6)) == 500
    due.taken(3200)
    assert round(due.behind_ms(11.6)) == 200


class _StepClock:
    """The test's clock, in whole milliseconds so its steps add up exactly."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


class _SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop on the test's clock: a timer (a slow client's send, the stream's next look at whether the
    engine fell behind) fires once the test moves the clock past it, never by real time passing."""

    def __init__(self, clock: _StepClock) -> None:
        super().__init__()
        self._clock = clock

    def time(self) -> float:
        return self._clock()


async def settle() -> None:
    """Let every task run until it waits for the socket's next message or for the clock (nothing here waits on
    anything else: the recognizer answers at once)."""
    for _ in range(50):
        await asyncio.sleep(0)


class _SlowReader:
    """A client socket whose every send takes `send_s` (a client slow to read, its buffers full): a stand-in for the
    socket, since a real one on loopback takes megabytes before a send waits."""

    def __init__(self, send_s: float) -> None:
        self.send_s = send_s
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def accept(self) -> None:
        return None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        await asyncio.sleep(self.send_s)

    async def close(self, code: int = 1000) -> None:
        return None


class _Behind:
    """Sessions that say a word at every feed and note how far behind real time they were told they are."""

    name = "behind"

    def __init__(self) -> None:
        self.told: list[float] = []

    async def open(self) -> RecognizerSession:
        return _BehindSession(self.told)


class _BehindSession:
    def __init__(self, told: list[float]) -> None:
        self.told = told

    def behind(self, ms: float) -> None:
        self.told.append(ms)

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        return [Hypothesis((Word("word", 0, 100),), False, 0, 100)]

    async def finish(self) -> list[Hypothesis]:
        return []

    async def aclose(self) -> None:
        return None


def to_a_slow_reader(
    recognizer: Recognizer, send_s: float, frames: int, last: dict[str, Any], max_behind_ms: int = MAX_BEHIND_MS
) -> str:
    """The stream server between `recognizer` and a client whose every send takes `send_s`: CONFIG, `frames` of
    100 ms at real-time pace, then `last` (EOS, or a disconnect), the client as slow until the stream ends. Time is
    the test's clock (the stream's and its event loop's), moved on 100 ms a step, the stream settling between
    steps. How the stream ended."""
    clock = _StepClock()

    async def drive() -> str:
        socket = _SlowReader(send_s)
        stream = TruebarStream(
            socket,  # type: ignore[arg-type]
            recognizer,
            tags=[LOCAL_TAG],
            max_behind_ms=max_behind_ms,
            clock=clock,
        )
        running_stream = asyncio.create_task(stream.run())
        await socket.inbox.put({"type": "websocket.receive", "text": config_message(LOCAL_TAG)})
        await settle()
        for _ in range(frames):
            clock.advance(100)
            await socket.inbox.put({"type": "websocket.receive", "bytes": bytes(3200)})
            await settle()
        await socket.inbox.put(last)
        for _ in range(600):  # at most a minute of the clock
            await settle()
            if running_stream.done():
                break
            clock.advance(100)
        assert running_stream.done(), f"the stream still runs a minute after {last}"
        await running_stream
        return stream.outcome

    with asyncio.Runner(loop_factory=lambda: _SteppedLoop(clock)) as runner:
        return runner.run(drive())


def test_a_client_slow_to_read_does_not_make_the_engine_look_behind() -> None:
    """Review: the time the feeder waited for a client to take its results counted as the engine's lateness, so one
    slow reader made the engine shed its search and refuse everyone else's sessions as "behind real time". Here each
    send takes 0.5 s while 250 ms of audio goes per feed: the audio waits, seconds in the end, but for the client."""
    recognizer = _Behind()
    to_a_slow_reader(recognizer, 0.5, 40, {"type": "websocket.disconnect", "code": 1000})
    assert len(recognizer.told) >= 5
    # The recognizer answers at once, so all the audio's waiting is the client's: none of it is lateness. (Without
    # the waits taken out, the lateness told grows by 250 ms a feed, to 1650 ms by the end.)
    assert max(recognizer.told) < 1, recognizer.told


def test_a_client_that_reads_nothing_for_longer_than_the_behind_limit_is_not_ended_as_the_engine_behind() -> None:
    """Review: while a send to a client that does not read was still blocked, the audio's lateness counted the wait,
    and the stream was ended as "the engine fell behind" (1013, try again), blaming the server. Here the limit is 1 s
    and each send takes 1.5 s: the stream runs to its end."""
    eos = {"type": "websocket.receive", "text": json.dumps({"type": "EOS", "lockSession": False})}
    assert to_a_slow_reader(_Behind(), 1.5, 12, eos, max_behind_ms=1000) == "FINISHED"


class _DiesAtFeed(_Behind):
    async def open(self) -> RecognizerSession:
        return _DyingSession(self.told)


class _DyingSession(_BehindSession):
    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        raise RecognizerFailed("the speech engine's worker process stopped; it has been started again")


async def errors_until_closed(ws_url: str, frames: list[bytes], pace_s: float = 0.0) -> tuple[list[str], int | None]:
    """CONFIG with interims, `frames` `pace_s` apart, then what the server says until it closes: its ERROR
    messages and the close code."""
    errors: list[str] = []
    async with websockets.connect(ws_url) as ws:
        await ws.recv()  # INITIALIZED
        await ws.send(config_message(LOCAL_TAG, interims=True))
        await ws.recv()  # CONFIGURED
        for frame in frames:
            await ws.send(frame)
            await asyncio.sleep(pace_s)
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "ERROR":
                    errors.append(message["error"]["message"])
    return errors, ws.close_code


def test_a_recognizer_that_failed_under_a_stream_ends_it_with_that_reason() -> None:
    """Not "Internal error in the pipeline": the client is told the engine failed and that a new session works."""
    with running(stream_app(_DiesAtFeed(), MAX_BEHIND_MS)) as url:
        session = errors_until_closed("ws" + url.removeprefix("http") + "/s", [bytes(3200)])
        errors, code = asyncio.run(asyncio.wait_for(session, 20))
    assert code == 1011 and len(errors) == 1, (errors, code)
    assert "speech engine failed" in errors[0] and "worker process stopped" in errors[0] and "new session" in errors[0]


def test_an_idle_client_whose_last_frame_was_empty_is_ended_as_idle() -> None:
    """Review: an empty audio frame (valid: an even byte count) left an entry on the audio's schedule that no
    decoding ever took, so the session looked busy: never idle, and then ended as 'the engine fell behind' (1013,
    try again), blaming the server. It is idle like any other client that sends no audio."""
    limit = ReceiveLimit(lambda: time.time() + 1.0, "idle", idle=True)
    with running(stream_app(ScriptedRecognizer(), 3000, limit)) as url:
        session = errors_until_closed("ws" + url.removeprefix("http") + "/s", [bytes(3200)] * 5 + [b""], 0.1)
        errors, code = asyncio.run(asyncio.wait_for(session, 20))
    assert errors == ["idle"] and code == 1008, (errors, code)


@pytest.mark.parametrize("waits_s", [2.5, 12.0])
def test_a_client_awaiting_the_finals_of_a_file_is_not_idle_while_the_engine_decodes_it(waits_s: float) -> None:
    """Review: the idle limit (LOCAL_IDLE_TIMEOUT_S; here 2 s) counted from the client's last message, so a client
    that sent a file at once and awaited its finals was ended as idle while the engine still decoded it (here 10 s
    of audio in 2 s at least). It counts from when the engine last had audio of the client's to decode: awaiting
    finals 2.5 s, the session ends FINISHED after EOS; staying silent 2 s past the decoding, it is ended as idle."""
    pcm = bytes(16_000 * 2 * 10)
    limit = ReceiveLimit(lambda: time.time() + 2.0, "idle", idle=True)

    async def session(ws_url: str) -> tuple[list[str], list[str]]:
        errors: list[str] = []
        statuses: list[str] = []
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG, interims=False))
            await ws.recv()  # CONFIGURED
            for i in range(0, len(pcm), 32_000):
                await ws.send(pcm[i : i + 32_000])

            async def read() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["type"] == "ERROR":
                            errors.append(message["error"]["message"])
                        elif message["type"] == "STATUS":
                            statuses.append(message["status"])

            reader = asyncio.create_task(read())
            await asyncio.sleep(waits_s)
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(json.dumps({"type": "EOS", "lockSession": False}))
            await asyncio.wait_for(reader, 20)
        return errors, statuses

    with running(stream_app(_SlowFeeds(0.05), MAX_BEHIND_MS, limit)) as url:
        errors, statuses = asyncio.run(session("ws" + url.removeprefix("http") + "/s"))
    if waits_s < 4:
        assert errors == [] and statuses[-1] == "FINISHED", (errors, statuses)
    else:
        assert errors == ["idle"] and "FINISHED" not in statuses, (errors, statuses)
