"""The embedded offline engine (pocketsphinx interims, Whisper finals), spoken to over the Truebar protocol on the
app's own socket.

The page uses the same Truebar client for it: the grant has the Truebar shape, the app mints and checks the
short-lived token itself, and the stream endpoint (/api/local/stream) is the engine's own Truebar-protocol stream
server (server/transport.py), which the Truebar emulator observes with its faults, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from server.engine.accurate import AccurateScheduler
from server.engine.config import EngineConfig
from server.engine.loader import load_engine
from server.engine.model import ModelError
from server.engine.twopass import TwoPassRecognizer
from server.engine.types import Bounded, Closes, Recognizer, ReportsShedding, WarmsUp
from server.errors import ApiError
from server.metrics import Metrics
from server.pending_ends import PendingUndo, Undo, pending_ends
from server.protocols.truebar import bearer_token
from server.providers.base import Grant, ProviderStatus, SessionPolicy, SessionRequest
from server.security import load_signed, signed
from server.settings import Settings
from server.state import (
    MemoryState,
    State,
    StateUnavailable,
    hold_place,
    ledger_key,
    ledger_scope,
    release_place,
)
from server.transport import ReceiveLimit, TruebarStream, deny
from server.wire import TagOptions, seconds_left

logger = logging.getLogger(__name__)

LOCAL_TAG = "POCKETSPHINX:en-US:*:*"
SAMPLE_RATE = 16_000
# 50 ms: a partial or an endpoint can only be noticed when audio arrives, so half the Truebar guide's 100 ms frame
# takes about 50-100 ms off the first interim and the endpoint interim (bench/README.md, "Latency levers"); on
# loopback the extra messages cost nothing worth measuring.
FRAME_SAMPLES = 800
# An open stream's entry in the ledger lapses this long after its process last renewed it (a SIGKILLed process
# cannot release it).
STREAM_LEASE_S = 30.0


# The ledger pool of the engine's sessions: its cap protects the engine's decoders, apart from the cloud's.
POOL = "local"


def stream_key(session_id: str, socket_id: str) -> str:
    """One socket's lease. Each socket has its own key: a second socket replaying the grant is refused and gives
    back its own lease, never the one of the stream that spent the grant."""
    return f"{ledger_key(LocalProvider.name, session_id)}/stream/{socket_id}"


@contextlib.asynccontextmanager
async def _renewing(state: State, scope: str, key: str) -> AsyncIterator[None]:
    """Renews the lease on `key` while the body runs. A state store that is down only skips renewals: the stream
    carries on."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(STREAM_LEASE_S / 3)
            try:
                await hold_place(state.ledger, scope, key, STREAM_LEASE_S)
            except StateUnavailable as exc:
                logger.warning("local: could not renew an open stream's lease (%s)", exc)

    task = asyncio.create_task(renew(), name="local-stream-lease")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class LocalClaims:
    """What a stream token carries (as {sid, exp, cid}): the session it opens, when it expires (epoch seconds), and
    the minting client's key (the ledger the stream counts in)."""

    session_id: str
    expires_at: float
    client: str

    @classmethod
    def parse(cls, data: object) -> LocalClaims | None:
        """The claims, or None when one is missing or of another type. Only a holder of the secret can sign such
        claims, but a stream must still never open on them: a session id that is no string would be spent under
        its text ("None"), and an infinite expiry would be accepted forever (and crash the spent store's TTL)."""
        if not isinstance(data, dict):
            return None
        sid, exp, cid = data.get("sid"), data.get("exp"), data.get("cid")
        # bool is an int to Python, never an expiry.
        if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
            return None
        if not isinstance(sid, str) or not isinstance(cid, str):
            return None
        return cls(sid, float(exp), cid)


class LocalTokens:
    """Short-lived signed tokens (server.security.signed) carrying LocalClaims. Checked when the socket opens.
    Expiries are Unix seconds of `clock`."""

    def __init__(self, secret: str, ttl_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self._serializer = signed(secret, "local-stream")
        self.ttl_s = ttl_s
        self.clock = clock

    def mint(self, session_id: str, client: str = "") -> tuple[str, float]:
        """`client` (the minting client's key) rides in the token, so the stream counts in that client's ledger
        on whichever process it opens."""
        expires_at = self.clock() + self.ttl_s
        return self._serializer.dumps({"sid": session_id, "exp": expires_at, "cid": client}), expires_at

    def verify(self, token: str) -> LocalClaims | None:
        """The token's claims, or None for a token that is not signed here, carries malformed claims or expired."""
        claims = LocalClaims.parse(load_signed(self._serializer, token))
        if claims is None or claims.expires_at <= self.clock():
            return None
        return claims


class LocalProvider:
    name = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        state: State | None = None,
        clock: Callable[[], float] | None = None,
        recognizer: Recognizer | None = None,
        loader: Callable[[EngineConfig], Recognizer] = load_engine,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        # Spent grants (a grant opens one stream, on any process) and the ledger of open streams.
        self.state = state if state is not None else MemoryState(clock or time.time)
        # Unix seconds: by default the state's own clock, which measures how long a spent grant is kept, so that a
        # grant's expiry and that time are read from one clock.
        self.clock = clock or self.state.clock
        self.tokens = LocalTokens(settings.secret_key, settings.local_token_ttl_s, clock=self.clock)
        self._recognizer = recognizer
        self._owns_recognizer = False
        self._loader = loader
        self.metrics = metrics or Metrics()
        if recognizer is not None:
            self._watch(recognizer)
        # The one load of the engine (started by start()) and, once it failed, why: a failed load is not tried
        # again by every mint (each try costs seconds of CPU and would fail the same way); a restart does.
        self._load: asyncio.Task[None] | None = None
        self._load_error: ApiError | None = None
        self._closing = False

    def status(self) -> ProviderStatus:
        enabled = self.settings.local.enabled
        return ProviderStatus(
            self.name,
            "Offline engine (pocketsphinx + Whisper, on this machine)"
            if self.settings.local.engine.whisper
            else "Offline engine (pocketsphinx, on this machine)",
            configured=enabled,
            missing=() if enabled else ("LOCAL_ENGINE=1",),
            detail="US English; no account, no network: audio never leaves this machine.",
            offline=True,
        )

    def policy(self) -> SessionPolicy:
        """A grant, then its open stream, holds a place in the client's local ledger. One client stays below the
        engine's size, so it cannot hold every decoder.

        The size is the whole deployment's (every worker's engine together, `all_workers_sessions`), as the ledger
        is shared by every worker: one worker's share would give a client 4 places with one worker, 2 with two and
        1 with four. A worker whose own share is taken still answers "busy" (the engine's own refusal)."""
        per_client = max(1, min(self.settings.max_sessions_per_client, self.deployment_size - 1))
        return SessionPolicy(pool=POOL, per_client=per_client)

    def routes(self) -> Sequence[BaseRoute]:
        return [WebSocketRoute("/api/local/stream", self.serve_stream)]

    def connect_origins(self) -> list[str]:
        return []  # the app's own origin, always allowed

    async def options(self) -> TagOptions:
        return TagOptions([LOCAL_TAG], LOCAL_TAG)

    async def start(self) -> None:
        """Start loading the engine now, in the background: the first user does not wait for it, and a broken
        model shows in the log (and in /readyz) at start-up rather than at the first session."""
        if self.settings.local.enabled:
            self._start_load()

    def _start_load(self) -> asyncio.Task[None]:
        if self._load is None:
            self._load = asyncio.get_running_loop().create_task(self._load_engine(), name="local-engine-load")
        return self._load

    async def _load_engine(self) -> None:
        if self._recognizer is not None:
            return
        recognizer: Recognizer | None = None
        try:
            # Loading the models takes a second or two of CPU: in a thread, so the event loop keeps answering.
            recognizer = await asyncio.to_thread(self._loader, self.settings.local.engine)
            if isinstance(recognizer, WarmsUp) and not self._closing:
                # Start the worker processes and build their decoders now, not in the first session.
                await recognizer.warm_up()
            self._recognizer = recognizer
            self._owns_recognizer = True
            self._watch(recognizer)
        except ModelError as exc:
            # The message names files on this machine: for the server's log, not for the client.
            logger.error("The offline engine's Whisper model is unusable: %s", exc)
            self._failed("The offline engine's Whisper model is missing or corrupted (the server log says what to do).")
        except Exception as exc:
            logger.exception("The offline engine could not start")
            self._failed(f"The offline engine could not start: {type(exc).__name__}.")
        if self._load_error is not None and isinstance(recognizer, Closes):
            # Loaded but not warmed up: stop whatever workers it did start.
            with contextlib.suppress(Exception):
                await recognizer.aclose()

    def _watch(self, recognizer: Recognizer) -> None:
        """Report the engine's latencies, fallbacks and queue to /metrics."""
        fast = recognizer.fast if isinstance(recognizer, TwoPassRecognizer) else recognizer
        if isinstance(fast, ReportsShedding):
            fast.on_shed = self.metrics.utterances_shed
        if isinstance(recognizer, TwoPassRecognizer):
            recognizer.observer = self.metrics
            accurate = recognizer.accurate
            if isinstance(accurate, AccurateScheduler):
                self.metrics.watch_queue(lambda: accurate.depth)

    def _failed(self, message: str) -> None:
        self._load_error = ApiError(503, "engine_unavailable", message + " Restart the server to try again.")

    def readiness(self) -> Mapping[str, str]:
        """The engine for /readyz: "ok", "off", "loading", or "failed: <why>"."""
        if not self.settings.local.enabled:
            engine = "off"
        elif self._load_error is not None:
            engine = f"failed: {self._load_error.message}"
        else:
            engine = "ok" if self._recognizer is not None and self._load_done() else "loading"
        return {"engine": engine}

    async def recognizer(self) -> Recognizer:
        """The engine: the one loaded at start-up (waited for while it loads), or the failure it ended in."""
        if self._load_error is None and (self._recognizer is None or not self._load_done()):
            await asyncio.shield(self._start_load())
        if self._load_error is not None:
            raise self._load_error
        assert self._recognizer is not None
        return self._recognizer

    def _load_done(self) -> bool:
        return self._load is None or self._load.done()

    async def create_session(self, request: SessionRequest) -> Grant:
        if not self.settings.local.enabled:
            raise ApiError(409, "not_configured", "The offline engine is switched off (LOCAL_ENGINE=0).")
        await self.recognizer()
        session_id = request.session_id
        token, expires_at = self.tokens.mint(session_id, client=request.client_id)
        return Grant(
            provider=self.name,
            protocol="truebar",
            ws_url=f"{request.ws_origin}/api/local/stream",
            token=token,
            expires_at=expires_at,
            expires_in=seconds_left(expires_at, self.clock()),
            sample_rate=SAMPLE_RATE,
            frame_samples=FRAME_SAMPLES,
            session_id=session_id,
            tag=LOCAL_TAG,
            tags=[LOCAL_TAG],
            offline=True,
        )

    async def serve_stream(self, websocket: WebSocket) -> None:
        """WS /api/local/stream: the Truebar stream protocol over the embedded engine. The grant's token comes as
        the real service takes it: `Authorization: Bearer` from a server, `?access_token=` from a browser.

        While the socket is open it holds a lease in the minting client's ledger (renewed every
        STREAM_LEASE_S / 3), released when the socket closes however it closes; a process that dies mid-stream
        stops renewing, and the entry lapses by itself."""
        found = bearer_token(websocket.headers, websocket.query_params)
        claims = self.tokens.verify(found[0]) if found else None
        if claims is None or not self.settings.local.enabled:
            await deny(websocket, 401)
            return
        session_id, client = claims.session_id, claims.client
        scope = ledger_scope(POOL, client)
        lease = stream_key(session_id, secrets.token_urlsafe(8))
        # The lease first, then the grant is spent (marked with this socket's lease): a store that fails between
        # the two leaves the grant unspent (the page may open its stream when the store is back), and whatever fails
        # gives the lease back. This client's kept undos go first: the store answers again, and the un-spend of a
        # socket refused while it stalled may be this grant's.
        try:
            await pending_ends(websocket).retry(client)
            await hold_place(self.state.ledger, scope, lease, STREAM_LEASE_S)
            spent = await self.state.spent.spend_by(session_id, claims.expires_at, lease)
        except StateUnavailable:
            # A call that timed out may still have run (a slow store, not a down one): the grant may be spent by
            # this socket although it is refused. Un-spent if this socket is who spent it (never another's spend),
            # so the page's retry with the same grant opens its stream, and the lease given back. An undo the store
            # fails too is made once it answers (a stalled store runs the late spend after the refused undo).
            await self._undo(websocket, client, lease, session_id)
            await deny(websocket, 503)
            return
        if not spent:
            with contextlib.suppress(StateUnavailable):
                await release_place(self.state.ledger, scope, lease)
            await deny(websocket, 401)
            return
        try:
            await release_place(self.state.ledger, scope, ledger_key(self.name, session_id))
        except StateUnavailable as exc:
            # The stream has its lease and the grant is spent: refusing now would waste both. The grant's
            # reservation lapses by itself (the client counts one place too many until then).
            logger.warning("local: could not release a used grant's reservation (%s)", exc)
        try:
            try:
                recognizer = await self.recognizer()
            except ApiError:
                await deny(websocket, 503)
                return
            stream = TruebarStream(websocket, recognizer, tags=[LOCAL_TAG], limit=self._idle_limit())
            self.metrics.streams_open.inc()
            try:
                async with _renewing(self.state, scope, lease):
                    await stream.run()
            finally:
                self.metrics.streams_open.dec()
                # A client's own close code is not a label: it picks any of thousands, each a new series.
                code = "client" if stream.closed_by_client else str(stream.close_code or "")
                self.metrics.streams_ended.labels(stream.outcome, code).inc()
        finally:
            with contextlib.suppress(StateUnavailable):
                await release_place(self.state.ledger, scope, lease)

    async def _undo(self, websocket: WebSocket, client: str, lease: str, session_id: str) -> None:
        """Give back a refused socket's lease and un-spend its grant, both at once; what the store fails is kept by
        the app's PendingEnds to be made once it answers."""
        scope = ledger_scope(POOL, client)

        async def release(state: State) -> object:
            return await release_place(state.ledger, scope, lease)

        async def unspend(state: State) -> object:
            return await state.spent.unspend(session_id, lease)

        undos: list[tuple[str, Undo]] = [
            (f"release {scope} {lease}", release),
            (f"unspend {session_id} {lease}", unspend),
        ]
        done = await asyncio.gather(*(call(self.state) for _, call in undos), return_exceptions=True)
        for (what, call), result in zip(undos, done, strict=True):
            if isinstance(result, StateUnavailable):
                pending_ends(websocket).keep(PendingUndo(what, client, call))

    def _idle_limit(self) -> ReceiveLimit:
        """An idle socket would hold a decoder for good: the stream is closed with an ERROR naming the reason when
        the client sends nothing for LOCAL_IDLE_TIMEOUT_S."""
        idle_s = self.settings.local_idle_timeout_s
        # The wall clock, not self.clock: the transport compares this deadline with its own time.time() and waits
        # for it in real time (asyncio's timeouts).
        return ReceiveLimit(
            lambda: time.time() + idle_s,
            f"No message for {idle_s:g} s (LOCAL_IDLE_TIMEOUT_S): the idle stream is closed to free the engine for "
            "others.",
            idle=True,
        )

    @property
    def deployment_size(self) -> int:
        """Streams every worker's engine decodes at once together: the settings' whole when `--workers` divided
        it, else this engine's size."""
        whole = self.settings.local.all_workers_sessions
        return whole if whole is not None else self.engine_size

    @property
    def engine_size(self) -> int:
        """Streams the engine decodes at once (a client's cap stays below it): the loaded engine's own figure when
        it has one (an injected engine), else the configured one."""
        recognizer = self._recognizer
        return recognizer.max_sessions if isinstance(recognizer, Bounded) else self.settings.local.engine.max_sessions

    async def end_session(self, session_id: str) -> bool:
        """An open stream ends when its socket closes; ending a grant not yet used spends it, so it can no longer
        open one (the caller's ledger then releases its reservation, and says whether there was one)."""
        await self.state.spent.spend(session_id, self.clock() + self.tokens.ttl_s)
        return False

    async def aclose(self) -> None:
        """Stop the engine's worker processes (only an engine this provider loaded; an injected one is the
        caller's). A load still under way is waited for (its thread cannot be stopped) without warming up."""
        self._closing = True
        if self._load is not None:
            with contextlib.suppress(Exception):
                await self._load
        if self._owns_recognizer and isinstance(self._recognizer, Closes):
            await self._recognizer.aclose()
        self._recognizer = None
